"""Shared fixtures for the hks-sandbox integration tests.

* the binary: $HKS_SANDBOX, else <repo>/build/hks-sandbox (tests skip if missing);
* run_sandbox(args, code_dir, program, ...): runs
      hks-sandbox --json --ro-bind CODE_DIR:/code ARGS... -- PROGRAM...
  with a subprocess timeout, parses the one JSON record it prints and checks
  that no process carrying the run's unique marker survives the run;
* a session-wide snapshot of host state (hks-* cgroups, mounts, hks-* temp
  entries, processes with the suite marker) compared after the suite.

Every program run through py()/js() gets a unique marker as argv[1] so that a
process left behind by the sandbox can be found on the host by its command
line (what `pgrep -f MARKER` does).
"""

import collections
import errno
import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SECURITY_DIR = REPO / "tests" / "security"
DEFAULT_PROFILE = REPO / "policies" / "seccomp" / "function.json"
PYTHON = "/usr/bin/python3"
NODE = "/usr/bin/node"

SUITE_MARKER = "hkssec" + uuid.uuid4().hex[:12]
MARKER = "{marker}"  # placeholder in program argv, replaced by the run's marker
_run_counter = itertools.count(1)
# pids of every hks-sandbox this suite started: a cgroup is named hks-<pid>-...
# after the process that created it, so leftovers can be told apart from those
# of sandboxes run concurrently by someone else on the machine
OUR_SANDBOX_PIDS = set()

CGROUP_ROOTS = ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup"]
TEMP_DIRS = ["/tmp", "/dev/shm", "/var/tmp"]

RECORD_KEYS = {
    "status": str, "exit_code": (int, type(None)), "signal": (int, type(None)),
    "timeout_reason": (str, type(None)), "wall_ms": (int, float), "cpu_ms": (int, float),
    "peak_memory_bytes": int, "stdout": str, "stderr": str, "stdout_truncated": bool,
    "stderr_truncated": bool, "message": (str, type(None)), "cgroup": str,
}
STATUSES = {"ok", "error", "timeout", "oom", "output_limit", "killed", "internal_error"}


def sandbox_path():
    return os.environ.get("HKS_SANDBOX") or str(REPO / "build" / "hks-sandbox")


def py(script, *args):
    """argv for a python attack program in /code (argv[1] = the run's marker)."""
    return [PYTHON, "-B", "/code/" + script, MARKER, *args]


def js(script, *args):
    """argv for a node attack program in /code (argv[2] = the run's marker)."""
    return [NODE, "/code/" + script, MARKER, *args]


# ---------------------------------------------------------------- host inspection

def procs_with(marker):
    """{pid: cmdline} of host processes whose command line contains marker
    (like `pgrep -f marker`, but also returns the command lines)."""
    found = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cl = f.read()
        except OSError:
            continue
        if marker.encode() in cl:
            found[int(entry)] = cl.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def pgrep(marker):
    """`pgrep -f marker` (the exact check the issue asks for); [] if none."""
    r = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split() if int(p) != os.getpid()]


def proc_uid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def hks_cgroups():
    """Set of cgroup directories whose name starts with "hks-" in the v1
    memory/pids/cpu/cpuacct hierarchies and the unified one."""
    found = set()
    for root in CGROUP_ROOTS:
        if not os.path.isdir(root):
            continue
        base_depth = root.rstrip("/").count("/")
        for dirpath, dirnames, _ in os.walk(root):
            depth = dirpath.rstrip("/").count("/") - base_depth
            if root == "/sys/fs/cgroup" and depth == 0:
                # only a cgroup2 mounted directly at /sys/fs/cgroup; the named
                # hierarchies below are walked separately
                dirnames[:] = [d for d in dirnames if d.startswith("hks-")]
            if depth >= 6:
                dirnames[:] = []
            for d in dirnames:
                if d.startswith("hks-"):
                    found.add(os.path.join(dirpath, d))
    return found


def cgroup_owner(path):
    """pid in a cgroup name hks-<pid>-<n>-<hex>, or None."""
    parts = os.path.basename(path).split("-")
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return None


def cgroups_of(sandbox_pid):
    """hks-<pid>-* cgroups that the hks-sandbox process `sandbox_pid` created."""
    prefix = "hks-%d-" % sandbox_pid
    return {c for c in hks_cgroups() if os.path.basename(c).startswith(prefix)}


def mounts():
    """Multiset of (mount point, fs type, source) of the host mount namespace."""
    c = collections.Counter()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            c[(fields[4], rfields[0] if rfields else "", rfields[1] if len(rfields) > 1 else "")] += 1
    return c


def hks_temp_entries():
    out = set()
    for d in TEMP_DIRS:
        try:
            out.update(os.path.join(d, e) for e in os.listdir(d) if e.startswith("hks-"))
        except OSError:
            pass
    return out


def host_snapshot():
    return {"cgroups": hks_cgroups(), "mounts": mounts(), "temp": hks_temp_entries()}


