"""Attack: gain privilege through a setuid-root binary.

/usr (bound read-only from the host) contains setuid-root binaries (su,
passwd, mount, ...). The attack checks the setuid bit is really there (so the
test is not vacuous), then runs them and samples /proc/PID/status while they
run: the effective uid must stay 1000. `su -c id` must fail and must not
print uid=0. statvfs(/usr) must report ST_NOSUID and NoNewPrivs must be 1."""
import os
import stat
import subprocess
import sys
import time

from _common import emit, gate, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("setuid")

candidates = ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/newgrp",
              "/usr/bin/chfn", "/usr/bin/gpasswd", "/usr/bin/sudo", "/usr/bin/pkexec"]
setuid_bins = []
for path in candidates:
    try:
        st = os.stat(path)
    except OSError:
        continue
    if st.st_mode & stat.S_ISUID:
        setuid_bins.append(path)

results = {}
results["setuid-root binaries present"] = {
    "found": setuid_bins,
    # no setuid binary visible at all would make this attack vacuous
    "verdict": "blocked" if setuid_bins else "unexpected"}

flags = {}
for path in ("/usr", "/usr/bin", "/tmp", "/code", "/dev/shm"):
    try:
        flags[path] = bool(os.statvfs(path).f_flag & os.ST_NOSUID)
    except OSError as e:
        flags[path] = "error: %s" % e
results["statvfs /usr ST_NOSUID"] = {"nosuid": flags.get("/usr"),
                                     "verdict": "blocked" if flags.get("/usr") is True else "unexpected"}

with open("/proc/self/status") as f:
    nnp = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("NoNewPrivs:")]
results["NoNewPrivs"] = {"value": nnp[0] if nnp else None,
                         "verdict": "blocked" if nnp == ["1"] else "unexpected"}


def run_and_sample(argv, seconds=2.0):
    """Run argv with a never-written stdin pipe; sample the euid while it runs."""
    try:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    except OSError as e:
        return {"spawn_error": str(e), "euids": []}
    euids = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for ln in f:
                    if ln.startswith("Uid:"):
                        real, eff, saved, fs = ln.split()[1:5]
                        euids.update({int(eff), int(saved), int(fs)})
        except OSError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.002)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    return {"euids": sorted(euids), "rc": p.returncode,
            "stdout": out.decode(errors="replace")[-300:], "stderr": err.decode(errors="replace")[-300:]}


for path, args in (("/usr/bin/su", ["-c", "id"]), ("/usr/bin/passwd", ["-S"]),
                   ("/usr/bin/chfn", []), ("/usr/bin/newgrp", []), ("/usr/bin/mount", [])):
    if path not in setuid_bins:
        continue
    r = run_and_sample([path] + args)
    gained = any(u != 1000 for u in r["euids"]) or "uid=0" in r.get("stdout", "")
    if path == "/usr/bin/su" and r.get("rc") == 0:
        gained = True
    r["verdict"] = "succeeded" if gained else "blocked"
    results["exec %s" % " ".join([path] + args)] = r

verdicts = [v["verdict"] for v in results.values()]
verdict = "succeeded" if "succeeded" in verdicts else ("unexpected" if "unexpected" in verdicts else "blocked")
emit({"attack": "setuid", "results": results, "verdict": verdict, "nosuid": flags,
      "euid": os.geteuid()})
if verdict == "succeeded":
    sys.stderr.write("ATTACK SUCCEEDED: setuid binary gained privilege: %s\n" % [
        k for k, v in results.items() if v["verdict"] == "succeeded"])
    sys.exit(EXIT_SUCCEEDED)
sys.exit(EXIT_BLOCKED if verdict == "blocked" else EXIT_UNEXPECTED)
