#!/usr/bin/env python3
"""Generate an OCI bundle for crun roughly equivalent to hks-sandbox defaults.

usage: crun-bundle.py BUNDLE_DIR [--seccomp PROFILE] -- PROGRAM [ARGS...]

The bundle gets:
  * rootfs/ : an empty directory (read-only root) holding only mount points and
    the /bin /lib /lib64 /sbin entries (symlinks into /usr when they are
    symlinks on the host, read-only binds otherwise);
  * read-only binds of /usr (and /lib* /bin /sbin when they are real dirs);
  * fresh /proc, a small /dev tmpfs (crun adds null/zero/random/urandom/... and
    the fd symlinks), /dev/shm tmpfs, /tmp tmpfs (64M);
  * namespaces user/pid/mount/network/ipc/uts/cgroup, uid/gid 1000 inside
    (container 0-65535 mapped to host 100000-165535);
  * memory 256M (no swap), pids 64, 1 CPU of bandwidth, RLIMIT_NOFILE 256,
    RLIMIT_FSIZE 64M, no capabilities, noNewPrivileges;
  * optionally the OCI seccomp profile (policies/seccomp/function.json).
"""
import json
import os
import sys

HOST_DIRS = ["/usr", "/lib", "/lib64", "/bin", "/sbin"]
MEMORY = 256 * 1024 * 1024
PIDS = 64
FSIZE = 64 * 1024 * 1024
NOFILE = 256
MAPPED_BASE = 100000


def oci_seccomp(path):
    """Keep only the OCI runtime-spec fields of a (possibly Docker-style) profile."""
    with open(path) as f:
        prof = json.load(f)
    out = {"defaultAction": prof.get("defaultAction", "SCMP_ACT_ERRNO")}
    if "defaultErrnoRet" in prof and out["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    archs = prof.get("architectures")
    if not archs and "archMap" in prof:
        archs = []
        for a in prof["archMap"]:
            archs.append(a["architecture"])
            archs.extend(a.get("subArchitectures", []))
    if archs:
        out["architectures"] = archs
    if "flags" in prof:
        out["flags"] = prof["flags"]
    syscalls = []
    for rule in prof.get("syscalls", []):
        names = rule.get("names") or ([rule["name"]] if "name" in rule else [])
        if not names:
            continue
        # Docker-style conditional rules (includes/excludes) are skipped when they
        # depend on capabilities: the sandbox has none.
        inc = rule.get("includes") or {}
        if inc.get("caps"):
            continue
        r = {"names": names, "action": rule["action"]}
        if "errnoRet" in rule and rule["action"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
            r["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            r["args"] = rule["args"]
        syscalls.append(r)
    out["syscalls"] = syscalls
    return out


def main():
    argv = sys.argv[1:]
    if "--" not in argv or not argv or argv[0] == "--":
        sys.exit(__doc__)
    sep = argv.index("--")
    opts, prog = argv[:sep], argv[sep + 1:]
    bundle = opts[0]
    seccomp = None
    if len(opts) >= 3 and opts[1] == "--seccomp":
        seccomp = opts[2]
    if not prog:
        sys.exit("no program")

    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs, exist_ok=True)
    mounts = []
    for d in HOST_DIRS:
        if not os.path.lexists(d):
            continue
        target = os.path.join(rootfs, d.lstrip("/"))
        if os.path.islink(d):
            if not os.path.lexists(target):
                os.symlink(os.readlink(d), target)
            continue
        os.makedirs(target, exist_ok=True)
        mounts.append({"destination": d, "type": "bind", "source": d,
                       "options": ["rbind", "ro", "nosuid", "nodev"]})
    for d in ("proc", "dev", "tmp"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    mounts += [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=64k"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=8m"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=64m"]},
    ]

    caps = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    cfg = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 1000, "gid": 1000},
            "args": prog,
            "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"],
            "cwd": "/tmp",
            "capabilities": caps,
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": NOFILE, "soft": NOFILE},
                {"type": "RLIMIT_FSIZE", "hard": FSIZE, "soft": FSIZE},
            ],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "sandbox",
        "mounts": mounts,
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": MAPPED_BASE, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": MAPPED_BASE, "size": 65536}],
            "namespaces": [{"type": t} for t in
                           ("user", "pid", "mount", "network", "ipc", "uts", "cgroup")],
            "resources": {
                "devices": [{"allow": False, "access": "rwm"}],
                "memory": {"limit": MEMORY, "swap": MEMORY},
                "pids": {"limit": PIDS},
                "cpu": {"quota": 100000, "period": 100000},
            },
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                              "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    if seccomp:
        cfg["linux"]["seccomp"] = oci_seccomp(seccomp)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
