"""hksd over real HTTP: a daemon the tests start, tokens it mints, executions through its warm
pools, and bad input of every kind answered with the right status and a JSON error."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from hksd_process import HKSD, REPO, Daemon, free_port  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")


@pytest.fixture(scope="module")
def hksd():
    before = {d for d in os.listdir("/sys/fs/cgroup/pids") if d.startswith("hks-")}
    d = Daemon()
    yield d
    assert d.stop() == 0, d.logs()
    # nothing of hksd left: no sandbox cgroup, no pool directory
    time.sleep(0.2)
    after = {x for x in os.listdir("/sys/fs/cgroup/pids") if x.startswith("hks-")}
    assert after - before == set()
    assert not os.path.exists(os.path.join(d.state, "pool"))
    shutil.rmtree(d.state, ignore_errors=True)


def test_health_readiness_and_metrics_need_no_token(hksd):
    assert hksd.request("GET", "/healthz")[0] == 200
    assert hksd.request("GET", "/readyz")[0] == 200
    status, headers, body = hksd.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"hks_executions_total" in body


@pytest.mark.parametrize("runtime,code,expected", [
    ("python", "import sys\nprint('hello', sys.argv[1:])\n", "hello ['a']\n"),
    ("node", "console.log('hello', JSON.stringify(process.argv.slice(2)))\n", 'hello ["a"]\n'),
])
def test_execute_both_runtimes(hksd, runtime, code, expected):
    status, headers, r = hksd.execute({"runtime": runtime, "code": code, "args": ["a"]},
                                      headers={"X-Request-Id": "test-req-1"})
    assert status == 200, r
    assert headers["X-Request-Id"] == "test-req-1"
    assert r["status"] == "ok" and r["exit_code"] == 0
    assert r["stdout"] == expected
    assert r["runtime"] == runtime and r["id"].startswith("exe-")
    for key in ("stderr", "wall_ms", "cpu_ms", "peak_memory_bytes", "stdout_truncated",
                "stderr_truncated", "warm", "signal", "timeout_reason"):
        assert key in r


def test_execute_with_files_stdin_env_and_limits(hksd):
    status, _, r = hksd.execute({
        "runtime": "python",
        "files": [{"name": "main.py", "content": "import os, sys\nfrom pkg.util import twice\n"
                   "print(twice(int(sys.stdin.read())), os.environ['GREETING'])\n"},
                  {"name": "pkg/util.py",
                   "content": base64.b64encode(b"def twice(x):\n    return 2 * x\n").decode(),
                   "encoding": "base64"},
                  {"name": "pkg/__init__.py", "content": ""}],
        "stdin": "21", "env": {"GREETING": "hi"}, "limits": {"memory_mb": 128, "wall_ms": 5000}})
    assert status == 200, r
    assert r["status"] == "ok", r
    assert r["stdout"] == "42 hi\n"


@pytest.mark.parametrize("code,limits,status,reason", [
    ("import time\ntime.sleep(10)\n", {"wall_ms": 500}, "timeout", "wall"),
    ("while True:\n    pass\n", {"cpu_ms": 500, "wall_ms": 5000}, "timeout", "cpu"),
    ("x = bytearray(512 << 20)\n", {"memory_mb": 64}, "oom", None),
    ("import sys\nsys.exit(3)\n", {}, "error", None),
])
def test_the_programs_fate_is_in_the_result_not_the_http_status(hksd, code, limits, status,
                                                                  reason):
    http_status, _, r = hksd.execute({"runtime": "python", "code": code, "limits": limits})
    assert http_status == 200
    assert r["status"] == status, r
    assert r["timeout_reason"] == reason


def test_runtimes_lists_both_with_versions_and_limits(hksd):
    status, _, body = hksd.request("GET", "/internal/v1/runtimes", token=hksd.token())
    assert status == 200
    doc = json.loads(body)
    names = {r["name"]: r for r in doc["runtimes"]}
    assert set(names) == {"python", "node"}
    assert re.match(r"^\d+\.\d+\.\d+$", names["python"]["version"])
    assert "json" in names["python"]["modules"] and "fs" in names["node"]["modules"]
    assert doc["limits"]["maxima"]["memory_mb"] >= doc["limits"]["defaults"]["memory_mb"]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header, claims, key=b"x" * 32):
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def claims(**over):
    now = int(time.time())
    c = {"iss": "hksd", "aud": "hks-internal", "sub": "a", "project": "p1",
         "scope": "functions:execute", "iat": now, "nbf": now, "exp": now + 300}
    c.update(over)
    return c


GOOD = {"runtime": "python", "code": "print(1)\n"}
BAD_BODIES = [
    (b"{", 400, "malformed_json"),
    (b'{"runtime": "python", "code": "print(1)"', 400, "malformed_json"),
    (b"[1, 2]", 400, "malformed_json"),
    (b"", 400, "malformed_json"),
    (b'{"runtime": "python", "runtime": "node", "code": "1"}', 400, "malformed_json"),
    (b'{"runtime": "python", "code": "1", "extra": 1}', 422, "invalid"),
    (b'{"code": "print(1)"}', 422, "invalid"),
    (b'{"runtime": "cobol", "code": "1"}', 422, "invalid"),
    (b'{"runtime": 7, "code": "1"}', 422, "invalid"),
    (b'{"runtime": "python", "code": ""}', 422, "invalid"),
    (b'{"runtime": "python"}', 422, "invalid"),
    (b'{"runtime": "python", "code": 12}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "files": [{"name": "a.py", "content": "1"}]}', 422,
     "invalid"),
    (b'{"runtime": "python", "files": []}', 422, "invalid"),
    (b'{"runtime": "python", "files": "main.py"}', 422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "../x.py", "content": "1"}]}', 422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "/etc/passwd", "content": "1"}]}', 422,
     "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a//b.py", "content": "1"}]}', 422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a.py"}]}', 422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a.py", "content": "!!", "encoding": "base64"}]}',
     422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a.py", "content": "1", "encoding": "rot13"}]}',
     422, "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a.py", "content": "1", "mode": "x"}]}', 422,
     "invalid"),
    (b'{"runtime": "python", "files": [{"name": "a.py", "content": "1"}], "entry": "b.py"}', 422,
     "invalid"),
    (b'{"runtime": "python", "code": "1", "entry": 5}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "stdin": 5}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "args": "a b"}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "args": [1, 2]}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "env": {"A B": "x"}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "env": {"A": 1}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "env": ["A=1"]}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": {"memory_mb": 1000000}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": {"memory_mb": -1}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": {"memory_mb": "lots"}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": {"memory_mb": 1e300}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": {"memory_mb": 99999999999999999999999}}',
     400, "malformed_json"),
    (b'{"runtime": "python", "code": "1", "limits": {"swap": 1}}', 422, "invalid"),
    (b'{"runtime": "python", "code": "1", "limits": [1]}', 422, "invalid"),
    (b'{"runtime": "python", "code": "\\u0000"}', 400, "malformed_json"),
]


@pytest.mark.parametrize("raw,status,code", BAD_BODIES)
def test_bad_bodies_get_the_right_status_and_a_json_error(hksd, raw, status, code):
    got, headers, body = hksd.request("POST", "/internal/v1/operations/execute",
                                      token=hksd.token(), raw=raw)
    assert got == status, body
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    if code:
        assert doc["error"]["code"] == code and doc["error"]["message"]


@pytest.mark.parametrize("make_token,status", [
    (lambda d: None, 401),
    (lambda d: "not-a-jwt", 401),
    (lambda d: forged({"alg": "none", "typ": "JWT"}, claims()).rsplit(".", 1)[0] + ".", 401),
    (lambda d: forged({"alg": "HS256", "kid": "local"}, claims()), 401),  # wrong key
    (lambda d: d.token()[:-4] + "AAAA", 401),  # tampered signature
    (lambda d: forged({"alg": "RS256", "kid": "local"}, claims()), 401),  # alg not pinned
    (lambda d: d.token(scope="functions:read"), 403),  # missing scope
    (lambda d: d.token(scope="functions:executex"), 403),
])
def test_bad_tokens(hksd, make_token, status):
    got, headers, body = hksd.request("POST", "/internal/v1/operations/execute", GOOD,
                                      token=make_token(hksd))
    assert got == status, body
    assert json.loads(body)["error"]["code"] in ("unauthenticated", "invalid_token", "forbidden")
    if status == 401:
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_token_lifetime_is_capped(hksd):
    out = subprocess.run([HKSD, "token", "--sub", "a", "--project", "p1", "--ttl", "48h"],
                         env=hksd.env, capture_output=True)
    assert out.returncode != 0


def test_oversized_bodies_are_refused_early_and_late(hksd):
    # declared too large: refused from Content-Length, before the body is read
    conn = http.client.HTTPConnection("127.0.0.1", hksd.port, timeout=30)
    conn.putrequest("POST", "/internal/v1/operations/execute")
    conn.putheader("Authorization", "Bearer " + hksd.token())
    conn.putheader("Content-Length", str(1 << 30))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert json.loads(resp.read())["error"]["code"] == "too_large"
    conn.close()
    # chunked, over the limit while streaming
    conn = http.client.HTTPConnection("127.0.0.1", hksd.port, timeout=60)
    chunk = b"x" * (1 << 20)
    conn.putrequest("POST", "/internal/v1/operations/execute")
    conn.putheader("Authorization", "Bearer " + hksd.token())
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for _ in range(40):
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()


def test_unknown_paths_and_methods(hksd):
    assert hksd.request("GET", "/internal/v1/nothing", token=hksd.token())[0] == 404
    assert hksd.request("GET", "/internal/v1/operations/execute", token=hksd.token())[0] == 405


def test_a_slow_client_does_not_stall_others(hksd):
    slow = socket.create_connection(("127.0.0.1", hksd.port))
    slow.sendall(b"POST /internal/v1/operations/execute HTTP/1.1\r\nHost: x\r\n")
    try:
        status, _, r = hksd.execute(GOOD)
        assert status == 200 and r["stdout"] == "1\n"
    finally:
        slow.close()


def test_still_serving_after_all_that_and_audited(hksd):
    status, _, r = hksd.execute(GOOD)
    assert status == 200 and r["status"] == "ok"
    lines = pathlib.Path(hksd.state, "audit.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    ok = [x for x in records if x["action"] == "execute" and x["result"] == "ok"]
    assert ok, records[-3:]
    for rec in ok:
        assert len(rec["code_sha256"]) == 64 and rec["sub"] and rec["project"] == "p1"
        assert rec["request_id"] and rec["ts"]


def test_every_route_is_documented_and_every_documented_route_exists():
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load((REPO / "api" / "openapi.yaml").read_text())
    documented = {"%s %s" % (m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served = set(subprocess.run([HKSD, "--routes"], capture_output=True, check=True)
                 .stdout.decode().split("\n")) - {""}
    assert documented == served


def _hks_cgroups():
    return {d for d in os.listdir("/sys/fs/cgroup/pids") if d.startswith("hks-")}


def test_sigterm_lets_a_running_execution_finish():
    import threading
    d = Daemon()
    out = {}

    def run():
        out["r"] = d.execute({"runtime": "python",
                              "code": "import time\ntime.sleep(1.5)\nprint('finished')\n"})

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    t.join(timeout=30)
    assert d.proc.wait(timeout=30) == 0, d.logs()
    status, _, r = out["r"]
    assert status == 200 and r["stdout"] == "finished\n"
    shutil.rmtree(d.state, ignore_errors=True)


def _sandbox_pids():
    """Processes of the sandbox user (host uid 101000)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat("/proc/" + entry).st_uid == 101000:
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def test_kill_9_leaves_nothing_and_a_restart_serves():
    import threading
    before_cgroups, before_pids = _hks_cgroups(), _sandbox_pids()
    d = Daemon()
    try:
        def doomed():
            try:
                d.execute({"runtime": "python", "code": "import time\ntime.sleep(30)\n"})
            except (OSError, http.client.HTTPException):
                pass  # the daemon is killed under it: that is the point

        t = threading.Thread(target=doomed, daemon=True)
        t.start()
        time.sleep(1.5)  # the execution is running in its sandbox
        assert _sandbox_pids() - before_pids, "no sandbox is running"
    finally:
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
    # the spawner notices its daemon is gone, kills every sandbox and removes their cgroups
    deadline = time.time() + 10
    while (_sandbox_pids() - before_pids or _hks_cgroups() - before_cgroups) and \
            time.time() < deadline:
        time.sleep(0.05)
    assert _sandbox_pids() - before_pids == set()
    assert _hks_cgroups() - before_cgroups == set()
    # a new daemon on the same state starts clean and serves
    d2 = Daemon.__new__(Daemon)
    d2.state, d2.port, d2.env = d.state, free_port(), d.env
    d2.log = open(os.path.join(d.state, "hksd2.log"), "wb")
    d2.proc = subprocess.Popen([HKSD, "--listen", "127.0.0.1:%d" % d2.port], env=d2.env,
                               stderr=d2.log)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if d2.request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        status, _, r = d2.execute(GOOD)
        assert status == 200 and r["stdout"] == "1\n"
    finally:
        assert d2.stop() == 0
    # the audit log survived the crash whole: every line parses
    for line in pathlib.Path(d.state, "audit.log").read_text().splitlines():
        json.loads(line)
    shutil.rmtree(d.state, ignore_errors=True)


