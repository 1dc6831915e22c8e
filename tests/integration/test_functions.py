"""Deployed functions over real HTTP: deploy (code, files, archive), invoke (the function's URL and
invoke-function), get/list, logs (tail, since, follow), delete, the TTL reaper, scaling (idle,
min_scale, concurrency, the wait queue), per-invocation timeouts, crashing instances, output
floods, kill -9 and a restart on the same state, scopes, project isolation and metrics."""

import base64
import http.client
import io
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import tarfile
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from hksd_process import HKSD, Daemon  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

ALL = "functions:deploy functions:invoke functions:read functions:delete"
DEPLOY = "/internal/v1/operations/deploy-function"
INVOKE = "/internal/v1/operations/invoke-function"
DELETE = "/internal/v1/operations/delete-function"
FUNCTIONS = "/internal/v1/functions"
ID_RE = re.compile(r"^fn-[0-9a-f]{20}$")

# ---------------------------------------------------------------- the functions under test

# Both echo what they got (method, path, query, headers, body, one env variable) as JSON with
# status 201 (or ?status=N) and an x-fn header, print one stdout line with ?tag=..., answer the
# request body reversed with ?mode=bin, and misbehave on demand: ?mode=crash (exit 3), loop
# (forever), slow (sleep ?s= seconds), flood (20 MB stdout).
PY_ECHO = r'''
import asyncio, json, os, sys, urllib.parse

async def handle(scope, receive, send):
    msg = await receive()
    body = msg.get("body", b"")
    q = dict(urllib.parse.parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
    print("py-stdout tag=%s method=%s" % (q.get("tag", ""), scope["method"]), flush=True)
    mode = q.get("mode", "")
    if mode == "crash":
        os._exit(3)
    if mode == "loop":
        while True:
            pass
    if mode == "slow":
        await asyncio.sleep(float(q.get("s", "1")))
    if mode == "bin":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [[b"content-type", b"application/octet-stream"]]})
        await send({"type": "http.response.body", "body": body[::-1]})
        return
    if mode == "flood":
        line = "f" * 1023 + "\n"
        chunk = line * 1024
        for _ in range(20):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    out = {"runtime": "python", "method": scope["method"], "path": scope["path"],
           "query": q, "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
           "body": body.decode(errors="replace"), "mark": os.environ.get("FN_MARK")}
    await send({"type": "http.response.start", "status": int(q.get("status", "201")),
                "headers": [[b"content-type", b"application/json"], [b"x-fn", b"python"]]})
    await send({"type": "http.response.body", "body": json.dumps(out).encode()})
'''

NODE_ECHO = r'''
module.exports = { handle: async (context, body) => {
  const q = context.query;
  console.log(`node-stdout tag=${q.tag || ''} method=${context.method}`);
  if (q.mode === 'crash') process.exit(3);
  if (q.mode === 'loop') { for (;;) {} }
  if (q.mode === 'slow') await new Promise((r) => setTimeout(r, Number(q.s || 1) * 1000));
  if (q.mode === 'flood') {
    const chunk = ('f'.repeat(1023) + '\n').repeat(1024);
    for (let i = 0; i < 20; i++) process.stdout.write(chunk);
  }
  if (q.mode === 'bin') {
    return { statusCode: 200, headers: { 'content-type': 'application/octet-stream' },
             body: Buffer.from(body).reverse() };
  }
  let b = body;
  if (Buffer.isBuffer(b)) b = b.toString();
  return { statusCode: Number(q.status || 201),
           headers: { 'content-type': 'application/json', 'x-fn': 'node' },
           body: JSON.stringify({ runtime: 'node', method: context.method, query: q,
                                  headers: context.headers, body: b,
                                  mark: process.env.FN_MARK || null }) };
} };
'''

ECHO = {"python": PY_ECHO, "node": NODE_ECHO}

# the python class form (new() -> an object with an ASGI handle), for files and archives
PY_CLASS = r'''
from .helper import greeting

def new():
    return Function()

class Function:
    async def handle(self, scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [[b"content-type", b"text/plain"]]})
        await send({"type": "http.response.body", "body": greeting().encode()})
'''

NODE_LIB = r'''
const { greeting } = require('./lib/greeting.js');
module.exports = { handle: async () => ({ statusCode: 200,
  headers: { 'content-type': 'text/plain' }, body: greeting() }) };
'''


# ---------------------------------------------------------------- helpers

_tokens = {}


def tok(d, scope=ALL, project="p1", sub="agent-1"):
    key = (d.port, scope, project, sub)
    if key not in _tokens:
        _tokens[key] = d.token(scope=scope, sub=sub, project=project, ttl="30m")
    return _tokens[key]


def jreq(d, method, path, body=None, token=None, raw=None, headers=None):
    status, hdrs, payload = d.request(method, path, body, token=token, raw=raw, headers=headers)
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        doc = payload
    return status, hdrs, doc


def deploy(d, body, token=None):
    status, _, doc = jreq(d, "POST", DEPLOY, body, token=token or tok(d))
    return status, doc


def deploy_ok(d, body, token=None):
    status, doc = deploy(d, body, token)
    assert status == 201, (status, doc)
    return doc


def invoke(d, fid, token=None, **fields):
    fields["id"] = fid
    status, _, doc = jreq(d, "POST", INVOKE, fields, token=token or tok(d))
    return status, doc


def url_invoke(d, fid, path="/", method="GET", raw=None, token=None, headers=None):
    return d.request(method, "/fn/%s%s" % (fid, path), raw=raw, token=token or tok(d),
                     headers=headers)


def get(d, fid, token=None):
    status, _, doc = jreq(d, "GET", "%s/%s" % (FUNCTIONS, fid), token=token or tok(d))
    return status, doc


def delete(d, fid, token=None):
    status, _, doc = jreq(d, "POST", DELETE, {"id": fid}, token=token or tok(d))
    return status, doc


def listed(d, token=None):
    status, _, doc = jreq(d, "GET", FUNCTIONS, token=token or tok(d))
    assert status == 200, doc
    return doc["functions"]


def fn_logs(d, fid, query="", token=None):
    status, hdrs, payload = d.request("GET", "%s/%s/logs%s" % (FUNCTIONS, fid, query),
                                      token=token or tok(d))
    lines = []
    if status == 200:
        assert hdrs.get("Content-Type", "").startswith("application/x-ndjson"), hdrs
        lines = [json.loads(x) for x in payload.decode().splitlines() if x.strip()]
    return status, lines, payload


