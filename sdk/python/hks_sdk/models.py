"""Result types of the HKS SDK."""

import base64
import json
import logging
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from .client import Functions, LogStream

# an invocation's body: text (sent as is), bytes (sent base64) or a dict/list (sent as JSON)
Body = Union[None, str, bytes, bytearray, memoryview, Dict[str, Any], List[Any]]
# a query string ("a=1&b=2") or a mapping ({"a": 1, "b": [2, 3]})
Query = Union[str, Mapping[str, Any]]
# logs since: a datetime, unix seconds or an RFC 3339 string
Since = Union[None, datetime, int, float, str]


@dataclass
class ExecutionResult:
    """The result of one execution. The program's fate is in ``status`` (``ok``, ``error``,
    ``timeout``, ``oom``, ``output_limit``, ``killed``, ``internal_error``), never an exception."""

    id: str = ""
    runtime: str = ""
    status: str = ""
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    timeout_reason: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    peak_memory_bytes: int = 0
    oom_killed: bool = False
    message: Optional[str] = None
    warm: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ExecutionResult":
        names = {f.name for f in fields(cls)} - {"raw"}
        kw = {k: v for k, v in d.items() if k in names}
        return cls(raw=dict(d), **kw)


def parse_time(value: Any) -> Optional[datetime]:
    """An RFC 3339 time of hksd (``2026-11-29T07:00:00Z``, ``...00.123Z``) as an aware datetime;
    None for null or anything unparsable."""
    if not isinstance(value, str) or not value:
        return None
    m = _TIME_RE.match(value.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if tz in ("Z", "z"):
        zone = timezone.utc
    else:
        sign = -1 if tz[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro, tzinfo=zone)
    except ValueError:
        return None


_TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                      r"(Z|z|[+-]\d\d:\d\d)$")


@dataclass
class InvocationResult:
    """One HTTP answer of a deployed function. The function's own status (also 4xx/5xx) is in
    ``status``, never an exception; hksd's own errors (404, 429, 502, 503, 504) raise."""

    status: int = 0
    headers: Dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    duration_ms: float = 0.0
    cold_start: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True for a 2xx or 3xx answer."""
        return 200 <= self.status < 400

    @property
    def text(self) -> str:
        """The body decoded (the content-type's charset, else UTF-8; bad bytes replaced)."""
        m = re.search(r"charset=\"?([\w.:-]+)", self.headers.get("content-type", ""), re.I)
        charset = m.group(1) if m else "utf-8"
        try:
            return self.body.decode(charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (ValueError if it is not JSON)."""
        return json.loads(self.body.decode("utf-8") if self.body else "")

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "InvocationResult":
        body = d.get("body") or ""
        if d.get("body_encoding") == "base64":
            data = base64.b64decode(body)
        else:
            data = body.encode("utf-8")
        headers = d.get("headers") if isinstance(d.get("headers"), dict) else {}
        return cls(status=int(d.get("status") or 0),
                   headers={str(k).lower(): str(v) for k, v in headers.items()},
                   body=data, duration_ms=float(d.get("duration_ms") or 0.0),
                   cold_start=bool(d.get("cold_start")), raw=dict(d))


class Function:
    """A deployed function: its record's fields as attributes (``id``, ``name``, ``url``,
    ``runtime``, ``status``, ``created_at``/``expires_at``/``last_invocation_at`` as aware
    datetimes, ``invocations``, ``errors``, ``cold_starts``, ``instances``, ``limits``, ...) and the
    whole JSON record as ``record``. ``refresh()`` reloads it.

    Used as a context manager, it is deleted on exit (also when the block raises).
    """

    id: str
    name: str
    project: str
    owner: str
    runtime: str
    status: str
    url: str
    created_at: Optional[datetime]
    expires_at: Optional[datetime]
    last_invocation_at: Optional[datetime]
    ttl_seconds: Optional[int]
    code_sha256: str
    env: Dict[str, str]
    limits: Dict[str, Any]
    min_scale: Optional[int]
    max_scale: Optional[int]
    concurrency: Optional[int]
    instances: Dict[str, int]
    invocations: int
    errors: int
    cold_starts: int
    resources: Dict[str, Any]

    _TIMES = ("created_at", "expires_at", "last_invocation_at")
    _DEFAULTS: Dict[str, Any] = {
        "id": "", "name": "", "project": "", "owner": "", "runtime": "", "status": "", "url": "",
        "ttl_seconds": None, "code_sha256": "", "env": {}, "limits": {}, "min_scale": None,
        "max_scale": None, "concurrency": None, "instances": {}, "invocations": 0, "errors": 0,
        "cold_starts": 0, "resources": {},
    }

    def __init__(self, api: "Functions", record: Dict[str, Any]) -> None:
        self._api = api
        self.record: Dict[str, Any] = {}
        self._load(record)

    def _load(self, record: Dict[str, Any]) -> None:
        self.record = dict(record)
        for name, default in self._DEFAULTS.items():
            value = record.get(name, default)
            setattr(self, name, dict(value) if isinstance(value, dict) else value)
        for name in self._TIMES:
            setattr(self, name, parse_time(record.get(name)))

    def __repr__(self) -> str:
        return "Function(id=%r, name=%r, runtime=%r, status=%r, url=%r)" % (
            self.id, self.name, self.runtime, self.status, self.url)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ operations

    def invoke(self, body: Body = None, method: str = "POST", path: str = "/",
               query: Optional[Query] = None, headers: Optional[Mapping[str, str]] = None,
               timeout: Optional[float] = None) -> InvocationResult:
        """Send one HTTP request to the function (see ``client.functions.invoke``)."""
        return self._api.invoke(self.id, body=body, method=method, path=path, query=query,
                                headers=headers, timeout=timeout, _wall_ms=self.limits.get("wall_ms"))

    def refresh(self) -> "Function":
        """Reload the record (counters, instances, status) from hksd; returns self."""
        self._load(self._api._get_record(self.id))
        return self

    def logs(self, since: Since = None, tail: Optional[int] = None) -> List[Dict[str, Any]]:
        """The log lines written so far: ``[{"ts", "stream", "instance", "line"}, ...]``."""
        return self._api.logs(self.id, since=since, tail=tail)

    def follow_logs(self, since: Since = None, tail: Optional[int] = None,
                    timeout: Optional[float] = None) -> "LogStream":
        """An iterator of the log lines, then of new ones as they are written, until hksd ends
        the stream (the function is deleted or reaped) or ``.close()``. See
        ``client.functions.follow_logs``."""
        return self._api.follow_logs(self.id, since=since, tail=tail, timeout=timeout)

    def delete(self) -> bool:
        """Delete the function. Idempotent: True if this call deleted it, False if it was
        already gone (deleted, reaped)."""
        return self._api.delete(self.id, missing_ok=True)

    def __enter__(self) -> "Function":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _delete_on_exit(self, exc is not None)


def _delete_on_exit(fn: "Function", failing: bool) -> None:
    """Delete ``fn`` leaving a context. When the block is already failing, a failure to delete
    must not replace its exception: it is logged instead."""
    if not failing:
        fn.delete()
        return
    try:
        fn.delete()
    except Exception as e:  # noqa: BLE001 - the block's own exception is the one to see
        logging.getLogger("hks_sdk").warning("could not delete function %s: %s", fn.id, e)