def test_sighup_reloads_keys_and_limits():
    policies = tempfile.mkdtemp(prefix="hksd-policies-")
    shutil.copytree(REPO / "policies", policies, dirs_exist_ok=True)
    config = os.path.join(policies, "hksd.json")
    pathlib.Path(config).write_text(json.dumps({"policies_dir": policies}))
    d = Daemon.__new__(Daemon)
    d.state, d.port = tempfile.mkdtemp(prefix="hksd-test-"), free_port()
    d.env = dict(os.environ, HKSD_STATE_DIR=d.state, HKSD_POOL_PYTHON="1", HKSD_POOL_NODE="0")
    d.log = open(os.path.join(d.state, "hksd.log"), "wb")
    d.proc = subprocess.Popen([HKSD, "--config", config, "--listen", "127.0.0.1:%d" % d.port],
                              env=d.env, stderr=d.log)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if d.request("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        old_token = d.token()
        body = dict(GOOD, limits={"memory_mb": 1500})
        assert d.execute(body, token=old_token)[0] == 200
        # tighter limits and a new signing key
        limits_path = pathlib.Path(policies, "limits.json")
        limits = json.loads(limits_path.read_text())
        limits["maxima"]["memory_mb"] = 1024
        limits_path.write_text(json.dumps(limits))
        key = pathlib.Path(d.state, "keys", "hs256.key")
        key.write_bytes(os.urandom(32))
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while b"keys_reloaded" not in pathlib.Path(d.state, "hksd.log").read_bytes():
            assert time.time() < deadline, d.logs()
            time.sleep(0.05)
        deadline = time.time() + 10
        while b"seccomp profile reloaded" not in pathlib.Path(d.state, "hksd.log").read_bytes():
            assert time.time() < deadline, d.logs()
            time.sleep(0.05)
        status, _, r = d.execute(body, token=old_token)
        assert status == 401, r  # signed with the key that is gone
        status, _, r = d.execute(body, token=d.token())
        assert status == 422 and "above the maximum 1024" in r["error"]["message"], r
        assert d.execute(GOOD, token=d.token())[0] == 200
    finally:
        assert d.stop() == 0
        shutil.rmtree(d.state, ignore_errors=True)
        shutil.rmtree(policies, ignore_errors=True)


def test_limits_fixed_at_creation_get_a_sandbox_made_to_measure(hksd):
    fill = ("import errno\ntry:\n    open('/tmp/f', 'wb').write(b'x' * (12 << 20))\n"
            "    print('fits')\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\n")
    status, _, r = hksd.execute({"runtime": "python", "code": fill, "limits": {"tmpfs_mb": 8}})
    assert status == 200 and r["stdout"] == "ENOSPC\n", r
    assert r["warm"] is False  # the warm sandboxes have the default /tmp
    status, _, r = hksd.execute({"runtime": "python", "code": fill})
    assert status == 200 and r["stdout"] == "fits\n", r


def test_signals_start_at_their_defaults_and_cpu_time_above_the_warm_ones_is_cold(hksd):
    code = ("import signal\nprint(signal.getsignal(signal.SIGHUP) == signal.SIG_DFL,\n"
            "      signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    status, _, r = hksd.execute({"runtime": "python", "code": code})
    assert status == 200 and r["stdout"] == "True True\n", r
    # RLIMIT_CPU is fixed when a sandbox is made: more CPU time than the warm ones have
    # means a sandbox made to measure
    status, _, r = hksd.execute({"runtime": "python", "code": "print(1)",
                                 "limits": {"cpu_ms": 20000}})
    assert status == 200 and r["stdout"] == "1\n" and r["warm"] is False, r
