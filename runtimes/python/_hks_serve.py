"""Serve mode of the HKS python launcher (runtimes/python/launcher.py serve); standard library
only, Python 3.9+.

An asyncio HTTP/1.1 server (keep-alive, pipelining, Content-Length and chunked request bodies,
Expect: 100-continue, streaming responses: Content-Length, chunked or close-delimited) for the
Knative Functions python `http` template: the package `function` (function/__init__.py,
function/func.py) with new() -> an instance with `async def handle(self, scope, receive, send)`
(ASGI 3, `http` scope) and optional start(cfg), stop(), alive(), ready(), served as
knative-extensions/func-python serves it:

- start(cfg) once, before the first connection, cfg = a copy of os.environ;
- /health/liveness and /health/readiness: alive()/ready() may return a bool or (bool, message);
  200 (or 500 when false) with the message, "OK" by default; other paths go to handle();
- an exception in handle(): 500 "Error: <exception>" (text/plain) when nothing was sent yet,
  else the connection is cut; the traceback goes to stderr and the server keeps running;
- SIGTERM/SIGINT: stop accepting, close idle keep-alive connections, let in-flight requests
  finish (HKS_SHUTDOWN_GRACE seconds, default 10; a second signal cuts them), call stop(), exit 0.
A module-level `handle` (no new()) and a top-level func.py (older layout) are accepted too.

Environment: HKS_LISTEN_FD (listening socket to accept on), else HKS_SOCKET (unix socket path to
bind), else TCP HKS_HOST:PORT (0.0.0.0:8080); HKS_CONTROL_FD (ready message once listening);
HKS_FUNCTION_DIR (default /code); HKS_MAX_BODY (default 10M, larger request bodies get 413);
HKS_KEEPALIVE_TIMEOUT (seconds idle between requests, default 75); HKS_BODY_TIMEOUT (seconds
to receive a request body, default 60, then 408); HKS_ACCESS_LOG=0 (no request lines on stderr).
Control socket (HKS_CONTROL_FD): {"op":"ready",...} is written once listening; a {"op":"stop"}
datagram read from it stops the server gracefully, as SIGTERM does (hks-sandbox answers SIGTERM
by killing the sandbox, so this is how a host stops a sandboxed function gracefully).
ASGI scope: type, asgi {version 3.0, spec_version 2.3}, http_version, method, scheme, path
(percent-decoded), raw_path, query_string, root_path "", headers [(lowercase name, value)] as
bytes, server ([path, None] on a unix socket, (host, port) on TCP), client ((host, port) on TCP,
("", 0) on a unix socket, which has no peer address), extensions {}. The request body is read
(up to HKS_MAX_BODY) before handle() runs and delivered as one http.request message; after it,
receive() waits until the response is over and then returns http.disconnect.
"""

import os
import sys

CODE_DIR = "/code"


def _version():
    return "%d.%d.%d" % tuple(sys.version_info[:3])


def _ready_message():
    return ('{"op":"ready","runtime":"python","version":"%s","pid":%d}'
            % (_version(), os.getpid())).encode()


def _die(msg, code=2):
    try:
        sys.stderr.write("hks-launcher: %s\n" % msg)
        sys.stderr.flush()
    finally:
        os._exit(code)


_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
    203: "Non-Authoritative Information", 204: "No Content", 205: "Reset Content",
    206: "Partial Content", 300: "Multiple Choices", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
    409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a Teapot",
    422: "Unprocessable Content", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MAX_HEAD = 64 * 1024
_MAX_HEADERS = 100


def _parse_size(text, default):
    if not text:
        return default
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    if t and t[-1] in "KMG":
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[t[-1]]
        t = t[:-1]
    try:
        n = int(float(t) * mult)
    except ValueError:
        return default
    return n if n >= 0 else default


def _env_float(name, default):
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def _pop_env_fd(name):
    value = os.environ.pop(name, None)
    if value is None or value == "":
        return None
    try:
        fd = int(value)
        os.fstat(fd)
    except (ValueError, OSError) as e:
        _die("%s=%r is not an open fd (%s)" % (name, value, e), 1)
    os.set_inheritable(fd, False)  # not for the function's child processes
    return fd


class _HTTPError(Exception):
    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status


class _StaticFunction:
    """A module-level `handle` served as an instance (func-python's DefaultFunction)."""

    def __init__(self, handler):
        self.handle = handler


