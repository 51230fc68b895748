"""The sync driver: drives the planner in this thread, or over a pool of threads.

With one worker and no executor, tries run inline, in post-order, exactly
like DoJobber's serial traversal (plus non-blocking retries). With more, up
to ``workers`` tries run at once in a thread pool (or any
``concurrent.futures.Executor`` given).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from .attempt import STOPPERS, TryContext, attempt, execute
from .clock import SystemClock
from .plan import Planner


def complete_from(planner: Planner, index: int, future: Any, now: Callable[[], float]) -> BaseException | None:
    """Report a finished future's try to the planner; return a stopping exception, if any.

    A ``KeyboardInterrupt``/``SystemExit`` stops the planner first (so the job is
    not retried) and is returned for the driver to re-raise once it has drained.
    """
    t = now()
    if future.cancelled():
        import asyncio

        planner.complete(index, False, t, exception=asyncio.CancelledError())
        return None
    exc = future.exception()
    if exc is None:
        out = future.result()
        planner.complete(index, out.ok, t, changed=out.changed, result=out.result, exception=out.exception)
        return None
    if isinstance(exc, STOPPERS):
        planner.stop("interrupted", t)
        planner.complete(index, False, t, exception=exc)
        return exc
    planner.complete(index, False, t, exception=exc)
    return None


def _idle(planner: Planner, clock: SystemClock, now: Callable[[], float]) -> None:
    """Nothing runs: sleep until the next retry may start."""
    wake = planner.next_wakeup()
    if wake is None:  # pragma: no cover - a planner invariant
        raise RuntimeError("dojob planner is active with nothing running, ready or waiting")
    clock.sleep(wake - now())


def drive(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
    workers: int = 1,
    executor: cf.Executor | None = None,
) -> None:
    """Run every try the planner hands out until it is no longer active.

    On ``KeyboardInterrupt``/``SystemExit`` (from a job or from the user) the
    planner stops, running tries are waited for and recorded, and the
    exception propagates.
    """
    if executor is None and workers == 1:
        _drive_inline(planner, ctx, now=now, clock=clock)
    else:
        _drive_pool(planner, ctx, now=now, clock=clock, workers=workers, executor=executor)


def _drive_inline(planner: Planner, ctx: TryContext, *, now: Callable[[], float], clock: SystemClock) -> None:
    specs = planner.specs
    tries = planner.tries
    complete = planner.complete
    cwd = ctx.cwd
    while planner.is_active():
        actions = planner.next_actions(now())
        if not actions:
            _idle(planner, clock, now)
            continue
        for index in actions:
            try:
                out = execute(attempt(specs[index], tries[index], ctx), cwd)
            except STOPPERS as exc:
                t = now()
                planner.stop("interrupted", t)
                complete(index, False, t, exception=exc)
                raise
            complete(index, out.ok, now(), changed=out.changed, result=out.result, exception=out.exception)


def _drive_pool(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
    workers: int,
    executor: cf.Executor | None,
) -> None:
    specs = planner.specs
    tries = planner.tries
    pool = executor or cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dojob")
    running: dict[cf.Future, int] = {}
    try:
        while planner.is_active():
            for index in planner.next_actions(now()):
                running[pool.submit(execute, attempt(specs[index], tries[index], ctx))] = index
            if not running:
                _idle(planner, clock, now)
                continue
            wake = planner.next_wakeup()
            done = clock.wait(running, None if wake is None else max(0.0, wake - now()))
            for future in sorted(done, key=running.__getitem__):
                stopper = complete_from(planner, running.pop(future), future, now)
                if stopper is not None:
                    raise stopper
    except BaseException:
        planner.stop("interrupted", now())
        for future, index in sorted(running.items(), key=lambda item: item[1]):
            cf.wait([future])
            complete_from(planner, index, future, now)
        raise
    finally:
        if executor is None:
            pool.shutdown(wait=True)
