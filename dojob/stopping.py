"""A run's stop requests: Ctrl-C, SIGTERM, a stopper landing in an observer or a clock read.

An interrupt is a *state* of the run, not an exception flying through the
engine: whoever notices one (a signal handler, the event dispatcher, the
clock, a phase that raised ``KeyboardInterrupt``) calls :meth:`Stop.request`,
and the driver loop reads the state at its next turn. The first request stops
the run (nothing new starts, running tries get their bounds, Cleanups run);
a second one abandons what still runs. The first stopper is what the run
raises at the very end, after the Cleanups, with the report attached.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .errors import OptionError, Terminated

#: Exceptions that stop a run instead of failing a phase.
STOPPERS = (KeyboardInterrupt, SystemExit)


class Stop:
    """The stop state of one run, shared by the driver, the dispatcher, the clock and signal handlers.

    Attributes:
        exception: the first stopper requested, or None.
        count: how many stops were requested (2 or more: abandon what runs).
        interruptible: True while the main thread runs a phase inline, so a
            signal may end that phase (there is nothing else to end it).
    """

    __slots__ = ("exception", "count", "interruptible", "_wakers")

    def __init__(self) -> None:
        self.exception: BaseException | None = None
        self.count = 0
        self.interruptible = False
        self._wakers: list[Callable[[], None]] = []

    @property
    def reason(self) -> str:
        """The planner's word for this stop ("terminated" for SIGTERM, else "interrupted")."""
        return "terminated" if isinstance(self.exception, Terminated) else "interrupted"

    @property
    def abandon(self) -> bool:
        """A second stop was asked for: stop waiting for what still runs."""
        return self.count >= 2

    def request(self, exc: BaseException) -> None:
        """Record a stop (safe from signal handlers and worker threads) and wake whoever waits."""
        if self.exception is None:
            self.exception = exc
        self.count += 1
        for wake in tuple(self._wakers):
            with contextlib.suppress(Exception):
                wake()

    def note(self, exc: BaseException) -> None:
        """Record a stopper that already ended what it landed in (a phase): it counts as the first stop only."""
        if self.exception is None:
            self.exception = exc
        if self.count == 0:
            self.count = 1
        for wake in tuple(self._wakers):
            with contextlib.suppress(Exception):
                wake()

    @contextlib.contextmanager
    def waking(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call ``wake`` on every request made while inside the block."""
        self._wakers.append(wake)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                self._wakers.remove(wake)


def guarded(read: Callable[[], float], stop: Stop, origin: float = 0.0) -> Callable[[], float]:
    """``read() - origin``, turning a stopper landing in the read into a stop request (and reading again)."""

    def now() -> float:
        try:
            return read() - origin
        except STOPPERS as exc:
            stop.request(exc)
        return read() - origin

    return now


@contextlib.contextmanager
def handling_signals(stop: Stop, *, restore: bool = True) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM request a stop instead of killing the process.

    The first signal stops the run (it also ends a phase the main thread runs
    inline: there is no other way to end it); a second abandons what runs.
    SIGTERM stops with :class:`~dojob.errors.Terminated`. The previous handlers
    come back on exit; unless not ``restore``: then the signals are ignored from
    there on (a process about to exit: a late signal must not kill it between its
    last output and its exit status; Python's finalization would reset a handler).

    Raises:
        OptionError: not called from the main thread (Python only lets it handle signals).
    """
    if threading.current_thread() is not threading.main_thread():
        raise OptionError("handle_signals", True, "used from the main thread only (Python's signal rule)")

    def handler(signum: int, frame: Any) -> None:
        exc: BaseException = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
        stop.request(exc)
        if stop.interruptible:  # the main thread runs a phase inline: end it
            stop.interruptible = False
            raise exc

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            if not restore:
                old = signal.SIG_IGN
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