def metrics(d):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def audit(d):
    path = pathlib.Path(d.state, "audit.log")
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_until(check, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def parse_ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def assert_error(status, doc, want_status, want_code=None, field=None):
    assert status == want_status, (status, doc)
    assert isinstance(doc, dict) and "error" in doc, doc
    assert doc["error"]["message"], doc
    if want_code:
        assert doc["error"]["code"] == want_code, doc
    if field:
        assert (doc["error"].get("details") or {}).get("field") == field, doc


def procs_with_env(marker):
    """pids of processes whose environment holds FN_MARK=<marker>: a function's instances."""
    needle = ("FN_MARK=%s" % marker).encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.add(int(entry))
        except OSError:
            pass
    return found


def descendants(pid):
    """pids below pid in the process tree."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, set()).add(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def hks_cgroups():
    root = "/sys/fs/cgroup/pids"
    return {x for x in os.listdir(root) if x.startswith("hks-")} if os.path.isdir(root) else set()


def sockets(d):
    p = pathlib.Path(d.state, "sock")
    return {x.name for x in p.glob("*.sock")} if p.is_dir() else set()


def tgz(files, links=()):
    """A .tar.gz (base64) of {name: bytes} and [(name, target)] symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def check_daemon_stops_clean(d):
    code = d.stop()
    assert code == 0, d.logs()[-4000:]
    assert not sockets(d), sockets(d)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def hksd():
    d = Daemon()
    yield d
    check_daemon_stops_clean(d)
    shutil.rmtree(d.state, ignore_errors=True)


@pytest.fixture(scope="module")
def echo_fn(hksd):
    """A python echo function shared by the read-only tests (scopes, isolation, bad invokes)."""
    rec = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO, "name": "shared-echo"})
    return rec["id"]


# ---------------------------------------------------------------- 1. lifecycle

