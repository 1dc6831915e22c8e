"""When the client sends a request again, and how long it waits first.

A request is sent again only when it is known not to have been acted on:

- hksd answered **429** (``overloaded``) or **503** (``unavailable``) in its own JSON error. hksd
  sends these before acting on the request: 429 when its queue of requests waiting for a worker
  is full (api/server.c), when a function's queue of requests waiting for an instance is full or
  the host runs as many instances as it may (daemon/instances.c: nothing was forwarded to the
  function), when the host holds as many functions as it may (deploy: nothing was created); 503
  when hksd is stopping or out of memory before the request went anywhere, or, for ``execute``,
  when no sandbox could run the code -- an execution runs in a fresh sandbox without network whose
  files are thrown away, so running it again cannot repeat an effect outside it. A 429/503 that is
  not hksd's own error (a proxy's, say) is retried for GET/HEAD/PUT/DELETE/OPTIONS only.
- the request never reached the server whole (connection refused, reset while writing): hksd
  acts only on whole requests.
- a keep-alive connection turned out closed by the server: see transport.py (one more try on a
  fresh connection, not counted here).

Never again: other 4xx/5xx answers, timeouts (the caller's timeout is the budget), and a
connection lost after the request was written (a POST may have run: HksConnectionError says so).

The wait before retry ``n`` (0-based) is the answer's ``Retry-After`` (seconds or an HTTP date)
when it has one, else ``d/2 + random() * d/2`` with ``d = min(backoff_max, backoff_base * 2**n)``
(exponential backoff with jitter, so that clients turned away together do not come back
together). At most ``max_retries`` retries, and at most ``max_retry_wait`` seconds of waiting in
all: when the next wait would go past it (a long Retry-After), the error is raised at once, its
``retry_after`` telling the caller how long hksd asked to wait.
"""

import datetime
import email.utils
import math
import time
from typing import Callable, Optional

from .transport import IDEMPOTENT_METHODS

# hksd's own error codes of its 429 and 503 answers
_HKSD_CODES = {429: "overloaded", 503: "unavailable"}


class RetryPolicy:
    """The retry settings of a client (see the module's docstring for the rules)."""

    def __init__(self, max_retries: int = 3, backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_retry_wait: float = 60.0) -> None:
        for name, value in (("backoff_base", backoff_base), ("backoff_max", backoff_max),
                            ("max_retry_wait", max_retry_wait)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    not math.isfinite(value) or value < 0:
                raise ValueError("hks_sdk: %s must be a finite number of seconds >= 0, not %r"
                                 % (name, value))
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("hks_sdk: max_retries must be an int >= 0, not %r" % (max_retries,))
        self.max_retries = max_retries
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_retry_wait = float(max_retry_wait)

    def __repr__(self) -> str:
        return "RetryPolicy(max_retries=%d, backoff_base=%g, backoff_max=%g, max_retry_wait=%g)" % (
            self.max_retries, self.backoff_base, self.backoff_max, self.max_retry_wait)

    def backoff(self, retry: int, random: Callable[[], float]) -> float:
        """The wait before retry number ``retry`` (0-based) when the server named none."""
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** min(retry, 62)))
        return ceiling / 2 + random() * ceiling / 2

    def allows(self, retries_done: int, waited: float, delay: float) -> bool:
        """Whether one more retry after ``delay`` seconds fits the caps."""
        return retries_done < self.max_retries and waited + delay <= self.max_retry_wait


def retryable_status(method: str, status: int, code: str) -> bool:
    """Whether an answer of ``status`` with the error ``code`` means "not done, try later"."""
    if status not in _HKSD_CODES:
        return False
    return code == _HKSD_CODES[status] or method.upper() in IDEMPOTENT_METHODS


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` in seconds from now: a number of seconds or an HTTP date (a date in the
    past is 0). None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC, as every HTTP date is
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
