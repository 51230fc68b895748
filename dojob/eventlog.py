"""The event log: one JSON object per engine event, one per line (JSON Lines).

For CI systems and log shippers. Each line is the event's fields plus three keys::

    {"schema": 1, "event": "PhaseEnded", "ts": "2024-05-01T12:00:00.123456Z",
     "job": "Popcorn", "try_number": 2, "phase": "recheck", "ok": false, "time": 0.104,
     "error_type": "RuntimeError", "error": "Still popping...", "traceback": "..."}

``schema`` is :data:`dojob.events.SCHEMA_VERSION` (bumped when a field changes
meaning or disappears; new fields and events may appear at any time, so readers
should ignore what they do not know), ``event`` the event's class name, ``ts``
the wall-clock time the line was written (ISO 8601, UTC) and ``time`` the
event's own time, in seconds since the run started. Enums are written as their
values, tuples as lists; non-ASCII text is ``\\u``-escaped, so every line is ASCII.

An ``error`` longer than 5 000 characters, or a ``traceback`` longer than
20 000, is cut there and says how much was left out. Events carry names,
numbers and messages only, never the arguments given to the
jobs, so values passed with ``--set``/``--arg`` never reach the log.

Example:
    >>> with open("run.jsonl", "w") as fh:
    ...     dojob.run(Root, observers=[EventLog(fh)])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import threading
from typing import Any, TextIO

from .events import SCHEMA_VERSION

__all__ = ["EventLog", "event_to_dict"]


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: enums as values, tuples as lists, other objects as text."""
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_to_dict(event: Any, *, ts: str | None = None) -> dict[str, Any]:
    """The JSON object of one event (see the module docstring).

    Args:
        event: an engine event (a frozen dataclass from :mod:`dojob.events`).
        ts: the wall-clock timestamp to write; default now.
    """
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "event": type(event).__name__,
        "ts": ts or _utc_now(),
    }
    if dataclasses.is_dataclass(event):
        for f in dataclasses.fields(event):
            value = getattr(event, f.name)
            limit = _LIMITS.get(f.name)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                value = f"{value[: limit - 40]}... ({len(value) - limit + 40} more characters)"
            out[f.name] = _plain(value)
    return out


#: The longest ``error`` and ``traceback`` written (characters): a try's message is in up to four events,
#: and a job whose error holds megabytes would make a log of many times that.
_LIMITS = {"error": 5_000, "traceback": 20_000}


class EventLog:
    """An observer that writes every event as one JSON line to ``stream``, flushed at once.

    Args:
        stream: a text stream opened for writing; the caller closes it.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        line = json.dumps(event_to_dict(event), allow_nan=False, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
