"""The step rule and the step loops: how the steps of a try (or of the Cleanups) are run.

:func:`settle` is the one place that decides what a phase's outcome means: a
value goes back into the steps; an exception is thrown in (a ``GeneratorExit``
wrapped, so it reads as a failure, not as the steps being closed); a stopper
(``KeyboardInterrupt``, ``SystemExit``, and on an event loop a cancellation of
the task) ends the steps and propagates, except from a Cleanup, which it ends
alone; a sync phase that returns an awaitable fails (the awaitable is closed);
an async one has it awaited, within the same bound.

:func:`run_steps` and :func:`arun_steps` apply that rule; *callers* say where
and how a phase is called: :func:`inline` (this thread), :class:`Watched`
(a pool thread watched by the driver for ``TIMEOUT``), :class:`OnThreads`
(each phase on a daemon thread of its own, within a budget) and
:class:`OnLoop` (coroutines on the running loop, plain functions on threads).
"""

from __future__ import annotations

import contextvars
import inspect
import os
import queue
import sys
import threading
from collections.abc import Awaitable, Callable, Generator
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

from .errors import CleanupTimeout, PhaseTimeout
from .events import Phase
from .stopping import STOPPERS, Stop
from .tryproto import CLEANUP, Raised, Step

if TYPE_CHECKING:
    import asyncio

#: What a step loop returns for steps the driver abandoned.
ABANDONED: Any = object()
#: :func:`settle`'s answer for an awaitable an async phase returned: await it.
AWAIT: Any = object()

Steps = Generator[Step, Any, Any]
Outcome = tuple[bool, Any]  # (True, value) or (False, exception)
Caller = Callable[[Phase, Callable[..., Any], tuple, dict], Any]


class Stopped(Exception):
    """Carries a ``KeyboardInterrupt``/``SystemExit`` raised in a try out of its asyncio task.

    Raised bare, asyncio would re-raise it straight out of the event loop, past
    the driver (no report, no Cleanups); the driver unwraps it instead.
    """

    def __init__(self, stopper: BaseException) -> None:
        super().__init__(type(stopper).__name__)
        self.stopper = stopper