@pytest.mark.parametrize("runtime", ["node", "python"])
def test_lifecycle_deploy_invoke_get_list_logs_delete(hksd, runtime):
    mark = uuid.uuid4().hex
    t0 = time.time()
    rec = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime], "name": "life-" + runtime,
                           "env": {"FN_MARK": mark}})
    fid = rec["id"]
    assert ID_RE.match(fid), rec
    assert rec["url"].startswith("http://") and rec["url"].endswith("/fn/%s/" % fid), rec
    assert rec["runtime"] == runtime and rec["name"] == "life-" + runtime
    assert rec["project"] == "p1" and rec["owner"] == "agent-1" and rec["status"] == "ready"
    assert rec["env"] == {"FN_MARK": mark}
    expires = parse_ts(rec["expires_at"])
    assert expires > time.time() + 3000 and abs(expires - (t0 + rec["ttl_seconds"])) < 5, rec
    assert rec["ttl_seconds"] == 3600 and rec["invocations"] == 0
    assert rec["instances"]["running"] == 0 and rec["last_invocation_at"] is None
    assert len(rec["code_sha256"]) == 64
    record_file = pathlib.Path(hksd.state, "functions", fid + ".json")
    fn_dir = pathlib.Path(hksd.state, "fn", fid)
    assert record_file.is_file() and json.loads(record_file.read_text())["id"] == fid
    entry = "index.js" if runtime == "node" else "function/func.py"
    assert (fn_dir / "code" / entry).read_text() == ECHO[runtime]
    socks_before = sockets(hksd)

    # invoke-function first: a cold start
    status, r = invoke(hksd, fid, method="PUT", path="/inv/path", query="q=1&tag=inv1",
                       headers={"X-A": "b", "Content-Type": "text/plain"}, body="xyz")
    assert status == 200, r
    assert r["status"] == 201 and r["cold_start"] is True, r
    assert r["body_encoding"] == "utf8" and isinstance(r["duration_ms"], (int, float))
    assert all(k == k.lower() for k in r["headers"]), r["headers"]
    assert r["headers"]["x-fn"] == runtime
    echoed = json.loads(r["body"])
    assert echoed["method"] == "PUT" and echoed["body"] == "xyz" and echoed["mark"] == mark
    assert echoed["query"] == {"q": "1", "tag": "inv1"} and echoed["headers"]["x-a"] == "b"
    assert "authorization" not in echoed["headers"]
    if runtime == "python":
        assert echoed["path"] == "/inv/path"

    # the function's URL: method, path, query, headers and body go through; Authorization doesn't
    status, hdrs, body = url_invoke(hksd, fid, "/some/path?x=1&tag=url1", method="POST",
                                    raw=b"hello body",
                                    headers={"Content-Type": "text/plain", "X-Test": "yes"})
    assert status == 201, body
    lower = {k.lower(): v for k, v in hdrs.items()}
    assert lower["x-fn"] == runtime and lower["content-type"] == "application/json"
    echoed = json.loads(body)
    assert echoed["method"] == "POST" and echoed["body"] == "hello body"
    assert echoed["query"] == {"x": "1", "tag": "url1"}
    assert echoed["headers"]["x-test"] == "yes"
    assert "authorization" not in {k.lower() for k in echoed["headers"]}, echoed["headers"]
    assert tok(hksd) not in body.decode()
    if runtime == "python":
        assert echoed["path"] == "/some/path"

    # /fn/<id> without the slash is the path "/"
    status, _, body = url_invoke(hksd, fid, "", method="GET")
    assert status == 201, body
    if runtime == "python":
        assert json.loads(body)["path"] == "/"

    # later invocations are warm
    status, r = invoke(hksd, fid, query="tag=inv2")
    assert status == 200 and r["status"] == 201 and r["cold_start"] is False, r

    # get and list
    status, got = get(hksd, fid)
    assert status == 200, got
    assert got["invocations"] == 4 and got["cold_starts"] == 1 and got["errors"] == 0, got
    assert got["instances"]["running"] >= 1 and got["last_invocation_at"], got
    assert got["id"] == fid and got["code_sha256"] == rec["code_sha256"]
    mine = listed(hksd)
    assert fid in {f["id"] for f in mine}
    assert all(f["project"] == "p1" for f in mine), mine

    # logs: the function's stdout and hksd's system lines
    status, lines, raw = fn_logs(hksd, fid)
    assert status == 200, raw
    for ln in lines:
        assert set(ln) >= {"ts", "stream", "instance", "line"}, ln
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", ln["ts"]), ln
    prefix = "py-stdout" if runtime == "python" else "node-stdout"
    outs = [ln["line"] for ln in lines if ln["stream"] == "stdout"]
    assert "%s tag=url1 method=POST" % prefix in outs, lines
    assert "%s tag=inv1 method=PUT" % prefix in outs, lines
    assert any(ln["stream"] == "system" for ln in lines), lines
    assert any(ln["stream"] == "system" and "ready" in ln["line"] for ln in lines), lines
    if runtime == "node":  # node's context has no path: its access log shows it arrived
        assert any("/some/path?x=1&tag=url1" in ln["line"] for ln in lines
                   if ln["stream"] == "stderr"), lines

    # the instance is a sandbox process carrying the function's env
    pids = procs_with_env(mark)
    assert pids, "no instance process found for the function"
    new_socks = sockets(hksd) - socks_before
    assert new_socks, "no socket for the instance"

    # delete: everything goes
    status, r = delete(hksd, fid)
    assert status == 200 and r == {"id": fid, "deleted": True}, r
    assert_error(*get(hksd, fid), 404, "not_found")
    assert_error(*invoke(hksd, fid), 404, "not_found")
    status, hdrs, body = url_invoke(hksd, fid, "/")
    assert_error(status, json.loads(body), 404, "not_found")
    assert hdrs.get("X-Request-Id")
    assert_error(*delete(hksd, fid), 404, "not_found")
    assert fid not in {f["id"] for f in listed(hksd)}
    assert not record_file.exists()
    assert not fn_dir.exists()
    assert wait_until(lambda: not procs_with_env(mark), 5), \
        "instance processes survived the delete: %s" % procs_with_env(mark)
    assert wait_until(lambda: not (sockets(hksd) & new_socks), 5), sockets(hksd)
    deletes = [a for a in audit(hksd) if a.get("action") == "function.delete"
               and a.get("function_id") == fid]
    assert len(deletes) == 1 and deletes[0]["project"] == "p1", deletes


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_binary_bodies_go_both_ways_in_base64(hksd, runtime):
    fid = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime]})["id"]
    data = bytes(range(256)) * 4
    status, r = invoke(hksd, fid, query="mode=bin", body=base64.b64encode(data).decode(),
                       body_encoding="base64",
                       headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and r["status"] == 200, r
    assert r["body_encoding"] == "base64", r
    assert base64.b64decode(r["body"]) == data[::-1]
    status, _, body = url_invoke(hksd, fid, "/?mode=bin", method="POST", raw=data,
                                 headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and body == data[::-1]
    assert delete(hksd, fid)[0] == 200


# ---------------------------------------------------------------- 2. files and archives

@pytest.mark.parametrize("runtime", ["node", "python"])
def test_files_deploy_with_a_base64_file(hksd, runtime):
    if runtime == "python":
        files = [{"name": "function/func.py", "content": base64.b64encode(PY_CLASS.encode())
                  .decode(), "encoding": "base64"},
                 {"name": "function/__init__.py", "content": ""},
                 {"name": "function/helper.py",
                  "content": "def greeting():\n    return 'hello from files py'\n",
                  "encoding": "utf8"}]
        want = "hello from files py"
    else:
        files = [{"name": "index.js", "content": base64.b64encode(NODE_LIB.encode()).decode(),
                  "encoding": "base64"},
                 {"name": "lib/greeting.js",
                  "content": "exports.greeting = () => 'hello from files node';\n"}]
        want = "hello from files node"
    rec = deploy_ok(hksd, {"runtime": runtime, "files": files})
    status, r = invoke(hksd, rec["id"], method="GET")
    assert status == 200 and r["status"] == 200 and r["body"] == want, r
    status, _, body = url_invoke(hksd, rec["id"], "/")
    assert status == 200 and body.decode() == want
    assert delete(hksd, rec["id"])[0] == 200


def knative_project(runtime, text):
    func_yaml = ("specVersion: 0.36.0\nname: arch-%s\nruntime: %s\ninvoke: http\n"
                 % (runtime, runtime)).encode()
    if runtime == "node":
        return {"func.yaml": func_yaml,
                "package.json": json.dumps({"name": "arch-node", "version": "0.1.0",
                                            "main": "index.js"}).encode(),
                "index.js": NODE_LIB.encode(),
                "lib/greeting.js": ("exports.greeting = () => %s;\n" % json.dumps(text)).encode()}
    return {"func.yaml": func_yaml,
            "pyproject.toml": b'[project]\nname = "function"\nversion = "0.1.0"\n',
            "function/__init__.py": b"from .func import new\n",
            "function/func.py": PY_CLASS.encode(),
            "function/helper.py": ("def greeting():\n    return %r\n" % text).encode()}


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_archive_deploy_of_a_knative_project(hksd, runtime):
    text = "hello from the %s archive" % runtime
    rec = deploy_ok(hksd, {"runtime": runtime, "archive": tgz(knative_project(runtime, text))})
    code = pathlib.Path(hksd.state, "fn", rec["id"], "code")
    assert (code / "func.yaml").is_file()
    status, r = invoke(hksd, rec["id"], method="GET")
    assert status == 200 and r["status"] == 200 and r["body"] == text, r
    assert delete(hksd, rec["id"])[0] == 200


HOSTILE = [
    ("dotdot", lambda tag: ({"index.js": b"x", "../evil-" + tag: b"pwned"}, []),
     "../evil-{tag}"),
    ("dotdot-deep", lambda tag: ({"index.js": b"x", "a/../../../evil-" + tag: b"pwned"}, []),
     "evil-{tag}"),
    ("symlink-etc", lambda tag: ({"index.js": b"x"}, [("etc-" + tag, "/etc")]), "etc-{tag}"),
    ("through-symlink", lambda tag: ({"index.js": b"x", "out-%s/evil-%s" % (tag, tag): b"pwned"},
                                     [("out-" + tag, "/tmp")]), "out-{tag}"),
]


@pytest.mark.parametrize("name,make,shown", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_archives_are_refused_naming_the_entry(hksd, name, make, shown):
    tag = uuid.uuid4().hex[:10]
    files, links = make(tag)
    fn_root = pathlib.Path(hksd.state, "fn")
    before_dirs = set(os.listdir(fn_root))
    before_records = set(os.listdir(pathlib.Path(hksd.state, "functions")))
    status, doc = deploy(hksd, {"runtime": "node", "archive": tgz(files, links)})
    assert_error(status, doc, 422, "invalid")
    assert shown.format(tag=tag) in doc["error"]["message"], doc
    # nothing written outside (nor left inside)
    for root in (hksd.state, "/tmp", "/etc"):
        for dirpath, dirnames, filenames in os.walk(root):
            assert not [x for x in filenames + dirnames if tag in x], (dirpath, tag)
            if root != hksd.state:
                break  # only the top of /tmp and /etc: where the entries would land
    assert set(os.listdir(fn_root)) == before_dirs
    assert set(os.listdir(pathlib.Path(hksd.state, "functions"))) == before_records


# ---------------------------------------------------------------- 3. bad inputs

PY_OK = json.dumps(PY_ECHO)
BAD_DEPLOYS = [
    ("not-json", b"{", 400, "malformed_json", None),
    ("empty", b"", 400, "malformed_json", None),
    ("duplicate-keys", b'{"runtime": "python", "runtime": "node", "code": "x"}', 400,
     "malformed_json", None),
    ("not-an-object", b'["python"]', 400, "malformed_json", None),
    ("unknown-field", b'{"runtime": "python", "code": %s, "replicas": 3}' % PY_OK.encode(), 422,
     "invalid", "replicas"),
    ("missing-runtime", b'{"code": %s}' % PY_OK.encode(), 422, "invalid", "runtime"),
    ("unknown-runtime", b'{"runtime": "cobol", "code": "x"}', 422, "invalid", "runtime"),
    ("runtime-not-string", b'{"runtime": 7, "code": "x"}', 422, "invalid", "runtime"),
    ("empty-code", b'{"runtime": "python", "code": ""}', 422, "invalid", None),
    ("code-and-files", b'{"runtime": "python", "code": "x", "files": [{"name": "function/func.py",'
                       b' "content": "x"}]}', 422, "invalid", None),
    ("no-code", b'{"runtime": "python"}', 422, "invalid", None),
    ("name-slash", b'{"runtime": "python", "code": %s, "name": "a/b"}' % PY_OK.encode(), 422,
     "invalid", "name"),
    ("name-dotdot", b'{"runtime": "python", "code": %s, "name": ".."}' % PY_OK.encode(), 422,
     "invalid", "name"),
    ("name-upper", b'{"runtime": "python", "code": %s, "name": "Hello"}' % PY_OK.encode(), 422,
     "invalid", "name"),
    ("name-64", b'{"runtime": "python", "code": %s, "name": "%s"}' % (PY_OK.encode(), b"a" * 64),
     422, "invalid", "name"),
    ("name-empty", b'{"runtime": "python", "code": %s, "name": ""}' % PY_OK.encode(), 422,
     "invalid", "name"),
    ("env-not-object", b'{"runtime": "python", "code": %s, "env": ["A=1"]}' % PY_OK.encode(), 422,
     "invalid", "env"),
    ("env-key-equals", b'{"runtime": "python", "code": %s, "env": {"A=B": "1"}}' % PY_OK.encode(),
     422, "invalid", "env"),
    ("env-key-hks", b'{"runtime": "python", "code": %s, "env": {"HKS_SOCKET": "/x"}}'
     % PY_OK.encode(), 422, "invalid", "env"),
    ("env-value-number", b'{"runtime": "python", "code": %s, "env": {"A": 1}}' % PY_OK.encode(),
     422, "invalid", "env"),
    ("memory-above-max", b'{"runtime": "python", "code": %s, "limits": {"memory_mb": 999999}}'
     % PY_OK.encode(), 422, "invalid", "limits"),
    ("limits-unknown", b'{"runtime": "python", "code": %s, "limits": {"swap_mb": 1}}'
     % PY_OK.encode(), 422, "invalid", "limits"),
    ("ttl-0", b'{"runtime": "python", "code": %s, "ttl_seconds": 0}' % PY_OK.encode(), 422,
     "invalid", "ttl_seconds"),
    ("ttl-above-max", b'{"runtime": "python", "code": %s, "ttl_seconds": 86401}' % PY_OK.encode(),
     422, "invalid", "ttl_seconds"),
    ("ttl-string", b'{"runtime": "python", "code": %s, "ttl_seconds": "60"}' % PY_OK.encode(),
     422, "invalid", "ttl_seconds"),
    ("ttl-1e30", b'{"runtime": "python", "code": %s, "ttl_seconds": 1e30}' % PY_OK.encode(), 422,
     "invalid", "ttl_seconds"),
    ("ttl-negative", b'{"runtime": "python", "code": %s, "ttl_seconds": -5}' % PY_OK.encode(), 422,
     "invalid", "ttl_seconds"),
    ("min-above-max", b'{"runtime": "python", "code": %s, "min_scale": 3, "max_scale": 2}'
     % PY_OK.encode(), 422, "invalid", "min_scale"),
    ("max-scale-0", b'{"runtime": "python", "code": %s, "max_scale": 0}' % PY_OK.encode(), 422,
     "invalid", "max_scale"),
    ("max-scale-9", b'{"runtime": "python", "code": %s, "max_scale": 9}' % PY_OK.encode(), 422,
     "invalid", "max_scale"),
    ("concurrency-0", b'{"runtime": "python", "code": %s, "concurrency": 0}' % PY_OK.encode(),
     422, "invalid", "concurrency"),
    ("concurrency-1001", b'{"runtime": "python", "code": %s, "concurrency": 1001}'
     % PY_OK.encode(), 422, "invalid", "concurrency"),
    ("file-dotdot", b'{"runtime": "python", "files": [{"name": "../function/func.py", '
                    b'"content": "x"}]}', 422, "invalid", None),
    ("file-absolute", b'{"runtime": "python", "files": [{"name": "/etc/cron.d/x", '
                      b'"content": "x"}]}', 422, "invalid", None),
    ("file-base64-garbage", b'{"runtime": "python", "files": [{"name": "function/func.py", '
                            b'"content": "!!not base64!!", "encoding": "base64"}]}', 422,
     "invalid", None),
    ("files-without-entry", b'{"runtime": "python", "files": [{"name": "main.py", '
                            b'"content": "print(1)"}]}', 422, "invalid", None),
    ("archive-not-base64", b'{"runtime": "node", "archive": "%%%%"}', 422, "invalid", "archive"),
    ("archive-not-targz", b'{"runtime": "node", "archive": "%s"}'
     % base64.b64encode(b"just some bytes, not gzip").decode().encode(), 422, "invalid", None),
    ("nul-escape", b'{"runtime": "python", "code": "\\u0000"}', 400, "malformed_json", None),
]


@pytest.mark.parametrize("raw,status,code,field", [b[1:] for b in BAD_DEPLOYS],
                         ids=[b[0] for b in BAD_DEPLOYS])
def test_bad_deploys_get_the_right_status_and_a_json_error(hksd, raw, status, code, field):
    before = set(os.listdir(pathlib.Path(hksd.state, "functions")))
    got, headers, doc = jreq(hksd, "POST", DEPLOY, raw=raw, token=tok(hksd))
    assert headers["Content-Type"] == "application/json" and headers.get("X-Request-Id")
    assert_error(got, doc, status, code, field)
    assert set(os.listdir(pathlib.Path(hksd.state, "functions"))) == before


def test_python_code_without_handle_deploys_but_invoking_is_a_quick_502(hksd):
    rec = deploy_ok(hksd, {"runtime": "python", "code": "x = 1\n"})
    t0 = time.monotonic()
    status, doc = invoke(hksd, rec["id"])
    elapsed = time.monotonic() - t0
    assert_error(status, doc, 502, "bad_gateway")
    assert elapsed < 10, elapsed
    t0 = time.monotonic()
    status, hdrs, body = url_invoke(hksd, rec["id"], "/")
    assert status in (502, 503) and time.monotonic() - t0 < 10, (status, body)
    assert json.loads(body)["error"]["code"] in ("bad_gateway", "unavailable")
    status, got = get(hksd, rec["id"])
    assert got["instances"]["running"] == 0, got
    assert delete(hksd, rec["id"])[0] == 200


BAD_INVOKES = [
    ("not-json", b"{", 400, "malformed_json"),
    ("missing-id", b'{"method": "GET"}', 422, "invalid"),
    ("id-not-string", b'{"id": 5}', 422, "invalid"),
    ("bad-method", b'{"id": "ID", "method": "GET /x"}', 422, "invalid"),
    ("method-number", b'{"id": "ID", "method": 1}', 422, "invalid"),
    ("path-no-slash", b'{"id": "ID", "path": "x/y"}', 422, "invalid"),
    ("headers-not-object", b'{"id": "ID", "headers": ["a: b"]}', 422, "invalid"),
    ("header-value-number", b'{"id": "ID", "headers": {"a": 1}}', 422, "invalid"),
    ("body-not-string", b'{"id": "ID", "body": {"a": 1}}', 422, "invalid"),
    ("bad-base64", b'{"id": "ID", "body": "!!!", "body_encoding": "base64"}', 422, "invalid"),
    ("bad-encoding", b'{"id": "ID", "body": "x", "body_encoding": "rot13"}', 422, "invalid"),
    ("unknown-field", b'{"id": "ID", "timeout": 5}', 422, "invalid"),
    ("unknown-id", b'{"id": "fn-00000000000000000000"}', 404, "not_found"),
    ("malformed-id", b'{"id": "../../etc"}', 404, None),
]


@pytest.mark.parametrize("raw,status,code", [b[1:] for b in BAD_INVOKES],
                         ids=[b[0] for b in BAD_INVOKES])
def test_bad_invokes(hksd, echo_fn, raw, status, code):
    got, headers, doc = jreq(hksd, "POST", INVOKE, raw=raw.replace(b"ID", echo_fn.encode()),
                             token=tok(hksd))
    if status == 404 and code is None:
        assert got in (404, 422), doc  # a malformed id may be refused as invalid, or not found
        return
    assert headers["Content-Type"] == "application/json"
    assert_error(got, doc, status, code)


def test_another_projects_id_is_404_for_invoke_function(hksd, echo_fn):
    status, doc = invoke(hksd, echo_fn, token=tok(hksd, project="p2"))
    assert_error(status, doc, 404, "not_found")


def test_still_serving_after_the_bad_inputs(hksd, echo_fn):
    assert hksd.request("GET", "/healthz")[0] == 200
    status, r = invoke(hksd, echo_fn, query="tag=after")
    assert status == 200 and r["status"] == 201, r
    assert hksd.proc.poll() is None


# ---------------------------------------------------------------- 4. scopes

ENDPOINTS = [
    ("deploy", "functions:deploy"),
    ("invoke-function", "functions:invoke"),
    ("url", "functions:invoke"),
    ("delete", "functions:delete"),
    ("list", "functions:read"),
    ("get", "functions:read"),
    ("logs", "functions:read"),
]


def call_endpoint(d, which, fid, token):
    if which == "deploy":
        return jreq(d, "POST", DEPLOY, {"runtime": "python", "code": PY_ECHO}, token=token)
    if which == "invoke-function":
        return jreq(d, "POST", INVOKE, {"id": fid}, token=token)
    if which == "url":
        return jreq(d, "GET", "/fn/%s/" % fid, token=token)
    if which == "delete":
        return jreq(d, "POST", DELETE, {"id": fid}, token=token)
    if which == "list":
        return jreq(d, "GET", FUNCTIONS, token=token)
    if which == "get":
        return jreq(d, "GET", "%s/%s" % (FUNCTIONS, fid), token=token)
    return jreq(d, "GET", "%s/%s/logs" % (FUNCTIONS, fid), token=token)


@pytest.mark.parametrize("which,scope", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_scopes(hksd, echo_fn, which, scope):
    n_before = len(listed(hksd))
    others = " ".join(s for s in ALL.split() + ["functions:execute"] if s != scope)
    status, hdrs, doc = call_endpoint(hksd, which, echo_fn, tok(hksd, scope=others))
    assert_error(status, doc, 403, "forbidden")
    status, hdrs, doc = call_endpoint(hksd, which, echo_fn, None)
    assert status == 401, doc
    assert doc["error"]["code"] in ("unauthenticated", "invalid_token"), doc
    assert hdrs.get("WWW-Authenticate", "").startswith("Bearer")
    # and with its scope alone it works
    status, hdrs, doc = call_endpoint(hksd, which, echo_fn if which != "delete" else
                                      "fn-00000000000000000000", tok(hksd, scope=scope))
    assert status == {"deploy": 201, "url": 201, "delete": 404}.get(which, 200), doc
    if which == "deploy":
        assert delete(hksd, doc["id"])[0] == 200
    # nothing was deployed or deleted by the refused calls
    assert len(listed(hksd)) == n_before
    assert get(hksd, echo_fn)[0] == 200


# ---------------------------------------------------------------- 5. project isolation

def test_another_project_sees_nothing(hksd, echo_fn):
    b = tok(hksd, project="p2", sub="agent-b")
    assert_error(*get(hksd, echo_fn, token=b), 404, "not_found")
    status, _, raw = fn_logs(hksd, echo_fn, token=b)
    assert_error(status, json.loads(raw), 404, "not_found")
    assert_error(*invoke(hksd, echo_fn, token=b), 404, "not_found")
    status, _, body = url_invoke(hksd, echo_fn, "/", token=b)
    assert_error(status, json.loads(body), 404, "not_found")
    assert_error(*delete(hksd, echo_fn, token=b), 404, "not_found")
    assert echo_fn not in {f["id"] for f in listed(hksd, token=b)}
    # B's own function is not A's either
    rec = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO, "name": "b-fn"}, token=b)
    assert rec["project"] == "p2" and rec["owner"] == "agent-b"
    assert {f["id"] for f in listed(hksd, token=b)} == {rec["id"]}
    assert rec["id"] not in {f["id"] for f in listed(hksd)}
    assert_error(*get(hksd, rec["id"]), 404, "not_found")
    assert delete(hksd, rec["id"], token=b)[0] == 200
    # A's function is untouched
    status, r = invoke(hksd, echo_fn)
    assert status == 200 and r["status"] == 201


# ---------------------------------------------------------------- 6. TTL

def test_ttl_reaps_the_function(hksd):
    mark = uuid.uuid4().hex
    before = metrics(hksd).get("hks_functions_reaped_total", 0)
    t0 = time.monotonic()
    rec = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 2,
                           "env": {"FN_MARK": mark}})
    fid = rec["id"]
    assert rec["ttl_seconds"] == 2
    assert parse_ts(rec["expires_at"]) - parse_ts(rec["created_at"]) == 2
    status, r = invoke(hksd, fid)
    assert status == 200 and r["status"] == 201, r
    assert procs_with_env(mark)
    assert wait_until(lambda: get(hksd, fid)[0] == 404, 6, 0.1), get(hksd, fid)
    assert time.monotonic() - t0 < 4.5, "reaped %.1fs after deploy" % (time.monotonic() - t0)
    assert_error(*invoke(hksd, fid), 404, "not_found")
    assert not pathlib.Path(hksd.state, "functions", fid + ".json").exists()
    assert wait_until(lambda: not pathlib.Path(hksd.state, "fn", fid).exists(), 2)
    assert wait_until(lambda: not procs_with_env(mark), 5), procs_with_env(mark)
    reaps = [a for a in audit(hksd) if a.get("action") == "function.reap"
             and a.get("function_id") == fid]
    assert len(reaps) == 1, reaps
    assert metrics(hksd)["hks_functions_reaped_total"] >= before + 1


