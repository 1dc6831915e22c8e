"""Attack: see or signal host processes.

The test starts `sleep` processes on the host (one as root, one as the host
uid the sandbox user maps to) and passes their host pids in HKS_HOST_PIDS.
They must not be visible in /proc, and kill(pid, 0) / kill(pid, SIGKILL) /
pidfd_open(pid) must fail with ESRCH (the pid does not exist in the
sandbox's pid namespace). The test then checks the sleeps are still alive."""
import errno
import os
import signal
import sys

from _common import deny_errnos, emit, gate, sysc, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("host_procs")
deny = deny_errnos()
host_pids = [int(p) for p in os.environ.get("HKS_HOST_PIDS", "").split(",") if p.strip()]


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


visible = {}
for entry in os.listdir("/proc"):
    if entry.isdigit():
        visible[int(entry)] = cmdline(entry)

results = {}
for pid in host_pids:
    cl = visible.get(pid)
    seen = pid in visible and cl is not None and "sleep" in cl
    results["/proc/%d visible" % pid] = {"visible": pid in visible, "cmdline": cl,
                                         "verdict": "succeeded" if seen else "blocked"}
    for label, sig in (("kill(%d, 0)" % pid, 0), ("kill(%d, SIGKILL)" % pid, signal.SIGKILL)):
        r = sysc("kill", pid, sig)
        if r["errno"] == 0:
            r["verdict"] = "succeeded"
        else:
            r["verdict"] = "blocked" if r["errno"] == errno.ESRCH else "unexpected"
        results[label] = r
    r = sysc("pidfd_open", pid, 0)
    r["verdict"] = "succeeded" if r["errno"] == 0 else (
        "blocked" if r["errno"] in ({errno.ESRCH} | deny) else "unexpected")
    results["pidfd_open(%d)" % pid] = r

# any process in view that is not ours? (all visible processes should be the
# sandbox's own: the program, maybe an init. A host process would show e.g. sleep)
foreign = {p: c for p, c in visible.items() if c and "sleep" in c}
results["foreign processes in /proc"] = {"foreign": foreign,
                                         "verdict": "succeeded" if foreign else "blocked"}
verdicts = [v["verdict"] for v in results.values()]
verdict = "succeeded" if "succeeded" in verdicts else ("unexpected" if "unexpected" in verdicts else "blocked")
emit({"attack": "host_procs", "results": results, "verdict": verdict,
      "visible_pids": {str(k): v for k, v in sorted(visible.items())},
      "my_pid": os.getpid(), "host_pids": host_pids})
if verdict == "succeeded":
    sys.stderr.write("ATTACK SUCCEEDED: host processes visible/signalable: %s\n" % [
        k for k, v in results.items() if v["verdict"] == "succeeded"])
    sys.exit(EXIT_SUCCEEDED)
sys.exit(EXIT_BLOCKED if verdict == "blocked" else EXIT_UNEXPECTED)
