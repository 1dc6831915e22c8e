"""Attack: perf_event_open().

A user-space-only software counter on ourselves (PERF_COUNT_SW_CPU_CLOCK,
exclude_kernel, exclude_hv) is allowed by perf_event_paranoid=2, so without a
seccomp rule this SUCCEEDS. Must fail with EPERM (or the profile's deny errno
/ SIGSYS)."""
import ctypes
import errno

from _common import attempt, deny_errnos, finish, gate, sysc

gate("perf_event")
deny = deny_errnos()
PERF_TYPE_SOFTWARE, PERF_TYPE_HARDWARE = 1, 0


def perf_open(type_, config):
    attr = (ctypes.c_uint64 * 17)()           # 136 bytes, zeroed
    attr[0] = type_ | (64 << 32)              # type, size = PERF_ATTR_SIZE_VER0
    attr[1] = config
    attr[5] = (1 << 0) | (1 << 5) | (1 << 6)  # disabled, exclude_kernel, exclude_hv
    return sysc("perf_event_open", attr, 0, -1, -1, 0)


results = {
    "perf_event_open(SW_CPU_CLOCK, self)": attempt(lambda: perf_open(PERF_TYPE_SOFTWARE, 0)),
    "perf_event_open(HW_CPU_CYCLES, self)": attempt(lambda: perf_open(PERF_TYPE_HARDWARE, 0)),
}
# hardware counters may simply not exist in a VM (ENOENT/EOPNOTSUPP): only the
# software counter decides when the hardware one reached the kernel
hw = results["perf_event_open(HW_CPU_CYCLES, self)"]
hw["accept"] = [errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV]
finish("perf_event", results, deny)
