"""The async driver: drives the same planner as the sync driver, on an event loop.

Coroutine phases run natively on the loop, plain ones in a thread; up to
``workers`` tries run at once. Semantics are the planner's, so a graph behaves
the same under both drivers. Finished tries are collected through a done
callback, so each loop turn costs O(finished), not O(running).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from ..attempt import STOPPERS, Stopped, TryContext, aexecute, attempt
from ..clock import SystemClock
from ..plan import Planner
from ..sync import complete_from


async def _stoppers_as_data(coro: Coroutine[Any, Any, Any]) -> Any:
    """Await a try; a ``KeyboardInterrupt``/``SystemExit`` it raises comes back as :class:`Stopped`."""
    try:
        return await coro
    except STOPPERS as exc:
        raise Stopped(exc) from None


async def adrive(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
) -> None:
    """Run every try the planner hands out until it is no longer active.

    Once the planner says so (a critical failure, the deadline, only forever
    jobs left), running tries are cancelled. If the driver itself is cancelled
    or a job raises ``KeyboardInterrupt``/``SystemExit``, the planner stops,
    running tries are cancelled and recorded, and the exception propagates.
    """
    specs = planner.specs
    tries = planner.tries
    cwd = ctx.cwd
    tasks: dict[asyncio.Future, int] = {}
    finished: deque[asyncio.Future] = deque()
    create_task = asyncio.get_running_loop().create_task
    wakeup = asyncio.Event()

    def on_done(task: asyncio.Future) -> None:
        finished.append(task)
        wakeup.set()

    try:
        while planner.is_active():
            for index in planner.next_actions(now()):
                spec = specs[index]
                steps = attempt(spec, tries[index], ctx)
                task = create_task(_stoppers_as_data(aexecute(steps, cwd, spec.timeout, spec.name)))
                task.add_done_callback(on_done)
                tasks[task] = index
            if planner.cancel_running():  # the run stopped, or only forever jobs are left
                for task in tasks:
                    task.cancel()
            if not finished:
                wake = planner.next_wakeup()
                timeout = None if wake is None else max(0.0, wake - now())
                if not tasks:
                    if planner.is_active():
                        await clock.asleep(timeout)  # type: ignore[arg-type]
                    continue
                wakeup.clear()
                await clock.wait_event(wakeup, timeout)
            while finished:
                task = finished.popleft()
                stopper = complete_from(planner, tasks.pop(task), task, now)
                if stopper is not None:
                    raise stopper
    except BaseException:
        planner.stop("interrupted", now())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for task, index in sorted(tasks.items(), key=lambda item: item[1]):
            complete_from(planner, index, task, now)
        raise
