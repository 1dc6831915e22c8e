"""Attack: io_uring_setup().

io_uring bypasses seccomp for the operations it performs and has a long CVE
history. Allowed on this kernel (io_uring_disabled=0), so without a seccomp
rule this SUCCEEDS. Must fail with EPERM (or the profile's deny errno /
SIGSYS)."""
import ctypes

from _common import attempt, deny_errnos, finish, gate, sysc

gate("io_uring")
deny = deny_errnos()
NR_IO_URING_ENTER, NR_IO_URING_REGISTER = 426, 427


def setup():
    params = (ctypes.c_uint8 * 120)()
    return sysc("io_uring_setup", 8, params)


results = {
    "io_uring_setup(8)": attempt(setup),
    # on a bad fd these are EBADF if they reach the kernel; seccomp must stop them first
    "io_uring_enter(-1)": attempt(lambda: sysc(NR_IO_URING_ENTER, -1, 0, 0, 0, None, 0)),
    "io_uring_register(-1)": attempt(lambda: sysc(NR_IO_URING_REGISTER, -1, 0, None, 0)),
}
finish("io_uring", results, deny)
