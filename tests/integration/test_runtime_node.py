"""The Node.js runtime launcher (runtimes/node/launcher.js), driven through the real sandbox.

oneshot: hks-sandbox --json --ro-bind runtimes/node:/hks/runtime --ro-bind FIXTURES:/code
             --pass-fd FD -- /usr/bin/node /hks/runtime/launcher.js oneshot
         with a SOCK_SEQPACKET socketpair as the control channel (fd 3 inside): the ready
         message, "go", then the program's output, exit code and the sandbox's statuses.
         Uncaught exceptions and unhandled rejections are compared byte for byte with bare
         `node` run outside the sandbox on the same fixture file (paths mapped to /code).
serve:   the launcher in the sandbox accepting on a listening unix socket made here (passed
         with --pass-fd, HKS_LISTEN_FD=3; the ready message on HKS_CONTROL_FD=4), requests over
         that socket: the Knative node `http` template, the faas-js-runtime contract (context,
         body parsing, return values, errors, hooks, health checks, keep-alive, large bodies,
         413). SIGTERM handling runs the launcher outside the sandbox (hks-sandbox kills its
         sandbox on SIGTERM instead of forwarding it).

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_runtime_node.py
"""

import contextlib
import hashlib
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import OUR_SANDBOX_PIDS, SUITE_MARKER, kill_pids, procs_with

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtimes" / "node"
LAUNCHER = RUNTIME / "launcher.js"
TEMPLATE = RUNTIME / "templates" / "http"
FIXTURES = pathlib.Path(os.path.realpath(REPO / "tests" / "runtime_fixtures" / "node"))
ONESHOT = FIXTURES / "oneshot"
TYPEMODULE = FIXTURES / "typemodule"
SERVE = FIXTURES / "serve"
NODE = "/usr/bin/node"
SANDBOX_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
MiB = 1 << 20

_counter = iter(range(1, 1 << 30))


def new_marker():
    return "%snode%04dz" % (SUITE_MARKER, next(_counter))


@pytest.fixture(scope="module")
def sbx(sandbox_bin):
    """The hks-sandbox binary (skips the module when not root or the binary is missing)."""
    return sandbox_bin


@pytest.fixture(scope="module")
def host_node_version():
    return subprocess.run([NODE, "-p", "process.versions.node"], capture_output=True, text=True,
                          check=True).stdout.strip()


def check_no_leftovers(marker, what):
    left = procs_with(marker)
    deadline = time.monotonic() + 2
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = procs_with(marker)
    if left:
        kill_pids(left)
        pytest.fail("processes of %s survived it: %s" % (what, left))


# ---------------------------------------------------------------- oneshot

