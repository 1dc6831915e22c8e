"""The HKS Functions client (standard library only)."""

import base64
import contextlib
import datetime
import http.client
import io
import json
import logging
import math
import os
import random
import re
import socket
import tarfile
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

from .cron import CronJobs
from .errors import (AuthError, Conflict, HksConnectionError, HksError, HksFunctionError,
                     HksNotFound, HksRateLimited, HksTimeout, HksUnavailable, InvalidRequest,
                     PermissionDenied, ServerError)
from .models import Body, ExecutionResult, Function, InvocationResult, Query, Since
from .retry import RetryPolicy, parse_retry_after, retryable_status
from .transport import Answer, Broken, NoAnswer, NotSent, Timeout, Transport, TransportError

USER_AGENT = "hks-sdk-python/0.1"
DEFAULT_URL = "http://127.0.0.1:8080"

_log = logging.getLogger("hks_sdk")

FileContent = Union[str, bytes]
FilesArg = Union[Mapping[str, FileContent], Sequence[Mapping[str, Any]]]
# the bytes of a .tar.gz, or the path of one or of a project directory
ArchiveArg = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]
# seconds, a timedelta or a string like "10m"
TtlArg = Union[int, float, str, datetime.timedelta]


_ERRORS: Dict[int, Type[HksError]] = {
    400: InvalidRequest, 401: AuthError, 403: PermissionDenied, 404: HksNotFound,
    409: Conflict, 413: InvalidRequest, 422: InvalidRequest, 500: ServerError, 502: HksFunctionError,
    503: HksUnavailable, 504: HksTimeout,
}


def _encode_files(files: FilesArg) -> List[Dict[str, Any]]:
    if isinstance(files, Mapping):
        out = []
        for name, content in files.items():
            if isinstance(content, (bytes, bytearray, memoryview)):
                out.append({"name": name, "content": base64.b64encode(bytes(content)).decode("ascii"),
                            "encoding": "base64"})
            elif isinstance(content, str):
                out.append({"name": name, "content": content, "encoding": "utf8"})
            else:
                raise TypeError("file %r: content must be str or bytes, not %s" % (name, type(content).__name__))
        return out
    out = []
    for f in files:
        f = dict(f)
        c = f.get("content")
        if isinstance(c, (bytes, bytearray, memoryview)):
            f["content"] = base64.b64encode(bytes(c)).decode("ascii")
            f["encoding"] = "base64"
        out.append(f)
    return out


def _clean_token(token: Optional[str]) -> Optional[str]:
    """Strip the newline a token read from a file or ``$(...)`` usually carries; refuse the rest.

    A JWT is three base64url segments: anything outside printable ASCII would otherwise surface as
    an obscure header error from http.client at the first request, or be sent to the server.
    """
    if token is None:
        return None
    token = token.strip()
    bad = next((c for c in token if not ("!" <= c <= "~")), None)
    if bad is not None:
        raise ValueError("hks_sdk: the token contains %r at offset %d; a JWT is printable ASCII "
                         "without spaces (check $HKS_TOKEN)" % (bad, token.index(bad)))
    return token


