"""The Python SDK's transport: retries with backoff on 429/503 (Retry-After in seconds or as an
HTTP date), request timeouts, keep-alive connections reused across calls and threads, stale
connections. Against a real hksd where it can produce the case (429 at the host's instance cap,
idle connections closed by libmicrohttpd), else against a scripted local HTTP/1.1 server. Waits
go through an injected sleep that records them: nothing here measures time."""

import email.utils
import http.server
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time

import pytest

from hksd_process import HKSD, REPO, Daemon, free_port  # noqa: E402
sys.path.insert(0, str(REPO / "sdk" / "python"))

from hks_sdk import (Client, HksConnectionError, HksError, HksRateLimited,  # noqa: E402
                     HksUnavailable, InvalidRequest, RetryPolicy)

needs_hksd = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

FN_SCOPES = "functions:deploy functions:invoke functions:delete functions:read functions:execute"
PY_ECHO = '''
async def handle(scope, receive, send):
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
'''


class Sleeps:
    """An injected sleep: records each wait; ``real`` also waits, ``then`` runs once first."""

    def __init__(self, real=False, then=None):
        self.waits = []
        self.real = real
        self.then = then

    def __call__(self, seconds):
        self.waits.append(seconds)
        if self.then is not None:
            then, self.then = self.then, None
            then()
        if self.real:
            time.sleep(seconds)


# ---------------------------------------------------------------- a scripted HTTP/1.1 server

def hksd_error(status, code, retry_after=None):
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = json.dumps({"error": {"code": code, "message": "m", "details": {}}}).encode()
    return (status, headers, body)