def leftovers_since(before, tries=10, delay=0.3):
    """Differences between the host state now and `before` (retried a few
    times, so that a concurrent, still-finishing run is not counted)."""
    for i in range(tries):
        now = host_snapshot()
        problems = {}
        new_cg = now["cgroups"] - before["cgroups"]
        ours = {c for c in new_cg if cgroup_owner(c) in OUR_SANDBOX_PIDS}
        if ours:
            problems["new hks-* cgroups"] = sorted(ours)
        if new_cg - ours and i == tries - 1:
            warnings.warn("hks-* cgroups of sandboxes not started by this suite: %s" % sorted(new_cg - ours))
        new_mounts = now["mounts"] - before["mounts"]
        gone_mounts = before["mounts"] - now["mounts"]
        if new_mounts:
            problems["new mounts"] = sorted(new_mounts.elements())
        if gone_mounts:
            problems["vanished mounts"] = sorted(gone_mounts.elements())
        new_tmp = now["temp"] - before["temp"]
        if new_tmp:
            problems["new hks-* temp entries"] = sorted(new_tmp)
        procs = procs_with(SUITE_MARKER)
        if procs:
            problems["processes with the suite marker"] = procs
        if not problems:
            return {}
        if i < tries - 1:
            time.sleep(delay)
    return problems


# ---------------------------------------------------------------- running

class SandboxRun(dict):
    """The parsed JSON record, plus .argv, .returncode, .elapsed, .raw_stdout,
    .raw_stderr, .marker, .leftovers (processes seen right after the run)."""

    def observation(self, attack=None):
        """The last JSON line of the program's stdout with an "attack" key."""
        obs = None
        for line in self.get("stdout", "").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and "attack" in o and (attack is None or o["attack"] == attack):
                obs = o
        return obs

    def observations(self):
        out = []
        for line in self.get("stdout", "").splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict):
                out.append(o)
        return out

    def describe(self):
        rec = {k: v for k, v in self.items()}
        for k in ("stdout", "stderr"):
            if isinstance(rec.get(k), str) and len(rec[k]) > 3000:
                rec[k] = rec[k][:1500] + "\n...[%d bytes]...\n" % len(rec[k]) + rec[k][-1500:]
        return ("command: %s\nrecord: %s\nhks-sandbox exit %s after %.2fs, stderr: %s"
                % (" ".join(self.argv), json.dumps(rec, indent=1, sort_keys=True),
                   self.returncode, self.elapsed, self.raw_stderr[-2000:]))


def check_record_shape(rec):
    problems = []
    for key, typ in RECORD_KEYS.items():
        if key not in rec:
            problems.append("missing key %r" % key)
        elif not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            problems.append("%r has type %s" % (key, type(rec[key]).__name__))
    if rec.get("status") not in STATUSES:
        problems.append("unknown status %r" % rec.get("status"))
    return problems


