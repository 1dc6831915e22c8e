"""Attack: assorted privileged kernel interfaces.

syslog(READ_ALL) (host kernel log), init_module / finit_module (load a
kernel module), kexec_load, acct, swapoff, sethostname(not-sandbox),
settimeofday, iopl / ioperm. Called with arguments that would fail
harmlessly even if the call reached its permission check; each must fail
with EPERM (or the profile's deny errno / SIGSYS)."""
import ctypes

from _common import attempt, deny_errnos, finish, gate, sysc

gate("privileged_misc")
deny = deny_errnos()
NR_FINIT_MODULE, NR_ACCT, NR_SWAPOFF, NR_SETHOSTNAME = 313, 163, 168, 170
NR_SETTIMEOFDAY, NR_IOPL, NR_IOPERM, NR_CLOCK_SETTIME = 164, 172, 173, 227
SYSLOG_ACTION_READ_ALL = 3


def syslog_read():
    buf = ctypes.create_string_buffer(4096)
    r = sysc("syslog", SYSLOG_ACTION_READ_ALL, buf, 4096)
    if r["ret"] > 0:
        r["sample"] = buf.raw[:80].decode(errors="replace")
    return r


results = {
    "syslog(READ_ALL)": attempt(syslog_read),
    "init_module(empty)": attempt(lambda: sysc("init_module", None, 0, b"")),
    "finit_module(-1)": attempt(lambda: sysc(NR_FINIT_MODULE, -1, b"", 0)),
    "kexec_load(bad entry)": attempt(lambda: sysc("kexec_load", 1, 1, None, 0xDEAD0000)),
    "acct(/nonexistent)": attempt(lambda: sysc(NR_ACCT, b"/nonexistent")),
    "swapoff(/nonexistent)": attempt(lambda: sysc(NR_SWAPOFF, b"/nonexistent")),
    "sethostname(pwned)": attempt(lambda: sysc(NR_SETHOSTNAME, b"pwned", 5)),
    "settimeofday(NULL, NULL)": attempt(lambda: sysc(NR_SETTIMEOFDAY, None, None)),
    "iopl(3)": attempt(lambda: sysc(NR_IOPL, 3)),
    "ioperm(0x80, 1, 1)": attempt(lambda: sysc(NR_IOPERM, 0x80, 1, 1)),
}
finish("privileged_misc", results, deny)