OK = (200, {"Content-Type": "application/json"}, b'{"functions": [], "runtimes": []}')


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers from ``server.script`` in order (then OK), keeping connections alive. An entry is
    an answer (status, headers, body) or an action: ("close",) reads the request and closes
    without answering; ("reset_after_headers",) reads only the head, then resets the connection;
    ("sleep", s) waits s seconds, then answers OK; ("answer_then_close",) answers OK without
    announcing it, then closes the idle connection."""

    protocol_version = "HTTP/1.1"

    def _handle(self):
        srv = self.server
        with srv.lock:
            step = srv.script.pop(0) if srv.script else OK
        if step[0] == "reset_after_headers":
            srv.seen.append((self.client_address[1], self.command, self.path, dict(self.headers), None))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        srv.seen.append((self.client_address[1], self.command, self.path, dict(self.headers), body))
        if step[0] == "close":
            self.close_connection = True
            return
        if step[0] == "sleep":
            time.sleep(step[1])
            step = OK
        close_after = step[0] == "answer_then_close"
        status, headers, payload = OK if close_after else step
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = close_after

    do_GET = do_POST = _handle

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    srv.script, srv.seen, srv.lock = [], [], threading.Lock()
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def client_of(srv, **kw):
    kw.setdefault("sleep", Sleeps())
    return Client(url=srv.url, token="t", **kw)


# ---------------------------------------------------------------- retries (scripted server)

def test_429_is_retried_after_each_retry_after_on_the_same_connection(server):
    server.script = [hksd_error(429, "overloaded", 2), hksd_error(429, "overloaded", 1)]
    c = client_of(server)
    assert c.functions.list() == []
    assert c.sleep.waits == [2.0, 1.0]
    assert [s[1:3] for s in server.seen] == [("GET", "/internal/v1/functions")] * 3
    # one logical request: one request id; one keep-alive connection for the three
    assert len({s[3]["X-Request-Id"] for s in server.seen}) == 1
    assert len({s[0] for s in server.seen}) == 1 and c.transport.connections_opened == 1


def test_post_turned_away_by_hksd_is_retried_with_the_same_body(server):
    server.script = [hksd_error(503, "unavailable"), hksd_error(429, "overloaded", 0)]
    c = client_of(server)
    c.request("POST", "/internal/v1/operations/execute", {"runtime": "python", "code": "1"})
    bodies = [json.loads(s[4]) for s in server.seen]
    assert bodies == [{"runtime": "python", "code": "1"}] * 3
    assert len(c.sleep.waits) == 2 and c.sleep.waits[1] == 0.0


def test_without_retry_after_the_backoff_grows_exponentially_with_jitter_up_to_its_cap(server):
    server.script = [hksd_error(503, "unavailable")] * 5
    c = client_of(server, max_retries=5, backoff_base=1.0, backoff_max=3.0, max_retry_wait=100)
    c.runtimes()
    w = c.sleep.waits
    assert len(w) == 5 and len(server.seen) == 6
    # retry n waits d/2 .. d with d = min(3, 1 * 2**n)
    for n, ceiling in enumerate([1.0, 2.0, 3.0, 3.0, 3.0]):
        assert ceiling / 2 <= w[n] <= ceiling, (n, w)
    assert len(set(w)) > 1  # jittered, not a fixed sequence


def test_the_attempt_cap_ends_the_retries_with_the_last_error(server):
    server.script = [hksd_error(429, "overloaded", 1)] * 10
    c = client_of(server, max_retries=2)
    with pytest.raises(HksRateLimited) as ei:
        c.functions.list()
    assert ei.value.attempts == 3 and ei.value.retry_after == 1.0
    assert len(server.seen) == 3 and c.sleep.waits == [1.0, 1.0]
    server.script = [hksd_error(503, "unavailable", 1)] * 3
    c0 = client_of(server, max_retries=0)
    with pytest.raises(HksUnavailable) as ei:
        c0.runtimes()
    assert ei.value.attempts == 1 and c0.sleep.waits == [] and len(server.seen) == 4


def test_the_total_wait_cap_refuses_a_retry_after_beyond_it(server):
    server.script = [hksd_error(429, "overloaded", 30)] + [hksd_error(429, "overloaded", 4)] * 3
    c = client_of(server, max_retry_wait=10)
    with pytest.raises(HksRateLimited) as ei:
        c.functions.list()
    # raised at once, telling how long hksd asked to wait
    assert ei.value.retry_after == 30.0 and ei.value.attempts == 1 and c.sleep.waits == []
    with pytest.raises(HksRateLimited) as ei:
        c.functions.list()  # 4 s twice fits in 10 s, a third 4 s would not
    assert c.sleep.waits == [4.0, 4.0] and ei.value.attempts == 3 and len(server.seen) == 4


def test_retry_after_as_an_http_date(server):
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    server.script = [hksd_error(429, "overloaded", later), hksd_error(503, "unavailable", past)]
    c = client_of(server, max_retry_wait=300)
    c.runtimes()
    assert 100 < c.sleep.waits[0] <= 120 and c.sleep.waits[1] == 0.0
    # an unreadable Retry-After is as good as none: the backoff applies
    server.script = [hksd_error(429, "overloaded", "soon")]
    c = client_of(server, backoff_base=0.5)
    c.runtimes()
    assert 0.25 <= c.sleep.waits[0] <= 0.5


@pytest.mark.parametrize("status,code", [(500, "internal"), (502, "bad_gateway"), (504, "timeout"),
                                         (400, "malformed_json"), (401, "invalid_token"),
                                         (404, "not_found"), (422, "invalid")])
def test_no_retry_on_other_errors(server, status, code):
    server.script = [hksd_error(status, code, 1)]
    c = client_of(server)
    with pytest.raises(HksError) as ei:
        c.request("POST", "/internal/v1/operations/execute", {"runtime": "python"})
    assert ei.value.status == status and ei.value.attempts == 1
    assert len(server.seen) == 1 and c.sleep.waits == []


def test_a_503_that_is_not_hksds_own_is_retried_for_get_only(server):
    proxy_503 = (503, {"Content-Type": "text/html"}, b"<h1>upstream gone</h1>")
    server.script = [proxy_503]
    c = client_of(server)
    with pytest.raises(HksUnavailable) as ei:  # a POST may have reached hksd behind the proxy
        c.functions.delete("fn-1")
    assert ei.value.attempts == 1 and len(server.seen) == 1
    server.script = [proxy_503]
    assert c.runtimes() is not None and len(server.seen) == 3  # a GET is sent again


def test_a_refused_connection_is_retried_with_backoff_then_reported():
    c = Client(url="http://127.0.0.1:%d" % free_port(), token="t", max_retries=3,
               backoff_base=0.5, sleep=Sleeps())
    with pytest.raises(HksConnectionError) as ei:
        c.functions.execute("print(1)")
    assert ei.value.attempts == 4 and "cannot reach" in ei.value.message
    assert len(c.sleep.waits) == 3 and 1.0 <= c.sleep.waits[2] <= 2.0


def test_retry_settings_are_checked():
    for bad in ({"max_retries": -1}, {"max_retries": 1.5}, {"backoff_base": -1},
                {"backoff_max": float("nan")}, {"max_retry_wait": "10"}, {"timeout": 0},
                {"timeout": -2}, {"pool_size": 0}):
        with pytest.raises(ValueError):
            Client(url="http://127.0.0.1:1", **bad)
    with pytest.raises(ValueError):
        Client(url="ftp://host/")
    assert "max_retries=3" in repr(RetryPolicy())


# ---------------------------------------------------------------- timeouts (scripted server)

def test_client_and_per_call_timeouts_end_a_request_and_are_not_retried(server):
    server.script = [("sleep", 1.5)]
    c = client_of(server, timeout=0.3)
    with pytest.raises(HksConnectionError) as ei:
        c.functions.list()
    assert "within 0.3s" in ei.value.message and ei.value.attempts == 1
    server.script = [("sleep", 1.5)] * 4
    c = client_of(server, timeout=60)
    calls = [lambda: c.functions.list(request_timeout=0.2),
             lambda: c.functions.execute("1", request_timeout=0.2),
             lambda: c.functions.invoke("fn-1", timeout=0.2),
             lambda: c.runtimes(request_timeout=0.2)]
    for call in calls:
        with pytest.raises(HksConnectionError) as ei:
            call()
        assert "within 0.2s" in ei.value.message
    assert len(server.seen) == 5 and c.sleep.waits == []
    with pytest.raises(ValueError):
        c.functions.list(request_timeout=0)


# ---------------------------------------------------------------- connections (scripted server)

def test_calls_of_every_kind_share_one_connection(server):
    c = client_of(server)
    c.runtimes()
    c.functions.list()
    c.request("POST", "/internal/v1/operations/delete-function", {"id": "fn-1"})
    server.script = [hksd_error(404, "not_found")]
    with pytest.raises(HksError):
        c.functions.get("fn-2")
    c.functions.list()
    assert len(server.seen) == 5 and len({s[0] for s in server.seen}) == 1
    assert c.transport.connections_opened == 1 and c.transport.idle_connections() == 1
    c.close()
    assert c.transport.idle_connections() == 0
    c.functions.list()  # usable after close: a new connection
    assert c.transport.connections_opened == 2


def run_threads(c, n_threads, calls):
    errors = []

    def work():
        try:
            for _ in range(calls):
                c.functions.list()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_each_use_their_own_connection_at_a_time(server):
    server.script = [("sleep", 0.2)] * 4  # the four threads are in flight together at first
    c = client_of(server, pool_size=4)
    run_threads(c, 4, 5)
    assert len(server.seen) == 20
    # a connection is opened only when none is idle: at most one per thread
    assert 2 <= c.transport.connections_opened <= 4
    assert len({s[0] for s in server.seen}) == c.transport.connections_opened
    assert c.transport.idle_connections() == c.transport.connections_opened
    # a smaller pool keeps at most pool_size idle connections, closing the others
    server.script = [("sleep", 0.2)] * 4
    small = client_of(server, pool_size=2)
    run_threads(small, 4, 5)
    assert small.transport.connections_opened >= 2 and small.transport.idle_connections() <= 2


def test_an_idle_connection_the_server_closed_is_not_used_again(server):
    server.script = [("answer_then_close",)]
    c = client_of(server)
    c.functions.list()
    time.sleep(0.2)  # let the server's FIN arrive
    # a POST written in one piece (no body): on the closed connection it would be written
    # whole and then see no answer, which is not retried; the idle check avoids that
    c.request("POST", "/internal/v1/operations/delete-function")
    assert len(server.seen) == 2 and server.seen[0][0] != server.seen[1][0]
    assert c.transport.connections_opened == 2 and c.sleep.waits == []


def test_a_connection_closed_after_the_request_retries_a_get_once_but_never_a_post(server):
    c = client_of(server)
    c.functions.list()  # a keep-alive connection in the pool
    server.script = [("close",)]  # the next request is read, then the connection closed
    assert c.functions.list() == []
    assert len(server.seen) == 3 and server.seen[1][0] != server.seen[2][0]
    assert c.sleep.waits == []  # on a fresh connection at once: not a counted retry
    server.script = [("close",)]
    with pytest.raises(HksConnectionError) as ei:
        c.request("POST", "/internal/v1/operations/deploy-function", {"runtime": "python"})
    assert "may have been executed" in ei.value.message and ei.value.attempts == 1
    assert len(server.seen) == 4


def test_a_post_cut_while_being_sent_on_a_reused_connection_is_sent_again(server):
    c = client_of(server)
    c.functions.list()
    server.script = [("reset_after_headers",)]
    code = "x = 1\n" * (2 << 20)  # 12 MiB: more than the socket buffers hold
    c.request("POST", "/internal/v1/operations/execute", {"runtime": "python", "code": code})
    # the cut request never reached the server whole (hksd acts only on whole requests); its
    # second sending did, on a fresh connection
    assert [s[4] is None for s in server.seen] == [False, True, False]
    assert json.loads(server.seen[2][4])["code"] == code
    assert c.transport.connections_opened == 2


def test_an_http_proxy_of_the_environment_is_used_as_urllib_would(server, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://user:pw@127.0.0.1:%d" % server.server_address[1])
    monkeypatch.setenv("no_proxy", "elsewhere.invalid")
    c = Client(url="http://hksd.invalid:8080", token="t", sleep=Sleeps())
    c.functions.list()
    c.runtimes()
    (_, method, path, headers, _), second = server.seen
    assert (method, path) == ("GET", "http://hksd.invalid:8080/internal/v1/functions")
    assert headers["Host"] == "hksd.invalid:8080"
    assert headers["Proxy-Authorization"] == "Basic dXNlcjpwdw=="
    assert second[2] == "http://hksd.invalid:8080/internal/v1/runtimes" and second[0] == server.seen[0][0]
    monkeypatch.setenv("no_proxy", "hksd.invalid")
    with pytest.raises(HksConnectionError):  # direct: the name does not resolve
        Client(url="http://hksd.invalid:8080", token="t", max_retries=0).runtimes()
    assert len(server.seen) == 2


# ---------------------------------------------------------------- against hksd

def tcp_connections_to(port):
    """The local ports of this process's TCP connections to ``port`` by state (the kernel's
    view: /proc/net/tcp and /proc/self/fd)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    states = {"01": "ESTABLISHED", "08": "CLOSE_WAIT"}
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                    found.setdefault(states.get(state, state), []).append(
                        int(local.rsplit(":", 1)[1], 16))
    return found


