"""The step rule and the step loops: how the steps of a try (or of the Cleanups) are run.

:func:`settle` is the one place that decides what a phase's outcome means: a
value goes back into the steps; an exception is thrown in (a ``GeneratorExit``
wrapped, so it reads as a failure, not as the steps being closed); a stopper
(``KeyboardInterrupt``, ``SystemExit``, and on an event loop a cancellation of
the task) ends the steps and propagates, except from a Cleanup, which it ends
alone; a sync phase that returns an awaitable fails (the awaitable is closed);
an async one has it awaited, within the same bound.

:func:`run_steps` applies that rule in this thread (:func:`dojob.onloop.arun_steps`
on an event loop); *callers* say where and how a phase is called:
:func:`inline` (this thread), :class:`Watched` (a pool thread watched by the
driver for ``TIMEOUT``), :class:`OnThreads` (each phase on a daemon thread of
its own, within a budget) and :class:`dojob.onloop.OnLoop` (coroutines on the
running loop, plain functions on threads).
"""

from __future__ import annotations

import inspect
import queue
import sys
import threading
from collections.abc import Callable, Generator
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import Any

from .errors import PhaseTimeout
from .events import Phase
from .graph import JobSpec
from .stopping import STOPPERS, Stop
from .tryproto import (
    CHECK,
    CLEANUP,
    MISSING,
    PASSED,
    Raised,
    Step,
    TryContext,
    TryOutcome,
    absent,
    attempt,
    phase_call,
    phase_failed,
    phase_passed,
    prepare,
)

#: What a step loop returns for steps the driver abandoned.
ABANDONED: Any = object()
#: :func:`settle`'s answer for an awaitable an async phase returned: await it.
AWAIT: Any = object()

Steps = Generator[Step, Any, Any]
Outcome = tuple[bool, Any]  # (True, value) or (False, exception)
Caller = Callable[[Phase, Callable[..., Any], tuple, dict], Any]


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
    if phase is not CLEANUP and (isinstance(value, STOPPERS) or (on_loop and is_cancellation(value))):
        raise value
    return None, (Raised(value) if isinstance(value, GeneratorExit) else value)


def is_cancellation(exc: BaseException) -> bool:
    """A ``CancelledError`` that cancels the running task (not one a job raised on its own)."""
    import asyncio

    return isinstance(exc, asyncio.CancelledError) and being_cancelled()


def is_cancelled_error(exc: BaseException) -> bool:
    """``exc`` is an ``asyncio.CancelledError`` (there is none before asyncio is loaded: a plain run never loads it)."""
    exceptions = sys.modules.get("asyncio.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.CancelledError)


def being_cancelled() -> bool:
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


def run_inline(steps: Steps, go_back: Callable[[], None] | None = None) -> Any:
    """:func:`run_steps` with :func:`inline`'s plain caller folded in (no signals handled): each phase is
    called right here, ``go_back`` first; the generator's value. (One frame and two tuples less per phase
    than through a caller: -4% instructions of a serial first run of 4 000 jobs, check, run, recheck.)"""
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
            value, error = call_here(phase, fn, args, kwargs, go_back)
    except BaseException:
        steps.close()
        raise


#: What :func:`call_here` returns for a phase that returned None.
NO_ERROR: tuple[Any, BaseException | None] = (None, None)


def call_here(
    phase: Phase, fn: Callable[..., Any], args: tuple, kwargs: dict, go_back: Callable[[], None] | None
) -> tuple[Any, BaseException | None]:
    """Call one phase in this thread, ``go_back`` first: its value and error, as :func:`settle` rules them."""
    try:
        if go_back is not None:
            go_back()
        value = fn(*args, **kwargs) if kwargs else fn(*args)
    except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
        return settle(phase, False, exc)
    if value is None:  # (a phase that returned None needs no rule)
        return NO_ERROR
    return settle(phase, True, value)


def try_inline(spec: JobSpec, try_number: int, ctx: TryContext, go_back: Callable[[], None] | None = None) -> Any:
    """One try in this thread (no signals handled): :func:`run_inline` of its :func:`~dojob.tryproto.attempt`,
    but its first phase called here, without steps (-5% instructions of a serial first run of 4 000 converged
    jobs); one that goes on (a failed Check) goes on through the steps from its second phase. The same
    functions decide (``prepare``, ``phase_call``, :func:`settle`, ``phase_passed``, ``phase_failed``),
    but for a Check without events: what those two do then is written out here (-5% more; tests pin that
    both ways agree)."""
    begun: Any = prepare(spec, try_number, ctx)  # (Any: see attempt)
    if type(begun) is TryOutcome:
        return begun
    obj, state, args, kwargs, _, phases = begun
    phase = phases[0]
    quiet = phase is CHECK and ctx.emit is None
    if quiet:  # phase_call of a Check without events
        state["_check_phase"] = "check"
        fn = getattr(obj, "Check", MISSING)
        if fn is MISSING:
            fn = absent(obj, "Check")
    else:
        fn = phase_call(spec, try_number, ctx, begun, phase)
        if type(fn) is TryOutcome:
            return fn
    value, error = call_here(phase, fn, args, kwargs, go_back)
    if error is None:
        if quiet:  # phase_passed of a Check without events
            state["_check_results"] = value
            return PASSED if value is None else TryOutcome(True, False, value)
        ended = phase_passed(spec, try_number, ctx, begun, phase, value)
    else:
        ended = phase_failed(spec, try_number, ctx, begun, phase, error.exc if type(error) is Raised else error, None)
    if ended is not None:
        return ended
    return run_inline(attempt(spec, try_number, ctx, begun, 1), go_back)


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
