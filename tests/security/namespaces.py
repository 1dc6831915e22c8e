"""Attack: create or enter namespaces.

unshare(CLONE_NEWUSER | CLONE_NEWNS), unshare(CLONE_NEWUSER),
unshare(CLONE_NEWNET), clone(CLONE_NEWUSER), clone3(CLONE_NEWUSER) and
setns() into our own net / mnt / uts namespaces. Nested user namespaces are
allowed by the kernel to an unprivileged process, so without a seccomp rule
unshare/clone(CLONE_NEWUSER) SUCCEED: each attempt must fail with EPERM
(or SIGSYS). clone3 cannot be filtered by flags (they are behind a pointer);
a profile has to deny clone3 as a whole: EPERM / ENOSYS / SIGSYS."""
import ctypes
import errno
import os
import signal

from _common import attempt, deny_errnos, finish, gate, sysc

gate("namespaces")
deny = deny_errnos()
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000


def do_clone(flags):
    # raw clone(flags, stack=NULL, ...) behaves like fork(): the child returns 0
    r = sysc("clone", flags | signal.SIGCHLD, 0, 0, 0, 0)
    if r["ret"] == 0:
        os._exit(0)
    if r["ret"] > 0:
        os.waitpid(r["ret"], 0)
    return r


class CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
        "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]


def do_clone3(flags):
    args = CloneArgs()
    args.flags = flags
    args.exit_signal = signal.SIGCHLD
    r = sysc("clone3", ctypes.byref(args), ctypes.sizeof(args))
    if r["ret"] == 0:
        os._exit(0)
    if r["ret"] > 0:
        os.waitpid(r["ret"], 0)
    return r


def do_setns(path, nstype):
    fd = os.open(path, os.O_RDONLY)
    return sysc("setns", fd, nstype)


results = {
    "unshare(NEWUSER|NEWNS)": attempt(lambda: sysc("unshare", CLONE_NEWUSER | CLONE_NEWNS)),
    "unshare(NEWUSER)": attempt(lambda: sysc("unshare", CLONE_NEWUSER)),
    "unshare(NEWNS)": attempt(lambda: sysc("unshare", CLONE_NEWNS)),
    "unshare(NEWNET)": attempt(lambda: sysc("unshare", CLONE_NEWNET)),
    "unshare(NEWPID)": attempt(lambda: sysc("unshare", CLONE_NEWPID)),
    "clone(NEWUSER)": attempt(lambda: do_clone(CLONE_NEWUSER)),
    "clone(NEWUSER|NEWNS|NEWPID)": attempt(lambda: do_clone(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID)),
    "setns(self net)": attempt(lambda: do_setns("/proc/self/ns/net", CLONE_NEWNET)),
    "setns(self mnt)": attempt(lambda: do_setns("/proc/self/ns/mnt", CLONE_NEWNS)),
    "setns(self uts)": attempt(lambda: do_setns("/proc/self/ns/uts", CLONE_NEWUTS)),
}
# clone3 may also be denied with ENOSYS (so that libc falls back to clone)
r = attempt(lambda: do_clone3(CLONE_NEWUSER))
r["accept"] = [errno.ENOSYS]
results["clone3(NEWUSER)"] = r
finish("namespaces", results, deny)