# ---------------------------------------------------------------- 7. scaling

@pytest.fixture(scope="module")
def idle_hksd():
    d = Daemon(env={"HKSD_FUNCTION_IDLE": "1"})
    yield d
    check_daemon_stops_clean(d)
    shutil.rmtree(d.state, ignore_errors=True)


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_idle_instances_stop_and_the_next_invoke_is_cold(idle_hksd, runtime):
    d = idle_hksd
    mark = uuid.uuid4().hex
    fid = deploy_ok(d, {"runtime": runtime, "code": ECHO[runtime], "env": {"FN_MARK": mark}})["id"]
    status, r = invoke(d, fid)
    assert status == 200 and r["cold_start"] is True, r
    assert get(d, fid)[1]["instances"]["running"] == 1
    # idle 1 s, the manager looks every 250 ms, and an idle instance (nothing in flight) is stopped
    # gracefully: it has no request to finish, so it is gone at once
    t0 = time.monotonic()
    stopped = wait_until(lambda: get(d, fid)[1]["instances"]["running"] == 0, 15, 0.1)
    took = time.monotonic() - t0
    _, lines, _ = fn_logs(d, fid)
    system = [ln["line"] for ln in lines if ln["stream"] == "system"]
    assert stopped and took < 4, "the idle instance ran %.1fs after its request: %s" % (took,
                                                                                      system)
    assert any(x.startswith("instance ended") and "exit code 0" in x for x in system), system
    assert wait_until(lambda: not procs_with_env(mark), 5), "the idle instance's process stayed"
    got = get(d, fid)[1]
    assert got["resources"]["peak_memory_bytes"] > 1 << 20, got  # an interpreter uses some MiB
    assert got["resources"]["cpu_ms_ended_instances"] >= 0, got
    status, r = invoke(d, fid)
    assert status == 200 and r["status"] == 201 and r["cold_start"] is True, r
    assert get(d, fid)[1]["cold_starts"] == 2
    assert delete(d, fid)[0] == 200


