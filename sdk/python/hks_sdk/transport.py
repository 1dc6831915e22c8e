"""HTTP/1.1 transport of the SDK: keep-alive connections pooled per client (http.client).

A connection is taken out of the pool for one request and given back once its answer has been
read whole, so each is used by one thread at a time; up to ``size`` idle ones are kept. Before an
idle connection is reused it is polled: readable while idle means the server closed it (hksd's
libmicrohttpd closes connections idle for ``http.connection_timeout_s``, 120 s by default) or sent
something unexpected, and it is dropped for a fresh one -- the check urllib3 makes
(``is_connection_dropped``) and that makes a stale connection rare.

What one attempt may end in, and what the caller (``Client``) may do about it:

- ``NotSent``: the request did not reach the server whole -- the connection could not be made,
  or writing the request failed. hksd acts on a request only once it has read all of it
  (api/server.c), so any method may be sent again.
- ``NoAnswer``: the request was written whole, then the connection closed (or was reset) before
  the first byte of an answer. The server may have acted on it. On a *reused* connection this is
  also how a keep-alive connection closed by the server just after the poll above shows up, so
  ``Transport.exchange`` sends an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) once more
  on a fresh connection -- the rule of urllib3's ``Retry.allowed_methods`` and of Go's
  ``net/http.Transport``; a POST is not sent again.
- ``Timeout``: no progress within the timeout (connecting, writing, or waiting for the answer).
- Anything going wrong once the answer has started (cut mid-body, a garbled status line) is a
  ``Broken`` exchange: the request was executed, or may have been.
"""

import base64
import http.client
import select
import socket
import threading
import urllib.parse
import urllib.request
import weakref
from typing import Any, Dict, List, Optional, Tuple

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

# errors of a connection the other end closed or reset
_CLOSED_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                  ConnectionAbortedError)


