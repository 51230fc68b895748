"""Observers: everything that turns engine events into output.

An observer is any callable taking one event. The :class:`Dispatcher` calls
them in order, one event at a time (events may come from worker threads); an
observer that raises is dropped and logged, and the run goes on.
:class:`Trace` writes DoJobber's ``-v``/``-d`` lines; :class:`LogObserver`
sends events to the ``dojob`` logger (the library adds no handlers).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from .errors import safe_repr
from .events import (
    CleanupEnded,
    CleanupStarted,
    JobBlocked,
    JobFinished,
    LocksReleased,
    LockWait,
    Phase,
    PhaseAbandoned,
    PhaseEnded,
    PhaseStarted,
    RunStopping,
    Status,
    TryEnded,
)

logger = logging.getLogger("dojob")

Observer = Callable[[Any], None]

_CONTROL: dict[int, str] = {}  # str.translate's table for one_line, made by _control() on first use


def _control() -> dict[int, str]:
    """The escape of each character :func:`one_line` escapes.

    Made on first use: its 2 000+ entries (the surrogates) were a millisecond of every
    ``import dojob.observe``, and most runs print nothing that needs escaping.
    """
    if not _CONTROL:
        table = {c: f"\\x{c:02x}" for c in range(32) if c not in (9,)}
        table[127] = "\\x7f"
        table.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
        # bidi overrides and isolates could make a line display other than it reads; line separators break it
        table.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)})
        # lone surrogates cannot even be written to a UTF-8 stream
        table.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)})
        _CONTROL.update(table)
    return _CONTROL


def one_line(text: str, limit: int = 2000) -> str:
    """``text`` made safe for one terminal line: control characters (newlines, ANSI escapes) escaped."""
    if not text.isprintable():
        text = text.translate(_control())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class Dispatcher:
    """Calls every observer with every event, serialised; drops an observer that raises.

    A ``KeyboardInterrupt``/``SystemExit`` raised in an observer (a Ctrl-C that
    landed there) does not fly through the engine: the event still reaches the
    other observers, and the stopper goes to ``on_stop`` (the run's stop state);
    without ``on_stop`` it is raised after them.
    """

    def __init__(
        self, observers: Iterable[Observer] = (), *, on_stop: Callable[[BaseException], None] | None = None
    ) -> None:
        self._observers = list(observers)
        self._lock = threading.RLock()
        self._on_stop = on_stop

    def __bool__(self) -> bool:
        return bool(self._observers)

    def add(self, observer: Observer) -> None:
        with self._lock:
            self._observers.append(observer)

    def emit(self, event: Any) -> None:
        stopper: BaseException | None = None
        with self._lock:
            for observer in tuple(self._observers):
                try:
                    observer(event)
                except (KeyboardInterrupt, SystemExit) as exc:
                    stopper = stopper or exc
                except BaseException:  # not only Exception: nothing an observer raises may break the run
                    self._drop(observer, event)
        if stopper is not None:
            if self._on_stop is None:
                raise stopper
            self._on_stop(stopper)

    def _drop(self, observer: Observer, event: Any) -> None:
        with contextlib.suppress(ValueError):
            self._observers.remove(observer)
        try:
            logger.exception(
                "dojob: observer %s raised on %s; it is dropped", safe_repr(observer), type(event).__name__
            )
        except Exception:  # noqa: BLE001 - a broken logging setup must not break the run either
            pass


class Trace:
    """DoJobber's trace on stderr: ``Name.check: pass``, ``Name.recheck: fail "why"``.

    Args:
        debug: also write the indented traceback of every failing phase, the
            Cleanup lines and retry scheduling.
        stream: where to write; default ``sys.stderr`` at the time of writing.
    """

    def __init__(self, *, debug: bool = False, stream: TextIO | None = None) -> None:
        self.debug = debug
        self.stream = stream

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def _traceback(self, tb: str | None) -> None:
        if self.debug and tb:  # the message inside may hold escapes: made safe line by line
            self._write("  Error was:\n  " + "\n  ".join(one_line(line) for line in tb.split("\n")))

    def __call__(self, event: Any) -> None:
        kind = type(event)
        if kind is PhaseEnded:
            name = one_line(event.job)
            phase = event.phase
            if event.ok:
                self._write(f"{name}.{phase.value}: pass")
                return
            if phase is Phase.RECHECK or phase is Phase.INIT:
                self._write(f'{name}.{phase.value}: fail "{one_line(event.error or "")}"')
            else:
                self._write(f"{name}.{phase.value}: fail")
            self._traceback(event.traceback)
        elif kind is CleanupStarted:
            if self.debug:
                self._write(f"{one_line(event.job)}.cleanup running")
        elif kind is CleanupEnded:
            if event.ok:
                if self.debug:
                    self._write(f"{one_line(event.job)}.cleanup: pass")
            else:
                self._write(f'{one_line(event.job)}.cleanup: fail "{one_line(event.error or "")}"')
                self._traceback(event.traceback)
        elif kind is TryEnded:
            if self.debug and event.retry_at is not None:
                self._write(f"  {one_line(event.job)} will retry at t={event.retry_at:.3f}s")
        elif kind is JobBlocked:
            if self.debug:
                self._write(f"  {one_line(event.job)} blocked by {one_line(event.blocked_by)}")
        elif kind is PhaseStarted:
            if self.debug and event.worker not in (None, "MainThread") and event.phase is not Phase.RECHECK:
                self._write(f"  {one_line(event.job)} try {event.try_number} {event.phase.value} on {event.worker}")
        elif kind is PhaseAbandoned:
            where = f" on {one_line(event.worker)}" if event.worker else ""
            held = f", still holding {one_line(', '.join(event.holding))}" if event.holding else ""
            self._write(f"{one_line(event.job)}.{event.phase.value}: abandoned (thread{where} runs on{held})")
        elif kind is LocksReleased:
            if self.debug:
                self._write(
                    f"  {one_line(event.job)}: abandoned thread ended, released {one_line(', '.join(event.released))}"
                )
        elif kind is LockWait:
            if self.debug:
                held = ", ".join((*event.claims, *event.uses))
                self._write(f"  {one_line(event.job)} waits for lock(s): {one_line(held)}")
        elif kind is JobFinished:
            if event.status is Status.SKIPPED:  # never silent: it was not even checked
                self._write(f"{one_line(event.job)}: skipped (--skip: treated as satisfied, not checked)")
        elif kind is RunStopping:
            who = f" ({one_line(event.job)})" if event.job else ""
            self._write(f"run stopping: {one_line(event.reason)}{who}")


def log_regardless(log: logging.Logger, level: int, msg: str, *args: Any) -> None:
    """Log through ``log``'s handlers whatever its own level (the caller decided: a DoJobber's
    ``dojobber_loglevel``; setting the logger's level would change every other run's too)."""
    log.handle(log.makeRecord(log.name, level, __file__, 0, msg, args, None))


class LogObserver:
    """Sends every event to the ``dojob`` logger at DEBUG level (``regardless``: whatever its level)."""

    def __init__(self, log: logging.Logger = logger, *, regardless: bool = False) -> None:
        self.log = log
        self.regardless = regardless

    def __call__(self, event: Any) -> None:
        if self.regardless:
            log_regardless(self.log, logging.DEBUG, "%r", event)
        else:
            self.log.debug("%r", event)
