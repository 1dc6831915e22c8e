"""Attack: ptrace.

PTRACE_TRACEME (succeeds for any normal process unless seccomp blocks it),
PTRACE_ATTACH / PTRACE_SEIZE of our own child (same uid: also succeeds unless
seccomp blocks ptrace) and of pid 1. Each must fail with EPERM (or SIGSYS).
process_vm_readv on the child is reported for information only."""
import ctypes
import os
import signal
import time

from _common import attempt, deny_errnos, finish, gate, sysc

gate("ptrace")
deny = deny_errnos()
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206
me = os.getpid()

child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def vm_read(pid):
    buf = ctypes.create_string_buffer(16)
    src = ctypes.create_string_buffer(b"0123456789abcdef")  # same address in the forked child
    local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = IoVec(ctypes.cast(src, ctypes.c_void_p), 16)
    return sysc("process_vm_readv", pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)


results = {
    "PTRACE_TRACEME": attempt(lambda: sysc("ptrace", PTRACE_TRACEME, 0, 0, 0)),
    "PTRACE_ATTACH same-uid process": attempt(lambda: sysc("ptrace", PTRACE_ATTACH, child, 0, 0)),
    "PTRACE_SEIZE same-uid process": attempt(lambda: sysc("ptrace", PTRACE_SEIZE, child, 0, 0)),
}
if me != 1:
    results["PTRACE_ATTACH pid 1"] = attempt(lambda: sysc("ptrace", PTRACE_ATTACH, 1, 0, 0))
info = {"process_vm_readv same-uid process (info)": attempt(lambda: vm_read(child))}
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
finish("ptrace", results, deny, {"pid": me, "info": info})
