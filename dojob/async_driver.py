"""The async driver: drives the same planner as the sync driver, on an event loop.

Coroutine phases run natively on the loop, plain ones in a thread; up to
``workers`` tries run at once. Semantics are the planner's, so a graph behaves
the same under both drivers. Finished tries are collected through a done
callback, so each loop turn costs O(finished), not O(running).

As in the sync driver, stopping is a state of the loop: a stop request (a
signal, a stopper from a try or an observer, a cancellation of the driver's
own task) stops the planner; running tries are cancelled and every one is
recorded before the loop ends; a second request stops waiting for them.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from .clock import SystemClock
from .errors import PhaseTimeout
from .events import Phase
from .onloop import OnLoop, Stopped, arun_steps
from .plan import Planner
from .steps import AWAIT, is_coroutine_function, settle
from .stopping import STOPPERS, Stop
from .sync import complete_from, record
from .tryproto import TryContext, TryOutcome, attempt

_RUN = Phase.RUN
#: What a direct try reports when it is being cancelled (its task is not done yet).
_CANCELLED: Any = object()
#: Seconds between two looks for a try whose task ended without reporting (see :meth:`_Tasks.look_for_lost`).
_LOST_LOOK = 1.0


async def _stoppers_as_data(coro: Coroutine[Any, Any, Any]) -> Any:
    """Await a try; a ``KeyboardInterrupt``/``SystemExit`` it raises comes back as :class:`Stopped`."""
    try:
        return await coro
    except STOPPERS as exc:
        raise Stopped(exc) from None


async def _awaited(co_run: Callable[[], Any], cwd: str | None, tasks: _Tasks) -> None:
    """One try of an ``awaitable`` spec that nothing watches: what :func:`~dojob.tryproto.attempt` and
    :func:`~dojob.steps.arun_steps` do for its one phase (RUN: ``co_run()``), in one frame; it reports
    its own outcome to ``tasks`` (no done callback).

    Speed trick: the general path costs 5 frames, a generator and a done callback per try (40% of a
    10 000-job run); only for a coroutine function ``co_run`` without TIMEOUT, in runs without observers
    (no events to emit) and with phases to run.
    """
    try:
        if cwd is not None:
            os.chdir(cwd)
        value = await co_run()
        while settle(_RUN, True, value, on_loop=True)[0] is AWAIT:  # the step rule: await what it returned
            value = await value
    except BaseException as exc:  # noqa: BLE001 - the outcome goes to settle()
        try:
            settle(_RUN, False, exc, on_loop=True)  # raises a stopper, or a cancellation of this task
        except STOPPERS as stopper:
            tasks.ended(Stopped(stopper))
            return
        except BaseException:
            tasks.ended(_CANCELLED)
            raise
        tasks.ended(TryOutcome(False, exception=exc))  # no recheck followed: no cause to tell apart
        return
    tasks.ended(TryOutcome(True, True, value))


class _Tasks:
    """The tries running as tasks, and those that ended since the last look."""

    def __init__(self, wakeup: asyncio.Event) -> None:
        self.running: dict[asyncio.Future, int] = {}
        #: ``(task, outcome)``: reported by a direct try itself, or ``(task, None)`` by a done callback.
        self.finished: deque[tuple[asyncio.Future, Any]] = deque()
        #: The tasks that end through a done callback.
        self.called_back: set[asyncio.Future] = set()
        self.wakeup = wakeup
        self.loop = loop = asyncio.get_running_loop()
        self.create_task = loop.create_task
        self.current_task: Callable[[], Any] = asyncio.current_task
        self.lost_look: asyncio.TimerHandle | None = None
        #: Abandoned thread phases still holding their job's locks.
        self.holders = 0
        self.over = False

    def on_done(self, task: asyncio.Future) -> None:
        self.finished.append((task, None))
        self.wakeup.set()

    def ended(self, out: Any) -> None:
        """A direct try's outcome, reported from its own task."""
        self.finished.append((self.current_task(), out))
        self.wakeup.set()

    def start(self, planner: Planner, ctx: TryContext, index: int) -> None:
        spec = planner.specs[index]
        if spec.traits.kind == "awaitable" and spec.traits.timeout is None and ctx.emit is None and not ctx.no_act:
            co_run = spec.cls.co_run
            if is_coroutine_function(co_run):
                self.running[self.create_task(_awaited(co_run, ctx.cwd, self))] = index
                return
        steps = attempt(spec, planner.tries[index], ctx)
        task = self.create_task(_stoppers_as_data(arun_steps(steps, OnLoop(ctx.cwd, spec.traits.timeout, spec.name))))
        task.add_done_callback(self.on_done)
        self.called_back.add(task)
        self.running[task] = index

    def cancel(self) -> None:
        for task in self.running:
            if not task.done():
                task.cancel()
                if task not in self.called_back:  # a direct try cancelled before it started reports nothing
                    task.add_done_callback(self.on_done)
                    self.called_back.add(task)

    def look_for_lost(self) -> None:
        """Record the tasks that ended without a word: a direct try's task cancelled by someone else
        before it started (its coroutine never ran). Every :data:`_LOST_LOOK` seconds while tries run."""
        self.lost_look = None
        for task in self.running:
            if task.done() and task not in self.called_back:
                self.called_back.add(task)
                self.finished.append((task, None))
                self.wakeup.set()
        self.look_later()

    def look_later(self) -> None:
        if self.lost_look is None and self.running and not self.over:
            self.lost_look = self.loop.call_later(_LOST_LOOK, self.look_for_lost)


