"""The Python SDK (sdk/python/hks_sdk) against a real hksd, plus a stub server for what a real
daemon does not produce on demand (429 with Retry-After, the headers the SDK sends)."""

import http.server
import json
import os
import shutil
import sys
import threading
import time

import pytest

from hksd_process import HKSD, REPO, Daemon, free_port  # noqa: E402
sys.path.insert(0, str(REPO / "sdk" / "python"))

from hks_sdk import (Client, ExecutionResult, HksAuthError, HksConnectionError,  # noqa: E402
                     HksError, HksRateLimited)

needs_hksd = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")


@pytest.fixture(scope="module")
def hksd():
    d = Daemon()
    yield d
    assert d.stop() == 0, d.logs()
    shutil.rmtree(d.state, ignore_errors=True)


@pytest.fixture(scope="module")
def client(hksd):
    return Client(url=hksd.url, token=hksd.token(), project="p1")


# ---------------------------------------------------------------- against hksd

@needs_hksd
@pytest.mark.parametrize("runtime,code,expected", [
    ("python", "import sys\nprint('hello', sys.argv[1:])\n", "hello ['a']\n"),
    ("node", "console.log('hello', JSON.stringify(process.argv.slice(2)))\n", 'hello ["a"]\n'),
])
def test_execute_python_and_node(client, runtime, code, expected):
    r = client.functions.execute(code, runtime=runtime, args=["a"])
    assert isinstance(r, ExecutionResult)
    assert r.ok and r.status == "ok" and r.exit_code == 0, r
    assert r.stdout == expected
    assert r.runtime == runtime and r.id.startswith("exe-")
    assert r.signal is None and r.timeout_reason is None and r.oom_killed is False
    assert isinstance(r.wall_ms, (int, float)) and isinstance(r.peak_memory_bytes, int)
    assert isinstance(r.warm, bool) and r.stdout_truncated is False


@needs_hksd
def test_execute_files_dict_with_bytes_stdin_args_env(client):
    r = client.functions.execute(
        files={"main.py": "import os, sys\nfrom pkg.util import twice\n"
                          "print(twice(int(sys.stdin.read())), os.environ['GREETING'], sys.argv[1:])\n"
                          "print(open('/code/data.bin', 'rb').read().hex())\n",
               "pkg/__init__.py": "",
               "pkg/util.py": b"def twice(x):\n    return 2 * x\n",
               "data.bin": bytes([0, 1, 254, 255])},
        entry="main.py", stdin="21", args=["x", "y"], env={"GREETING": "hi"}, timeout=5,
        memory_mb=128)
    assert r.ok, r
    assert r.stdout == "42 hi ['x', 'y']\n0001feff\n"


@needs_hksd
def test_execute_files_in_api_form_and_nonzero_exit(client):
    r = client.functions.execute(
        files=[{"name": "main.js", "content": "console.error('bad'); process.exit(3)\n"}],
        runtime="node")
    assert not r.ok and r.status == "error" and r.exit_code == 3, r
    assert "bad" in r.stderr


@needs_hksd
def test_timeout_maps_to_wall_ms(client):
    t0 = time.monotonic()
    r = client.functions.execute("import time\ntime.sleep(10)\n", timeout=0.5)
    assert r.status == "timeout" and r.timeout_reason == "wall", r
    assert not r.ok
    assert time.monotonic() - t0 < 8


@needs_hksd
def test_memory_mb_maps_to_oom(client):
    r = client.functions.execute("x = bytearray(512 << 20)\n", memory_mb=64)
    assert r.status == "oom", r
    assert r.oom_killed is True


@needs_hksd
def test_limits_merge_and_override(client):
    r = client.functions.execute("while True:\n    pass\n",
                                 limits={"cpu_ms": 500, "wall_ms": 60000}, timeout=5)
    assert r.status == "timeout" and r.timeout_reason == "cpu", r


@needs_hksd
def test_runtimes(client):
    doc = client.runtimes()
    names = {r["name"] for r in doc["runtimes"]}
    assert {"python", "node"} <= names
    assert "limits" in doc


@needs_hksd
def test_bad_token_is_auth_error_401(hksd):
    c = Client(url=hksd.url, token="not.a.jwt")
    with pytest.raises(HksAuthError) as ei:
        c.functions.execute("print(1)")
    e = ei.value
    assert e.status == 401 and e.code == "invalid_token", repr(e)
    assert e.message and e.request_id
    with pytest.raises(HksAuthError) as ei:
        Client(url=hksd.url, token="").runtimes()
    assert ei.value.status == 401


@needs_hksd
def test_missing_scope_is_auth_error_403(hksd):
    c = Client(url=hksd.url, token=hksd.token(scope="functions:read"))
    with pytest.raises(HksAuthError) as ei:
        c.functions.execute("print(1)")
    e = ei.value
    assert e.status == 403 and e.code == "forbidden", repr(e)
    assert e.details.get("required_scope") == "functions:execute"
    assert isinstance(e, HksError)
    # runtimes needs only a valid token
    assert "runtimes" in c.runtimes()