def run_sandbox(args, code_dir=SECURITY_DIR, program=None, *, timeout=60, stdin=subprocess.DEVNULL,
                env=None, leftover_grace=1.5, allow_leftovers=False, binary=None):
    """Run `hks-sandbox --json --ro-bind CODE_DIR:/code ARGS... -- PROGRAM...`.

    `program` may contain the MARKER placeholder (py()/js() put it at argv[1]).
    Returns a SandboxRun (the parsed record). Fails the test if the binary
    hangs past `timeout`, does not print exactly one JSON record, or leaves a
    process with the run's marker behind (after `leftover_grace` seconds).
    """
    binary = binary or sandbox_path()
    marker = "%sr%04dz" % (SUITE_MARKER, next(_run_counter))
    program = [marker if a == MARKER else a for a in (program or [])]
    argv = [binary, "--json"]
    if code_dir is not None:
        argv += ["--ro-bind", "%s:/code" % code_dir]
    argv += ["--setenv", "PYTHONDONTWRITEBYTECODE=1"]
    argv += list(args) + ["--"] + program
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    OUR_SANDBOX_PIDS.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        left = procs_with(marker)
        kill_pids(left)
        pytest.fail("hks-sandbox did not return within %ss: %s\nleft: %s\nstdout: %r\nstderr: %r"
                    % (timeout, " ".join(argv), left, out[-2000:], err[-2000:]))
    p.stdout_bytes, p.stderr_bytes = out, err
    elapsed = time.monotonic() - t0
    raw_out = p.stdout_bytes.decode(errors="replace")
    raw_err = p.stderr_bytes.decode(errors="replace")
    lines = [ln for ln in raw_out.splitlines() if ln.strip()]
    try:
        if len(lines) != 1:
            raise ValueError("%d non-empty lines" % len(lines))
        rec = SandboxRun(json.loads(lines[0]))
    except ValueError as e:
        pytest.fail("hks-sandbox --json did not print exactly one JSON record (%s): %s\n"
                    "exit %s\nstdout: %r\nstderr: %r" % (e, " ".join(argv), p.returncode,
                                                          raw_out[-3000:], raw_err[-3000:]))
    rec.argv, rec.returncode, rec.elapsed, rec.pid = argv, p.returncode, elapsed, p.pid
    rec.raw_stdout, rec.raw_stderr, rec.marker = raw_out, raw_err, marker
    shape = check_record_shape(rec)
    assert not shape, "malformed record: %s\n%s" % (shape, rec.describe())
    # nothing of the run may survive it
    rec.leftovers = procs_with(marker)
    left = rec.leftovers
    deadline = time.monotonic() + leftover_grace
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = procs_with(marker)
    rec.leftovers_after_grace = left
    # the run's own cgroup (named hks-<pid of hks-sandbox>-...) must be gone too
    cgs = cgroups_of(p.pid)
    deadline = time.monotonic() + leftover_grace
    while cgs and time.monotonic() < deadline:
        time.sleep(0.1)
        cgs = cgroups_of(p.pid)
    rec.leftover_cgroups = cgs
    if cgs and not allow_leftovers:
        pytest.fail("the run's cgroups survived it: %s\n%s" % (sorted(cgs), rec.describe()))
    if left:
        uids = {pid: proc_uid(pid) for pid in left}
        kill_pids(left)  # our own run's processes: clean up, then fail
        if not allow_leftovers:
            pytest.fail("processes of the run survived it (%.1fs after hks-sandbox returned): %s "
                        "(host uids %s)\n%s" % (leftover_grace, left, uids, rec.describe()))
    return rec


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def sandbox_bin():
    path = sandbox_path()
    if os.geteuid() != 0:
        pytest.skip("the sandbox tests need root (cgroup v1 hierarchies, uid maps)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip("hks-sandbox not found at %s (run make, or set HKS_SANDBOX)" % path)
    return path


@pytest.fixture(scope="session")
def suite_snapshot():
    """Host state before the suite; compared by test_zz_no_leftovers and again
    at session end."""
    before = host_snapshot()
    yield before
    # test_zz_no_leftovers asserts this; here (after every test, also when
    # tests were deselected) it is reported, not raised: pytest would turn an
    # exception in a session finalizer into an internal error.
    problems = leftovers_since(before)
    if problems:
        kill_pids(procs_with(SUITE_MARKER))
        msg = "hks-sandbox leftovers after the suite: %s" % json.dumps(problems, indent=1, default=str)
        warnings.warn(msg)
        sys.stderr.write("\n" + msg + "\n")


@pytest.fixture(scope="session")
def profile_deny_errnos():
    """errnos that mean "denied by seccomp": EPERM plus every errnoRet of the
    default profile (defaultErrnoRet, rule errnoRet such as ENOSYS for clone3)."""
    vals = {errno.EPERM}
    try:
        with open(DEFAULT_PROFILE) as f:
            prof = json.load(f)
    except (OSError, ValueError):
        return vals
    if isinstance(prof.get("defaultErrnoRet"), int) and prof["defaultErrnoRet"] > 0:
        vals.add(prof["defaultErrnoRet"])
    for rule in prof.get("syscalls", []) or []:
        if isinstance(rule, dict) and isinstance(rule.get("errnoRet"), int) and rule["errnoRet"] > 0:
            vals.add(rule["errnoRet"])
    return vals


@pytest.fixture(scope="session")
def sandbox(sandbox_bin, suite_snapshot, profile_deny_errnos):
    """run_sandbox bound to the binary, with HKS_DENY_ERRNOS passed in."""
    deny = ",".join(str(e) for e in sorted(profile_deny_errnos))

    def run(args=(), code_dir=SECURITY_DIR, program=None, **kw):
        return run_sandbox(["--setenv", "HKS_DENY_ERRNOS=" + deny] + list(args), code_dir, program,
                           binary=sandbox_bin, **kw)
    run.deny = profile_deny_errnos
    return run


def make_host_dir(prefix, mode=0o755):
    """A directory under /tmp that the sandbox's host uid can reach (pytest's
    tmp_path lives under a 0700 directory, which bind sources must not)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="sectest-%s-" % prefix, dir="/tmp"))
    os.chmod(d, mode)
    return d


@pytest.fixture
def host_dir():
    made = []

    def make(prefix="dir", mode=0o755):
        d = make_host_dir(prefix, mode)
        made.append(d)
        return d
    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox_host_uid(sandbox):
    """The host uid the sandbox user (uid 1000 inside) maps to, learned from
    the owner of a file the sandbox creates in a bound directory."""
    d = make_host_dir("uidprobe", 0o777)
    try:
        rec = sandbox(["--bind", "%s:/out" % d], None,
                      [PYTHON, "-c", "open('/out/probe', 'w').write('x')", MARKER])
        probe = d / "probe"
        if rec["status"] != "ok" or not probe.exists():
            return 101000
        return probe.stat().st_uid
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def free_port():
    import socket

    def get(kind=socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port
    return get