class Oneshot:
    """One launcher in oneshot mode in a sandbox: .ready (the parsed ready message), .record
    (hks-sandbox's JSON record), .returncode, .elapsed."""

    def __init__(self, sbx, code_dir=ONESHOT, args=()):
        self.host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.marker = new_marker()
        self.argv = [sbx, "--json", "--ro-bind", "%s:/hks/runtime" % RUNTIME,
                     "--ro-bind", "%s:/code" % code_dir, "--pass-fd", str(child.fileno()),
                     *args, "--", NODE, "/hks/runtime/launcher.js", "oneshot", self.marker]
        self.proc = subprocess.Popen(self.argv, pass_fds=[child.fileno()], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        OUR_SANDBOX_PIDS.add(self.proc.pid)
        child.close()
        self.ready = None
        self.record = None

    def wait_ready(self, timeout=30):
        self.host.settimeout(timeout)
        try:
            data = self.host.recv(65536)
        except socket.timeout:
            self.proc.kill()
            out, err = self.proc.communicate()
            pytest.fail("no ready message within %ss: %r %r" % (timeout, out, err))
        if not data:
            out, err = self.proc.communicate(timeout=30)
            pytest.fail("the control socket closed before the ready message: %r %r" % (out, err))
        self.ready = json.loads(data)
        return self.ready

    def go(self, entry=None, argv=(), env=None, raw=None):
        msg = raw if raw is not None else json.dumps(
            {"op": "go", "entry": entry, "argv": list(argv), "env": env or {}}).encode()
        self.host.send(msg)

    def finish(self, stdin=b"", timeout=60):
        self.host.close()
        try:
            out, err = self.proc.communicate(input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            kill_pids(procs_with(self.marker))
            pytest.fail("hks-sandbox did not return within %ss: %r %r" % (timeout, out, err))
        self.returncode = self.proc.returncode
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
        assert len(lines) == 1, "expected one JSON record: %r %r" % (out, err)
        self.record = json.loads(lines[0])
        check_no_leftovers(self.marker, " ".join(self.argv))
        return self.record


def run(sbx, entry, argv=(), env=None, stdin=b"", code_dir=ONESHOT, args=(), timeout=60):
    o = Oneshot(sbx, code_dir, args)
    o.wait_ready()
    o.go(entry, argv, env)
    return o.finish(stdin, timeout)


def bare(code_dir, entry, argv=()):
    """Bare `node /path/entry argv...` outside the sandbox, output with the host path of the
    fixture directory replaced by /code."""
    r = subprocess.run([NODE, str(code_dir / entry), *argv], cwd=code_dir, env=SANDBOX_ENV,
                       capture_output=True, timeout=60)
    fix = lambda b: b.decode(errors="replace").replace(str(code_dir), "/code")
    return r.returncode, fix(r.stdout), fix(r.stderr)


def test_ready_message_then_eof_before_go_exits_0_silently(sbx, host_node_version):
    o = Oneshot(sbx)
    ready = o.wait_ready()
    assert set(ready) == {"op", "runtime", "version", "pid"}
    assert ready["op"] == "ready" and ready["runtime"] == "node"
    assert ready["version"] == host_node_version
    assert isinstance(ready["pid"], int) and ready["pid"] > 0
    rec = o.finish()
    assert (rec["status"], rec["exit_code"], rec["stdout"], rec["stderr"]) == ("ok", 0, "", "")


def test_stdout_stderr_and_exit_code(sbx):
    rec = run(sbx, "hello.js")
    assert rec["status"] == "ok" and rec["exit_code"] == 0
    assert rec["stdout"] == "hello from node\n"
    assert rec["stderr"] == "a line on stderr\n"


def test_argv_env_cwd_and_nothing_of_the_launcher_left(sbx):
    rec = run(sbx, "introspect.js", ["a", "b c", ""], env={"HKS_T_ONE": "1", "HKS_T_UNI": "ünï ✓"})
    assert rec["status"] == "ok", rec
    seen = json.loads(rec["stdout"])
    assert seen["argv"] == [NODE, "/code/introspect.js", "a", "b c", ""]
    assert seen["env"] == {"HKS_T_ONE": "1", "HKS_T_UNI": "ünï ✓"}
    assert seen["cwd"] == "/code"
    assert seen["mainIsModule"] and seen["mainModuleIsModule"] and seen["moduleId"] == "."
    assert seen["cache"] == ["/code/introspect.js"]
    assert seen["sockets"] == 0, "the control socket is still open in the program"
    # everything else is exactly what the program sees under bare node
    code, out, _ = bare(ONESHOT, "introspect.js", ["a", "b c", ""])
    assert code == 0
    expected = json.loads(out)
    for key in ("argv0", "execArgv", "parent", "globals", "resources", "listeners", "sockets"):
        assert seen[key] == expected[key], key


def test_stdin_is_the_program_stdin(sbx):
    data = "some input ✓\nsecond line\n".encode()
    rec = run(sbx, "stdin_echo.js", stdin=data)
    assert rec["status"] == "ok"
    assert rec["stdout"] == "%d %s" % (len(data), data.decode().upper())


def test_entry_requires_sibling_modules(sbx):
    rec = run(sbx, "main.js", ["tiger"])
    assert (rec["status"], rec["stdout"], rec["stderr"]) == ("ok", "HELLO, TIGER!\n", "")


def test_esm_entry_mjs(sbx):
    rec = run(sbx, "esm_main.mjs", ["x", "y"])
    assert rec["status"] == "ok", rec
    assert json.loads(rec["stdout"]) == {"url": "file:///code/esm_main.mjs", "doubled": 42,
                                         "argv": ["x", "y"], "mainModule": "undefined",
                                         "requireType": "undefined"}


def test_esm_entry_by_package_type_module(sbx):
    rec = run(sbx, "main.js", code_dir=TYPEMODULE)
    assert (rec["status"], rec["stdout"], rec["stderr"]) == ("ok", "esm from main.js\n", "")


def test_unicode_output(sbx):
    rec = run(sbx, "unicode.js")
    assert rec["stdout"] == "héllo wörld ✓ 日本語 🎉\n"
    assert rec["stderr"] == "ërror ✗\n"


def test_binary_output(sbx):
    rec = run(sbx, "binary.js")
    assert rec["status"] == "ok"
    # the JSON record carries invalid UTF-8 as U+FFFD (as for any program)
    assert rec["stdout"] == "a\x00\x01\ufffd\ufffdb\n"


@pytest.mark.parametrize("code_dir,entry", [
    (ONESHOT, "throw.js"),
    (ONESHOT, "throw_type.js"),
    (ONESHOT, "throw_string.js"),
    (ONESHOT, "syntax_error.js"),
    (ONESHOT, "reject.js"),
    (ONESHOT, "async_reject.js"),
    (ONESHOT, "reject_value.js"),
    (ONESHOT, "timer_throw.js"),
    (ONESHOT, "esm_throw.mjs"),
    (TYPEMODULE, "throws.js"),
])
def test_uncaught_errors_print_exactly_as_bare_node(sbx, code_dir, entry):
    code, out, err = bare(code_dir, entry)
    assert code == 1
    rec = run(sbx, entry, code_dir=code_dir)
    assert rec["status"] == "error"
    assert rec["exit_code"] == 1
    assert rec["stdout"] == out
    assert rec["stderr"] == err, "launcher:\n%s\nbare node:\n%s" % (rec["stderr"], err)


@pytest.mark.parametrize("how,n", [("exit", 0), ("exit", 3), ("exit", 255), ("exitcode", 7)])
def test_exit_codes(sbx, how, n):
    rec = run(sbx, "exit_code.js", [how, str(n)])
    assert rec["exit_code"] == n
    assert rec["status"] == ("ok" if n == 0 else "error")
    assert rec["stdout"] == "exiting with %d via %s\n" % (n, how)


@pytest.mark.parametrize("raw,needle", [
    (b"not json", "malformed"),
    (b'{"op":"run","entry":"hello.js"}', 'expected op "go"'),
    (b'{"op":"go"}', '"entry"'),
    (b'{"op":"go","entry":"/code/hello.js"}', "relative"),
    (b'{"op":"go","entry":"lib/../../etc/passwd"}', '".."'),
    (b'{"op":"go","entry":"hello.js","argv":"a b"}', '"argv"'),
    (b'{"op":"go","entry":"hello.js","env":{"A":1}}', "must be a string"),
    (b'{"op":"go","entry":"hello.js","env":{"A=B":"x"}}', "bad environment variable name"),
    (b'{"op":"go","entry":"missing.js"}', "can't open file '/code/missing.js'"),
])
def test_bad_go_exits_2_with_one_line(sbx, raw, needle):
    o = Oneshot(sbx)
    o.wait_ready()
    o.go(raw=raw)
    rec = o.finish()
    assert rec["exit_code"] == 2, rec
    assert rec["stdout"] == ""
    assert needle in rec["stderr"]
    assert rec["stderr"].endswith("\n") and rec["stderr"].count("\n") == 1, rec["stderr"]


def test_large_go_message(sbx):
    """A "go" much larger than libuv's default 64 KiB read buffer arrives whole."""
    big = "v" * (150 * 1024)  # (a SOCK_SEQPACKET datagram is limited by SO_SNDBUF, ~208 KiB)
    rec = run(sbx, "introspect.js", env={"HKS_T_BIG": big})
    assert rec["status"] == "ok", rec["stderr"][:500]
    assert json.loads(rec["stdout"])["env"] == {"HKS_T_BIG": big}


def test_timeout(sbx):
    rec = run(sbx, "loop.js", args=["--wall", "1s"])
    assert rec["status"] == "timeout"
    assert rec["timeout_reason"] == "wall"
    assert rec["stdout"] == "looping\n"


def test_oom(sbx):
    rec = run(sbx, "grow.js", args=["--memory", "128M"])
    assert rec["status"] == "oom", rec


def test_output_limit(sbx):
    rec = run(sbx, "flood.js", args=["--output-limit", "64K"])
    assert rec["status"] == "output_limit"
    assert rec["stdout_truncated"] is True
    assert len(rec["stdout"]) <= 64 * 1024


# ---------------------------------------------------------------- serve: helpers

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, r, data):
        self.status = r.status
        self.reason = r.reason
        self.headers = {k.lower(): v for k, v in r.getheaders()}
        self.data = data

    @property
    def text(self):
        return self.data.decode()

    def json(self):
        return json.loads(self.data)


def request(path, method="GET", url="/", body=None, headers=None, timeout=30):
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r, r.read())
    finally:
        conn.close()


