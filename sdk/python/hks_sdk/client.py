"""The HKS Functions client (standard library only)."""

import base64
import json
import os
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import HksAuthError, HksConnectionError, HksError, HksRateLimited
from .models import ExecutionResult

USER_AGENT = "hks-sdk-python/0.1"
DEFAULT_URL = "http://127.0.0.1:8080"

FileContent = Union[str, bytes]
FilesArg = Union[Mapping[str, FileContent], Sequence[Mapping[str, Any]]]


def _retry_after(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:  # an HTTP date
        import email.utils
        import time
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


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
    ``timeout`` is the HTTP timeout in seconds.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, project: Optional[str] = None,
                 timeout: float = 60.0) -> None:
        self.url = (url or os.environ.get("HKS_URL") or DEFAULT_URL).rstrip("/")
        self.token = _clean_token(token if token is not None else os.environ.get("HKS_TOKEN"))
        self.project = project if project is not None else os.environ.get("HKS_PROJECT")
        self.timeout = timeout
        self.functions = Functions(self)

    def __repr__(self) -> str:
        return "Client(url=%r, project=%r)" % (self.url, self.project)

    # ------------------------------------------------------------------ API

    def runtimes(self) -> Dict[str, Any]:
        """GET /internal/v1/runtimes: the runtimes, their versions and the limits policy."""
        return self.request("GET", "/internal/v1/runtimes")

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, body: Optional[Any] = None,
                timeout: Optional[float] = None) -> Any:
        """Send one request; return the parsed JSON body of a 2xx answer or raise HksError."""
        request_id = uuid.uuid4().hex
        headers = {"User-Agent": USER_AGENT, "X-Request-Id": request_id, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout if timeout is not None else self.timeout) as resp:
                payload = resp.read()
                rid = resp.headers.get("X-Request-Id") or request_id
        except urllib.error.HTTPError as e:
            try:
                payload = e.read()
            except Exception:  # noqa: BLE001 - a broken body still yields an HksError
                payload = b""
            raise self._error(e.code, e.headers, payload, request_id) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise HksConnectionError("cannot reach %s: %s" % (self.url, reason), request_id) from e
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise HksError("response is not JSON", 200, "bad_response", {}, rid) from None

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
            ra = _retry_after(headers.get("Retry-After") if headers is not None else None)
            return HksRateLimited(message, status, code, details, rid, retry_after=ra)
        if status in (401, 403):
            return HksAuthError(message, status, code, details, rid)
        return HksError(message, status, code, details, rid)


class Functions:
    """``client.functions``: run code."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def execute(self, code: Optional[str] = None, runtime: str = "python", files: Optional[FilesArg] = None,
                stdin: Optional[str] = None, args: Optional[Sequence[str]] = None,
                env: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
                memory_mb: Optional[int] = None, entry: Optional[str] = None,
                limits: Optional[Mapping[str, Any]] = None) -> ExecutionResult:
        """Run ``code`` (or ``files``) once in a fresh sandbox and return its result.

        ``files``: ``{name: str | bytes}`` (bytes are sent base64) or the API's list of
        ``{"name", "content", "encoding"}``. ``timeout`` (seconds) sets ``limits.wall_ms``,
        ``memory_mb`` sets ``limits.memory_mb``; both override the same keys of ``limits``.
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
        lim: Dict[str, Any] = dict(limits or {})
        if timeout is not None:
            lim["wall_ms"] = max(1, int(round(float(timeout) * 1000)))
        if memory_mb is not None:
            lim["memory_mb"] = int(memory_mb)
        if lim:
            body["limits"] = lim
        # the HTTP call must outlive the execution's own wall-clock limit
        http_timeout = self._client.timeout
        if "wall_ms" in lim:
            try:
                http_timeout = max(http_timeout, float(lim["wall_ms"]) / 1000.0 + 30.0)
            except (TypeError, ValueError):
                pass
        doc = self._client.request("POST", "/internal/v1/operations/execute", body, timeout=http_timeout)
        if not isinstance(doc, dict):
            raise HksError("unexpected execute response", 200, "bad_response")
        return ExecutionResult.from_dict(doc)
