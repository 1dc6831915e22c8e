"""Attack: TIOCSTI terminal input injection (and CVE-2019-10063).

ioctl(fd, TIOCSTI, "x") pushes a character into a terminal's input queue:
if the sandbox's stdin is the host's terminal, the injected text would be
executed by the host shell after the sandbox exits. The test gives the
sandbox a pseudo-terminal as stdin and checks afterwards that nothing was
injected. The seccomp profile must deny TIOCSTI on any fd (EPERM or SIGSYS),
including with high bits set in the 64-bit cmd (0x100005412): the kernel
truncates cmd to 32 bits, so a filter comparing all 64 bits is bypassed
(CVE-2019-10063). If a pty can be opened inside, it is made our controlling
terminal (we are a session leader) and attacked too."""
import ctypes
import os

from _common import attempt, deny_errnos, finish, gate, sysc

gate("tiocsti")
deny = deny_errnos()
TIOCSTI = 0x5412
TIOCSTI_HIGH = 0x100005412
TIOCSCTTY = 0x540E


def sti(fd, cmd):
    c = ctypes.create_string_buffer(b"x")
    return sysc("ioctl", fd, cmd, c)


def make_ctty(fd):
    """Strongest setup for the attack: become a session leader (we run in a
    forked child, so setsid() works) and make the tty our controlling
    terminal; without a seccomp rule TIOCSTI then succeeds on it."""
    try:
        os.setsid()
    except OSError:
        pass
    if os.isatty(fd):
        return sysc("ioctl", fd, TIOCSCTTY, 0)
    return None


def sti_ctty(fd, cmd):
    ctty = make_ctty(fd)
    res = sti(fd, cmd)
    res["tiocsctty"] = ctty
    return res


info = {"isatty": {fd: os.isatty(fd) for fd in (0, 1, 2)}}
results = {}
for fd in (0, 1, 2):
    results["ioctl(%d, TIOCSTI)" % fd] = attempt(lambda fd=fd: sti_ctty(fd, TIOCSTI))
    results["ioctl(%d, 0x100005412)" % fd] = attempt(lambda fd=fd: sti_ctty(fd, TIOCSTI_HIGH))


def pty_attack(cmd):
    master, slave = os.openpty()
    r = make_ctty(slave)
    res = sti(slave, cmd)
    res["tiocsctty"] = r
    if res["errno"] == 0:
        res["injected"] = os.read(master, 16).decode(errors="replace")
    return res


try:
    m, s = os.openpty()
    os.close(m)
    os.close(s)
    info["pty"] = "available"
except OSError as e:
    info["pty"] = "unavailable: %s" % e
if info["pty"] == "available":
    results["pty TIOCSTI"] = attempt(lambda: pty_attack(TIOCSTI))
    results["pty 0x100005412"] = attempt(lambda: pty_attack(TIOCSTI_HIGH))
finish("tiocsti", results, deny, info)
