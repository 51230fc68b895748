"""Clocks: the only place the engine reads the time or waits.

Drivers take a clock so that tests of retry timing can use :class:`FakeClock`
and run instantly, with exact, repeatable times.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import asyncio

#: The longest single wait: the OS's limit (a longer bound, e.g. ``TIMEOUT=1e10``, waits in turns).
MAX_WAIT = min(threading.TIMEOUT_MAX, 86400.0)


class Clock(Protocol):
    """What the engine needs of a clock (see :class:`SystemClock`, :class:`FakeClock`)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def get(self, items: queue.SimpleQueue, timeout: float | None) -> Any: ...

    def idle(self, items: queue.SimpleQueue, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...

    async def wait_event(self, event: asyncio.Event, timeout: float | None) -> None: ...


class SystemClock:
    """Real time: :func:`time.monotonic` and real waits."""

    now = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(min(seconds, MAX_WAIT))

    def get(self, items: queue.SimpleQueue, timeout: float | None) -> Any:
        """The next item of ``items``, waiting at most ``timeout`` seconds; None if none came."""
        try:
            return items.get(timeout=None if timeout is None else min(max(timeout, 0.0), MAX_WAIT))
        except queue.Empty:
            return None

    def idle(self, items: queue.SimpleQueue, seconds: float) -> None:
        """Nothing runs: wait ``seconds``, or less if something is put in ``items`` (a stop request)."""
        if seconds > 0:
            self.get(items, seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # (in the async methods only: a plain run never loads asyncio)

        await asyncio.sleep(max(0.0, seconds))

    async def wait_event(self, event: asyncio.Event, timeout: float | None) -> None:
        """Wait until ``event`` is set or ``timeout`` passes."""
        if timeout is None:
            await event.wait()
            return
        import asyncio

        try:
            await asyncio.wait_for(event.wait(), min(timeout, MAX_WAIT))
        except asyncio.TimeoutError:
            pass


class FakeClock(SystemClock):
    """Virtual time for tests: sleeping advances the clock instantly.

    Time passes only while nothing is running: a driver that waits on running
    jobs waits for the first of them to finish, in real time, without advancing
    the clock. Jobs can read ``clock.now()`` to record when they ran.

    Args:
        start: the initial time.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backwards)."""
        if seconds > 0:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def idle(self, items: queue.SimpleQueue, seconds: float) -> None:
        self.advance(seconds)

    def get(self, items: queue.SimpleQueue, timeout: float | None) -> Any:
        return items.get()

    async def asleep(self, seconds: float) -> None:
        self.advance(seconds)
        import asyncio

        await asyncio.sleep(0)

    async def wait_event(self, event: asyncio.Event, timeout: float | None) -> None:
        await event.wait()
