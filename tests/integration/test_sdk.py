"""The Python SDK (sdk/python/hks_sdk) against a real hksd, plus a stub server for what a real
daemon does not produce on demand (429 with Retry-After, 502, the headers the SDK sends)."""

import base64
import datetime
import http.server
import io
import json
import os
import pathlib
import shutil
import sys
import tarfile
import threading
import time

import pytest

from hksd_process import HKSD, REPO, Daemon, free_port  # noqa: E402
sys.path.insert(0, str(REPO / "sdk" / "python"))

import hks_sdk  # noqa: E402
from hks_sdk import (Client, ExecutionResult, Function, HksAuthError,  # noqa: E402
                     HksConnectionError, HksError, HksFunctionError, HksNotFound, HksRateLimited,
                     HksTimeout, HksUnavailable, InvocationResult, pack_directory, parse_ttl)

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
    assert type(e) is hks_sdk.InvalidRequest and isinstance(e, HksError)
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
    c = Client(url="http://127.0.0.1:%d" % free_port(), token="t", timeout=5, max_retries=0)
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
        Client(url=stub, token="t", max_retries=0).functions.execute("1")
    e = ei.value
    assert e.status == 429 and e.code == "overloaded" and e.retry_after == 3.0
    assert e.message == "too many" and e.request_id == "srv-id"


def test_non_json_error_body(stub):
    Stub.answer = (502, {"Content-Type": "text/plain"}, b"bad gateway")
    with pytest.raises(HksError) as ei:
        Client(url=stub, token="t").runtimes()
    assert ei.value.status == 502 and ei.value.message == "bad gateway"


# ================================================================ deployed functions

FN_SCOPES = "functions:deploy functions:invoke functions:delete functions:read functions:execute"

# Both handlers: ?raw=1 answers the request body as is (same content-type); otherwise the answer
# is JSON describing the request. ?status=N sets the status, ?sleep=S waits S seconds first,
# ?tag=T prints "sdk-log T" on stdout (for the logs).
PY_FN = r'''
import asyncio, json, os, urllib.parse

async def handle(scope, receive, send):
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    q = dict(urllib.parse.parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
    print("sdk-log %s" % q.get("tag", "-"), flush=True)
    if "sleep" in q:
        await asyncio.sleep(float(q["sleep"]))
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    if "raw" in q:
        ctype, out = headers.get("content-type", "application/octet-stream"), body
    else:
        ctype = "application/json"
        out = json.dumps({"runtime": "python", "method": scope["method"], "path": scope["path"],
                          "query": q, "headers": headers, "body": body.decode(errors="replace"),
                          "env": os.environ.get("SDK_MARK")}).encode()
    await send({"type": "http.response.start", "status": int(q.get("status", "200")),
                "headers": [[b"content-type", ctype.encode()], [b"x-runtime", b"python"]]})
    await send({"type": "http.response.body", "body": out})
'''

NODE_FN = r'''
module.exports = { handle: async (context, body) => {
  const q = context.query;
  console.log(`sdk-log ${q.tag || '-'}`);
  if (q.sleep) await new Promise((r) => setTimeout(r, Number(q.sleep) * 1000));
  const status = Number(q.status || 200);
  if (q.raw) {
    return { statusCode: status, headers: { 'content-type': context.headers['content-type'] ||
             'application/octet-stream', 'x-runtime': 'node' }, body: body };
  }
  return { statusCode: status, headers: { 'content-type': 'application/json', 'x-runtime': 'node' },
           body: JSON.stringify({ runtime: 'node', method: context.method, query: q,
                                  headers: context.headers, body: body === undefined ? null : body,
                                  env: process.env.SDK_MARK || null }) };
} };
'''

FN_CODE = {"python": PY_FN, "node": NODE_FN}

PY_CLASS = r'''
from .helper import greeting

def new():
    return Function()

class Function:
    async def handle(self, scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [[b"content-type", b"text/plain; charset=utf-8"]]})
        await send({"type": "http.response.body", "body": greeting().encode()})
'''