def test_min_scale_keeps_an_instance_ready(idle_hksd):
    d = idle_hksd
    warm_before = metrics(d).get('hks_function_instance_starts_total{start="warm"}', 0)
    fid = deploy_ok(d, {"runtime": "node", "code": NODE_ECHO, "min_scale": 1})["id"]
    assert wait_until(lambda: get(d, fid)[1]["instances"]["ready"] == 1, 15, 0.1), get(d, fid)
    assert metrics(d)['hks_function_instance_starts_total{start="warm"}'] >= warm_before + 1
    status, r = invoke(d, fid)
    assert status == 200 and r["status"] == 201 and r["cold_start"] is False, r
    time.sleep(2.5)  # past the idle time: min_scale keeps it
    got = get(d, fid)[1]
    assert got["instances"]["running"] == 1 and got["instances"]["ready"] == 1, got
    assert got["cold_starts"] == 0, got
    assert delete(d, fid)[0] == 200


def parallel(calls):
    """Run the callables at once; their results in order."""
    out = [None] * len(calls)

    def run(i):
        try:
            out[i] = calls[i]()
        except Exception as e:  # noqa: BLE001 - reported by the caller's assert
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    return threads, out


def watch_instances(d, fid, threads):
    """The highest instance counts seen while the threads run."""
    seen = {"running": 0, "busy": 0, "waiting": 0}
    while any(t.is_alive() for t in threads):
        status, got = get(d, fid)
        if status == 200:
            for k in ("running", "busy"):
                seen[k] = max(seen[k], got["instances"][k])
            seen["waiting"] = max(seen["waiting"], got["waiting"])
        time.sleep(0.05)
    for t in threads:
        t.join()
    return seen


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_scale_out_to_max_scale_with_concurrency_1(idle_hksd, runtime):
    d = idle_hksd
    fid = deploy_ok(d, {"runtime": runtime, "code": ECHO[runtime], "concurrency": 1,
                        "max_scale": 2})["id"]
    t0 = time.monotonic()
    threads, out = parallel([lambda: invoke(d, fid, query="mode=slow&s=1.5")] * 2)
    seen = watch_instances(d, fid, threads)
    elapsed = time.monotonic() - t0
    for status, r in out:
        assert status == 200 and r["status"] == 201, r
    assert seen["running"] == 2 and seen["busy"] == 2, seen
    assert elapsed < 2.9, "the two requests did not run side by side: %.1fs" % elapsed
    got = get(d, fid)[1]
    assert got["cold_starts"] == 2 and got["invocations"] == 2, got
    assert delete(d, fid)[0] == 200


