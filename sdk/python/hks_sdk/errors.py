"""Exceptions raised by the HKS SDK, one class per kind of error code.

HksError
  +- HksAuthError
  |    +- AuthError          401 (no token, or one that does not verify)
  |    +- PermissionDenied   403 (the token lacks the route's scope)
  +- NotFound                404 (alias HksNotFound)
  +- Conflict                409 (a CronJob name in use, a trigger refused by Forbid)
  +- InvalidRequest          400, 413, 422 (.field names what is wrong)
  +- RateLimited             429 (retry_after; alias HksRateLimited)
  +- ServerError             500
  |    +- HksFunctionError   502 bad_gateway
  |    +- HksUnavailable     503
  +- ExecutionTimeout        504 timeout (alias HksTimeout)
  +- HksConnectionError      hksd unreachable (status 0)
"""

from typing import Any, Dict, Optional


class HksError(Exception):
    """A non-2xx answer of hksd (or, for subclasses, a failure to reach it).

    Attributes: ``status`` (HTTP status, 0 for network errors), ``code`` (the API's error code,
    e.g. ``invalid``), ``message``, ``details`` (dict, e.g. ``{"field": "runtime"}``),
    ``request_id`` (the ``X-Request-Id`` of the request) and ``attempts`` (how many times it was
    sent: more than 1 when it was retried).
    """

    attempts: int = 1

    def __init__(self, message: str, status: int = 0, code: str = "", details: Optional[Dict[str, Any]] = None,
                 request_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details: Dict[str, Any] = details or {}
        self.request_id = request_id

    def __str__(self) -> str:
        parts = []
        if self.status:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        s = "%s: %s" % (head, self.message) if head else self.message
        if self.request_id:
            s += " (request %s)" % self.request_id
        return s

    def __repr__(self) -> str:
        return "%s(status=%r, code=%r, message=%r, details=%r, request_id=%r)" % (
            type(self).__name__, self.status, self.code, self.message, self.details, self.request_id)


class HksAuthError(HksError):
    """401 (no or invalid token) or 403 (the token lacks the route's scope)."""


class AuthError(HksAuthError):
    """401 ``unauthenticated`` / ``invalid_token``: no token, or one that does not verify."""


class PermissionDenied(HksAuthError):
    """403 ``forbidden``: the token is valid but lacks the route's scope."""


class InvalidRequest(HksError):
    """400 ``malformed_json``, 413 ``too_large``, 422 ``invalid`` (``details["field"]``)."""

    @property
    def field(self) -> Optional[str]:
        """The field hksd refused (``details["field"]``: ``schedule``, ``target.task.template``,
        ...), None when it named none."""
        value = self.details.get("field")
        return value if isinstance(value, str) else None


class Conflict(HksError):
    """409 ``conflict``: the request clashes with what exists -- a CronJob name already used in
    the project, or a trigger under ``concurrency_policy="Forbid"`` while a run is going."""


class HksRateLimited(HksError):
    """429: hksd is too busy to take the request (requests waiting for a worker or for a
    function's instance, instances or functions on the host at their cap); it did not act on it.
    Raised once the client's retries are spent; ``retry_after`` is in seconds (None if not
    given)."""

    def __init__(self, message: str, status: int = 429, code: str = "", details: Optional[Dict[str, Any]] = None,
                 request_id: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message, status, code, details, request_id)
        self.retry_after = retry_after


class HksConnectionError(HksError):
    """No answer from hksd: it could not be reached (connection refused, DNS), the timeout passed,
    or the connection closed before the answer was read whole (the message then says the request
    may have been executed). ``status`` is 0."""

    def __init__(self, message: str, request_id: Optional[str] = None) -> None:
        super().__init__(message, 0, "connection_error", {}, request_id)


class HksNotFound(HksError):
    """404 ``not_found``: no such route, or no such function (unknown, deleted, reaped, or of
    another project: hksd never answers 403 for another project's function)."""


class ServerError(HksError):
    """5xx from hksd itself: an internal error, a function that gave no answer (502), the
    sandboxes unavailable (503)."""


class HksFunctionError(ServerError):
    """502 ``bad_gateway``: hksd could not get an answer from the function (its instance could not
    start, crashed while serving the request, or answered more than 16 MiB).

    A function's *own* 4xx/5xx answer is not an exception: it is ``InvocationResult.status``.
    """


class HksUnavailable(ServerError):
    """503 ``unavailable``: hksd cannot take the request right now (stopping, no sandbox could be
    used); raised once the client's retries are spent."""


class HksTimeout(HksError):
    """504 ``timeout``: a function invocation ran past the function's ``limits.wall_ms``."""


# The names of the issue and of the other SDKs, for the classes above.
NotFound = HksNotFound
RateLimited = HksRateLimited
ExecutionTimeout = HksTimeout
