"""Shared helpers for the HKS sandbox attack programs (tests/security/*.py).

These programs are ATTACKS. They are meant to run only inside hks-sandbox.
Every program calls ``gate()`` first: it refuses to do anything unless it
sees the sandbox identity promised by the contract (uid 1000, hostname
"sandbox"), so that a mistaken run on the host (or a sandbox so broken that
it runs the program as root) does not attack the machine for real.

Conventions (see tests/integration/test_security.py):
  * the program prints ONE line of JSON describing what it observed,
    e.g. {"attack": "ptrace", "results": {...}, "verdict": "blocked"};
  * exit 0  -> the attack failed the right way (EPERM / SIGSYS / ...);
  * exit 3  -> the attack SUCCEEDED (message on stderr);
  * exit 4  -> the attack failed, but not the way a correct sandbox makes it
               fail (e.g. ENOTTY instead of EPERM: the syscall reached the
               kernel code instead of being stopped by seccomp);
  * exit 5  -> refused to run (not inside the sandbox).

argv[1] is always the suite marker (so the host can find leftover processes
with ``pgrep -f MARKER``); it is otherwise unused.
"""

import ctypes
import errno
import json
import os
import socket
import sys

EXIT_BLOCKED = 0
EXIT_SUCCEEDED = 3
EXIT_UNEXPECTED = 4
EXIT_REFUSED = 5

SIGSYS = 31

# x86_64 syscall numbers
NR = {
    "ioctl": 16,
    "getpid": 39,
    "socket": 41,
    "clone": 56,
    "kill": 62,
    "ptrace": 101,
    "syslog": 103,
    "setuid": 105,
    "capget": 125,
    "capset": 126,
    "pivot_root": 155,
    "prctl": 157,
    "chroot": 161,
    "mount": 165,
    "umount2": 166,
    "init_module": 175,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "process_vm_readv": 310,
    "bpf": 321,
    "userfaultfd": 323,
    "pidfd_open": 434,
    "io_uring_setup": 425,
    "clone3": 435,
}

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def gate(attack):
    """Refuse to run outside the sandbox (see module docstring)."""
    problems = []
    if os.getuid() != 1000 or os.geteuid() != 1000:
        problems.append("uid=%d euid=%d (expected 1000)" % (os.getuid(), os.geteuid()))
    host = socket.gethostname()
    if host != "sandbox":
        problems.append("hostname=%r (expected 'sandbox')" % host)
    if problems:
        emit({"attack": attack, "refused": "; ".join(problems)})
        sys.stderr.write("refusing to run attack %s outside the sandbox: %s\n"
                         % (attack, "; ".join(problems)))
        sys.exit(EXIT_REFUSED)


def deny_errnos(default=(errno.EPERM,)):
    """errno values that mean "denied by the sandbox".

    The test passes HKS_DENY_ERRNOS (comma separated numbers) computed from the
    seccomp profile's default errno; EPERM is always accepted (missing
    capability or an explicit seccomp ERRNO(EPERM) rule)."""
    raw = os.environ.get("HKS_DENY_ERRNOS", "")
    vals = set(default)
    for part in raw.split(","):
        part = part.strip()
        if part:
            vals.add(int(part))
    return vals


def _arg(a):
    if a is None:
        return ctypes.c_void_p(0)
    if isinstance(a, int):
        return ctypes.c_long(a)
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    return a  # ctypes object / buffer: passed as pointer


def sysc(name_or_nr, *args):
    """Raw syscall. Returns {"ret": r, "errno": e} (errno 0 on success)."""
    nr = NR[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    e = ctypes.get_errno() if r == -1 else 0
    return {"ret": int(r), "errno": e, "errname": errno.errorcode.get(e, str(e)) if e else None}


def attempt(fn):
    """Run fn() in a forked child so that a seccomp SIGSYS kill of one attempt
    is observed (as {"signal": 31}) and the remaining attempts still run.
    fn returns a JSON-able dict (usually sysc(...)'s result)."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            res = fn()
        except OSError as e:  # python-level syscall wrappers
            res = {"ret": -1, "errno": e.errno,
                   "errname": errno.errorcode.get(e.errno, str(e.errno)), "exc": str(e)}
        except BaseException as e:  # noqa
            res = {"exception": repr(e)}
        try:
            os.write(w, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    if data:
        return json.loads(data)
    return {"exit": os.WEXITSTATUS(status)}


def classify(res, deny):
    """'blocked' (denied errno or SIGSYS), 'succeeded', or 'unexpected'.

    A result may carry "accept": [errno, ...] for extra errnos that also mean
    "denied" for that particular attempt (e.g. ENOSYS for clone3)."""
    if "force_verdict" in res:
        return res["force_verdict"]
    if "verdict" in res and "ret" not in res and "signal" not in res:
        return res["verdict"]  # a non-syscall check that judged itself
    deny = set(deny) | set(res.get("accept", []))
    if res.get("signal") == SIGSYS:
        return "blocked"
    if "signal" in res or "exception" in res or "exit" in res:
        return "unexpected"
    if res.get("ret", -1) != -1 and not res.get("errno"):
        return "succeeded"
    if res.get("errno") in deny:
        return "blocked"
    return "unexpected"


def finish(attack, results, deny, extra=None):
    """results: {label: attempt-result}. Print the observation, exit 0/3/4."""
    verdicts = {k: classify(v, deny) for k, v in results.items()}
    for k, v in results.items():
        v["verdict"] = verdicts[k]
    if any(v == "succeeded" for v in verdicts.values()):
        verdict, code = "succeeded", EXIT_SUCCEEDED
    elif any(v == "unexpected" for v in verdicts.values()):
        verdict, code = "unexpected", EXIT_UNEXPECTED
    else:
        verdict, code = "blocked", EXIT_BLOCKED
    obs = {"attack": attack, "results": results, "verdict": verdict,
           "deny_errnos": sorted(deny)}
    if extra:
        obs.update(extra)
    emit(obs)
    if code == EXIT_SUCCEEDED:
        sys.stderr.write("ATTACK SUCCEEDED: %s: %s\n" % (
            attack, ", ".join(k for k, v in verdicts.items() if v == "succeeded")))
    elif code == EXIT_UNEXPECTED:
        sys.stderr.write("attack %s failed in an unexpected way: %s\n" % (
            attack, ", ".join(k for k, v in verdicts.items() if v == "unexpected")))
    sys.exit(code)


def run_machine_code(code, restype=ctypes.c_long):
    """Map `code` (bytes) RWX and call it as a C function without arguments."""
    import mmap
    m = mmap.mmap(-1, mmap.PAGESIZE,
                  flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                  prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    fn = ctypes.CFUNCTYPE(restype)(addr)
    return fn()
