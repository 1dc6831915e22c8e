"""What a hksd holds on the host, to compare before and after a load or a fault: its memory, fds
and threads, its processes (the spawner, the sandboxes), the cgroups its spawners made (hks-<pid>-*
in every cgroup hierarchy, v1 and v2), its mounts, and the entries of its state directory.

Used by the fault tests (test_faults.py) and by bench/load.sh (`python3 host_state.py PID STATE`
prints one snapshot as JSON)."""

import json
import os
import sys

STATE_DIRS = ("fn", "sock", "pool", "functions", "cronjobs")


def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def children_map():
    """pid -> [child pids] of every process on the host."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read("/proc/%s/stat" % entry)
        if not stat:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid):
    kids = children_map()
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def uid_processes(uid=101000):
    """Processes of the sandbox user on the host (any creator)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat("/proc/" + entry).st_uid == uid:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def cgroup_roots():
    """Mount points of every cgroup hierarchy (v1 and v2)."""
    roots = []
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fstype = right.split()[0] if right else ""
        if fstype in ("cgroup", "cgroup2"):
            roots.append(left.split()[4])
    return roots


def hks_cgroups():
    """Every hks-<pid>-* cgroup directory, as (hierarchy root, path)."""
    found = set()
    for root in cgroup_roots():
        for dirpath, dirnames, _ in os.walk(root):
            for d in list(dirnames):
                if d.startswith("hks-") and d != "hks-supervisor":
                    found.add(os.path.join(dirpath, d))
                    dirnames.remove(d)  # a sandbox's cgroup has no hks-* below it
    return found


def cgroup_owner(path):
    """The pid a hks-<pid>-<n>-<nonce> cgroup is named after (its creator), or 0."""
    parts = os.path.basename(path).split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


def mounts_under(prefix):
    """Mount points at or below prefix, in this mount namespace."""
    out = []
    for line in _read("/proc/self/mountinfo").splitlines():
        point = line.split()[4]
        if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
            out.append(point)
    return out


def state_entries(state):
    return {d: sorted(os.listdir(os.path.join(state, d)))
            if os.path.isdir(os.path.join(state, d)) else [] for d in STATE_DIRS}


def cpu_seconds(pid):
    stat = _read("/proc/%d/stat" % pid)
    if not stat:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def snapshot(pid, state):
    """One look at hksd pid and its state directory."""
    status = _read("/proc/%d/status" % pid)
    field = {ln.split(":")[0]: ln.split(":", 1)[1].strip() for ln in status.splitlines()
             if ":" in ln}
    below = descendants(pid)
    ours = below | {pid}
    try:
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        fds = -1
    cgroups = sorted(c for c in hks_cgroups() if cgroup_owner(c) in ours)
    # the spawner is hksd's child (the sandboxes' inits below it carry the same name)
    spawners = sorted(p for p in children_map().get(pid, [])
                      if _read("/proc/%d/comm" % p).strip() == "hks-spawner")
    return {
        "pid": pid,
        "rss_kb": int(field.get("VmRSS", "0 kB").split()[0]),
        "threads": int(field.get("Threads", "0")),
        "fds": fds,
        "processes": len(below),
        "spawners": spawners,
        "sandbox_processes": len(below & uid_processes()),
        "cgroups": cgroups,
        "cgroup_count": len(cgroups),
        "state": state_entries(state),
        "mounts": mounts_under(state),
        "cpu_s": cpu_seconds(pid),
        "spawner_cpu_s": sum(cpu_seconds(p) for p in spawners),
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: host_state.py PID STATE_DIR")
    json.dump(snapshot(int(sys.argv[1]), sys.argv[2]), sys.stdout)
    print()
