"""CronJobs: a deployed function invoked, or a command run over a function's code, on a schedule
(``client.cronjobs``; docs/api.md, "CronJobs")."""

import copy
import json
import time
import urllib.parse
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import HksError, HksNotFound
from .models import Function, parse_time

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

CRONJOBS = "/internal/v1/cronjobs"

# a function given as itself or by id (fn-...)
FunctionRef = Union[Function, str]
# the body of a scheduled invocation: text as is, a dict/list as JSON
CallBody = Union[str, Dict[str, Any], List[Any]]


@dataclass
class TaskSpec:
    """A task target: ``command`` (with ``args``) run once per run in a fresh sandbox over the
    code of ``template`` (a deployed function, or its id), with its runtime, env and limits;
    ``env`` is added over the template's, ``timeout_seconds`` ends a run (hksd's default 300)."""

    template: FunctionRef
    command: Sequence[str]
    args: Optional[Sequence[str]] = None
    env: Optional[Mapping[str, str]] = None
    timeout_seconds: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The API's ``target.task`` object."""
        if isinstance(self.command, str):
            raise TypeError("task command must be a list of strings, e.g. ['python3', 'job.py']")
        doc: Dict[str, Any] = {"template": _function_id(self.template, "task template"),
                               "command": [str(c) for c in self.command]}
        if self.args is not None:
            doc["args"] = [str(a) for a in self.args]
        if self.env is not None:
            doc["env"] = {str(k): str(v) for k, v in self.env.items()}
        if self.timeout_seconds is not None:
            doc["timeout_seconds"] = int(self.timeout_seconds)
        return doc


TaskArg = Union[TaskSpec, Mapping[str, Any]]


@dataclass
class CronJobRun:
    """One run of a CronJob. Its fate is ``status`` (``running``, ``succeeded``, ``failed``) and
    ``reason`` (``exit code 0``, ``HTTP 500``, ``timed out after 60 s``, ...), never an
    exception; ``logs`` is the end of its output (a task's stdout and stderr; for a function
    ``HTTP <status>`` and the answer's body)."""

    id: str = ""
    number: int = 0
    cronjob_id: str = ""
    trigger: str = ""
    status: str = ""
    reason: Optional[str] = None
    scheduled_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    duration_ms: Optional[int] = None
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    http_status: Optional[int] = None
    peak_memory_bytes: Optional[int] = None
    cpu_ms: Optional[int] = None
    log_bytes: Optional[int] = None
    log_truncated: bool = False
    logs: str = ""
    logs_cut: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _TIMES = ("scheduled_at", "started_at", "finished_at")

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def finished(self) -> bool:
        """True once the run is over (succeeded or failed)."""
        return self.status not in ("", "running")

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "CronJobRun":
        names = {f.name for f in fields(cls)} - {"raw"}
        kw = {k: v for k, v in d.items() if k in names and v is not None}
        for name in cls._TIMES:
            kw[name] = parse_time(d.get(name))
        return cls(raw=dict(d), **kw)


