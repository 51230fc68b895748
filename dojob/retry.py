"""Retry policies: how long a failed job waits before its next try, and which failures deserve one.

DoJobber's rule is the default: the next try may start ``RETRY_DELAY`` seconds
after the previous one *started*, for any exception. A job may refine it with
``RETRY_BACKOFF`` (the delay grows by this factor after each try),
``RETRY_MAX_DELAY`` (a cap on it), ``RETRY_JITTER`` (up to this fraction of the
delay is added at random, so that many jobs failing together do not retry in
lockstep), ``RETRY_ON`` (only these exception types are retried; any other
fails the job at once) and ``RETRY_FROM = "end"`` (count the delay from the end
of the failed try, so a slow try is not retried back-to-back). A job that sets
none of them has no policy object at all: the planner's fast path is DoJobber's.
"""

from __future__ import annotations

import math
import random
from numbers import Real
from typing import Any, NamedTuple

from .errors import DojobError, JobAttributeError


class RetryPolicy(NamedTuple):
    """A job's validated retry policy (None on a spec means DoJobber's rule)."""

    backoff: float = 1.0
    max_delay: float | None = None
    jitter: float = 0.0
    on: tuple[type[BaseException], ...] | None = None
    from_end: bool = False

    def delay(self, base: float, tries: int, rng: random.Random) -> float:
        """Seconds to wait after try number ``tries`` failed, with ``base`` the job's RETRY_DELAY."""
        d = base * self.backoff ** (tries - 1) if self.backoff != 1 else base
        if self.max_delay is not None and d > self.max_delay:
            d = self.max_delay
        if self.jitter:
            d += d * self.jitter * rng.random()
            if self.max_delay is not None and d > self.max_delay:
                d = self.max_delay
        return d

    def refuses(self, exception: BaseException | None) -> str | None:
        """Why ``exception`` must not be retried under RETRY_ON, or None if it may be.

        RETRY_ON judges the job's own failures: one dojob reports itself (a
        :class:`~dojob.errors.DojobError`, e.g. a lost worker) is always retried.
        """
        if self.on is None or exception is None or isinstance(exception, (*self.on, DojobError)):
            return None
        allowed = ", ".join(t.__name__ for t in self.on) or "nothing"
        return f"not retried: {type(exception).__name__} is not in RETRY_ON ({allowed})"

    def describe(self, base: float) -> str:
        """A short text for ``dojob list``, e.g. ``"1s x2 <=30s +10% on OSError, from end"``."""
        parts = [f"{base:g}s"]
        if self.backoff != 1:
            parts.append(f"x{self.backoff:g}")
        if self.max_delay is not None:
            parts.append(f"<={self.max_delay:g}s")
        if self.jitter:
            parts.append(f"+{self.jitter * 100:g}%")
        if self.on is not None:
            parts.append("on " + "|".join(t.__name__ for t in self.on))
        if self.from_end:
            parts.append("from end")
        return " ".join(parts)


def _number(name: str, attribute: str, value: Any, low: float, high: float, expected: str) -> float:
    if isinstance(value, Real) and not isinstance(value, bool):
        f = float(value)
        if math.isfinite(f) and low <= f <= high:
            return f
    raise JobAttributeError(name, attribute, value, expected)


def check_policy(name: str, cls: Any) -> RetryPolicy | None:
    """The retry policy of job ``cls`` (called ``name``), validated; None when it is DoJobber's.

    Raises:
        JobAttributeError: a RETRY_* attribute has a bad value (the error names the job).
    """
    backoff, max_delay, jitter = cls.RETRY_BACKOFF, cls.RETRY_MAX_DELAY, cls.RETRY_JITTER
    on, start = cls.RETRY_ON, cls.RETRY_FROM
    if backoff == 1 and max_delay is None and jitter == 0 and on is None and start == "start":
        if type(backoff) is int or type(backoff) is float:
            if type(jitter) is int or type(jitter) is float:
                return None
    backoff = _number(name, "RETRY_BACKOFF", backoff, 1, math.inf, "a finite number >= 1")
    if max_delay is not None:
        max_delay = _number(name, "RETRY_MAX_DELAY", max_delay, 0, math.inf, "None or a finite number of seconds >= 0")
    jitter = _number(name, "RETRY_JITTER", jitter, 0, 1, "a fraction between 0 and 1")
    if on is not None:
        if isinstance(on, type):
            on = (on,)
        if not isinstance(on, (tuple, list, frozenset, set)) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in on
        ):
            raise JobAttributeError(name, "RETRY_ON", cls.RETRY_ON, "None or a tuple of exception classes")
        on = tuple(on)
    if start not in ("start", "end"):
        raise JobAttributeError(name, "RETRY_FROM", start, "'start' or 'end'")
    policy = RetryPolicy(backoff, max_delay, jitter, on, start == "end")
    return None if policy == _DOJOBBER else policy


_DOJOBBER = RetryPolicy()