class Client:
    """A client of hksd's internal operations API.

    ``url`` defaults to ``$HKS_URL`` (else http://127.0.0.1:8080), ``token`` to ``$HKS_TOKEN``,
    ``project`` to ``$HKS_PROJECT`` (informational: the tenant is the token's ``project`` claim).

    ``timeout``: seconds without progress (connecting, sending, waiting for the answer) before a
    request fails with HksConnectionError; each method also takes one for a single call. Timeouts
    are never retried.

    Retries (see hks_sdk.retry): a request hksd turned away unexecuted (429 ``overloaded``, 503
    ``unavailable``) or that could not be sent is sent again up to ``max_retries`` times, after
    the answer's ``Retry-After`` or else an exponential backoff with jitter (``backoff_base`` *
    2**n seconds, at most ``backoff_max``), waiting at most ``max_retry_wait`` seconds in all.
    ``max_retries=0`` turns retries off. ``sleep`` is the function that waits (``time.sleep``).

    Connections: HTTP/1.1 keep-alive, reused across calls and threads (each used by one thread at
    a time); up to ``pool_size`` idle ones are kept. ``close()`` (or ``with Client() as c:``)
    closes them; the client stays usable.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, project: Optional[str] = None,
                 timeout: Optional[float] = 60.0, *, max_retries: int = 3, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, max_retry_wait: float = 60.0, pool_size: int = 10,
                 sleep: Optional[Callable[[float], None]] = None) -> None:
        self.url = (url or os.environ.get("HKS_URL") or DEFAULT_URL).rstrip("/")
        self.token = _clean_token(token if token is not None else os.environ.get("HKS_TOKEN"))
        self.project = project if project is not None else os.environ.get("HKS_PROJECT")
        self.timeout = _check_timeout(timeout)
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_max, max_retry_wait)
        self.sleep: Callable[[float], None] = sleep or time.sleep
        self.transport = Transport(self.url, pool_size)
        self.functions = Functions(self)
        self.cronjobs = CronJobs(self)

    def __repr__(self) -> str:
        return "Client(url=%r, project=%r)" % (self.url, self.project)

    def close(self) -> None:
        """Close the idle connections. The client stays usable (it opens new ones)."""
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ API

    def runtimes(self, request_timeout: Optional[float] = None) -> Dict[str, Any]:
        """GET /internal/v1/runtimes: the runtimes, their versions and the limits policy."""
        return self.request("GET", "/internal/v1/runtimes", timeout=request_timeout)

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, body: Optional[Any] = None,
                timeout: Optional[float] = None) -> Any:
        """Send one request (retried as the class says); return the parsed JSON body of a 2xx
        answer or raise HksError. ``timeout``: this call's, else the client's."""
        answer, request_id = self._exchange(method, path, body, timeout)
        if not answer.payload:
            return None
        try:
            return json.loads(answer.payload)
        except ValueError:
            rid = answer.headers.get("X-Request-Id") or request_id
            raise HksError("response is not JSON", answer.status, "bad_response", {}, rid) from None

    def _exchange(self, method: str, path: str, body: Optional[Any] = None, timeout: Optional[float] = None,
                  accept: str = "application/json", stream: bool = False,
                  wait: bool = False) -> Tuple[Answer, str]:
        """Send one request, retried as the class says; return the answer of a 2xx (open when
        ``stream``) and the request id, or raise HksError. ``wait``: no timeout at all (a log
        that is followed). Every attempt carries the same X-Request-Id."""
        request_id = uuid.uuid4().hex
        headers = {"User-Agent": USER_AGENT, "X-Request-Id": request_id, "Accept": accept}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        t = None if wait else _check_timeout(timeout) if timeout is not None else self.timeout
        attempts, waited = 0, 0.0
        while True:
            attempts += 1
            try:
                answer = self.transport.exchange(method, path, headers, data, t, stream)
            except NotSent as e:
                delay = self.retry.backoff(attempts - 1, random.random)
                if not self.retry.allows(attempts - 1, waited, delay):
                    raise self._network_error(e, request_id, t, attempts) from e.cause
                why = "cannot reach hksd: %s" % e.cause
            except TransportError as e:
                raise self._network_error(e, request_id, t, attempts) from e.cause
            else:
                if 200 <= answer.status < 300:
                    return answer, request_id
                payload = answer.payload if answer.stream is None else _read_error_body(answer)
                error = self._error(answer.status, answer.headers, payload, request_id)
                error.attempts = attempts
                if not retryable_status(method, answer.status, error.code):
                    raise error
                ra = parse_retry_after(answer.headers.get("Retry-After"))
                delay = ra if ra is not None else self.retry.backoff(attempts - 1, random.random)
                if not self.retry.allows(attempts - 1, waited, delay):
                    raise error
                why = "%d %s" % (answer.status, error.code or "")
            _log.info("hks_sdk: %s %s: %s; attempt %d in %.2fs (request %s)", method, path, why,
                      attempts + 1, delay, request_id)
            self.sleep(delay)
            waited += delay

    def _network_error(self, e: BaseException, request_id: str, timeout: Optional[float],
                       attempts: int = 1) -> HksConnectionError:
        cause = getattr(e, "cause", e)
        if isinstance(e, Timeout) or isinstance(cause, socket.timeout):
            err = HksConnectionError("no answer from %s within %ss" % (self.url, timeout), request_id)
        elif isinstance(e, NoAnswer):
            err = HksConnectionError("the connection to %s closed before an answer (%s); the request "
                                     "may have been executed" % (self.url, cause), request_id)
        elif isinstance(e, Broken):
            err = HksConnectionError("the answer of %s was cut off (%s); the request may have been "
                                     "executed" % (self.url, cause), request_id)
        else:
            err = HksConnectionError("cannot reach %s: %s" % (self.url, cause), request_id)
        err.attempts = attempts
        return err

    @staticmethod
    def _error(status: int, headers: Any, payload: bytes, request_id: str) -> HksError:
        rid = (headers.get("X-Request-Id") if headers is not None else None) or request_id
        code, message, details = "", "", {}  # type: str, str, Dict[str, Any]
        try:
            doc = json.loads(payload)
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                code = str(err.get("code") or "")
                message = str(err.get("message") or "")
                details = err.get("details") if isinstance(err.get("details"), dict) else {}
        except (ValueError, UnicodeDecodeError):
            pass
        if not message:
            message = payload[:200].decode("utf-8", "replace") or "HTTP %d" % status
        if status == 429:
            ra = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
            return HksRateLimited(message, status, code, details, rid, retry_after=ra)
        cls = _ERRORS.get(status, HksError)
        return cls(message, status, code, details, rid)


def _check_timeout(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or \
            timeout == float("inf"):
        raise ValueError("hks_sdk: a timeout is a number of seconds > 0 (or None: no timeout), not %r"
                         % (timeout,))
    return float(timeout)


def _read_error_body(answer: Answer) -> bytes:
    """The body of an error answer to a streamed request (small: hksd's JSON error)."""
    try:
        return answer.stream.read(64 * 1024) if answer.stream is not None else b""
    except (http.client.HTTPException, OSError):
        return b""
    finally:
        answer.close()


class Functions:
    """``client.functions``: run code once (``execute``), or deploy functions that serve HTTP
    (``deploy``, ``temporary``, ``get``, ``list``, ``invoke``, ``logs``, ``follow_logs``, ``delete``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def execute(self, code: Optional[str] = None, runtime: str = "python", files: Optional[FilesArg] = None,
                stdin: Optional[str] = None, args: Optional[Sequence[str]] = None,
                env: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
                memory_mb: Optional[int] = None, entry: Optional[str] = None,
                limits: Optional[Mapping[str, Any]] = None,
                request_timeout: Optional[float] = None) -> ExecutionResult:
        """Run ``code`` (or ``files``) once in a fresh sandbox and return its result.

        ``files``: ``{name: str | bytes}`` (bytes are sent base64) or the API's list of
        ``{"name", "content", "encoding"}``. ``timeout`` (seconds) sets ``limits.wall_ms``,
        ``memory_mb`` sets ``limits.memory_mb``; both override the same keys of ``limits``.
        ``request_timeout``: the HTTP timeout of this call; by default the client's, and at least
        ``limits.wall_ms`` plus 30 s so that the execution's own limit ends it first.
        """
        body: Dict[str, Any] = {"runtime": runtime}
        if code is not None:
            body["code"] = code
        if files is not None:
            body["files"] = _encode_files(files)
        if entry is not None:
            body["entry"] = entry
        if stdin is not None:
            body["stdin"] = stdin
        if args is not None:
            body["args"] = [str(a) for a in args]
        if env is not None:
            body["env"] = {str(k): str(v) for k, v in env.items()}
        lim = _limits(limits, timeout, memory_mb)
        if lim:
            body["limits"] = lim
        http_timeout = request_timeout
        if http_timeout is None:
            http_timeout = _outliving(self._client.timeout, lim.get("wall_ms"))
        doc = self._client.request("POST", "/internal/v1/operations/execute", body, timeout=http_timeout)
        if not isinstance(doc, dict):
            raise HksError("unexpected execute response", 200, "bad_response")
        return ExecutionResult.from_dict(doc)

    # ------------------------------------------------------------------ deployed functions

    def deploy(self, code: Optional[str] = None, runtime: str = "python", files: Optional[FilesArg] = None,
               archive: Optional[ArchiveArg] = None, name: Optional[str] = None,
               env: Optional[Mapping[str, str]] = None, ttl: Optional[TtlArg] = None,
               memory_mb: Optional[int] = None, timeout: Optional[float] = None,
               limits: Optional[Mapping[str, Any]] = None, min_scale: Optional[int] = None,
               max_scale: Optional[int] = None, concurrency: Optional[int] = None,
               request_timeout: Optional[float] = None) -> Function:
        """Deploy a function (Knative Functions layout) and return it; it serves HTTP until it is
        deleted or its ``ttl`` runs out.

        The code is exactly one of ``code`` (one string: ``function/func.py`` for python,
        ``index.js`` for node), ``files`` (as for ``execute``) or ``archive`` (the bytes of a
        ``.tar.gz``, the path of one, or the path of a project directory, packed here without
        ``.git``, ``node_modules`` and ``__pycache__``).

        ``ttl``: seconds, a ``timedelta`` or a string like ``"90s"``, ``"10m"``, ``"1h30m"``,
        ``"1d"`` (-> ``ttl_seconds``). ``timeout``: the per-request timeout in seconds
        (-> ``limits.wall_ms``); ``memory_mb`` -> ``limits.memory_mb``; both override ``limits``.
        ``request_timeout``: the HTTP timeout of this call (default: the client's).
        """
        body: Dict[str, Any] = {"runtime": runtime}
        if name is not None:
            body["name"] = name
        if code is not None:
            body["code"] = code
        if files is not None:
            body["files"] = _encode_files(files)
        if archive is not None:
            body["archive"] = base64.b64encode(_archive_bytes(archive)).decode("ascii")
        if env is not None:
            body["env"] = {str(k): str(v) for k, v in env.items()}
        lim = _limits(limits, timeout, memory_mb)
        if lim:
            body["limits"] = lim
        if ttl is not None:
            body["ttl_seconds"] = parse_ttl(ttl)
        for key, value in (("min_scale", min_scale), ("max_scale", max_scale), ("concurrency", concurrency)):
            if value is not None:
                body[key] = int(value)
        doc = self._client.request("POST", "/internal/v1/operations/deploy-function", body,
                                   timeout=request_timeout)
        return Function(self, _record(doc))

    @contextlib.contextmanager
    def temporary(self, **deploy_kwargs: Any) -> Iterator[Function]:
        """``with client.functions.temporary(code=...) as fn:`` deploys a function (the arguments
        of ``deploy``) and deletes it when the block ends, normally or by an exception (which
        propagates; a failure to delete then is logged, not raised over it)."""
        fn = self.deploy(**deploy_kwargs)
        with fn:
            yield fn

    def get(self, id: str, request_timeout: Optional[float] = None) -> Function:
        """The function ``id`` (HksNotFound if it does not exist, or not in the token's project)."""
        return Function(self, self._get_record(id, request_timeout))

    def list(self, request_timeout: Optional[float] = None) -> List[Function]:
        """The functions of the token's project."""
        doc = self._client.request("GET", "/internal/v1/functions", timeout=request_timeout)
        items = doc.get("functions") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise HksError("unexpected list response", 200, "bad_response")
        return [Function(self, _record(r)) for r in items]

    def delete(self, id: str, missing_ok: bool = False, request_timeout: Optional[float] = None) -> bool:
        """Delete the function ``id``: True when deleted. An unknown id raises HksNotFound, or
        returns False with ``missing_ok``."""
        try:
            self._client.request("POST", "/internal/v1/operations/delete-function", {"id": _fn_id(id)},
                                 timeout=request_timeout)
        except HksNotFound:
            if missing_ok:
                return False
            raise
        return True

    def invoke(self, id: str, body: Body = None, method: str = "POST", path: str = "/",
               query: Optional[Query] = None, headers: Optional[Mapping[str, str]] = None,
               timeout: Optional[float] = None, _wall_ms: Any = None) -> InvocationResult:
        """Send one HTTP request to the function ``id`` and return its answer.

        ``body``: ``str`` (sent as is), ``bytes`` (sent base64-encoded, arrives as the same bytes)
        or a ``dict``/``list`` (sent as JSON with ``content-type: application/json`` unless
        ``headers`` names one). ``query``: ``"a=1&b=2"`` or a mapping. ``timeout``: seconds to wait
        for hksd's answer; by default the client's timeout, and for ``Function.invoke`` at least
        the function's ``limits.wall_ms`` plus 30 s, so that an invocation past its limit
        surfaces as hksd's HksTimeout rather than as a client-side HksConnectionError.

        The function's own 4xx/5xx is ``result.status``. hksd's errors raise: HksNotFound (404),
        HksRateLimited (429), HksFunctionError (502), HksUnavailable (503), HksTimeout (504).
        """
        req: Dict[str, Any] = {"id": _fn_id(id), "method": method.upper()}
        if not path.startswith("/"):
            path = "/" + path
        req["path"] = path
        if query is not None:
            q = query if isinstance(query, str) else urllib.parse.urlencode(
                [(k, v) for k, v in query.items()], doseq=True)
            q = q[1:] if q.startswith("?") else q
            if q:
                req["query"] = q
        hdrs = {str(k): str(v) for k, v in (headers or {}).items()}
        if body is not None:
            if isinstance(body, (dict, list)):
                if not any(k.lower() == "content-type" for k in hdrs):
                    hdrs["content-type"] = "application/json"
                req["body"] = json.dumps(body)
            elif isinstance(body, str):
                req["body"] = body
            elif isinstance(body, (bytes, bytearray, memoryview)):
                req["body"] = base64.b64encode(bytes(body)).decode("ascii")
                req["body_encoding"] = "base64"
            else:
                raise TypeError("body must be str, bytes, dict or list, not %s" % type(body).__name__)
        if hdrs:
            req["headers"] = hdrs
        http_timeout = timeout if timeout is not None else _outliving(self._client.timeout, _wall_ms)
        doc = self._client.request("POST", "/internal/v1/operations/invoke-function", req,
                                   timeout=http_timeout)
        if not isinstance(doc, dict) or "status" not in doc:
            raise HksError("unexpected invoke response", 200, "bad_response")
        return InvocationResult.from_dict(doc)

    def logs(self, id: str, since: Since = None, tail: Optional[int] = None,
             request_timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """The function's log so far: ``[{"ts", "stream": "stdout"|"stderr"|"system", "instance",
        "line"}, ...]``, oldest first. ``since``: a datetime, unix seconds or an RFC 3339 string;
        ``tail``: only the last N lines."""
        answer, _ = self._client._exchange("GET", _logs_path(id, since, tail, False), timeout=request_timeout,
                                           accept="application/x-ndjson")
        return [doc for doc in map(_log_line, answer.payload.splitlines()) if doc is not None]

    def follow_logs(self, id: str, since: Since = None, tail: Optional[int] = None,
                    timeout: Optional[float] = None) -> "LogStream":
        """An iterator of the function's log lines: those written so far, then new ones as they
        come, until hksd ends the stream (the function was deleted or reaped, or hksd stops).

        The request is sent at once (an unknown id raises HksNotFound here, not at the first
        line). ``timeout``: at most this many seconds of silence (then HksConnectionError);
        default: wait as long as it takes. ``.close()`` (or a ``with`` block) ends it early::

            with fn.follow_logs() as lines:
                for line in lines:
                    print(line["stream"], line["line"])
        """
        answer, request_id = self._client._exchange("GET", _logs_path(id, since, tail, True), timeout=timeout,
                                                    accept="application/x-ndjson", stream=True,
                                                    wait=timeout is None)
        return LogStream(self._client, answer, request_id, timeout)

    def _get_record(self, id: str, request_timeout: Optional[float] = None) -> Dict[str, Any]:
        return _record(self._client.request("GET", "/internal/v1/functions/" + _quote(_fn_id(id)),
                                             timeout=request_timeout))


class LogStream:
    """The open NDJSON stream of ``follow_logs``: iterate it for ``{"ts", "stream", "instance",
    "line"}`` dicts; it ends when hksd ends the stream or on ``close()``."""

    def __init__(self, client: Client, answer: Answer, request_id: str, timeout: Optional[float]) -> None:
        self._client = client
        self._answer = answer  # its connection is this stream's alone, closed with it
        self._resp = answer.stream
        self.request_id = request_id
        self._timeout = timeout
        self.closed = False

    def __iter__(self) -> "LogStream":
        return self

    def __next__(self) -> Dict[str, Any]:
        while not self.closed:
            try:
                raw = self._resp.readline()
            except (socket.timeout, ConnectionError, OSError) as e:
                self.close()
                raise self._client._network_error(e, self.request_id, self._timeout) from e
            except (http.client.IncompleteRead, ValueError):
                raw = b""  # hksd went away mid-chunk, or the stream was closed: it is over
            if not raw:
                self.close()
                break
            doc = _log_line(raw)
            if doc is not None:
                return doc
        raise StopIteration

    def close(self) -> None:
        """Close the stream (hksd sees the client go away)."""
        if not self.closed:
            self.closed = True
            self._answer.close()

    def __enter__(self) -> "LogStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------- helpers of deploy and invoke

# directories never packed from a project directory
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__"})

_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TTL_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_ttl(ttl: TtlArg) -> int:
    """Seconds (int or float), a ``timedelta`` or a string (``"45"``, ``"90s"``, ``"10m"``,
    ``"1h30m"``, ``"2d"``) as whole seconds (rounded up)."""
    if isinstance(ttl, bool):
        raise TypeError("ttl must be seconds, a timedelta or a string like '10m'")
    if isinstance(ttl, datetime.timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)):
        seconds = float(ttl)
    elif isinstance(ttl, str):
        text = ttl.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _TTL_RE.finditer(text):
                if text[pos:m.start()].strip():
                    break
                seconds += float(m.group(1)) * _TTL_UNITS[m.group(2)]
                pos = m.end()
            if pos == 0 or text[pos:].strip():
                raise ValueError("ttl %r: use seconds or a duration like '90s', '10m', '1h30m', '2d'"
                                 % ttl) from None
    else:
        raise TypeError("ttl must be seconds, a timedelta or a string like '10m', not %s" % type(ttl).__name__)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("ttl %r is not a number of seconds" % (ttl,))
    return int(math.ceil(seconds))


def _outliving(timeout: Optional[float], wall_ms: Any) -> Optional[float]:
    """An HTTP timeout that outlives a run limited to ``wall_ms``: at least that plus 30 s, so
    that the run's own limit ends it first (None: no timeout stays none)."""
    if timeout is None or wall_ms is None:
        return timeout
    try:
        return max(timeout, float(wall_ms) / 1000.0 + 30.0)
    except (TypeError, ValueError):
        return timeout


def _limits(limits: Optional[Mapping[str, Any]], timeout: Optional[float],
            memory_mb: Optional[int]) -> Dict[str, Any]:
    lim: Dict[str, Any] = dict(limits or {})
    if timeout is not None:
        lim["wall_ms"] = max(1, int(round(float(timeout) * 1000)))
    if memory_mb is not None:
        lim["memory_mb"] = int(memory_mb)
    return lim


def pack_directory(directory: Union[str, "os.PathLike[str]"]) -> bytes:
    """A ``.tar.gz`` of a project directory, names relative to it, without ``.git``,
    ``node_modules`` and ``__pycache__`` (at any depth); symbolic links are packed as links (hksd
    refuses those that point outside the project). Owners are not recorded."""
    root = os.fspath(directory)
    if not os.path.isdir(root):
        raise NotADirectoryError("not a directory: %s" % root)

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            rel_dir = os.path.relpath(dirpath, root)
            # directories (their own entries: empty ones are kept), then files; a linked
            # directory is packed as a link, not walked
            for name in dirnames + sorted(filenames):
                full = os.path.join(dirpath, name)
                arcname = name if rel_dir == "." else os.path.join(rel_dir, name)
                tar.add(full, arcname=arcname.replace(os.sep, "/"), recursive=False, filter=clean)
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return buf.getvalue()


def _archive_bytes(archive: ArchiveArg) -> bytes:
    if isinstance(archive, (bytes, bytearray, memoryview)):
        return bytes(archive)
    if isinstance(archive, (str, os.PathLike)):
        path = os.fspath(archive)
        if os.path.isdir(path):
            return pack_directory(path)
        with open(path, "rb") as f:  # a .tar.gz file
            return f.read()
    raise TypeError("archive must be the bytes of a .tar.gz or a path, not %s" % type(archive).__name__)


def _record(doc: Any) -> Dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise HksError("unexpected function record", 200, "bad_response")
    return doc


def _fn_id(id: Any) -> str:
    if isinstance(id, Function):
        return id.id
    if not isinstance(id, str) or not id:
        raise TypeError("a function id (fn-...) is required")
    return id


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _since(since: Since) -> str:
    if isinstance(since, datetime.datetime):
        if since.tzinfo is None:
            since = since.astimezone()  # a naive datetime is local time
        u = since.astimezone(datetime.timezone.utc)
        return u.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (u.microsecond // 1000)
    if isinstance(since, bool):
        raise TypeError("since must be a datetime, unix seconds or an RFC 3339 string")
    if isinstance(since, int):
        return str(since)
    if isinstance(since, float):
        return _since(datetime.datetime.fromtimestamp(since, datetime.timezone.utc))
    if isinstance(since, str):
        return since
    raise TypeError("since must be a datetime, unix seconds or an RFC 3339 string")


def _logs_path(id: str, since: Since, tail: Optional[int], follow: bool) -> str:
    params = []
    if follow:
        params.append(("follow", "true"))
    if since is not None:
        params.append(("since", _since(since)))
    if tail is not None:
        params.append(("tail", str(int(tail))))
    path = "/internal/v1/functions/%s/logs" % _quote(_fn_id(id))
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def _log_line(raw: bytes) -> Optional[Dict[str, Any]]:
    """One NDJSON line as a dict; None for a blank line or one that is not a JSON object."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