def test_requests_beyond_max_scale_wait_in_the_queue(idle_hksd):
    d = idle_hksd
    fid = deploy_ok(d, {"runtime": "python", "code": PY_ECHO, "concurrency": 1,
                        "max_scale": 1})["id"]
    t0 = time.monotonic()
    threads, out = parallel([lambda: invoke(d, fid, query="mode=slow&s=0.5")] * 4)
    seen = watch_instances(d, fid, threads)
    elapsed = time.monotonic() - t0
    for res in out:
        assert not isinstance(res, Exception), res
        status, r = res
        assert status == 200 and r["status"] == 201, r
    assert seen["running"] == 1 and seen["waiting"] >= 1, seen
    assert elapsed >= 1.9, "4 x 0.5 s on one instance of concurrency 1 took %.2fs" % elapsed
    got = get(d, fid)[1]
    assert got["invocations"] == 4 and got["cold_starts"] == 1, got
    assert delete(d, fid)[0] == 200


def test_at_the_hosts_instance_cap_a_function_without_instance_gets_429():
    d = Daemon(env={"HKSD_MAX_INSTANCES": "1"})
    try:
        a = deploy_ok(d, {"runtime": "python", "code": PY_ECHO})["id"]
        b = deploy_ok(d, {"runtime": "python", "code": PY_ECHO})["id"]
        assert invoke(d, a)[1]["status"] == 201  # a's instance takes the only place
        status, hdrs, doc = jreq(d, "POST", INVOKE, {"id": b}, token=tok(d))
        assert_error(status, doc, 429, "overloaded")
        assert int(hdrs["Retry-After"]) >= 1
        status, hdrs, body = url_invoke(d, b, "/")
        assert_error(status, json.loads(body), 429, "overloaded")
        assert hdrs.get("Retry-After")
        assert invoke(d, a)[1]["status"] == 201  # a still has its instance
        assert delete(d, a)[0] == 200  # frees the place, once a's sandbox has ended
        results = []
        assert wait_until(lambda: results.append(invoke(d, b)) or results[-1][0] == 200, 3, 0.2), \
            results[-3:]
        assert results[-1][1]["status"] == 201
        assert all(st in (200, 429) for st, _ in results), results
    finally:
        check_daemon_stops_clean(d)
        shutil.rmtree(d.state, ignore_errors=True)


def test_delete_while_busy_ends_the_running_and_the_waiting_requests(idle_hksd):
    d = idle_hksd
    mark = uuid.uuid4().hex
    fid = deploy_ok(d, {"runtime": "python", "code": PY_ECHO, "concurrency": 1, "max_scale": 1,
                        "env": {"FN_MARK": mark}})["id"]
    threads, out = parallel([lambda: invoke(d, fid, query="mode=slow&s=8")] * 3)
    assert wait_until(lambda: get(d, fid)[1]["waiting"] == 2, 5), get(d, fid)
    t0 = time.monotonic()
    assert delete(d, fid)[0] == 200
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads), "requests hang after the delete"
    assert time.monotonic() - t0 < 4
    statuses = sorted(res[0] for res in out)
    assert statuses[:2] == [404, 404] and statuses[2] in (404, 502, 503), out
    assert wait_until(lambda: not procs_with_env(mark), 5)


