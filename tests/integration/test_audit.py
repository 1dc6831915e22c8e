"""`hksd audit` against the audit log of a real hksd: the query's filters and outputs, `hksd audit
verify` on an intact log, on an edited and a shortened one, and rotation by size (a config file
with a small rotate_bytes) under concurrent executions: nothing lost, the chain intact across the
kept files, continued after a restart."""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from hksd_process import HKSD, Daemon, free_port  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

SCOPE = "functions:deploy functions:delete functions:execute"
DEPLOY = "/internal/v1/operations/deploy-function"
DELETE = "/internal/v1/operations/delete-function"
NODE_FN = "module.exports={handle:()=>'ok'}"
GENESIS = "sha256:" + "0" * 64


def audit(*args, env=None):
    """`hksd audit ARGS...`: the completed process (text)."""
    return subprocess.run([HKSD, "audit", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def query(state, *args):
    r = audit("--state-dir", state, "-o", "json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def sha(line):
    return "sha256:" + hashlib.sha256(line.encode()).hexdigest()


def execute(d, token, code="print(1)"):
    status, _, r = d.execute({"runtime": "python", "code": code}, token=token)
    assert status == 200 and r["status"] == "ok", r
    return r


@pytest.fixture(scope="module")
def audited():
    """A daemon with executions by two callers in two projects, and a function deployed then
    deleted; stopped, so that the log is settled."""
    d = Daemon()
    a = d.token(scope=SCOPE, sub="agent-a", project="p-audit")
    b = d.token(scope=SCOPE, sub="agent-b", project="p-other")
    execute(d, a)
    execute(d, a, "print(2)")
    execute(d, b)
    status, _, body = d.request("POST", DEPLOY, {"runtime": "node", "code": NODE_FN}, token=a)
    assert status == 201, body
    fid = json.loads(body)["id"]
    status, _, body = d.request("POST", DELETE, {"id": fid}, token=a)
    assert status in (200, 204), body
    assert d.stop() == 0, d.logs()
    yield d, fid
    shutil.rmtree(d.state, ignore_errors=True)


def test_the_records_are_chained(audited):
    d, _ = audited
    lines = pathlib.Path(d.state, "audit.log").read_text().splitlines()
    assert len(lines) == 5
    prev = GENESIS
    for seq, line in enumerate(lines, 1):
        rec = json.loads(line)
        assert rec["seq"] == seq and rec["prev"] == prev, rec
        prev = sha(line)


def test_query_prints_the_records_as_stored(audited):
    d, _ = audited
    r = audit("--state-dir", d.state)  # -o json is the default
    assert r.returncode == 0, r.stderr
    assert r.stdout == pathlib.Path(d.state, "audit.log").read_text()


def test_query_filters(audited):
    d, fid = audited
    state = d.state
    actions = lambda recs: [x["action"] for x in recs]  # noqa: E731
    assert actions(query(state, "--project", "p-audit")) == \
        ["execute", "execute", "function.deploy", "function.delete"]
    assert [x["sub"] for x in query(state, "--sub", "agent-b")] == ["agent-b"]
    assert actions(query(state, "--action", "function.*")) == ["function.deploy", "function.delete"]
    assert actions(query(state, "--action", "execute")) == ["execute"] * 3
    assert query(state, "--action", "function") == []  # exact unless it ends in '*'
    assert actions(query(state, "--function", fid)) == ["function.deploy", "function.delete"]
    assert actions(query(state, "--project", "p-audit", "--action", "function.delete")) == \
        ["function.delete"]
    assert query(state, "--project", "nobody") == []

    # times: RFC 3339 or unix seconds; --since inclusive, --until exclusive
    everything = query(state)
    deploy = next(x for x in everything if x["action"] == "function.deploy")
    since = query(state, "--since", deploy["ts"])
    assert since[0]["seq"] == deploy["seq"] and len(since) == 2
    assert [x["seq"] for x in query(state, "--until", deploy["ts"])] == [1, 2, 3]
    assert len(query(state, "--since", "0")) == 5
    assert query(state, "--since", str(int(time.time()) + 3600)) == []
    assert query(state, "--until", "2000-01-01T00:00:00+02:00") == []
    assert len(query(state, "--since", "2000-01-01", "--until", "2999-12-31T23:59:59.999Z")) == 5


def test_query_as_a_table(audited):
    d, fid = audited
    r = audit("--state-dir", d.state, "-o", "table", "--project", "p-audit")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    header = rows[0]
    assert header.split() == ["TS", "ACTION", "PROJECT", "SUB", "FUNCTION/RUNTIME", "RESULT"]
    assert len(rows) == 5
    for row in rows[1:]:  # aligned: every value starts under its heading
        for col, heading in ((1, "ACTION"), (2, "PROJECT"), (3, "SUB"), (4, "FUNCTION/RUNTIME")):
            assert row[header.index(heading):].split()[0] == row.split()[col], (row, heading)
    deploy = next(row for row in rows if "function.deploy" in row).split()
    assert deploy[1:] == ["function.deploy", "p-audit", "agent-a", fid, "ok"]
    assert rows[1].split()[4] == "python"  # an execution shows its runtime


def test_the_state_dir_comes_from_the_environment(audited):
    d, _ = audited
    r = audit("--action", "execute", env=dict(os.environ, HKSD_STATE_DIR=d.state))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3


def test_usage_errors(audited):
    d, _ = audited
    assert audit("--help").returncode == 0
    for args in (["-o", "yaml"], ["--since", "yesterday"], ["--project"], ["stray"],
                 ["verify", "--project", "p"], ["verify", "--anchor", "x"],
                 ["--state-dir", d.state, "--file", "x"]):
        r = audit(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr
    r = audit("--state-dir", "/nonexistent-hksd-state")
    assert r.returncode == 1 and "no audit log" in r.stderr


def test_verify_an_intact_log(audited):
    d, _ = audited
    r = audit("verify", "--state-dir", d.state)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ok: 5 records, seq 1..5, file audit.log"
    last = pathlib.Path(d.state, "audit.log").read_text().splitlines()[-1]
    assert lines[-1] == "head: seq 5 %s" % sha(last)
    # "verify" may come after the options too
    assert audit("--state-dir", d.state, "verify").stdout == r.stdout
    # the head kept elsewhere anchors the chain
    anchored = audit("verify", "--state-dir", d.state, "--anchor", "5:" + sha(last))
    assert anchored.returncode == 0, anchored.stdout


def tampered_copy(d, edit):
    """A copy of the state's audit.log, changed by edit(lines) -> lines."""
    state = tempfile.mkdtemp(prefix="hksd-audit-tamper-")
    lines = pathlib.Path(d.state, "audit.log").read_text().splitlines()
    pathlib.Path(state, "audit.log").write_text("".join(x + "\n" for x in edit(list(lines))))
    return state


def test_verify_finds_an_edited_record(audited):
    d, _ = audited

    def edit(lines):
        rec = json.loads(lines[1])
        rec["sub"] = "someone-else"
        lines[1] = json.dumps(rec, separators=(",", ":"), sort_keys=True)
        return lines
    state = tampered_copy(d, edit)
    try:
        r = audit("verify", "--state-dir", state)
        assert r.returncode == 1, r.stdout
        first = r.stdout.splitlines()[0]
        assert first == ("audit.log:3: seq 3: prev does not match the record before it "
                         "(edited or removed)"), r.stdout
        assert r.stdout.splitlines()[-1].startswith("FAILED: 1 problem in 5 records")
        # --file names the file as given
        r = audit("verify", "--file", os.path.join(state, "audit.log"))
        assert r.returncode == 1
        assert r.stdout.startswith(os.path.join(state, "audit.log") + ":3: seq 3: prev")
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_verify_finds_removed_and_reordered_records(audited):
    d, _ = audited
    cases = [
        (lambda lines: lines[:2] + lines[3:], "audit.log:3: seq 4: follows seq 2: records 3..3"),
        (lambda lines: [lines[0], lines[2], lines[1]] + lines[3:], "audit.log:2: seq 3: follows"),
        (lambda lines: lines[:4], None),  # the end cut: only an anchor tells
    ]
    last = sha(pathlib.Path(d.state, "audit.log").read_text().splitlines()[-1])
    for edit, expected in cases:
        state = tampered_copy(d, edit)
        try:
            r = audit("verify", "--state-dir", state)
            if expected:
                assert r.returncode == 1 and r.stdout.startswith(expected), r.stdout
            else:
                assert r.returncode == 0, r.stdout
                r = audit("verify", "--state-dir", state, "--anchor", "5:" + last)
                assert r.returncode == 1, r.stdout
                assert "anchor: no record with seq 5: the log ends at seq 4" in r.stdout
        finally:
            shutil.rmtree(state, ignore_errors=True)


# ---- rotation -------------------------------------------------------------------------------


class ConfiguredDaemon(Daemon):
    """hksd started with --config FILE (the harness passes no config file)."""

    def __init__(self, config, state=None):  # pylint: disable=super-init-not-called
        self.state = state or tempfile.mkdtemp(prefix="hksd-test-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, HKSD_STATE_DIR=self.state, HKSD_POOL_PYTHON="1",
                        HKSD_POOL_NODE="1")
        cfg = os.path.join(self.state, "hksd.json")
        with open(os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.state, "hksd.log"), "ab")
        self.proc = subprocess.Popen([HKSD, "--config", cfg, "--listen",
                                      "127.0.0.1:%d" % self.port], env=self.env, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, "hksd exited: " + self.logs()
            time.sleep(0.1)
        self.proc.send_signal(signal.SIGKILL)
        raise AssertionError("hksd did not become ready: " + self.logs())


def log_files(state):
    return sorted(n for n in os.listdir(state) if n.startswith("audit.log"))


def test_rotation_under_concurrent_executions_loses_nothing():
    config = {"audit": {"rotate_bytes": 4096, "keep": 3}}
    d = ConfiguredDaemon(config)
    try:
        token = d.token(scope=SCOPE)
        total, threads, failures = 60, 4, []
        verified = []

        def run(n):
            try:
                for _ in range(n):
                    execute(d, token)
            except AssertionError as e:  # pragma: no cover - reported below
                failures.append(e)

        workers = [threading.Thread(target=run, args=(total // threads,)) for _ in range(threads)]
        for w in workers:
            w.start()
        # verify while records are written and files rotate: always a consistent, intact chain
        while any(w.is_alive() for w in workers):
            r = audit("verify", "--state-dir", d.state)
            verified.append((r.returncode, r.stdout))
            time.sleep(0.05)
        for w in workers:
            w.join()
        assert not failures, failures
        assert verified and all(code == 0 for code, _ in verified), verified

        files = log_files(d.state)
        assert files == ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"], files
        kept = 0
        for name in files:
            data = pathlib.Path(d.state, name).read_bytes()
            assert 0 < len(data) <= 4096 and data.endswith(b"\n"), name
            kept += data.count(b"\n")
        r = audit("verify", "--state-dir", d.state)
        assert r.returncode == 0, r.stdout
        first = total - kept + 1
        assert r.stdout.splitlines()[0] == (
            "ok: %d records, seq %d..%d, files audit.log.3 audit.log.2 audit.log.1 audit.log"
            % (kept, first, total)), r.stdout
        assert "note: chain starts at seq %d (older records rotated out)" % first in r.stdout
        records = query(d.state)
        assert [x["seq"] for x in records] == list(range(first, total + 1))
        assert all(x["action"] == "execute" for x in records)

        # a restart goes on with the chain where it stopped
        assert d.stop() == 0, d.logs()
        d = ConfiguredDaemon(config, state=d.state)
        execute(d, token)
        assert d.stop() == 0, d.logs()
        r = audit("verify", "--state-dir", d.state)
        assert r.returncode == 0, r.stdout
        assert query(d.state)[-1]["seq"] == total + 1
    finally:
        if d.proc.poll() is None:
            d.stop()
        shutil.rmtree(d.state, ignore_errors=True)