class CronJob:
    """A CronJob: its view's fields as attributes (``id``, ``name``, ``schedule``, ``timezone``,
    ``concurrency_policy``, ``suspended`` (the field ``suspend``), ``starting_deadline_seconds``,
    ``successful_jobs_history_limit``, ``failed_jobs_history_limit``, ``target``, ``project``,
    ``owner``, ``backend``, ``last_result``, ``active_runs``, ``missed_runs``, ``skipped_runs``,
    ``runs_kept``; ``created_at``, ``updated_at``, ``next_run_at``, ``last_schedule_at``,
    ``last_run_at`` as aware datetimes) and the whole JSON view as ``record``. The methods that
    change it (``update``, ``suspend``, ``resume``) reload it from hksd's answer; ``refresh()``
    reloads it."""

    id: str
    name: str
    project: str
    owner: str
    backend: str
    schedule: str
    timezone: str
    concurrency_policy: str
    suspended: bool
    starting_deadline_seconds: Optional[int]
    successful_jobs_history_limit: int
    failed_jobs_history_limit: int
    target: Dict[str, Any]
    last_result: Optional[str]
    active_runs: List[str]
    missed_runs: int
    skipped_runs: int
    runs_kept: int
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    next_run_at: Optional[datetime]
    last_schedule_at: Optional[datetime]
    last_run_at: Optional[datetime]

    _TIMES = ("created_at", "updated_at", "next_run_at", "last_schedule_at", "last_run_at")
    _DEFAULTS: Dict[str, Any] = {
        "id": "", "name": "", "project": "", "owner": "", "backend": "", "schedule": "",
        "timezone": "", "concurrency_policy": "", "starting_deadline_seconds": None,
        "successful_jobs_history_limit": 0, "failed_jobs_history_limit": 0, "target": {},
        "last_result": None, "active_runs": [], "missed_runs": 0, "skipped_runs": 0,
        "runs_kept": 0,
    }

    def __init__(self, api: "CronJobs", record: Dict[str, Any]) -> None:
        self._api = api
        self.record: Dict[str, Any] = {}
        self._load(record)

    def _load(self, record: Dict[str, Any]) -> None:
        self.record = dict(record)
        for name, default in self._DEFAULTS.items():
            value = record.get(name, default)
            setattr(self, name, copy.deepcopy(value))
        self.suspended = bool(record.get("suspend"))
        for name in self._TIMES:
            setattr(self, name, parse_time(record.get(name)))

    def __repr__(self) -> str:
        return "CronJob(id=%r, name=%r, schedule=%r, timezone=%r, suspended=%r)" % (
            self.id, self.name, self.schedule, self.timezone, self.suspended)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronJob) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ operations

    def refresh(self) -> "CronJob":
        """Reload the view (status, next and last runs) from hksd; returns self."""
        self._load(self._api._get_record(self.id))
        return self

    def runs(self, limit: Optional[int] = None, log_bytes: Optional[int] = None) -> List[CronJobRun]:
        """The runs going, then the finished ones kept, newest first (``client.cronjobs.runs``)."""
        return self._api.runs(self.id, limit=limit, log_bytes=log_bytes)

    def trigger(self, wait: bool = False, timeout: Optional[float] = None,
                log_bytes: Optional[int] = None) -> CronJobRun:
        """Start a run now (``client.cronjobs.trigger``). With ``wait``, poll until it is over
        and return it finished; ``timeout`` defaults to the task's ``timeout_seconds`` (a
        function's: 300) plus 60 s."""
        if wait and timeout is None:
            timeout = _run_limit(self.target) + 60.0
        return self._api.trigger(self.id, wait=wait, timeout=timeout, log_bytes=log_bytes)

    def update(self, **changes: Any) -> "CronJob":
        """Change fields (the keyword arguments of ``client.cronjobs.update``); returns self,
        reloaded from hksd's answer. A refused change (InvalidRequest) leaves it as it was."""
        self._load(self._api._update_record(self.id, **changes))
        return self

    def suspend(self) -> "CronJob":
        """No scheduled run starts until ``resume()`` (manual triggers still do)."""
        return self.update(suspend=True)

    def resume(self) -> "CronJob":
        """Schedule runs again, from now on (of the times missed only the latest may run)."""
        return self.update(suspend=False)

    def delete(self) -> bool:
        """Delete it, cancelling its runs going. Idempotent: True if this call deleted it, False
        if it was already gone."""
        return self._api.delete(self.id, missing_ok=True)


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class CronJobs:
    """``client.cronjobs``: ``create``, ``list``, ``get``, ``update``, ``suspend``, ``resume``,
    ``runs``, ``trigger``, ``delete``. A CronJob is named by its id (``cj-...``) or its name."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    def create(self, name: str, schedule: str, *, function: Optional[FunctionRef] = None,
               task: Optional[TaskArg] = None, method: Optional[str] = None,
               path: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
               body: Optional[CallBody] = None, timezone: str = "UTC",
               concurrency_policy: str = "Allow", suspend: bool = False,
               starting_deadline_seconds: Optional[int] = None,
               successful_jobs_history_limit: Optional[int] = None,
               failed_jobs_history_limit: Optional[int] = None,
               request_timeout: Optional[float] = None) -> CronJob:
        """Create a CronJob running ``function`` (invoked with ``method``, ``path``, ``headers``,
        ``body``: a str as is, a dict/list as JSON) or ``task`` (a TaskSpec or the API's dict)
        on ``schedule`` (5-field cron or a preset like ``@daily``) in ``timezone``.

        The history limits default to hksd's (3 succeeded, 1 failed); ``starting_deadline_seconds``
        None means no deadline. A name already used raises Conflict (409), a refused field
        InvalidRequest (422) whose ``.field`` names it (``schedule``, ``target.task.template``).
        """
        doc: Dict[str, Any] = {"name": name, "schedule": schedule, "timezone": timezone,
                               "concurrency_policy": concurrency_policy, "suspend": suspend,
                               "target": _target(function, task, method, path, headers, body)}
        if starting_deadline_seconds is not None:
            doc["starting_deadline_seconds"] = starting_deadline_seconds
        if successful_jobs_history_limit is not None:
            doc["successful_jobs_history_limit"] = successful_jobs_history_limit
        if failed_jobs_history_limit is not None:
            doc["failed_jobs_history_limit"] = failed_jobs_history_limit
        return CronJob(self, _view(self._client.request("POST", CRONJOBS, doc, timeout=request_timeout)))

    def list(self, request_timeout: Optional[float] = None) -> List[CronJob]:
        """The CronJobs of the token's project, sorted by name."""
        doc = self._client.request("GET", CRONJOBS, timeout=request_timeout)
        items = doc.get("cronjobs") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise HksError("unexpected list response", 200, "bad_response")
        return [CronJob(self, _view(r)) for r in items]

    def get(self, id_or_name: str, request_timeout: Optional[float] = None) -> CronJob:
        """The CronJob with this id or name (HksNotFound if none in the token's project)."""
        return CronJob(self, self._get_record(id_or_name, request_timeout))

    def update(self, id_or_name: str, *, schedule: Any = _UNSET, timezone: Any = _UNSET,
               concurrency_policy: Any = _UNSET, suspend: Any = _UNSET,
               starting_deadline_seconds: Any = _UNSET,
               successful_jobs_history_limit: Any = _UNSET, failed_jobs_history_limit: Any = _UNSET,
               function: Optional[FunctionRef] = None, task: Optional[TaskArg] = None,
               method: Optional[str] = None, path: Optional[str] = None,
               headers: Optional[Mapping[str, str]] = None, body: Optional[CallBody] = None,
               request_timeout: Optional[float] = None) -> CronJob:
        """Change the fields given (those of ``create`` but ``name``); the others stay. A new
        target (``function=`` with its ``method``/``path``/``headers``/``body``, or ``task=``)
        replaces the old one whole. ``starting_deadline_seconds=None`` removes the deadline."""
        return CronJob(self, self._update_record(
            id_or_name, schedule=schedule, timezone=timezone, concurrency_policy=concurrency_policy,
            suspend=suspend, starting_deadline_seconds=starting_deadline_seconds,
            successful_jobs_history_limit=successful_jobs_history_limit,
            failed_jobs_history_limit=failed_jobs_history_limit, function=function, task=task,
            method=method, path=path, headers=headers, body=body, request_timeout=request_timeout))

    def suspend(self, id_or_name: str) -> CronJob:
        """``update(id_or_name, suspend=True)``."""
        return self.update(id_or_name, suspend=True)

    def resume(self, id_or_name: str) -> CronJob:
        """``update(id_or_name, suspend=False)``."""
        return self.update(id_or_name, suspend=False)

    def delete(self, id_or_name: str, missing_ok: bool = False,
               request_timeout: Optional[float] = None) -> bool:
        """Delete the CronJob (its runs going are cancelled, its history removed): True when
        deleted. An unknown one raises HksNotFound, or returns False with ``missing_ok``."""
        try:
            self._client.request("DELETE", _path(id_or_name), timeout=request_timeout)
        except HksNotFound:
            if missing_ok:
                return False
            raise
        return True

    def runs(self, id_or_name: str, limit: Optional[int] = None, log_bytes: Optional[int] = None,
             request_timeout: Optional[float] = None) -> List[CronJobRun]:
        """The runs going, then the finished ones kept, newest first, with the last
        ``log_bytes`` of their logs (hksd's default 65536, at most 262144). ``limit``: at most
        that many runs."""
        params = [(k, str(int(v))) for k, v in (("limit", limit), ("log_bytes", log_bytes))
                  if v is not None]
        query = "?" + urllib.parse.urlencode(params) if params else ""
        doc = self._client.request("GET", _path(id_or_name, "/runs") + query, timeout=request_timeout)
        items = doc.get("runs") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise HksError("unexpected runs response", 200, "bad_response")
        return [CronJobRun.from_dict(r) for r in items if isinstance(r, dict)]

    def trigger(self, id_or_name: str, wait: bool = False, timeout: Optional[float] = None,
                log_bytes: Optional[int] = None, poll_interval: float = 0.5,
                request_timeout: Optional[float] = None) -> CronJobRun:
        """Start a run now (``trigger: manual``; also while suspended) and return it running.
        Under ``concurrency_policy="Forbid"`` with a run going this raises Conflict (409).

        With ``wait``, poll ``runs`` every ``poll_interval`` seconds until this run is over and
        return it finished (see ``.succeeded``, ``.reason``, ``.logs``). ``timeout``: seconds to
        wait, by default the task's ``timeout_seconds`` (a function's: 300) plus 60; past it
        TimeoutError is raised (the run goes on). A run whose history limit is 0 is not kept once
        over: that raises HksError (code ``run_not_kept``)."""
        doc = self._client.request("POST", _path(id_or_name, "/trigger"), timeout=request_timeout)
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise HksError("unexpected trigger response", 200, "bad_response")
        run = CronJobRun.from_dict(doc)
        if not wait or run.finished:
            return run
        if timeout is None:
            timeout = _run_limit(self._get_record(id_or_name, request_timeout).get("target")) + 60.0
        return self._wait(id_or_name, run, timeout, log_bytes, poll_interval, request_timeout)

    def _wait(self, ref: str, run: CronJobRun, timeout: float, log_bytes: Optional[int],
              poll_interval: float, request_timeout: Optional[float]) -> CronJobRun:
        deadline = time.monotonic() + timeout
        while True:
            listed = [r for r in self.runs(ref, log_bytes=log_bytes, request_timeout=request_timeout)
                      if r.id == run.id]
            if not listed:  # runs going are always listed: it is over, and was not kept
                raise HksError("run %s is over but hksd did not keep it (the CronJob's "
                               "successful_jobs_history_limit or failed_jobs_history_limit is "
                               "reached)" % run.id, 200, "run_not_kept")
            if listed[0].finished:
                return listed[0]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("run %s still running after %gs" % (run.id, timeout))
            time.sleep(min(max(poll_interval, 0.05), left))

    def _get_record(self, ref: str, request_timeout: Optional[float] = None) -> Dict[str, Any]:
        return _view(self._client.request("GET", _path(ref), timeout=request_timeout))

    def _update_record(self, ref: str, function: Optional[FunctionRef] = None,
                       task: Optional[TaskArg] = None, method: Optional[str] = None,
                       path: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
                       body: Optional[CallBody] = None, request_timeout: Optional[float] = None,
                       **settings: Any) -> Dict[str, Any]:
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise TypeError("update() got unexpected keyword argument(s) %s; fields: %s" % (
                ", ".join(unknown), ", ".join(sorted(_SETTINGS | {"function", "task"}))))
        doc = {k: v for k, v in settings.items() if v is not _UNSET}
        if function is not None or task is not None:
            doc["target"] = _target(function, task, method, path, headers, body)
        elif (method, path, headers, body) != (None, None, None, None):
            raise TypeError("method=, path=, headers= and body= go with function= (the target "
                            "is replaced whole)")
        return _view(self._client.request("PATCH", _path(ref), doc, timeout=request_timeout))


_SETTINGS = frozenset({"schedule", "timezone", "concurrency_policy", "suspend",
                       "starting_deadline_seconds", "successful_jobs_history_limit",
                       "failed_jobs_history_limit"})


def _target(function: Optional[FunctionRef], task: Optional[TaskArg], method: Optional[str],
            path: Optional[str], headers: Optional[Mapping[str, str]],
            body: Optional[CallBody]) -> Dict[str, Any]:
    """The API's ``target`` of create/update: exactly one of a function and a task."""
    if (function is None) == (task is None):
        raise TypeError("a CronJob runs either function= or task=: give exactly one")
    if task is not None:
        if (method, path, headers, body) != (None, None, None, None):
            raise TypeError("method=, path=, headers= and body= go with function=, not task=")
        if isinstance(task, TaskSpec):
            return {"task": task.to_dict()}
        if isinstance(task, Mapping):
            t = dict(task)
            if isinstance(t.get("template"), Function):
                t["template"] = t["template"].id
            return {"task": t}
        raise TypeError("task must be a TaskSpec or a dict, not %s" % type(task).__name__)
    call: Dict[str, Any] = {"id": _function_id(function, "function")}
    hdrs = {str(k): str(v) for k, v in (headers or {}).items()}
    if method is not None:
        call["method"] = method.upper()
    if path is not None:
        call["path"] = path if path.startswith("/") else "/" + path
    if body is not None:
        if isinstance(body, (dict, list)):
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["content-type"] = "application/json"
            call["body"] = json.dumps(body)
        elif isinstance(body, str):
            call["body"] = body
        else:
            raise TypeError("body must be str, dict or list, not %s" % type(body).__name__)
    if hdrs:
        call["headers"] = hdrs
    return {"function": call}


def _function_id(value: Any, what: str) -> str:
    if isinstance(value, Function):
        return value.id
    if not isinstance(value, str) or not value:
        raise TypeError("%s must be a Function or its id (fn-...), not %r" % (what, value))
    return value


def _path(ref: str, suffix: str = "") -> str:
    if isinstance(ref, CronJob):
        ref = ref.id
    if not isinstance(ref, str) or not ref:
        raise TypeError("a CronJob id (cj-...) or name is required")
    return "%s/%s%s" % (CRONJOBS, urllib.parse.quote(ref, safe=""), suffix)


def _view(doc: Any) -> Dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise HksError("unexpected CronJob record", 200, "bad_response")
    return doc


def _run_limit(target: Any) -> float:
    """How long one run of ``target`` may take at most, in seconds, as far as the view says."""
    task = target.get("task") if isinstance(target, dict) else None
    if isinstance(task, dict) and isinstance(task.get("timeout_seconds"), (int, float)):
        return float(task["timeout_seconds"])
    return 300.0