# ---------------------------------------------------------------- 8. timeout

@pytest.mark.parametrize("runtime", ["node", "python"])
def test_a_handler_past_wall_ms_is_a_504_and_the_instance_is_replaced(hksd, runtime):
    rec = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime],
                           "limits": {"wall_ms": 1000}})
    fid = rec["id"]
    assert rec["limits"]["wall_ms"] == 1000
    assert invoke(hksd, fid)[0] == 200  # warm: the timeout measured is the handler's
    t0 = time.monotonic()
    status, doc = invoke(hksd, fid, query="mode=loop")
    elapsed = time.monotonic() - t0
    assert_error(status, doc, 504, "timeout")
    assert 0.9 <= elapsed <= 1.6, elapsed
    status, r = invoke(hksd, fid, query="tag=after-timeout")
    assert status == 200 and r["status"] == 201, r
    # the URL form times out the same way
    t0 = time.monotonic()
    status, hdrs, body = url_invoke(hksd, fid, "/?mode=loop")
    assert_error(status, json.loads(body), 504, "timeout")
    assert time.monotonic() - t0 <= 1.6 + 0.5  # may include a cold start
    status, _, body = url_invoke(hksd, fid, "/")
    assert status == 201, body
    got = get(hksd, fid)[1]
    assert got["timeouts"] == 2 and got["errors"] >= 2, got
    _, lines, _ = fn_logs(hksd, fid)
    assert any(ln["stream"] == "system" and "timed out" in ln["line"] for ln in lines), lines
    assert delete(hksd, fid)[0] == 200


# ---------------------------------------------------------------- 9. crash

@pytest.mark.parametrize("runtime", ["node", "python"])
def test_a_crashing_instance_is_a_502_and_a_fresh_one_serves(hksd, runtime):
    fid = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime]})["id"]
    assert invoke(hksd, fid)[0] == 200
    # a few rounds: the request right after a crash must find a fresh instance, not the dead one
    failed = []
    for round_no in range(30):
        t0 = time.monotonic()
        status, doc = invoke(hksd, fid, query="mode=crash")
        assert_error(status, doc, 502, "bad_gateway")
        assert time.monotonic() - t0 < 5
        status, r = invoke(hksd, fid, query="tag=after-crash")
        if not (status == 200 and r["status"] == 201 and r["cold_start"] is True):
            failed.append((round_no, status, r))
    assert not failed, "requests right after a crash that failed: %s" % failed
    # the URL form too
    status, hdrs, body = url_invoke(hksd, fid, "/?mode=crash")
    assert_error(status, json.loads(body), 502, "bad_gateway")
    status, _, body = url_invoke(hksd, fid, "/?tag=after-crash-2")
    assert status == 201, body
    got = get(hksd, fid)[1]
    assert got["errors"] >= 31 and got["instances"]["running"] == 1, got
    _, lines, _ = fn_logs(hksd, fid)
    assert any(ln["stream"] == "system" and "exit code 3" in ln["line"] for ln in lines), lines
    assert delete(hksd, fid)[0] == 200


# ---------------------------------------------------------------- 10. logs

def test_logs_tail_since_and_bad_parameters(hksd, echo_fn):
    for i in range(3):
        assert invoke(hksd, echo_fn, query="tag=logs%d" % i)[0] == 200
    status, lines, raw = fn_logs(hksd, echo_fn, "?tail=1")
    assert status == 200 and len(lines) == 1, raw
    status, lines, raw = fn_logs(hksd, echo_fn, "?tail=3")
    assert status == 200 and len(lines) == 3, raw
    status, all_lines, _ = fn_logs(hksd, echo_fn)
    assert lines == all_lines[-3:]
    future = int(time.time()) + 3600
    status, lines, raw = fn_logs(hksd, echo_fn, "?since=%d" % future)
    assert status == 200 and lines == [] and raw == b"", raw
    stamp = datetime.fromtimestamp(future, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, lines, raw = fn_logs(hksd, echo_fn, "?since=" + stamp)
    assert status == 200 and lines == [], raw
    status, lines, _ = fn_logs(hksd, echo_fn, "?since=%d" % (int(time.time()) - 3600))
    assert status == 200 and len(lines) == len(all_lines)
    for bad in ("since=yesterday", "since=2026-13-45T99:00:00Z", "tail=-1", "tail=abc",
                "tail=", "follow=maybe"):
        status, _, raw = fn_logs(hksd, echo_fn, "?" + bad)
        assert_error(status, json.loads(raw), 422, "invalid")


class Follower:
    """GET .../logs?follow=true read line by line in a thread."""

    def __init__(self, d, fid, query="follow=true&tail=1"):
        self.lines = queue.Queue()
        self.ended = threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        self.conn.request("GET", "%s/%s/logs?%s" % (FUNCTIONS, fid, query),
                          headers={"Authorization": "Bearer " + tok(d)})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                self.lines.put(json.loads(line))
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.lines.put({"error": repr(e)})
        finally:
            self.ended.set()

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                ln = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(ln)
            if pred(ln):
                return ln, seen
        return None, seen

    def close(self):
        self.conn.close()


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_logs_follow_streams_new_lines_and_ends_on_delete(hksd, runtime):
    fid = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime]})["id"]
    f = Follower(hksd, fid)
    try:
        assert f.status == 200
        first, _ = f.wait_for(lambda ln: True, 5)
        assert first and first["line"] == "deployed", first  # the tail line: the stream is on
        tag = uuid.uuid4().hex[:12]
        assert invoke(hksd, fid, query="tag=" + tag)[0] == 200
        want = "%s tag=%s method=POST" % ("py-stdout" if runtime == "python" else "node-stdout",
                                          tag)
        got, seen = f.wait_for(lambda ln: ln.get("line") == want, 5)
        assert got and got["stream"] == "stdout", seen
        assert not f.ended.is_set()
        assert delete(hksd, fid)[0] == 200
        assert f.ended.wait(5), "the follow stream did not end when the function was deleted"
    finally:
        f.close()


def test_logs_follow_ends_when_the_function_is_reaped(hksd):
    fid = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 2})["id"]
    f = Follower(hksd, fid, "follow=true")
    try:
        assert f.status == 200
        assert f.ended.wait(6), "the follow stream did not end when the function was reaped"
    finally:
        f.close()


# ---------------------------------------------------------------- 11. output flood

