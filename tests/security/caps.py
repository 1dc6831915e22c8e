"""Attack: regain a capability / privilege.

Reads /proc/self/status (CapInh, CapPrm, CapEff, CapBnd, CapAmb must all be
0, NoNewPrivs 1, Seccomp 2) and PR_CAPBSET_READ for every capability; then
tries capset() raising CAP_SYS_ADMIN, PR_CAP_AMBIENT_RAISE, setuid(0),
setgid(0), setgroups([0]) and PR_SET_SECUREBITS. Each must fail with EPERM
(or SIGSYS)."""
import ctypes
import errno
import os

from _common import attempt, deny_errnos, finish, gate, sysc

gate("caps")
deny = deny_errnos()
CAP_SYS_ADMIN = 21
PR_CAPBSET_READ, PR_SET_SECUREBITS, PR_CAP_AMBIENT = 23, 28, 47
PR_CAP_AMBIENT_RAISE = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset_raise():
    hdr = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()
    bit = 1 << CAP_SYS_ADMIN
    data[0].effective = bit
    data[0].permitted = bit
    data[0].inheritable = bit
    return sysc("capset", ctypes.byref(hdr), data)


def capget():
    hdr = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()
    r = sysc("capget", ctypes.byref(hdr), data)
    r["caps"] = [[d.effective, d.permitted, d.inheritable] for d in data]
    return r


status = {}
with open("/proc/self/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        status[k.strip()] = v.strip()

results = {}
for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    val = status.get(key)
    ok = val is not None and int(val, 16) == 0
    results["/proc/self/status " + key] = {"value": val, "verdict": "blocked" if ok else "succeeded"}
for key, want in (("NoNewPrivs", "1"), ("Seccomp", "2")):
    val = status.get(key)
    results["/proc/self/status " + key] = {"value": val, "want": want,
                                           "verdict": "blocked" if val == want else "succeeded"}

bset = []
for cap in range(64):
    r = sysc("prctl", PR_CAPBSET_READ, cap, 0, 0, 0)
    if r["ret"] == -1:
        break  # EINVAL past the last capability
    if r["ret"] == 1:
        bset.append(cap)
results["PR_CAPBSET_READ"] = {"caps_in_bounding_set": bset,
                              "verdict": "succeeded" if bset else "blocked"}

results["capset raise CAP_SYS_ADMIN"] = attempt(capset_raise)
results["PR_CAP_AMBIENT_RAISE CAP_SYS_ADMIN"] = attempt(
    lambda: sysc("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0))
# EINVAL is also a correct refusal here: uid/gid 0 is not mapped in the sandbox's user namespace
for label, fn in (("setuid(0)", lambda: sysc("setuid", 0)),
                  ("setgid(0)", lambda: sysc(106, 0)),
                  ("setgroups([0])", lambda: sysc(116, 1, (ctypes.c_uint * 1)(0)))):
    r = attempt(fn)
    r["accept"] = [errno.EINVAL]
    results[label] = r
results["PR_SET_SECUREBITS 0"] = attempt(lambda: sysc("prctl", PR_SET_SECUREBITS, 0, 0, 0, 0))
finish("caps", results, deny, {"capget": attempt(capget), "uid": os.getuid(), "gid": os.getgid(),
                               "groups": os.getgroups(),
                               "status": {k: status.get(k) for k in (
                                   "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd",
                                   "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters")}})