@pytest.fixture(scope="module")
def fclient(hksd):
    return Client(url=hksd.url, token=hksd.token(scope=FN_SCOPES, ttl="30m"), project="p1")


@pytest.fixture
def cleanup(fclient):
    """Functions a test deploys are deleted after it, whatever happens."""
    made = []
    yield made
    for fn in made:
        fclient.functions.delete(fn.id, missing_ok=True)


def wait_for(check, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


@needs_hksd
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_deploy_invoke_refresh_logs_delete(fclient, cleanup, runtime):
    t0 = datetime.datetime.now(datetime.timezone.utc)
    fn = fclient.functions.deploy(FN_CODE[runtime], runtime=runtime, name="sdk-" + runtime,
                                  env={"SDK_MARK": "m-" + runtime}, ttl="10m", memory_mb=128,
                                  timeout=5, max_scale=1, concurrency=4)
    cleanup.append(fn)
    assert isinstance(fn, Function)
    assert fn.id.startswith("fn-") and len(fn.id) == 23, fn
    assert fn.url.endswith("/fn/%s/" % fn.id) and fn.url.startswith("http://"), fn.url
    assert (fn.name, fn.runtime, fn.status, fn.project) == ("sdk-" + runtime, runtime, "ready", "p1")
    assert fn.ttl_seconds == 600 and fn.env == {"SDK_MARK": "m-" + runtime}
    assert fn.limits["memory_mb"] == 128 and fn.limits["wall_ms"] == 5000, fn.limits
    assert (fn.max_scale, fn.concurrency, fn.min_scale) == (1, 4, 0)
    assert fn.expires_at.tzinfo is not None and fn.created_at.tzinfo is not None
    assert abs((fn.expires_at - t0).total_seconds() - 600) < 10, (fn.expires_at, t0)
    assert fn.last_invocation_at is None and fn.invocations == 0
    assert fn.record["id"] == fn.id and fn.record["code_sha256"] == fn.code_sha256

    # a dict body goes as JSON with its content-type; the query from a mapping
    r = fn.invoke({"n": 42, "s": "é"}, path="/echo", query={"tag": "first-" + runtime, "a": "1 2"},
                  headers={"X-Sdk": "yes"})
    assert isinstance(r, InvocationResult)
    assert r.status == 200 and r.ok and r.cold_start is True, r
    assert r.headers["x-runtime"] == runtime and r.headers["content-type"].startswith("application/json")
    echoed = r.json()
    assert echoed["method"] == "POST" and echoed["env"] == "m-" + runtime
    assert echoed["query"] == {"tag": "first-" + runtime, "a": "1 2"}
    assert echoed["headers"]["x-sdk"] == "yes"
    assert echoed["headers"]["content-type"] == "application/json"
    sent = echoed["body"] if runtime == "node" else json.loads(echoed["body"])
    assert sent == {"n": 42, "s": "é"}, echoed
    assert isinstance(r.duration_ms, float) and r.duration_ms > 0

    # the second invocation finds the instance running; a GET with a query string
    r = fn.invoke(method="get", query="tag=second&x=1")
    assert r.status == 200 and r.cold_start is False, r
    assert r.json()["method"] == "GET" and r.json()["query"]["x"] == "1"

    # binary bytes round trip (sent base64, answered base64 since they are not UTF-8)
    blob = bytes(range(256)) * 4
    r = fn.invoke(blob, path="/raw", query="raw=1", headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200 and r.body == blob, (r.status, r.body[:40])
    assert r.raw["body_encoding"] == "base64"
    # text round trip
    r = fn.invoke("héllo wörld\n", query={"raw": 1}, headers={"content-type": "text/plain; charset=utf-8"})
    assert r.status == 200 and r.text == "héllo wörld\n" and r.body == "héllo wörld\n".encode()

    assert fn.refresh() is fn
    assert fn.invocations == 4 and fn.cold_starts == 1 and fn.errors == 0, fn.record
    assert isinstance(fn.last_invocation_at, datetime.datetime)
    assert fn.instances["running"] >= 1
    assert fclient.functions.get(fn.id).invocations == 4
    assert fn.id in {f.id for f in fclient.functions.list()}

    # the line the function printed is in its logs (written asynchronously: wait for it)
    want = "sdk-log first-" + runtime
    lines = wait_for(lambda: [x for x in fn.logs() if x.get("line") == want])
    assert lines and lines[0]["stream"] == "stdout" and lines[0]["instance"], fn.logs()
    assert set(lines[0]) >= {"ts", "stream", "instance", "line"}
    assert any(x["stream"] == "system" for x in fn.logs())
    assert len(fn.logs(tail=1)) == 1
    assert fn.logs(since=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)) == []

    assert fn.delete() is True
    assert fn.delete() is False  # idempotent
    with pytest.raises(HksNotFound) as ei:
        fclient.functions.get(fn.id)
    assert ei.value.status == 404 and ei.value.code == "not_found"
    with pytest.raises(HksNotFound) as ei:
        fn.invoke("x")
    assert ei.value.status == 404 and isinstance(ei.value, HksError)
    assert fn.id not in {f.id for f in fclient.functions.list()}
    with pytest.raises(HksNotFound):
        fn.logs()
    with pytest.raises(HksNotFound):
        fn.follow_logs()  # the request goes at once, not at the first next()


@needs_hksd
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_function_error_status_is_a_result_not_an_exception(fclient, cleanup, runtime):
    fn = fclient.functions.deploy(FN_CODE[runtime], runtime=runtime)
    cleanup.append(fn)
    r = fn.invoke(method="GET", query="status=500")
    assert r.status == 500 and not r.ok, r
    assert r.json()["runtime"] == runtime
    r = fn.invoke(method="GET", query="status=404")  # the function's 404 is not HksNotFound
    assert r.status == 404 and r.headers["x-runtime"] == runtime
    assert fn.refresh().errors >= 1, fn.record  # hksd counts the 5xx


@needs_hksd
def test_temporary_deletes_on_normal_exit(fclient):
    with fclient.functions.temporary(code=NODE_FN, runtime="node", ttl=120) as fn:
        fid = fn.id
        assert fclient.functions.get(fid).status == "ready"
        assert fn.invoke(method="GET").status == 200
    with pytest.raises(HksError) as ei:
        fclient.functions.get(fid)
    assert ei.value.status == 404 and isinstance(ei.value, HksNotFound)
    assert fid not in {f.id for f in fclient.functions.list()}


@needs_hksd
def test_temporary_deletes_when_the_block_raises(fclient):
    class Boom(Exception):
        pass

    seen = {}
    with pytest.raises(Boom, match="inside"):
        with fclient.functions.temporary(code=PY_FN) as fn:
            seen["id"] = fn.id
            assert fn.invoke().status == 200
            raise Boom("inside")
    with pytest.raises(HksError) as ei:
        fclient.functions.get(seen["id"])
    assert ei.value.status == 404


@needs_hksd
def test_function_as_context_manager_and_delete_by_id(fclient):
    with fclient.functions.deploy(PY_FN) as fn:
        fid = fn.id
    with pytest.raises(HksNotFound):
        fclient.functions.get(fid)
    with pytest.raises(HksNotFound):
        fclient.functions.delete(fid)
    assert fclient.functions.delete(fid, missing_ok=True) is False
    fn = fclient.functions.deploy(PY_FN)
    assert fclient.functions.delete(fn.id) is True
    with pytest.raises(HksNotFound):
        fn.refresh()


def write_knative_python_project(root, text):
    (root / "function").mkdir(parents=True)
    (root / "func.yaml").write_text("specVersion: 0.36.0\nname: sdk-dir\nruntime: python\n"
                                    "invoke: http\n")
    (root / "pyproject.toml").write_text('[project]\nname = "function"\nversion = "0.1.0"\n')
    (root / "function" / "__init__.py").write_text("from .func import new\n")
    (root / "function" / "func.py").write_text(PY_CLASS)
    (root / "function" / "helper.py").write_text("def greeting():\n    return %r\n" % text)
    # what a working copy also holds, never packed
    for junk in (".git/objects/ab/cdef", "node_modules/left-pad/index.js",
                 "function/__pycache__/func.cpython-311.pyc", "__pycache__/x.pyc"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_bytes(b"junk")


def test_pack_directory_skips_git_node_modules_pycache(tmp_path):
    write_knative_python_project(tmp_path, "hi")
    with tarfile.open(fileobj=io.BytesIO(pack_directory(tmp_path)), mode="r:gz") as t:
        names = sorted(t.getnames())
        owners = {(m.uid, m.gid, m.uname, m.gname) for m in t.getmembers()}
        helper = t.extractfile("function/helper.py").read()
    assert names == ["func.yaml", "function", "function/__init__.py", "function/func.py",
                     "function/helper.py", "pyproject.toml"], names
    assert owners == {(0, 0, "", "")}
    assert helper == b"def greeting():\n    return 'hi'\n"
    with pytest.raises(NotADirectoryError):
        pack_directory(tmp_path / "pyproject.toml")


@needs_hksd
def test_deploy_from_a_directory(fclient, cleanup, hksd, tmp_path):
    text = "hello from a directory %d" % os.getpid()
    write_knative_python_project(tmp_path / "proj", text)
    fn = fclient.functions.deploy(archive=tmp_path / "proj", runtime="python", name="sdk-dir")
    cleanup.append(fn)
    r = fn.invoke(method="GET")
    assert r.status == 200 and r.text == text, r
    code = pathlib.Path(hksd.state, "fn", fn.id, "code")
    assert (code / "func.yaml").is_file() and (code / "function" / "helper.py").is_file()
    assert not (code / ".git").exists() and not (code / "node_modules").exists()
    assert not (code / "function" / "__pycache__" / "func.cpython-311.pyc").exists()


@needs_hksd
def test_deploy_from_archive_bytes_and_a_tar_gz_path(fclient, cleanup, tmp_path):
    buf = io.BytesIO()
    files = {"index.js": b"const { greeting } = require('./lib/g.js');\n"
                         b"module.exports = { handle: async () => greeting() };\n",
             "lib/g.js": b"exports.greeting = () => 'hello from a node archive';\n",
             "package.json": b'{"name": "a", "version": "0.1.0", "main": "index.js"}'}
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    fn = fclient.functions.deploy(archive=buf.getvalue(), runtime="node")
    cleanup.append(fn)
    r = fn.invoke(method="GET")
    assert r.status == 200 and r.text == "hello from a node archive", r
    path = tmp_path / "fn.tar.gz"
    path.write_bytes(buf.getvalue())
    fn2 = fclient.functions.deploy(archive=str(path), runtime="node")
    cleanup.append(fn2)
    assert fn2.code_sha256 == fn.code_sha256 and fn2.id != fn.id
    assert fn2.invoke().text == "hello from a node archive"


@needs_hksd
def test_invocation_past_the_timeout_raises_hks_timeout(fclient, cleanup):
    fn = fclient.functions.deploy(PY_FN, timeout=1)
    cleanup.append(fn)
    assert fn.limits["wall_ms"] == 1000
    assert fn.invoke(query="sleep=0.1").status == 200  # within the limit
    t0 = time.monotonic()
    with pytest.raises(HksTimeout) as ei:
        fn.invoke(query="sleep=10")
    e = ei.value
    assert e.status == 504 and e.code == "timeout" and e.request_id, repr(e)
    assert isinstance(e, HksError) and not isinstance(e, HksConnectionError)
    assert time.monotonic() - t0 < 8


@needs_hksd
@pytest.mark.parametrize("kwargs,field", [
    ({"code": PY_FN, "runtime": "cobol"}, "runtime"),
    ({"code": PY_FN, "name": "Bad_Name"}, "name"),
    ({"code": PY_FN, "max_scale": 99}, "max_scale"),
    ({"code": PY_FN, "ttl": "30d"}, "ttl_seconds"),
    ({"code": PY_FN, "memory_mb": 1 << 20}, "limits"),
    ({"code": PY_FN, "files": {"function/func.py": PY_FN}}, "code"),
    ({"runtime": "python"}, "code"),
])
def test_bad_deploy_input_is_422_with_field(fclient, kwargs, field):
    before = {f.id for f in fclient.functions.list()}
    with pytest.raises(HksError) as ei:
        fclient.functions.deploy(**kwargs)
    e = ei.value
    assert type(e) is hks_sdk.InvalidRequest, repr(e)
    assert e.status == 422 and e.code == "invalid" and e.details.get("field") == field, repr(e)
    assert {f.id for f in fclient.functions.list()} == before


def test_bad_ttl_and_archive_arguments_fail_before_any_request():
    c = Client(url="http://127.0.0.1:%d" % free_port(), token="t")  # nothing listens there
    with pytest.raises(ValueError, match="ttl"):
        c.functions.deploy("x", ttl="10 minutes")
    with pytest.raises(TypeError):
        c.functions.deploy("x", ttl=True)
    with pytest.raises(FileNotFoundError):
        c.functions.deploy(archive="/nonexistent/hks-sdk-test")
    with pytest.raises(TypeError):
        c.functions.invoke("fn-x", body=3.5)


def test_parse_ttl():
    assert parse_ttl(30) == 30 and parse_ttl(2.2) == 3 and parse_ttl("45") == 45
    assert parse_ttl("90s") == 90 and parse_ttl("10m") == 600 and parse_ttl("1h") == 3600
    assert parse_ttl("1h30m") == 5400 and parse_ttl("1d") == 86400 and parse_ttl(" 2H ") == 7200
    assert parse_ttl(datetime.timedelta(minutes=5)) == 300
    for bad in ("", "m", "10x", "ten minutes", "1h 30", "-"):
        with pytest.raises(ValueError):
            parse_ttl(bad)


@needs_hksd
def test_follow_logs_streams_until_the_function_is_deleted(fclient, cleanup):
    fn = fclient.functions.deploy(PY_FN)
    cleanup.append(fn)
    got, done = [], threading.Event()

    def follow():
        try:
            for line in fn.follow_logs(timeout=30):
                got.append(line)
        except Exception as e:  # noqa: BLE001 - reported by the assertions below
            got.append({"error": repr(e)})
        done.set()

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    assert fn.invoke(query="tag=followed").status == 200
    assert wait_for(lambda: any(x.get("line") == "sdk-log followed" for x in got)), got
    assert not done.is_set()  # still streaming
    fn.delete()
    assert done.wait(15), "follow_logs did not end after the function was deleted"
    assert not [x for x in got if "error" in x], got
    assert [x["stream"] for x in got if x.get("line") == "sdk-log followed"] == ["stdout"]


@needs_hksd
def test_follow_logs_closed_early_by_the_caller(fclient, cleanup):
    fn = fclient.functions.deploy(PY_FN)
    cleanup.append(fn)
    assert fn.invoke(query="tag=early").status == 200
    assert wait_for(lambda: any(x["line"] == "sdk-log early" for x in fn.logs()))
    seen = []
    with fn.follow_logs(timeout=30) as lines:
        for line in lines:
            seen.append(line["line"])
            if line["line"] == "sdk-log early":
                break
    assert lines.closed and list(lines) == []  # closed: nothing more comes
    assert seen[-1] == "sdk-log early"
    # the function is still there and answers, and so does a stream opened again
    assert fn.invoke(method="GET", query="tag=later").status == 200
    stream = fn.follow_logs(tail=50, timeout=30)
    assert any(x["line"] == "sdk-log later" for x in wait_lines(stream, "sdk-log later"))
    stream.close()


def wait_lines(stream, want):
    """The lines of stream up to the first whose text is want."""
    out = []
    for line in stream:
        out.append(line)
        if line["line"] == want:
            break
    return out


@needs_hksd
def test_other_project_sees_404_not_403(hksd, fclient, cleanup):
    fn = fclient.functions.deploy(PY_FN)
    cleanup.append(fn)
    other = Client(url=hksd.url, token=hksd.token(scope=FN_SCOPES, project="p2"))
    with pytest.raises(HksNotFound):
        other.functions.get(fn.id)
    with pytest.raises(HksNotFound):
        other.functions.invoke(fn.id)
    assert fn.id not in {f.id for f in other.functions.list()}


@needs_hksd
def test_missing_deploy_scope_is_auth_error(hksd):
    c = Client(url=hksd.url, token=hksd.token(scope="functions:read"))
    with pytest.raises(HksAuthError) as ei:
        c.functions.deploy(PY_FN)
    assert ei.value.status == 403 and ei.value.details.get("required_scope") == "functions:deploy"


@needs_hksd
def test_module_level_one_liners_use_the_environment(hksd, monkeypatch):
    monkeypatch.setenv("HKS_URL", hksd.url)
    monkeypatch.setenv("HKS_TOKEN", hksd.token(scope=FN_SCOPES))
    r = hks_sdk.functions.execute(code="print(6 * 7)")
    assert isinstance(r, ExecutionResult) and r.ok and r.stdout == "42\n", r
    with hks_sdk.functions.temporary(code=NODE_FN, runtime="node") as fn:
        fid = fn.id
        assert hks_sdk.functions.get(fid).id == fid
        assert fid in {f.id for f in hks_sdk.functions.list()}
        assert hks_sdk.functions.invoke(fid, {"k": "v"}).json()["body"] == {"k": "v"}
    with pytest.raises(HksNotFound):
        hks_sdk.functions.get(fid)
    fn = hks_sdk.functions.deploy(PY_FN)
    assert hks_sdk.functions.delete(fn.id) is True


# ---------------------------------------------------------------- deployed functions, stub server

def test_invoke_request_body_and_answer_decoding(stub):
    answer = {"status": 201, "headers": {"Content-Type": "image/png", "x-a": "1"},
              "body": base64.b64encode(b"\x89PNG\x00\xff").decode(), "body_encoding": "base64",
              "duration_ms": 3, "cold_start": True}
    Stub.answer = (200, {"Content-Type": "application/json"}, json.dumps(answer).encode())
    c = Client(url=stub, token="t")
    r = c.functions.invoke("fn-1", b"\x00\x01\xfe", method="put", path="up/load", query="?a=1",
                           headers={"X-B": 2})
    assert (r.status, r.body, r.cold_start, r.duration_ms) == (201, b"\x89PNG\x00\xff", True, 3.0)
    assert r.headers == {"content-type": "image/png", "x-a": "1"} and r.ok
    method, path, headers, body = Stub.seen[-1]
    assert method == "POST" and path == "/internal/v1/operations/invoke-function"
    assert json.loads(body) == {"id": "fn-1", "method": "PUT", "path": "/up/load", "query": "a=1",
                                "headers": {"X-B": "2"}, "body": "AAH+", "body_encoding": "base64"}
    c.functions.invoke("fn-1", [1, "x"], query={"a": "b c", "d": [1, 2]})
    assert json.loads(Stub.seen[-1][3]) == {"id": "fn-1", "method": "POST", "path": "/",
                                            "query": "a=b+c&d=1&d=2", "body": '[1, "x"]',
                                            "headers": {"content-type": "application/json"}}
    # a content-type given by the caller is kept
    c.functions.invoke("fn-1", {"a": 1}, headers={"Content-Type": "application/merge-patch+json"})
    assert json.loads(Stub.seen[-1][3])["headers"] == {"Content-Type": "application/merge-patch+json"}


@pytest.mark.parametrize("status,code,cls", [
    (429, "overloaded", HksRateLimited), (502, "bad_gateway", HksFunctionError),
    (503, "unavailable", HksUnavailable), (504, "timeout", HksTimeout), (404, "not_found", HksNotFound),
])
def test_invoke_errors_of_hksd_are_typed(stub, status, code, cls):
    Stub.answer = (status, {"Retry-After": "2", "Content-Type": "application/json"},
                   json.dumps({"error": {"code": code, "message": "m", "details": {}}}).encode())
    with pytest.raises(cls) as ei:
        Client(url=stub, token="t", max_retries=0).functions.invoke("fn-1")
    e = ei.value
    assert e.status == status and e.code == code and isinstance(e, HksError)
    if cls is HksRateLimited:
        assert e.retry_after == 2.0


def test_records_and_logs_parsed(stub):
    record = {"id": "fn-abc", "name": "n", "runtime": "python", "status": "ready",
              "url": "http://h/fn/fn-abc/", "created_at": "2026-11-29T07:00:00Z",
              "expires_at": "2026-11-29T08:00:00.250Z", "last_invocation_at": None,
              "invocations": 3, "errors": 1, "limits": {"wall_ms": 90000}, "future_field": 1}
    Stub.answer = (200, {"Content-Type": "application/json"}, json.dumps(record).encode())
    c = Client(url=stub, token="t")
    fn = c.functions.get("fn-abc")
    assert Stub.seen[-1][:2] == ("GET", "/internal/v1/functions/fn-abc")
    assert fn.expires_at == datetime.datetime(2026, 11, 29, 8, 0, 0, 250000, tzinfo=datetime.timezone.utc)
    assert fn.created_at.isoformat() == "2026-11-29T07:00:00+00:00"
    assert fn.last_invocation_at is None and fn.invocations == 3 and fn.errors == 1
    assert fn.record["future_field"] == 1 and fn.cold_starts == 0
    Stub.answer = (200, {"Content-Type": "application/x-ndjson"},
                   b'{"ts":"t1","stream":"stdout","instance":"i-1","line":"a"}\n\n'
                   b'{"ts":"t2","stream":"system","instance":"i-1","line":"b"}\n')
    since = datetime.datetime(2026, 11, 29, 7, 0, 1, 5000, tzinfo=datetime.timezone.utc)
    assert [x["line"] for x in fn.logs(since=since, tail=5)] == ["a", "b"]
    assert Stub.seen[-1][1] == ("/internal/v1/functions/fn-abc/logs?"
                                "since=2026-11-29T07%3A00%3A01.005Z&tail=5")
    assert [x["line"] for x in fn.follow_logs(since=1764399600)] == ["a", "b"]
    assert Stub.seen[-1][1] == "/internal/v1/functions/fn-abc/logs?follow=true&since=1764399600"
    # an id is one path segment, never a path
    with pytest.raises(HksError):
        c.functions.get("../runtimes")
    assert Stub.seen[-1][1] == "/internal/v1/functions/..%2Fruntimes"


def test_error_classes_follow_the_status_and_keep_the_hks_names():
    cases = {400: hks_sdk.InvalidRequest, 401: hks_sdk.AuthError, 403: hks_sdk.PermissionDenied,
             404: hks_sdk.NotFound, 413: hks_sdk.InvalidRequest, 422: hks_sdk.InvalidRequest,
             500: hks_sdk.ServerError, 502: hks_sdk.HksFunctionError, 503: hks_sdk.HksUnavailable,
             504: hks_sdk.ExecutionTimeout}
    for status, cls in cases.items():
        e = hks_sdk.Client._error(status, {}, b'{"error":{"code":"x","message":"m"}}', "rid")
        assert type(e) is cls, (status, type(e))
        assert isinstance(e, HksError) and e.status == status and e.message == "m"
    assert issubclass(hks_sdk.AuthError, hks_sdk.HksAuthError)
    assert issubclass(hks_sdk.PermissionDenied, hks_sdk.HksAuthError)
    assert issubclass(hks_sdk.HksFunctionError, hks_sdk.ServerError)
    assert hks_sdk.RateLimited is hks_sdk.HksRateLimited
    e = hks_sdk.Client._error(429, {"Retry-After": "3"}, b"", "rid")
    assert type(e) is hks_sdk.RateLimited and e.retry_after == 3.0
