"""The async step loop: the steps of a try (or of the Cleanups) run on the running event loop.

:func:`arun_steps` applies the one step rule (:func:`dojob.steps.settle`) on
the loop; its caller, :class:`OnLoop`, awaits coroutine phases on the loop and
runs plain ones on daemon threads of their own (:func:`in_daemon_thread`),
each within its ``TIMEOUT`` (an awaitable a phase returns included). Loaded
by the async driver and by Cleanups on a loop, never by a plain run; asyncio
itself is imported only when a loop runs.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import CleanupTimeout, PhaseTimeout
from .events import Phase
from .steps import AWAIT, Outcome, Steps, being_cancelled, is_cancellation, is_coroutine_function, settle
from .stopping import Stop
from .tryproto import CLEANUP

if TYPE_CHECKING:
    import asyncio


class Stopped(Exception):
    """Carries a ``KeyboardInterrupt``/``SystemExit`` raised in a try out of its asyncio task.

    Raised bare, asyncio would re-raise it straight out of the event loop, past
    the driver (no report, no Cleanups); the driver unwraps it instead.
    """

    def __init__(self, stopper: BaseException) -> None:
        super().__init__(type(stopper).__name__)
        self.stopper = stopper


def _running_loop() -> asyncio.AbstractEventLoop:
    import asyncio

    return asyncio.get_running_loop()


class _Overrun(Exception):
    """Internal: a phase overran its bound."""


async def _bounded(awaitable: Awaitable[Any], seconds: float | None) -> Any:
    """Await ``awaitable`` for at most ``seconds``; raise :class:`_Overrun` past it.

    Unlike ``asyncio.wait_for``, a ``TimeoutError`` raised by the awaitable
    itself is not mistaken for an overrun: it propagates as is.
    """
    import asyncio

    if seconds is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(0.0, seconds))
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise _Overrun
    return task.result()


def in_daemon_thread(fn: Callable[..., Any], args: tuple, kwargs: dict) -> asyncio.Future:
    """Start ``fn`` on a daemon thread of its own; return a future of ``(ok, value or exception)``.

    Unlike ``asyncio.to_thread``, nothing ever joins the thread: a phase that is
    abandoned delays neither ``asyncio.run`` nor the interpreter's exit.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    future = loop.create_future()
    #: Done when the thread really ended (an abandoned phase's locks are held until then).
    future.thread_ended = ended = loop.create_future()  # type: ignore[attr-defined]
    context = contextvars.copy_context()

    def deliver(outcome: tuple[bool, Any]) -> None:
        if not future.done():  # else: cancelled, the phase was abandoned
            future.set_result(outcome)
        if not ended.done():
            ended.set_result(None)

    def work() -> None:
        try:
            outcome = (True, context.run(fn, *args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the loop
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(deliver, outcome)
        except RuntimeError:  # the loop is closed: nobody waits for this phase any more
            pass

    threading.Thread(target=work, name="dojob-phase", daemon=True).start()
    return future


class OnLoop:
    """The async caller: coroutine phases on the running loop, plain ones on a daemon thread.

    A phase (with any awaitable it returns) longer than ``timeout`` fails with
    :class:`PhaseTimeout`; with ``within``, all the steps together get that
    many seconds (the Cleanups under a run timeout): later ones fail with
    :class:`CleanupTimeout`.
    """

    def __init__(
        self,
        cwd: str | None = None,
        timeout: float | None = None,
        job: str = "?",
        within: float | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.cwd = cwd
        self.timeout = timeout
        self.job = job
        self.within = within
        #: With signals handled, a stop request ends the Cleanup being awaited.
        self.stop = stop
        self.end = None if within is None else _running_loop().time() + within

    def limit(self, phase: Phase) -> float | None:
        """Seconds this phase may take from now (None: unbounded); <= 0: do not start it."""
        import asyncio

        limit = None if phase is CLEANUP else self.timeout
        if self.end is not None:
            left = self.end - asyncio.get_running_loop().time()
            limit = left if limit is None else min(limit, left)
        return limit

    async def __call__(self, phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
        import asyncio

        limit = self.limit(phase)
        if limit is not None and limit <= 0:
            return False, CleanupTimeout(f"not started: the Cleanups' bound of {self.within:g}s had passed")
        loop = asyncio.get_running_loop()
        end = None if limit is None else loop.time() + limit
        in_thread = False
        try:
            if is_coroutine_function(fn):
                if self.cwd is not None:
                    os.chdir(self.cwd)
                awaitable = fn(*args, **kwargs)
            else:
                in_thread = True
                awaitable = in_daemon_thread(_in_dir(self.cwd, fn) if self.cwd else fn, args, kwargs)
            if self.stop is not None and phase is CLEANUP:
                stopped, value = await self._stoppable(awaitable, limit)
                if stopped:
                    return False, value
            else:
                value = await _bounded(awaitable, limit)
            if in_thread:
                ok, value = value
                if not ok:
                    return False, value
            while settle(phase, True, value, on_loop=True)[0] is AWAIT:  # the rule: await what it returned
                value = await _bounded(value, None if end is None else end - loop.time())
            return True, value
        except _Overrun:
            if phase is CLEANUP:
                fate = "its thread runs on" if in_thread else "cancelled"
                return False, CleanupTimeout(
                    f"still running when the Cleanups' bound of {self.within:g}s passed; {fate}"
                )
            overrun = PhaseTimeout(self.job, phase, self.timeout or 0.0, abandoned=in_thread)
            if in_thread:
                overrun.thread_ended = awaitable.thread_ended  # type: ignore[attr-defined]
            return False, overrun
        except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
            return False, exc

    async def _stoppable(self, awaitable: Awaitable[Any], limit: float | None) -> tuple[bool, Any]:
        """Await ``awaitable`` (bounded); a stop requested meanwhile cancels it: ``(True, the stopper)``."""
        import asyncio

        stop = self.stop
        assert stop is not None
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(awaitable)
        seen = stop.count

        def cancel() -> None:
            loop.call_soon_threadsafe(task.cancel)

        with stop.waking(cancel):
            try:
                return False, await _bounded(task, limit)
            except asyncio.CancelledError:
                if stop.count > seen and not being_cancelled():
                    return True, stop.exception
                raise


def _in_dir(cwd: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        os.chdir(cwd)
        return fn(*args, **kwargs)

    return call


async def arun_steps(steps: Steps, call: OnLoop) -> Any:
    """Run ``steps`` on the running loop through ``call``, applying :func:`settle`.

    A cancellation of this task while a Cleanup runs ends that Cleanup only; it
    is raised once every Cleanup ran.
    """
    value: Any = None
    error: BaseException | None = None
    cancellation: BaseException | None = None
    try:
        while True:
            try:
                if error is None:
                    phase, fn, args, kwargs = steps.send(value)
                else:
                    phase, fn, args, kwargs = steps.throw(error)
            except StopIteration as stop:
                if cancellation is not None:
                    raise cancellation from None
                return stop.value
            ok, got = await call(phase, fn, args, kwargs)
            if phase is CLEANUP and not ok and is_cancellation(got):
                cancellation = got
            value, error = settle(phase, ok, got, on_loop=True)
    except BaseException:
        steps.close()
        raise