@pytest.fixture(scope="module")
def hksd():
    d = Daemon(config={"http": {"connection_timeout_s": 2}})
    yield d
    assert d.stop() == 0, d.logs()
    shutil.rmtree(d.state, ignore_errors=True)


@needs_hksd
def test_hksd_serves_a_clients_calls_on_one_keep_alive_connection(hksd):
    c = Client(url=hksd.url, token=hksd.token(FN_SCOPES))
    assert tcp_connections_to(hksd.port) == {}
    c.runtimes()
    first = tcp_connections_to(hksd.port)
    assert len(first.get("ESTABLISHED", [])) == 1, first
    r = c.functions.execute("print(6 * 7)")
    assert r.stdout == "42\n"
    fn = c.functions.deploy(PY_ECHO)
    assert fn.invoke().status == 201 and fn.logs() is not None
    c.functions.list()
    assert fn.delete() is True
    assert tcp_connections_to(hksd.port) == first  # the same connection, still open
    assert c.transport.connections_opened == 1
    c.close()
    time.sleep(0.1)
    assert "ESTABLISHED" not in tcp_connections_to(hksd.port)


@needs_hksd
def test_hksd_closing_an_idle_connection_costs_a_fresh_one_and_no_error(hksd):
    c = Client(url=hksd.url, token=hksd.token(FN_SCOPES))
    c.runtimes()
    port = tcp_connections_to(hksd.port)["ESTABLISHED"]
    deadline = time.time() + 10  # hksd closes it after http.connection_timeout_s (2 s)
    while time.time() < deadline and tcp_connections_to(hksd.port).get("CLOSE_WAIT") != port:
        time.sleep(0.2)
    assert tcp_connections_to(hksd.port).get("CLOSE_WAIT") == port
    # a POST sent in one piece (no body) on the closed connection would be lost (written, then
    # no answer: not retried); it must reach hksd, which says the empty body is not JSON
    with pytest.raises(InvalidRequest) as ei:
        c.request("POST", "/internal/v1/operations/execute")
    assert ei.value.status == 400 and ei.value.attempts == 1
    r = c.functions.execute("print('after idle')")
    assert r.stdout == "after idle\n"
    assert c.transport.connections_opened == 2
    now = tcp_connections_to(hksd.port)
    assert "CLOSE_WAIT" not in now and now["ESTABLISHED"] != port, now