async def _turn(
    planner: Planner, ctx: TryContext, tasks: _Tasks, now: Callable[[], float], clock: SystemClock, stop: Stop
) -> bool:
    """One turn of the loop; False once the run is over."""
    if stop.exception is not None:
        planner.stop(stop.reason, now())
        known = set(tasks.running.values())
        for index in sorted(planner.in_flight - known):  # handed out, lost before it became a task
            planner.complete(index, False, now(), exception=stop.exception, interrupted=True)
        if stop.abandon:  # a second stop: stop waiting for the cancelled tries
            t = now()
            for task, index in sorted(tasks.running.items(), key=lambda item: item[1]):
                task.remove_done_callback(tasks.on_done)
                planner.complete(index, False, t, exception=stop.exception, cancelled=True)
            tasks.running.clear()
            tasks.finished.clear()
            tasks.called_back.clear()
    if not planner.is_active():
        return False
    for index in planner.next_actions(now()):
        tasks.start(planner, ctx, index)
    if planner.cancel_running():  # the run stopped, or only forever jobs are left
        tasks.cancel()
    if not tasks.finished:
        wake = planner.next_wakeup()
        timeout = None if wake is None else max(0.0, wake - now())
        if not tasks.running and not (tasks.holders and timeout is None):
            if planner.is_active():
                await clock.asleep(timeout)  # type: ignore[arg-type]
            return True
        tasks.wakeup.clear()
        tasks.look_later()
        await clock.wait_event(tasks.wakeup, timeout)
    while tasks.finished:
        task, out = tasks.finished.popleft()
        index = tasks.running.pop(task, -1)
        if index < 0:  # abandoned by a second stop, or reported twice: already recorded
            continue
        if out is None:
            tasks.called_back.discard(task)
            if not _keeps_locks(planner, index, task, tasks, now):
                complete_from(planner, index, task, now, stop)
        elif out is _CANCELLED:
            planner.complete(index, False, now(), exception=asyncio.CancelledError(), cancelled=True)
        else:
            record(planner, index, out, now(), stop)
    return True


def _keeps_locks(planner: Planner, index: int, task: asyncio.Future, tasks: _Tasks, now: Callable[[], float]) -> bool:
    """A try whose thread phase was abandoned holding locks: record it keeping them until the thread ends."""
    if task.cancelled() or task.exception() is not None:
        return False
    out = task.result()
    ended = getattr(out.exception, "thread_ended", None)
    if ended is None or ended.done():
        return False
    holding = planner.holding(index)
    if not holding:
        return False
    exc = out.exception
    kept = PhaseTimeout(exc.job, exc.phase, exc.timeout, abandoned=True, holding=holding)
    planner.complete(index, False, now(), exception=kept, keep_locks=True)
    tasks.holders += 1

    def released(_: asyncio.Future) -> None:
        tasks.holders -= 1
        if not tasks.over:  # (after the run, its locks no longer matter)
            planner.release(index, now())
            tasks.wakeup.set()

    ended.add_done_callback(released)
    return True


async def adrive(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
    stop: Stop | None = None,
) -> None:
    """Run every try the planner hands out until it is no longer active.

    Once the planner says so (a critical failure, the deadline, only forever
    jobs left, a stop request), running tries are cancelled and recorded. A
    cancellation of the driver itself (Ctrl-C under ``asyncio.run``) is a stop
    request: the run raises it at the end, after the Cleanups.
    """
    stop = stop or Stop()
    loop = asyncio.get_running_loop()
    tasks = _Tasks(asyncio.Event())

    def wake() -> None:
        loop.call_soon_threadsafe(tasks.wakeup.set)

    with stop.waking(wake):
        try:
            while True:
                try:
                    if not await _turn(planner, ctx, tasks, now, clock, stop):
                        return
                except (asyncio.CancelledError, *STOPPERS) as exc:
                    stop.request(exc)
        finally:
            tasks.over = True
            if tasks.lost_look is not None:
                tasks.lost_look.cancel()