def raw_response(sock, method="POST"):
    r = http.client.HTTPResponse(sock, method=method)
    r.begin()
    return Response(r, r.read())


class Server:
    """The launcher in serve mode, in the sandbox (or, with outside=True, as a plain process),
    accepting on a unix socket bound here."""

    def __init__(self, sbx, code_dir, env=None, args=(), outside=False):
        self.dir = tempfile.mkdtemp(prefix="nodesrv-")
        self.path = os.path.join(self.dir, "s.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(self.path)
        lsock.listen(64)
        self.ctrl, ctrl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.marker = new_marker()
        self.outside = outside
        fds = [lsock.fileno(), ctrl_child.fileno()]
        if outside:
            penv = dict(SANDBOX_ENV, HKS_FUNCTION_DIR=str(code_dir), HKS_LISTEN_FD=str(fds[0]),
                        HKS_CONTROL_FD=str(fds[1]), **(env or {}))
            self.argv = [NODE, str(LAUNCHER), "serve", self.marker]
            self.proc = subprocess.Popen(self.argv, pass_fds=fds, env=penv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            setenv = []
            for k, v in (env or {}).items():
                setenv += ["--setenv", "%s=%s" % (k, v)]
            self.argv = [sbx, "--json", "--wall", "600s", "--cpu", "600s",
                         "--ro-bind", "%s:/hks/runtime" % RUNTIME, "--ro-bind", "%s:/code" % code_dir,
                         "--pass-fd", str(fds[0]), "--pass-fd", str(fds[1]),
                         "--setenv", "HKS_LISTEN_FD=3", "--setenv", "HKS_CONTROL_FD=4", *setenv, *args,
                         "--", NODE, "/hks/runtime/launcher.js", "serve", self.marker]
            self.proc = subprocess.Popen(self.argv, pass_fds=fds, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            OUR_SANDBOX_PIDS.add(self.proc.pid)
        lsock.close()  # the server holds the only listening copy from now on
        ctrl_child.close()
        self.ready = None
        self.record = None
        self.stderr = None
        self.exited = False

    def wait_ready(self, timeout=30):
        self.ctrl.settimeout(timeout)
        try:
            data = self.ctrl.recv(65536)
        except socket.timeout:
            data = None
        if not data:
            self.stop()
            pytest.fail("the server did not become ready: %s\n%s" % (self.record, self.stderr))
        self.ready = json.loads(data)
        return self

    def request(self, *a, **kw):
        return request(self.path, *a, **kw)

    def connect_raw(self, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    def wait_exit(self, timeout=30):
        if self.exited:
            return self.proc.returncode
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            kill_pids(procs_with(self.marker))
            pytest.fail("the server did not exit within %ss: %r" % (timeout, err[-2000:]))
        if self.outside:
            self.stderr = err.decode(errors="replace")
        else:
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
            self.record = json.loads(lines[-1]) if lines else None
            self.stderr = self.record["stderr"] if self.record else err.decode(errors="replace")
        self.exited = True
        return self.proc.returncode

    def stop(self):
        """SIGTERM (hks-sandbox kills the sandbox; outside, the launcher shuts down)."""
        if not self.exited and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        self.ctrl.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        check_no_leftovers(self.marker, " ".join(self.argv))
        return rc

    def log_records(self):
        out = []
        for line in (self.stderr or "").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


@contextlib.contextmanager
def serving(sbx, code_dir, **kw):
    s = Server(sbx, code_dir, **kw).wait_ready()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def kitchen(sbx):
    """One sandboxed server for the kitchen-sink function, shared by the tests below."""
    s = Server(sbx, SERVE / "kitchen").wait_ready()
    yield s
    s.stop()
    assert s.proc.returncode == 128 + signal.SIGTERM
    assert s.record["status"] == "killed"


def pattern(n):
    unit = bytes(range(251))
    return (unit * (n // 251 + 1))[:n]


# ---------------------------------------------------------------- serve: the Knative template

def test_serve_template_function(sbx, host_node_version):
    with serving(sbx, TEMPLATE) as s:
        assert s.ready["op"] == "ready" and s.ready["runtime"] == "node"
        assert s.ready["version"] == host_node_version
        r = s.request("GET", "/?name=tiger")
        assert (r.status, r.text) == (200, "OK")
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["access-control-allow-origin"] == "*"
        r = s.request("POST", "/", body=json.dumps({"name": "tiger"}),
                      headers={"Content-Type": "application/json"})
        assert (r.status, r.text) == (200, "OK")
        for url in ("/health/liveness", "/health/readiness"):
            r = s.request("GET", url)
            assert (r.status, r.text) == (200, "OK")
    logs = s.log_records()
    msgs = [rec.get("msg") for rec in logs]
    assert "query { name: 'tiger' }" in msgs
    assert "body { name: 'tiger' }" in msgs
    assert "body undefined" in msgs
    completed = [rec for rec in logs if rec.get("msg") == "request completed"]
    assert [c["req"]["method"] for c in completed] == ["GET", "POST"]  # health checks at debug level
    assert all(rec["level"] == 30 and "time" in rec and "reqId" in rec for rec in completed)


# ---------------------------------------------------------------- serve: the contract

def test_context_and_query(kitchen):
    r = kitchen.request("GET", "/some/path?mode=echo&name=tiger&x=1&x=2&sp=a+b&enc=%E2%9C%93",
                        headers={"X-Thing": "yes"})
    assert r.status == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    seen = r.json()
    assert seen["method"] == "GET"
    assert seen["query"] == {"mode": "echo", "name": "tiger", "x": ["1", "2"], "sp": "a b", "enc": "✓"}
    assert seen["nameOnContext"] == "tiger"
    assert seen["headers"]["x-thing"] == "yes"
    assert seen["httpVersion"] == "1.1"
    assert seen["body"] == {"type": "undefined"}
    assert seen["contentType"] is None
    assert seen["initialized"] is True, "init() was not called"
    assert seen["logger"] == ["info", "warn", "error", "debug", "trace", "fatal"]


@pytest.mark.parametrize("ctype,payload,expected", [
    ("application/json", b'{"name":"tiger","n":[1,2],"nested":{"ok":true}}',
     {"type": "object", "value": {"name": "tiger", "n": [1, 2], "nested": {"ok": True}}}),
    ("application/json; charset=utf-8", b'[1,"two"]', {"type": "object", "value": [1, "two"]}),
    ("application/json", b'"just a string"', {"type": "string", "value": "just a string"}),
    ("application/json", b"null", {"type": "null", "value": None}),
    ("application/x-www-form-urlencoded", b"a=1&a=2&b[c]=3&d[]=x&e=%20+y&f",
     {"type": "object", "value": {"a": ["1", "2"], "b": {"c": "3"}, "d": ["x"], "e": "  y", "f": ""}}),
    ("text/plain", "plain text ✓".encode(), {"type": "string", "value": "plain text ✓"}),
    ("application/octet-stream", b"\x00\x01\xff", {"type": "buffer", "value": "AAH/"}),
    ("image/png", b"\x89PNG", {"type": "buffer", "value": "iVBORw=="}),
])
def test_request_body_parsing(kitchen, ctype, payload, expected):
    r = kitchen.request("POST", "/?mode=echo", body=payload, headers={"Content-Type": ctype})
    assert r.status == 200, r.data
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["contentType"] == ctype
    assert seen["body"] == expected
    assert seen["contextBodySame"] is True


def test_cloudevents_binary_mode(kitchen):
    ce = {"Ce-Id": "42", "Ce-Source": "/test", "Ce-Type": "dev.hks.test", "Ce-Specversion": "1.0",
          "Ce-Myext": "x", "Content-Type": "application/json"}
    r = kitchen.request("POST", "/?mode=echo", body=b'{"n":1}', headers=ce)
    assert r.status == 200
    event = r.json()["body"]
    assert event["type"] == "object"
    assert {k: event["value"][k] for k in ("id", "source", "type", "specversion", "myext", "data")} == {
        "id": "42", "source": "/test", "type": "dev.hks.test", "specversion": "1.0", "myext": "x",
        "data": {"n": 1}}
    r = kitchen.request("POST", "/?mode=cloudevent", body=b'{"n":1}', headers=ce)
    assert r.status == 200
    assert (r.headers["ce-id"], r.headers["ce-type"], r.headers["ce-source"], r.headers["ce-specversion"]) == (
        "reply-1", "dev.hks.reply", "/kitchen", "1.0")
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"got": "dev.hks.test"}
    bad = dict(ce, **{"Ce-Specversion": "9.9"})
    assert kitchen.request("POST", "/?mode=echo", body=b"{}", headers=bad).status == 406
    missing = {k: v for k, v in ce.items() if k != "Ce-Source"}
    assert kitchen.request("POST", "/?mode=echo", body=b"{}", headers=missing).status == 400


@pytest.mark.parametrize("payload,needle", [
    (b'{"a":', "JSON"),
    (b"", "Body cannot be empty"),
    (b'{"__proto__":{"polluted":true}}', "forbidden prototype property"),
])
def test_bad_json_is_400(kitchen, payload, needle):
    r = kitchen.request("POST", "/?mode=echo", body=payload, headers={"Content-Type": "application/json"})
    assert r.status == 400
    err = r.json()
    assert err["statusCode"] == 400 and err["error"] == "Bad Request"
    assert needle in err["message"]


def test_status_code_and_headers(kitchen):
    r = kitchen.request("GET", "/?mode=status&code=201")
    assert (r.status, r.text) == (201, "status 201")
    assert r.headers["x-custom"] == "yes"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    r = kitchen.request("GET", "/?mode=status&code=404")
    assert (r.status, r.text) == (404, "status 404")


@pytest.mark.parametrize("mode,status,ctype,body", [
    ("string", 200, "text/plain; charset=utf-8", b"a plain string"),
    ("object", 200, "application/json; charset=utf-8", b'{"a":1,"list":[1,2,3]}'),
    ("array", 200, "application/json; charset=utf-8", b'[1,"two"]'),
    ("none", 204, None, b""),
    ("empty", 204, None, b""),
    ("other", 200, "application/json; charset=utf-8", b'{"query":{"mode":"other"}}'),
])
def test_return_values(kitchen, mode, status, ctype, body):
    r = kitchen.request("GET", "/?mode=" + mode)
    assert r.status == status
    assert r.headers.get("content-type") == ctype
    assert r.data == body


def test_handler_error_is_500_and_the_server_continues(kitchen):
    r = kitchen.request("GET", "/?mode=throw&tag=first")
    assert r.status == 500
    assert r.text == "handler exploded (first)"
    r = kitchen.request("GET", "/?mode=throwcode")
    assert (r.status, r.text) == (418, "I am a teapot")
    r = kitchen.request("GET", "/?mode=badstatus")
    assert r.status == 500
    r = kitchen.request("GET", "/?mode=stray")
    assert (r.status, r.text) == (200, "scheduled")
    time.sleep(0.2)
    r = kitchen.request("GET", "/?mode=string")
    assert (r.status, r.text) == (200, "a plain string")


def test_errors_are_logged_to_stderr(sbx):
    with serving(sbx, SERVE / "kitchen") as s:
        assert s.request("GET", "/?mode=throw&tag=logged").status == 500
        assert s.request("GET", "/?mode=stray").status == 200
        time.sleep(0.2)
        assert s.request("GET", "/?mode=log&tag=t1").text == "logged"
    logs = s.log_records()
    errors = [rec for rec in logs if rec.get("level") == 50]
    thrown = [rec for rec in errors if "handler exploded (logged)" in json.dumps(rec)]
    assert thrown and "handle (/code/index.js:" in thrown[0]["err"]["stack"]
    assert any("stray exception outside any request" in json.dumps(rec) for rec in errors)
    mine = [(rec["level"], rec["msg"]) for rec in logs if "from the function" in rec.get("msg", "")]
    assert mine == [(30, "info from the function { tag: 't1' }"), (40, "warning from the function"),
                    (50, "error from the function")]
    assert s.stderr.count("\n") == len(logs), "every stderr line is a JSON log record"


def test_large_request_body(kitchen):
    data = os.urandom(8 * MiB)
    r = kitchen.request("POST", "/?mode=hash", body=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200
    assert r.json() == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_large_response_body(kitchen):
    n = 8 * MiB + 7
    r = kitchen.request("GET", "/?mode=big&n=%d" % n)
    assert r.status == 200
    assert r.headers["content-length"] == str(n)
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.data == pattern(n)


def test_streamed_response_body(kitchen):
    n = 6 * MiB + 3
    r = kitchen.request("GET", "/?mode=stream&n=%d" % n)
    assert r.status == 200
    assert r.headers.get("transfer-encoding") == "chunked"
    assert r.data == pattern(n)


def test_keep_alive(kitchen):
    conn = UnixHTTPConnection(kitchen.path)
    try:
        counts = []
        sock = None
        for i in range(3):
            conn.request("GET", "/?mode=count")
            r = conn.getresponse()
            counts.append(json.loads(r.read())["count"])
            assert r.getheader("connection", "").lower() == "keep-alive"
            if sock is None:
                sock = conn.sock
            assert conn.sock is sock, "the connection was not kept alive"
        assert counts == [counts[0], counts[0] + 1, counts[0] + 2]
        conn.request("POST", "/?mode=hash", body=b"abc", headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        assert json.loads(r.read())["length"] == 3
        assert conn.sock is sock
    finally:
        conn.close()


def test_health_endpoints_use_the_hooks(kitchen):
    r = kitchen.request("GET", "/health/liveness")
    assert (r.status, r.text) == (200, "alive and well")
    assert r.headers["x-health"] == "liveness"
    r = kitchen.request("GET", "/health/readiness")
    assert (r.status, r.text) == (200, "ready to serve")


def test_readiness_hook_can_report_not_ready(sbx):
    with serving(sbx, SERVE / "kitchen") as s:
        assert s.request("GET", "/health/readiness").status == 200
        assert s.request("GET", "/?mode=notready").status == 200
        r = s.request("GET", "/health/readiness")
        assert (r.status, r.text) == (503, "not ready")
        assert s.request("GET", "/health/liveness").status == 200


def test_options_and_head(kitchen):
    r = kitchen.request("OPTIONS", "/")
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    r = kitchen.request("HEAD", "/?mode=object")
    assert r.status == 200 and r.data == b""
    assert r.headers["content-length"] == str(len(b'{"a":1,"list":[1,2,3]}'))


def test_body_over_the_default_limit_is_413_by_content_length(kitchen):
    s = kitchen.connect_raw()
    try:
        s.sendall(b"POST /?mode=hash HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % (10 * MiB + 1) + b"x" * 1000)
        r = raw_response(s)
    finally:
        s.close()
    assert r.status == 413
    assert r.json()["error"] == "Payload Too Large"
    assert r.headers.get("connection") == "close"
    assert kitchen.request("GET", "/?mode=string").status == 200


def test_body_of_exactly_the_default_limit_is_accepted(kitchen):
    data = b"z" * (10 * MiB)
    r = kitchen.request("POST", "/?mode=hash", body=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200 and r.json()["length"] == len(data)


def test_chunked_body_over_the_limit_is_413(kitchen):
    s = kitchen.connect_raw()
    chunk = b"y" * MiB
    try:
        s.sendall(b"POST /?mode=hash HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(11):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        r = raw_response(s)
    finally:
        s.close()
    assert r.status == 413
    assert kitchen.request("GET", "/?mode=string").status == 200


def test_body_limit_from_hks_max_body(sbx):
    with serving(sbx, SERVE / "kitchen", env={"HKS_MAX_BODY": "64K"}) as s:
        ok = s.request("POST", "/?mode=hash", body=b"a" * 65536,
                       headers={"Content-Type": "application/octet-stream"})
        assert ok.status == 200 and ok.json()["length"] == 65536
        big = s.request("POST", "/?mode=hash", body=b"a" * 65537,
                        headers={"Content-Type": "application/octet-stream"})
        assert big.status == 413


def test_sync_function_exported_as_module_exports(sbx):
    with serving(sbx, SERVE / "plainfn") as s:
        r = s.request("GET", "/")
        assert (r.status, r.text) == (200, "sync GET")
        assert r.headers["content-type"] == "text/plain"
        r = s.request("POST", "/", body=b"hi", headers={"Content-Type": "text/plain"})
        assert (r.status, r.text) == (200, "sync POST hi")
        assert s.request("GET", "/health/readiness").text == "OK"


def test_esm_function(sbx):
    with serving(sbx, SERVE / "esm") as s:
        r = s.request("GET", "/?who=me")
        assert r.status == 200
        assert r.json() == {"esm": True, "method": "GET", "who": "me"}
        assert s.request("GET", "/health/readiness").text == "esm ready"


@pytest.mark.parametrize("fixture,needle", [
    ("badinit", "init refuses to start"),
    ("nohandle", "must export a handle function"),
])
def test_function_that_cannot_start_exits_1(sbx, fixture, needle):
    s = Server(sbx, SERVE / fixture)
    s.ctrl.settimeout(30)
    assert s.ctrl.recv(65536) == b"", "no ready message for a function that cannot start"
    assert s.wait_exit() == 1
    assert s.record["exit_code"] == 1
    assert needle in s.stderr
    s.stop()


# ---------------------------------------------------------------- serve: outside the sandbox

def test_sigterm_finishes_in_flight_requests_then_calls_shutdown(sbx):
    s = Server(sbx, SERVE / "kitchen", outside=True).wait_ready()
    result = {}

    def slow():
        try:
            result["r"] = s.request("GET", "/?mode=slow&ms=1500")
        except Exception as e:  # noqa: BLE001 - reported below
            result["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):  # no longer accepting
        s.request("GET", "/?mode=string", timeout=5)
    t.join(10)
    assert "e" not in result, result.get("e")
    r = result["r"]
    assert (r.status, r.text) == (200, "slow done after 1500 ms")
    assert r.headers.get("connection") == "close"
    assert s.wait_exit(15) == 0
    elapsed = time.monotonic() - t0
    assert elapsed < 5, "the server waited %.1fs after the last request" % elapsed
    assert "shutdown hook called" in s.stderr
    lines = s.stderr.splitlines()
    done = [i for i, ln in enumerate(lines) if "slow done" in ln or '"url":"/?mode=slow' in ln]
    hook = lines.index("shutdown hook called")
    assert done and done[0] < hook, "shutdown() ran before the in-flight request finished"
    s.stop()


def test_sigterm_when_idle_exits_0_promptly(sbx):
    s = Server(sbx, SERVE / "kitchen", outside=True).wait_ready()
    assert s.request("GET", "/?mode=string").status == 200
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.wait_exit(10) == 0
    assert time.monotonic() - t0 < 2
    assert "shutdown hook called" in s.stderr
    s.stop()


def test_listen_on_hks_socket_and_on_port(sbx, free_port):
    d = tempfile.mkdtemp(prefix="nodesock-")
    path = os.path.join(d, "fn.sock")
    port = free_port()
    procs = []
    try:
        for env in ({"HKS_SOCKET": path}, {"PORT": str(port)}):
            penv = dict(SANDBOX_ENV, HKS_FUNCTION_DIR=str(TEMPLATE), **env)
            p = subprocess.Popen([NODE, str(LAUNCHER), "serve", new_marker()], env=penv,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(p)
            deadline = time.monotonic() + 15
            while True:
                try:
                    if "HKS_SOCKET" in env:
                        r = request(path, "GET", "/?x=1")
                        status, text = r.status, r.text
                    else:
                        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                        c.request("GET", "/health/liveness")
                        rr = c.getresponse()
                        status, text = rr.status, rr.read().decode()
                        c.close()
                    break
                except OSError:
                    if time.monotonic() > deadline or p.poll() is not None:
                        raise
                    time.sleep(0.05)
            assert (status, text) == (200, "OK")
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- manifest

def test_manifest_runs_in_the_sandbox(sbx, host_node_version):
    r = subprocess.run([sbx, "--json", "--ro-bind", "%s:/hks/runtime" % RUNTIME, "--",
                        NODE, "/hks/runtime/manifest.js"], capture_output=True, timeout=60)
    rec = json.loads(r.stdout)
    assert rec["status"] == "ok", rec
    m = json.loads(rec["stdout"])
    assert m["name"] == "node" and m["version"] == host_node_version
    assert set(m["entry"]) == {"oneshot", "serve"}
    builtins = json.loads(subprocess.run(
        [NODE, "-p", "JSON.stringify(require('module').builtinModules)"],
        capture_output=True, text=True, check=True).stdout)
    assert m["modules"][:len(builtins)] == sorted(builtins)
    assert {"fs", "http", "crypto", "worker_threads"} <= set(m["modules"])