@needs_hksd
def test_unknown_runtime_is_422_invalid_with_field(client):
    with pytest.raises(HksError) as ei:
        client.functions.execute("print(1)", runtime="cobol")
    e = ei.value
    assert type(e) is HksError
    assert e.status == 422 and e.code == "invalid", repr(e)
    assert e.details["field"] == "runtime"
    assert len(e.request_id) == 32  # our uuid4 hex, echoed by hksd


@needs_hksd
def test_environment_variables_used_without_arguments(hksd, monkeypatch):
    monkeypatch.setenv("HKS_URL", hksd.url)
    monkeypatch.setenv("HKS_TOKEN", hksd.token())
    c = Client()
    assert c.url == hksd.url
    r = c.functions.execute("print(6 * 7)")
    assert r.ok and r.stdout == "42\n", r


def test_token_whitespace_stripped_and_control_characters_refused(monkeypatch):
    assert Client(token="  abc.def.ghi\n").token == "abc.def.ghi"
    monkeypatch.setenv("HKS_TOKEN", "abc.def.ghi\r\n")
    assert Client().token == "abc.def.ghi"
    for bad in ("abc\ndef", "abc def", "abc\x00", "t\u00e9"):
        with pytest.raises(ValueError, match="the token contains"):
            Client(token=bad)


def test_default_url_without_environment(monkeypatch):
    monkeypatch.delenv("HKS_URL", raising=False)
    monkeypatch.delenv("HKS_TOKEN", raising=False)
    c = Client()
    assert c.url == "http://127.0.0.1:8080" and c.token is None and c.timeout == 60.0


def test_connection_error_on_closed_port():
    c = Client(url="http://127.0.0.1:%d" % free_port(), token="t", timeout=5)
    with pytest.raises(HksConnectionError) as ei:
        c.functions.execute("print(1)")
    assert ei.value.status == 0 and isinstance(ei.value, HksError)
    with pytest.raises(HksConnectionError):
        c.runtimes()


# ---------------------------------------------------------------- against a stub server

class Stub(http.server.BaseHTTPRequestHandler):
    seen = []
    answer = (200, {}, b"{}")

    def _handle(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        Stub.seen.append((self.command, self.path, dict(self.headers), body))
        status, headers, payload = Stub.answer
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle

    def log_message(self, *a):
        pass


@pytest.fixture
def stub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    Stub.seen = []
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_headers_and_request_body(stub):
    Stub.answer = (200, {"Content-Type": "application/json"},
                   json.dumps({"id": "exe-1", "runtime": "python", "status": "ok", "exit_code": 0,
                               "stdout": "x", "extra_field": 1}).encode())
    c = Client(url=stub + "/", token="tok")
    r = c.functions.execute("print(1)", files=None, stdin="in", args=[1], env={"A": 2},
                            timeout=1.5, memory_mb=64, limits={"pids": 8, "wall_ms": 1})
    assert r.ok and r.stdout == "x" and r.raw["extra_field"] == 1
    method, path, headers, body = Stub.seen[-1]
    assert method == "POST" and path == "/internal/v1/operations/execute"
    assert headers["Authorization"] == "Bearer tok"
    assert headers["User-Agent"] == "hks-sdk-python/0.1"
    assert len(headers["X-Request-Id"]) == 32 and int(headers["X-Request-Id"], 16) >= 0
    assert json.loads(body) == {"runtime": "python", "code": "print(1)", "stdin": "in",
                                "args": ["1"], "env": {"A": "2"},
                                "limits": {"pids": 8, "wall_ms": 1500, "memory_mb": 64}}
    c.runtimes()
    ids = {s[2]["X-Request-Id"] for s in Stub.seen}
    assert len(ids) == 2  # a fresh id per request


def test_rate_limited_with_retry_after(stub):
    Stub.answer = (429, {"Retry-After": "3", "Content-Type": "application/json",
                         "X-Request-Id": "srv-id"},
                   b'{"error": {"code": "overloaded", "message": "too many", "details": {}}}')
    with pytest.raises(HksRateLimited) as ei:
        Client(url=stub, token="t").functions.execute("1")
    e = ei.value
    assert e.status == 429 and e.code == "overloaded" and e.retry_after == 3.0
    assert e.message == "too many" and e.request_id == "srv-id"


def test_non_json_error_body(stub):
    Stub.answer = (502, {"Content-Type": "text/plain"}, b"bad gateway")
    with pytest.raises(HksError) as ei:
        Client(url=stub, token="t").runtimes()
    assert ei.value.status == 502 and ei.value.message == "bad gateway"