def http_requests(d, route, code):
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    key = 'hks_http_requests_total{route="%s",code="%d"} ' % (route, code)
    for line in body.decode().splitlines():
        if line.startswith(key):
            return int(line[len(key):])
    return 0


@needs_hksd
def test_hksd_at_its_instance_cap_answers_429_and_the_sdk_waits_its_retry_after():
    d = Daemon(env={"HKSD_MAX_INSTANCES": "1"})
    try:
        admin = Client(url=d.url, token=d.token(FN_SCOPES), max_retries=0)
        a = admin.functions.deploy(PY_ECHO)
        b = admin.functions.deploy(PY_ECHO)
        c = admin.functions.deploy(PY_ECHO)
        assert a.invoke().status == 201  # a's instance takes the host's only place
        # the cap holds: attempts as many as allowed, each after hksd's Retry-After (1 s)
        capped = Client(url=d.url, token=d.token(FN_SCOPES), max_retries=2, sleep=Sleeps())
        before = http_requests(d, "invoke-function", 429)
        with pytest.raises(HksRateLimited) as ei:
            capped.functions.invoke(c.id)
        assert ei.value.attempts == 3 and ei.value.retry_after == 1.0
        assert capped.sleep.waits == [1.0, 1.0]
        assert http_requests(d, "invoke-function", 429) - before == 3
        # the place frees up while the SDK waits: a retry gets through
        patient = Client(url=d.url, token=d.token(FN_SCOPES), max_retries=20, max_retry_wait=30,
                         sleep=Sleeps(real=True, then=a.delete))
        before = http_requests(d, "invoke-function", 429)
        assert patient.functions.invoke(b.id).status == 201
        waits = patient.sleep.waits
        assert len(waits) >= 1 and set(waits) == {1.0}, waits
        assert http_requests(d, "invoke-function", 429) - before == len(waits)
        assert patient.transport.connections_opened == 1
    finally:
        assert d.stop() == 0, d.logs()
        shutil.rmtree(d.state, ignore_errors=True)