def _load_function(fdir):
    """The function instance: function.new() (or function.handle), as func-python's
    scaffolding imports it; a top-level func.py is accepted as the older layout."""
    import importlib
    sys.path[0] = fdir  # instead of the launcher's own directory
    candidates = []
    if os.path.isdir(os.path.join(fdir, "function")):
        candidates = ["function", "function.func"]
    elif os.path.isfile(os.path.join(fdir, "func.py")):
        candidates = ["func"]
    else:
        raise ImportError("no function/func.py (or func.py) in %s" % fdir)
    for name in candidates:
        mod = importlib.import_module(name)
        new = getattr(mod, "new", None)
        if callable(new):
            instance = new()
            break
        handle = getattr(mod, "handle", None)
        if callable(handle):
            instance = _StaticFunction(handle)
            break
    else:
        raise ImportError("the function must define new() (or handle) in %s"
                          % os.path.join(fdir, "function", "func.py"))
    if not callable(getattr(instance, "handle", None)):
        raise AttributeError("Function must implement a 'handle' method.")
    return instance


def main():
    import asyncio
    import logging

    logging.basicConfig(level=logging.INFO)  # as func-python: the template logs with logging.info
    log = logging.getLogger("hks")
    listen_fd = _pop_env_fd("HKS_LISTEN_FD")
    control_fd = _pop_env_fd("HKS_CONTROL_FD")
    fdir = os.environ.get("HKS_FUNCTION_DIR") or CODE_DIR
    try:
        os.chdir(fdir)
    except OSError as e:
        _die("function directory %s: %s" % (fdir, e), 1)
    try:
        instance = _load_function(fdir)
    except Exception:
        log.exception("cannot load the function from %s", fdir)
        sys.exit(1)
    for hook in ("alive", "ready", "start", "stop"):
        if not callable(getattr(instance, hook, None)):
            log.info("function does not implement '%s'; using the default", hook)
    server = _Server(instance, log, max_body=_parse_size(os.environ.get("HKS_MAX_BODY"), 10 << 20),
                     grace=_env_float("HKS_SHUTDOWN_GRACE", 10.0),
                     keepalive=_env_float("HKS_KEEPALIVE_TIMEOUT", 75.0),
                     body_timeout=_env_float("HKS_BODY_TIMEOUT", 60.0),
                     access_log=os.environ.get("HKS_ACCESS_LOG", "1") not in ("0", "false", "no"))
    try:
        code = asyncio.run(server.run(listen_fd, control_fd))
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


async def _maybe_await(value):
    if hasattr(value, "__await__"):
        return await value
    return value