class TransportError(Exception):
    """One attempt failed below HTTP; ``cause`` is the socket or http.client error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class NotSent(TransportError):
    """The request did not reach the server whole: safe to send again, whatever the method."""


class NoAnswer(TransportError):
    """The request was sent whole, then the connection closed before any byte of an answer."""


class Timeout(TransportError):
    """No progress within the timeout."""


class Broken(TransportError):
    """The answer started but could not be read whole."""


class Answer:
    """One HTTP answer: ``status``, ``headers`` (an ``http.client.HTTPMessage``) and ``payload``
    (the whole body), or for a streamed answer ``stream`` (the open response, to be closed with
    ``close()``, which also closes its connection)."""

    def __init__(self, status: int, headers: Any, payload: bytes = b"",
                 stream: Optional[http.client.HTTPResponse] = None,
                 conn: Optional[http.client.HTTPConnection] = None) -> None:
        self.status = status
        self.headers = headers
        self.payload = payload
        self.stream = stream
        self._conn = conn

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection is unusable: closed by us, or readable (the server's FIN, a
    reset, or bytes nobody asked for)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            p = select.poll()
            p.register(sock, select.POLLIN)
            return bool(p.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True


def _close_all(idle: List[http.client.HTTPConnection]) -> None:
    while idle:
        idle.pop().close()


class Transport:
    """The connections of one client to one server (through the environment's proxy, as urllib
    does, when ``http_proxy``/``https_proxy`` name one and ``no_proxy`` does not exclude the
    host)."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("hks_sdk: the server URL must be http://HOST[:PORT] or https://..., "
                             "not %r" % url)
        if pool_size < 1:
            raise ValueError("hks_sdk: pool_size must be at least 1, not %r" % pool_size)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.pool_size = pool_size
        self.connections_opened = 0  # fresh connections made (tests, diagnostics)
        self._lock = threading.Lock()
        self._idle: List[http.client.HTTPConnection] = []
        self._proxy, self._proxy_auth = self._proxy_of(url)
        weakref.finalize(self, _close_all, self._idle)

    def _proxy_of(self, url: str) -> Tuple[Optional[Tuple[str, int]], Optional[str]]:
        proxy = urllib.request.getproxies().get(self.scheme)
        if not proxy or urllib.request.proxy_bypass(self.host):
            return None, None
        p = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        auth = None
        if p.username is not None:
            raw = "%s:%s" % (urllib.parse.unquote(p.username), urllib.parse.unquote(p.password or ""))
            auth = "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")
        return (p.hostname or "", p.port or 8080), auth

    # ------------------------------------------------------------------ the pool

    def _new_connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        if self._proxy is None:
            return cls(self.host, self.port, timeout=timeout)
        conn = cls(self._proxy[0], self._proxy[1], timeout=timeout)
        if self.scheme == "https":
            headers = {"Proxy-Authorization": self._proxy_auth} if self._proxy_auth else None
            conn.set_tunnel(self.host, self.port, headers=headers)
        return conn

    def _acquire(self, timeout: Optional[float]) -> Tuple[http.client.HTTPConnection, bool]:
        """A connection for one request, and whether it has served one before."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None  # the most recent: warmest
            if conn is None:
                return self._new_connection(timeout), False
            if not _dropped(conn):
                return conn, True
            conn.close()

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if conn.sock is not None and len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections (the transport stays usable: it opens new ones)."""
        with self._lock:
            idle, self._idle[:] = list(self._idle), []
        for conn in idle:
            conn.close()

    def idle_connections(self) -> int:
        with self._lock:
            return len(self._idle)

    # ------------------------------------------------------------------ one exchange

    def target(self, path: str) -> str:
        """The request target of ``path``: absolute through an http proxy."""
        if self._proxy is not None and self.scheme == "http":
            netloc = self.host if ":" not in self.host else "[%s]" % self.host
            return "http://%s:%d%s%s" % (netloc, self.port, self.prefix, path)
        return self.prefix + path

    def exchange(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes],
                 timeout: Optional[float], stream: bool = False) -> Answer:
        """Send one request and return its answer (read whole unless ``stream``), or raise a
        TransportError. A stale keep-alive connection costs one more try on a fresh one when
        that is safe (see the module's docstring)."""
        headers = dict(headers)
        if self._proxy_auth and self.scheme == "http":
            headers["Proxy-Authorization"] = self._proxy_auth
        conn, reused = self._acquire(timeout)
        try:
            return self._once(conn, reused, method, path, headers, body, timeout, stream)
        except (NotSent, NoAnswer) as e:
            if not reused or (isinstance(e, NoAnswer) and method.upper() not in IDEMPOTENT_METHODS):
                raise
        conn = self._new_connection(timeout)
        return self._once(conn, False, method, path, headers, body, timeout, stream)

    def _once(self, conn: http.client.HTTPConnection, reused: bool, method: str, path: str,
              headers: Dict[str, str], body: Optional[bytes], timeout: Optional[float],
              stream: bool) -> Answer:
        try:
            return self._attempt(conn, reused, method, path, headers, body, timeout, stream)
        except BaseException:
            conn.close()
            raise

    def _attempt(self, conn: http.client.HTTPConnection, reused: bool, method: str, path: str,
                 headers: Dict[str, str], body: Optional[bytes], timeout: Optional[float],
                 stream: bool) -> Answer:
        if reused:
            conn.sock.settimeout(timeout)
        else:
            conn.timeout = timeout
            try:
                conn.connect()
            except socket.timeout as e:
                raise Timeout(e) from e
            except OSError as e:  # refused, unreachable, DNS, TLS handshake
                raise NotSent(e) from e
            with self._lock:
                self.connections_opened += 1
        send_error: Optional[BaseException] = None
        try:
            conn.request(method, self.target(path), body=body, headers=headers)
        except socket.timeout as e:
            raise Timeout(e) from e
        except OSError as e:
            # the server closed its end; it may still have answered (a 413 sent before the body
            # was read), so the answer is read before giving up
            send_error = e
        try:
            resp = conn.getresponse()
        except socket.timeout as e:
            raise Timeout(e) from e
        except (http.client.HTTPException, OSError) as e:
            if send_error is not None:
                raise NotSent(send_error) from send_error
            if isinstance(e, _CLOSED_ERRORS):
                raise NoAnswer(e) from e
            raise Broken(e) from e
        if stream:
            return Answer(resp.status, resp.headers, stream=resp, conn=conn)
        try:
            payload = resp.read()
        except socket.timeout as e:
            raise Timeout(e) from e
        except (http.client.HTTPException, OSError) as e:
            raise Broken(e) from e
        if send_error is None and not resp.will_close:
            self._release(conn)
        else:
            conn.close()
        return Answer(resp.status, resp.headers, payload)
