"""Clocks: the only place the engine reads the time or waits.

Drivers take a clock so that tests of retry timing can use :class:`FakeClock`
and run instantly, with exact, repeatable times.
"""

from __future__ import annotations

import asyncio
import queue
import time
from typing import Any


class SystemClock:
    """Real time: :func:`time.monotonic` and real waits."""

    now = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def get(self, items: queue.SimpleQueue, timeout: float | None) -> Any:
        """The next item of ``items``, waiting at most ``timeout`` seconds; None if none came."""
        try:
            return items.get(timeout=timeout)
        except queue.Empty:
            return None

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait_event(self, event: asyncio.Event, timeout: float | None) -> None:
        """Wait until ``event`` is set or ``timeout`` passes."""
        if timeout is None:
            await event.wait()
            return
        try:
            await asyncio.wait_for(event.wait(), timeout)
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

    def get(self, items: queue.SimpleQueue, timeout: float | None) -> Any:
        return items.get()

    async def asleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    async def wait_event(self, event: asyncio.Event, timeout: float | None) -> None:
        await event.wait()