class _Server:
    def __init__(self, instance, log, max_body, grace, keepalive, access_log, body_timeout=60.0):
        self.f = instance
        self.log = log
        self.max_body = max_body
        self.grace = grace
        self.keepalive = keepalive
        self.body_timeout = body_timeout
        self.access_log = access_log
        self.conns = set()
        self.stopping = False
        self._date = (0, b"")

    # ------------------------------------------------------------ lifecycle

    async def run(self, listen_fd, control_fd):
        import asyncio
        import signal
        import socket
        loop = asyncio.get_running_loop()
        self.loop = loop
        stop = asyncio.Event()
        signals = []

        def on_signal():
            signals.append(1)
            if len(signals) == 1:
                self.log.info("signal received: stopping (grace %gs)", self.grace)
            else:
                self.log.info("second signal: stopping now")
            stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)

        # the start hook runs inside the loop, before the first connection (ASGI lifespan)
        start = getattr(self.f, "start", None)
        if callable(start):
            try:
                await _maybe_await(start(os.environ.copy()))
            except Exception:
                self.log.exception("function startup failed")
                return 1

        limit = _MAX_HEAD + 1024
        unlink = None
        if listen_fd is not None:
            sock = socket.socket(fileno=listen_fd)
            if sock.family == socket.AF_UNIX:
                name = sock.getsockname()
                self.server_addr = (name if isinstance(name, str) else "", None)
                srv = await asyncio.start_unix_server(self._accept, sock=sock, limit=limit)
            else:
                self.server_addr = tuple(sock.getsockname()[:2])
                srv = await asyncio.start_server(self._accept, sock=sock, limit=limit)
        elif os.environ.get("HKS_SOCKET"):
            path = os.environ["HKS_SOCKET"]
            try:
                import stat
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except OSError:
                pass
            self.server_addr = (path, None)
            srv = await asyncio.start_unix_server(self._accept, path=path, limit=limit)
            unlink = path
        else:
            host = os.environ.get("HKS_HOST") or "0.0.0.0"
            port = int(os.environ.get("PORT") or 8080)
            self.server_addr = (host, port)
            srv = await asyncio.start_server(self._accept, host=host, port=port, limit=limit,
                                             reuse_address=True)
        self.log.info("listening on %s", self.server_addr[0] if self.server_addr[1] is None
                      else "%s:%s" % self.server_addr)
        if control_fd is not None:
            try:
                os.write(control_fd, _ready_message())
            except OSError as e:
                self.log.warning("cannot send ready on fd %d: %s", control_fd, e)
            else:
                self._watch_control(control_fd, stop)

        await stop.wait()
        # stop accepting; idle keep-alive connections are closed, busy ones finish
        self.stopping = True
        srv.close()
        if unlink:
            try:
                os.unlink(unlink)
            except OSError:
                pass
        for c in list(self.conns):
            if c.idle:
                c.close()
        busy = [c.task for c in self.conns if c.task is not None]
        if busy:
            stop.clear()
            waiter = asyncio.ensure_future(asyncio.wait(busy, timeout=self.grace))
            second = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, second], return_when=asyncio.FIRST_COMPLETED)
            second.cancel()
            waiter.cancel()
            for c in list(self.conns):
                if c.task is not None and not c.task.done():
                    self.log.warning("request still running at shutdown: cancelled")
                    c.task.cancel()
                    c.close()
        stop_hook = getattr(self.f, "stop", None)
        if callable(stop_hook):
            try:
                await _maybe_await(stop_hook())
            except Exception:
                self.log.exception("function stop hook failed")
        self.log.info("stopped")
        return 0

    def _watch_control(self, fd, stop):
        """{"op":"stop"} on the control socket stops the server as SIGTERM does (hks-sandbox
        kills the sandbox on SIGTERM, so the host asks this way); EOF just ends the watch."""
        import json

        def readable():
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.loop.remove_reader(fd)
                return
            try:
                msg = json.loads(data.decode("utf-8"))
            except ValueError:
                msg = None
            if isinstance(msg, dict) and msg.get("op") == "stop":
                self.log.info("stop requested on the control socket (grace %gs)", self.grace)
                stop.set()
            else:
                self.log.warning("ignored control message %r", data[:200])
        try:
            os.set_blocking(fd, False)
            self.loop.add_reader(fd, readable)
        except (OSError, ValueError) as e:
            self.log.warning("cannot watch control fd %d: %s", fd, e)

    async def _accept(self, reader, writer):
        import asyncio
        conn = _Conn(self, reader, writer)
        conn.task = asyncio.current_task()
        self.conns.add(conn)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)

    def date(self):
        import time
        now = int(time.time())
        if self._date[0] != now:
            t = time.gmtime(now)
            self._date = (now, ("%s, %02d %s %04d %02d:%02d:%02d GMT" % (
                _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon], t.tm_year, t.tm_hour, t.tm_min,
                t.tm_sec)).encode())
        return self._date[1]

    # ------------------------------------------------------------ the application

    async def app(self, scope, receive, send):
        """func-python's middleware: health endpoints, then the function's handle."""
        path = scope["path"]
        if path == "/health/liveness":
            await self._health(getattr(self.f, "alive", None), send)
        elif path == "/health/readiness":
            await self._health(getattr(self.f, "ready", None), send)
        else:
            await _maybe_await(self.f.handle(scope, receive, send))

    @staticmethod
    async def _health(check, send):
        ok, message = True, "OK"
        if callable(check):
            result = await _maybe_await(check())
            if isinstance(result, tuple):  # (bool, message); the message is optional
                ok, message = result
            else:
                ok = result
        await send({"type": "http.response.start", "status": 200 if ok else 500,
                    "headers": [[b"content-type", b"text/plain"]]})
        await send({"type": "http.response.body", "body": ("%s" % (message,)).encode("utf-8")})