def refused(phase: Phase, value: Any) -> TypeError:
    """A sync phase returned an awaitable: close it (no "never awaited" warning); the phase fails."""
    close = getattr(value, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - closing is a courtesy
            pass
    return TypeError(f"{phase.value} returned an awaitable; run jobs with coroutines through the async driver")


def settle(phase: Phase, ok: bool, value: Any, *, on_loop: bool = False) -> tuple[Any, BaseException | None]:
    """THE step rule: ``(value to send, exception to throw)`` for a phase's outcome, or raise a stopper.

    Args:
        ok: the phase returned ``value``; else it raised ``value``.
        on_loop: the phase ran under the async step loop (awaitables are awaited there).

    Returns:
        ``(AWAIT, None)`` for an awaitable that the async loop must await.

    Raises:
        BaseException: a stopper raised by a phase other than a Cleanup.
    """
    if ok:
        if value is not None and inspect.isawaitable(value):
            if on_loop:
                return AWAIT, None
            return None, refused(phase, value)
        return value, None
    if phase is not CLEANUP and (isinstance(value, STOPPERS) or (on_loop and _is_cancellation(value))):
        raise value
    return None, (Raised(value) if isinstance(value, GeneratorExit) else value)


def _is_cancellation(exc: BaseException) -> bool:
    """A ``CancelledError`` that cancels the running task (not one a job raised on its own)."""
    import asyncio

    return isinstance(exc, asyncio.CancelledError) and _being_cancelled()


def is_cancelled_error(exc: BaseException) -> bool:
    """``exc`` is an ``asyncio.CancelledError`` (there is none before asyncio is loaded: a plain run never loads it)."""
    exceptions = sys.modules.get("asyncio.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.CancelledError)


def _running_loop() -> asyncio.AbstractEventLoop:
    import asyncio

    return asyncio.get_running_loop()


def _being_cancelled() -> bool:
    """Whether someone asked to cancel the current task (assumed so where Python cannot tell)."""
    import asyncio

    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


def run_steps(steps: Steps, call: Caller) -> Any:
    """Run ``steps`` in this thread, each phase through ``call``; return the generator's value.

    ``call(phase, fn, args, kwargs)`` returns ``(ok, value)``, or :data:`ABANDONED`
    (then the steps are closed and :data:`ABANDONED` returned).
    """
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                if error is None:
                    phase, fn, args, kwargs = steps.send(value)
                else:
                    phase, fn, args, kwargs = steps.throw(error)
            except StopIteration as stop:
                return stop.value
            got = call(phase, fn, args, kwargs)
            if got is ABANDONED:
                steps.close()
                return ABANDONED
            ok, value = got
            if ok and value is None:  # (a phase that returned None needs no rule)
                error = None
            else:
                value, error = settle(phase, ok, value)
    except BaseException:
        steps.close()
        raise


def inline(go_back: Callable[[], None] | None = None, stop: Stop | None = None, *, cleanups: bool = False) -> Caller:
    """A caller for phases in this thread; ``go_back`` restores the working directory first.

    With ``stop`` (signals handled), a signal ends the phase running here: any
    Cleanup, a try's phase only before the run stopped (nothing else would end it).
    """
    if stop is None and go_back is None:

        def call(phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
            try:
                return True, (fn(*args, **kwargs) if kwargs else fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
                return False, exc

        return call
    if stop is None and go_back is not None:
        back = go_back

        def call_back(phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
            try:
                back()
                return True, (fn(*args, **kwargs) if kwargs else fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
                return False, exc

        return call_back

    def call_guarded(phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
        try:
            if go_back is not None:
                go_back()
            if stop is not None:
                stop.interruptible = cleanups or stop.count == 0
            return True, (fn(*args, **kwargs) if kwargs else fn(*args))
        except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
            return False, exc
        finally:
            if stop is not None:
                stop.interruptible = False

    return call_guarded


class Watched:
    """A caller for a pool thread whose phases the driver watches for ``TIMEOUT`` (see :class:`TryHandle`).

    A phase that returns after its deadline fails with :class:`PhaseTimeout`
    (it is never recorded ok); one the driver abandoned meanwhile ends the steps.
    """

    __slots__ = ("handle", "job", "go_back")

    def __init__(self, handle: Any, job: str, go_back: Callable[[], None] | None = None) -> None:
        self.handle = handle
        self.job = job
        self.go_back = go_back

    def __call__(self, phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        handle = self.handle
        handle.begin(phase)
        try:
            if self.go_back is not None:
                self.go_back()
            got: Outcome = (True, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
            got = (False, exc)
        fate = handle.end()
        if fate == "abandoned":
            return ABANDONED
        if fate == "late":
            return False, PhaseTimeout(self.job, phase, handle.timeout or 0.0)
        return got


class OnThreads:
    """A caller running each phase on a daemon thread of its own, waited for at most ``budget(phase)`` s.

    A phase whose budget is spent is not started; one still running when it is
    spent is abandoned (its thread runs on, it never delays exit). Either fails
    with ``late(phase, started)``. A stop requested while waiting (Ctrl-C,
    SIGTERM) ends the phase being waited for.
    """

    def __init__(
        self,
        budget: Callable[[Phase], float],
        late: Callable[[Phase, bool], BaseException],
        wait: Callable[[queue.SimpleQueue, float | None], Any],
        go_back: Callable[[], None] | None = None,
        stop: Stop | None = None,
    ) -> None:
        self.budget = budget
        self.late = late
        self.wait = wait
        self.go_back = go_back
        self.stop = stop

    def __call__(self, phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
        left = self.budget(phase)
        if left <= 0:
            return False, self.late(phase, False)
        box: queue.SimpleQueue = queue.SimpleQueue()
        go_back = self.go_back

        def work() -> None:
            try:
                if go_back is not None:
                    go_back()
                box.put((True, fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box.put((False, exc))

        threading.Thread(target=work, name=f"dojob-{phase.value}", daemon=True).start()
        stop = self.stop
        seen = stop.count if stop is not None else 0
        try:
            if stop is None:
                outcome = self.wait(box, left)
            else:
                with stop.waking(lambda: box.put(None)):
                    outcome = self.wait(box, left)
                    if outcome is None and stop.count > seen:
                        return False, stop.exception
        except STOPPERS as exc:  # Ctrl-C while it runs: the phase is abandoned
            return False, exc
        if outcome is None:
            return False, self.late(phase, True)
        return outcome


def is_coroutine_function(fn: Any) -> bool:
    """``inspect.iscoroutinefunction``, reading the flag directly for plain functions and methods."""
    func = fn.__func__ if type(fn) is MethodType else fn
    if type(func) is FunctionType:
        return bool(func.__code__.co_flags & CO_COROUTINE)
    return inspect.iscoroutinefunction(fn)


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
                if stop.count > seen and not _being_cancelled():
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
            if phase is CLEANUP and not ok and _is_cancellation(got):
                cancellation = got
            value, error = settle(phase, ok, got, on_loop=True)
    except BaseException:
        steps.close()
        raise