@pytest.mark.parametrize("runtime", ["node", "python"])
def test_an_output_flood_does_not_hurt_hksd_and_the_log_stays_bounded(hksd, runtime):
    fid = deploy_ok(hksd, {"runtime": runtime, "code": ECHO[runtime],
                           "limits": {"wall_ms": 30000}})["id"]
    t0 = time.monotonic()
    status, r = invoke(hksd, fid, query="mode=flood")
    assert status in (200, 502), r  # the instance may be stopped for its output: not hksd
    assert time.monotonic() - t0 < 30
    assert hksd.request("GET", "/healthz")[0] == 200 and hksd.proc.poll() is None
    log = pathlib.Path(hksd.state, "fn", fid, "logs.ndjson")
    old = pathlib.Path(str(log) + ".1")

    def size():
        return sum(p.stat().st_size for p in (log, old) if p.exists())

    last = [-1]

    def settled():
        s = size()
        done = s == last[0]
        last[0] = s
        return done

    wait_until(settled, 20, 0.5)
    assert 0 < size() < 17 * (1 << 20), size()
    status, r = invoke(hksd, fid, query="tag=after-flood")
    assert status == 200 and r["status"] == 201, r
    status, lines, _ = fn_logs(hksd, fid, "?tail=50")
    assert status == 200 and lines
    assert delete(hksd, fid)[0] == 200


# ---------------------------------------------------------------- 13. metrics

def test_metrics_count_functions_and_invocations(hksd, echo_fn):
    m0 = metrics(hksd)
    for name in ("hks_functions", "hks_functions_deployed_total", "hks_functions_deleted_total",
                 "hks_functions_reaped_total", "hks_function_instances",
                 'hks_function_instance_starts_total{start="cold"}',
                 'hks_function_instance_starts_total{start="warm"}',
                 "hks_function_instance_failures_total", 'hks_invocations_total{status="2xx"}',
                 'hks_invocations_total{status="5xx"}', 'hks_invocations_total{status="timeout"}',
                 "hks_invocation_duration_seconds_count", "hks_invocation_duration_seconds_sum",
                 'hks_invocation_duration_seconds_bucket{le="+Inf"}'):
        assert name in m0, name
    assert m0["hks_functions"] >= 1
    fid = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO})["id"]
    m1 = metrics(hksd)
    assert m1["hks_functions"] == m0["hks_functions"] + 1
    assert m1["hks_functions_deployed_total"] == m0["hks_functions_deployed_total"] + 1
    assert invoke(hksd, fid)[1]["status"] == 201
    assert invoke(hksd, echo_fn)[1]["status"] == 201
    assert invoke(hksd, fid, query="status=404")[1]["status"] == 404
    assert invoke(hksd, fid, query="status=500")[1]["status"] == 500
    m2 = metrics(hksd)
    for cls, n in (("2xx", 2), ("4xx", 1), ("5xx", 1), ("timeout", 0), ("none", 0)):
        key = 'hks_invocations_total{status="%s"}' % cls
        assert m2[key] == m1[key] + n, (key, m1[key], m2[key])
    got = get(hksd, fid)[1]
    assert got["invocations"] == 3 and got["errors"] == 1, got  # the function's own 500 counts
    assert m2["hks_invocation_duration_seconds_count"] == \
        m1["hks_invocation_duration_seconds_count"] + 4
    assert m2['hks_function_instance_starts_total{start="cold"}'] >= \
        m1['hks_function_instance_starts_total{start="cold"}'] + 1
    assert m2["hks_function_instances"] >= 1
    assert delete(hksd, fid)[0] == 200
    m3 = metrics(hksd)
    assert m3["hks_functions"] == m0["hks_functions"]
    assert m3["hks_functions_deleted_total"] == m0["hks_functions_deleted_total"] + 1


# ---------------------------------------------------------------- 12. kill -9 and restart

def test_kill_9_leaves_no_instance_and_a_restart_restores_the_functions():
    cgroups_before = hks_cgroups()
    d = Daemon()
    d2 = None
    try:
        marks = {rt: uuid.uuid4().hex for rt in ("node", "python", "short")}
        ids = {}
        for rt in ("node", "python"):
            ids[rt] = deploy_ok(d, {"runtime": rt, "code": ECHO[rt], "name": "keep-" + rt,
                                    "env": {"FN_MARK": marks[rt]}})["id"]
        short = deploy_ok(d, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 2,
                              "env": {"FN_MARK": marks["short"]}})
        ids["short"] = short["id"]
        t_short = time.monotonic()
        for rt, fid in ids.items():
            status, r = invoke(d, fid)
            assert status == 200 and r["status"] == 201, (rt, r)
        instances = {rt: procs_with_env(m) for rt, m in marks.items()}
        assert all(instances.values()), instances
        below = descendants(d.proc.pid)
        assert below, "no spawner below hksd"
        assert any(int(c.split("-")[1]) in below for c in hks_cgroups()), \
            "no cgroup named after the spawner: the check below would see nothing"
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        # the spawner notices, kills every sandbox and removes their cgroups
        assert wait_until(lambda: not any(alive(p) for p in below), 10), \
            {p: alive(p) for p in below}
        for rt, m in marks.items():
            assert not procs_with_env(m), (rt, procs_with_env(m))
        ours = below | {d.proc.pid}  # a sandbox's cgroup is hks-<pid of its spawner>-...

        def our_cgroups():
            return {c for c in hks_cgroups() - cgroups_before if int(c.split("-")[1]) in ours}
        assert wait_until(lambda: not our_cgroups(), 10), our_cgroups()
        d.log.close()
        # the short one expires while hksd is down
        time.sleep(max(0.0, 3.2 - (time.monotonic() - t_short)))
        d2 = Daemon(state=d.state)
        assert sockets(d2) == set(), "sockets of dead instances were left: %s" % sockets(d2)
        fns = {f["id"]: f for f in listed(d2)}
        assert set(fns) == {ids["node"], ids["python"]}, fns
        assert all(f["instances"]["running"] == 0 for f in fns.values()), fns
        assert not pathlib.Path(d.state, "functions", ids["short"] + ".json").exists()
        assert not pathlib.Path(d.state, "fn", ids["short"]).exists()
        assert_error(*get(d2, ids["short"]), 404, "not_found")
        for rt in ("node", "python"):
            status, r = invoke(d2, ids[rt], query="tag=after-restart")
            assert status == 200 and r["status"] == 201 and r["cold_start"] is True, (rt, r)
            assert json.loads(r["body"])["mark"] == marks[rt]
            status, _, body = url_invoke(d2, ids[rt], "/x")
            assert status == 201, body
        # the log survived the crash, and says the function was restored
        _, lines, _ = fn_logs(d2, ids["node"])
        texts = [ln["line"] for ln in lines]
        assert "node-stdout tag= method=POST" in texts, texts
        assert any(ln["stream"] == "system" and "restored" in ln["line"] for ln in lines), texts
        records = audit(d2)  # every line parses (json.loads in audit())
        reaps = [a for a in records if a.get("action") == "function.reap"
                 and a.get("function_id") == ids["short"]]
        assert len(reaps) == 1, reaps
        deploys = {a["function_id"] for a in records if a.get("action") == "function.deploy"}
        assert deploys == set(ids.values())
        assert metrics(d2)["hks_functions_reaped_total"] >= 1
        assert metrics(d2)["hks_functions"] == 2
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if d2 is not None:
            check_daemon_stops_clean(d2)
            for m in marks.values():
                assert not procs_with_env(m)
        shutil.rmtree(d.state, ignore_errors=True)