class _Conn:
    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.task = None
        self.idle = True
        self.closed = False
        if server.server_addr[1] is None:  # unix socket: ASGI's [path, None]; no peer address
            self.client = ("", 0)
        else:
            peer = writer.get_extra_info("peername")
            self.client = tuple(peer[:2]) if isinstance(peer, tuple) else None

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            except Exception:
                pass

    async def run(self):
        import asyncio
        srv = self.server
        try:
            while not self.closed and not srv.stopping:
                self.idle = True
                try:
                    head = await asyncio.wait_for(self._read_head(), srv.keepalive)
                except asyncio.TimeoutError:
                    break
                except _HTTPError as e:
                    self.idle = False
                    await self._simple(e.status, str(e).encode(), close=True)
                    await self._linger(seconds=1.0)
                    break
                if head is None:
                    break
                self.idle = False
                keep = await self._handle(*head)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:
            srv.log.exception("connection error")
        finally:
            self.close()

    # ------------------------------------------------------------ parsing

    async def _read_head(self):
        reader = self.reader
        size = 0
        while True:  # empty lines before a request line are allowed (RFC 9112 2.2)
            try:
                line = await reader.readline()
            except ValueError:
                raise _HTTPError(414, "request line too long")
            if not line:
                return None
            if line not in (b"\r\n", b"\n"):
                break
            size += len(line)
            if size > _MAX_HEAD:
                raise _HTTPError(400, "bad request")
        if not line.endswith(b"\n"):
            return None  # EOF in the middle of the request line
        size += len(line)
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise _HTTPError(400, "malformed request line")
        method, target, version = parts
        if not all(c in _TOKEN for c in method):
            raise _HTTPError(400, "malformed method")
        if version == b"HTTP/1.1":
            http_version = "1.1"
        elif version == b"HTTP/1.0":
            http_version = "1.0"
        elif version.startswith(b"HTTP/"):
            raise _HTTPError(505, "HTTP version not supported")
        else:
            raise _HTTPError(400, "malformed request line")
        headers = []
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                raise _HTTPError(431, "request header fields too large")
            if not line.endswith(b"\n"):
                raise _HTTPError(400, "incomplete request head")
            size += len(line)
            if size > _MAX_HEAD or len(headers) > _MAX_HEADERS:
                raise _HTTPError(431, "request header fields too large")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.partition(b":")
            if not sep or not name or not all(c in _TOKEN for c in name):
                raise _HTTPError(400, "malformed header line")
            value = value.strip(b" \t\r\n")
            if b"\r" in value or b"\0" in value:
                raise _HTTPError(400, "malformed header value")
            headers.append((name.lower(), value))
        return method.decode("ascii"), target, http_version, headers

    async def _read_body(self, headers, http_version):
        """The whole request body (at most max_body bytes), or raise _HTTPError."""
        reader = self.reader
        srv = self.server
        te = [v for n, v in headers if n == b"transfer-encoding"]
        cl = [v for n, v in headers if n == b"content-length"]
        expect = [v.lower() for n, v in headers if n == b"expect"]
        if te:
            codings = [c.strip().lower() for c in b",".join(te).split(b",") if c.strip()]
            if cl or http_version == "1.0" or codings != [b"chunked"]:
                raise _HTTPError(400, "unsupported transfer-encoding")
            if b"100-continue" in expect:
                self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            chunks = []
            total = 0
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    raise asyncio_incomplete()
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise _HTTPError(400, "malformed chunk size")
                if size < 0:
                    raise _HTTPError(400, "malformed chunk size")
                if size == 0:
                    break
                total += size
                if total > srv.max_body:
                    raise _HTTPError(413, "request body larger than %d bytes" % srv.max_body)
                chunks.append(await reader.readexactly(size))
                if await reader.readexactly(2) != b"\r\n":
                    raise _HTTPError(400, "malformed chunk")
            trailer = 0
            while True:  # trailers are read and dropped
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    raise asyncio_incomplete()
                if line in (b"\r\n", b"\n"):
                    break
                trailer += len(line)
                if trailer > _MAX_HEAD:
                    raise _HTTPError(431, "trailer too large")
            return b"".join(chunks)
        if cl:
            values = set(v.strip() for v in b",".join(cl).split(b","))
            if len(values) != 1:
                raise _HTTPError(400, "conflicting content-length")
            value = values.pop()
            if not value.isdigit():
                raise _HTTPError(400, "malformed content-length")
            n = int(value)
            if n > srv.max_body:
                raise _HTTPError(413, "request body larger than %d bytes" % srv.max_body)
            if n and b"100-continue" in expect:
                self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return await reader.readexactly(n) if n else b""
        return b""

    # ------------------------------------------------------------ one exchange

    async def _simple(self, status, body, close, head_only=False):
        srv = self.server
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, "").encode()),
                b"date: " + srv.date() + b"\r\n",
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body)]
        if close:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        if not head_only:
            head.append(body)
        try:
            self.writer.write(b"".join(head))
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    async def _handle(self, method, target, http_version, headers):
        import asyncio
        import time
        from urllib.parse import unquote_to_bytes
        srv = self.server
        t0 = time.monotonic()
        conn_tokens = set()
        for n, v in headers:
            if n == b"connection":
                conn_tokens.update(t.strip().lower() for t in v.split(b","))
        if http_version == "1.1":
            keep_alive = b"close" not in conn_tokens
        else:
            keep_alive = b"keep-alive" in conn_tokens
        if srv.stopping:
            keep_alive = False

        # request target: origin-form, absolute-form or asterisk
        raw = target
        if raw.startswith(b"http://") or raw.startswith(b"https://"):
            slash = raw.find(b"/", raw.find(b"//") + 2)
            raw = raw[slash:] if slash >= 0 else b"/"
        raw_path, _, query = raw.partition(b"?")
        raw_path = raw_path.split(b"#", 1)[0]
        query = query.split(b"#", 1)[0]
        try:
            try:
                body = await asyncio.wait_for(self._read_body(headers, http_version),
                                              srv.body_timeout)
            except asyncio.TimeoutError:
                raise _HTTPError(408, "request body not received in time")
        except _HTTPError as e:
            await self._simple(e.status, str(e).encode(), close=True)
            self._log(method, target, http_version, e.status, 0, t0)
            await self._linger()
            return False

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": http_version,
            "server": srv.server_addr,
            "client": self.client,
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
            "raw_path": raw_path,
            "query_string": query,
            "headers": headers,
            "extensions": {},
        }
        resp = _Response(self, method, http_version, keep_alive)
        delivered = [False]
        done = asyncio.Event()
        resp.done = done

        async def receive():
            if not delivered[0]:
                delivered[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()  # nothing more will come: the response is over or the peer left
            return {"type": "http.disconnect"}

        try:
            await srv.app(scope, receive, resp.send)
        except asyncio.CancelledError:
            done.set()
            raise
        except (Exception, SystemExit) as e:
            if isinstance(e, ConnectionError) and (self.closed or self.writer.is_closing()):
                srv.log.info("client went away during %s %s", method, target.decode("latin-1"))
                resp.abort()
            else:
                tb = e.__traceback__
                while tb is not None and tb.tb_frame.f_code.co_filename == __file__ \
                        and tb.tb_next is not None:  # start at the function's own frames
                    tb = tb.tb_next
                srv.log.error("Exception in the function handling %s %s", method,
                              target.decode("latin-1"), exc_info=(type(e), e, tb))
            if resp.aborted:
                pass
            elif not resp.head_written:  # nothing on the wire yet: a 500 replaces it
                msg = ("Error: %s" % (e,))[:1000].encode("utf-8", "replace")
                resp = _Response(self, method, http_version, keep_alive)
                resp.done = done
                await resp.send({"type": "http.response.start", "status": 500,
                                 "headers": [(b"content-type", b"text/plain")]})
                await resp.send({"type": "http.response.body", "body": msg})
            else:
                resp.abort()  # the client sees a truncated response
        else:
            if not resp.started:
                srv.log.error("the function returned without starting a response (%s %s)",
                              method, target.decode("latin-1"))
                await resp.send({"type": "http.response.start", "status": 500,
                                 "headers": [(b"content-type", b"text/plain")]})
                await resp.send({"type": "http.response.body",
                                 "body": b"Internal Server Error"})
            elif not resp.complete:
                await resp.finish()
        done.set()
        self._log(method, target, http_version, resp.status, resp.sent, t0)
        return resp.keep_alive and resp.complete and not resp.aborted and not srv.stopping

    async def _linger(self, budget=64 << 20, seconds=5.0):
        """After an error answered before the request body was read: stop writing, then
        read and drop what the client is still sending, so that it gets to read the answer
        instead of a reset."""
        import asyncio
        import time
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
            deadline = time.monotonic() + seconds
            while budget > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                data = await asyncio.wait_for(self.reader.read(65536), left)
                if not data:
                    break
                budget -= len(data)
        except (asyncio.TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass

    def _log(self, method, target, http_version, status, nbytes, t0):
        if self.server.access_log:
            import time
            sys.stderr.write('hks: "%s %s HTTP/%s" %s %d %.1fms\n' % (
                method, target.decode("latin-1")[:200], http_version, status, nbytes,
                (time.monotonic() - t0) * 1000))
            sys.stderr.flush()


def asyncio_incomplete():
    import asyncio
    return asyncio.IncompleteReadError(b"", None)


def _header_bytes(x, what):
    if isinstance(x, str):
        x = x.encode("latin-1")
    elif isinstance(x, (bytearray, memoryview)):
        x = bytes(x)
    if not isinstance(x, bytes):
        raise TypeError("header %s must be bytes, not %s" % (what, type(x).__name__))
    if b"\r" in x or b"\n" in x or b"\0" in x:
        raise ValueError("header %s contains CR, LF or NUL: %r" % (what, x))
    return x


class _Response:
    """The ASGI send side of one exchange: framing (Content-Length, chunked or close)."""

    def __init__(self, conn, method, http_version, keep_alive):
        self.conn = conn
        self.head_only = method == "HEAD"
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.started = False
        self.head_written = False
        self.complete = False
        self.aborted = False
        self.status = 0
        self.headers = []
        self.length = None  # declared content-length
        self.chunked = False
        self.no_body = False
        self.sent = 0
        self.done = None

    async def send(self, message):
        t = message.get("type")
        if t == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
                raise ValueError("invalid status %r" % (status,))
            headers = []
            for item in message.get("headers") or ():
                name, value = item
                name = _header_bytes(name, "name").lower()
                value = _header_bytes(value, "value")
                if not name or not all(c in _TOKEN for c in name):
                    raise ValueError("invalid header name %r" % (name,))
                if name == b"content-length":
                    if not value.strip().isdigit():
                        raise ValueError("invalid content-length %r" % (value,))
                    self.length = int(value)
                elif name == b"transfer-encoding":
                    continue  # the server frames the body
                elif name == b"connection":
                    if b"close" in value.lower():
                        self.keep_alive = False
                    continue
                headers.append((name, value))
            self.status = status
            self.headers = headers
            self.started = True
            self.no_body = self.head_only or status < 200 or status in (204, 304)
        elif t == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body after the response was complete")
            body = message.get("body", b"")
            if isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
            if not isinstance(body, bytes):
                raise TypeError("http.response.body body must be bytes, not %s"
                                % type(body).__name__)
            more = bool(message.get("more_body", False))
            await self._write(body, more)
        else:
            raise ValueError("unexpected ASGI message type %r" % (t,))

    async def _write(self, body, more):
        conn = self.conn
        if conn.closed:
            raise ConnectionResetError("the client closed the connection")
        out = []
        if not self.head_written:
            out.append(self._head(body, more))
        if body and not self.no_body:
            if self.length is not None and self.sent + len(body) > self.length:
                raise RuntimeError("response body longer than its content-length %d"
                                   % self.length)
            if self.chunked:
                out.append(b"%x\r\n" % len(body))
                out.append(body)
                out.append(b"\r\n")
            else:
                out.append(body)
            self.sent += len(body)
        if not more:
            if self.chunked:
                out.append(b"0\r\n\r\n")
            self.complete = True
            if self.length is not None and self.sent < self.length and not self.no_body:
                self.keep_alive = False  # short body: only closing tells the client
        if out:
            conn.writer.write(b"".join(out))
            await conn.writer.drain()
        if self.complete and self.done is not None:
            self.done.set()

    def _head(self, body, more):
        srv = self.conn.server
        headers = self.headers
        if self.no_body:
            if self.length is None and self.head_only and not more:
                headers = headers + [(b"content-length", b"%d" % len(body))]
        elif self.length is None:
            if not more:
                self.length = len(body)
                headers = headers + [(b"content-length", b"%d" % len(body))]
            elif self.http_version == "1.1":
                self.chunked = True
                headers = headers + [(b"transfer-encoding", b"chunked")]
            else:
                self.keep_alive = False  # HTTP/1.0 without a length: the body ends at close
        if srv.stopping:
            self.keep_alive = False
        if not self.keep_alive:
            headers = headers + [(b"connection", b"close")]
        elif self.http_version == "1.0":
            headers = headers + [(b"connection", b"keep-alive")]
        if not any(n == b"date" for n, _ in headers):
            headers = [(b"date", srv.date())] + headers
        self.head_written = True
        lines = [b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, "").encode())]
        lines.extend(n + b": " + v + b"\r\n" for n, v in headers)
        lines.append(b"\r\n")
        return b"".join(lines)

    async def finish(self):
        if not self.head_written or not self.complete:
            await self._write(b"", False)

    def abort(self):
        self.aborted = True
        self.keep_alive = False
        self.conn.close()
