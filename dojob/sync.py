"""The sync driver: drives the planner in this thread, with tries inline, on threads or remote.

One loop for every executor (see :mod:`dojob.executors`): ask the planner for
tries, hand them to the executor adapter, give up on overdue ones, collect the
ended ones, tell the planner, repeat while it is active. With one worker, no
executor and no timeouts, tries run inline, in post-order, exactly like
DoJobber's serial traversal (plus non-blocking retries).

Stopping is a state of the loop (:class:`~dojob.stopping.Stop`), not an
exception flying through it: after the first stop request nothing new starts,
and the loop goes on until every try handed out is accounted for, still
enforcing every phase's ``TIMEOUT`` and the run's deadline; a second request
abandons what still runs. A stopper landing in the loop itself becomes a request.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from .clock import SystemClock
from .errors import StoppedBeforeRun
from .events import PhaseAbandoned, PhaseEnded
from .executors import (
    RELEASED,
    InlineTries,
    Overdue,
    PoolTries,
    ThreadPool,
    local_submit,
    remote_submit,
    returner,
)
from .plan import Planner
from .stopping import STOPPERS, Stop
from .tryproto import TryContext, TryOutcome, describe_error

# (re-exported for dojob.attempt and older imports)
__all__ = ["ThreadPool", "complete_from", "drive", "record"]


def record(planner: Planner, index: int, out: Any, t: float, stop: Stop | None) -> None:
    """Tell the planner how a try ended: a :class:`TryOutcome`, or the exception its steps raised.

    A ``KeyboardInterrupt``/``SystemExit`` from a try stops the run (noted in
    ``stop`` for the driver to raise at the end) and ends that job interrupted.
    """
    if type(out) is TryOutcome:
        stopped = type(out.exception) is StoppedBeforeRun  # the run was stopping: the job ends interrupted
        planner.complete(index, out.ok, t, out.changed, out.result, out.exception, cause=out.cause, interrupted=stopped)
        return
    stopper = getattr(out, "stopper", None)  # a stopper carried out of an asyncio task
    exc = out if stopper is None else stopper
    if isinstance(exc, STOPPERS):
        if stop is not None:
            stop.note(exc)
        planner.complete(index, False, t, exception=exc, interrupted=True)  # (ended: not among the tries waited for)
        planner.stop("interrupted" if stop is None else stop.reason, t)
    elif isinstance(exc, BaseException):
        planner.complete(index, False, t, exception=exc)
    else:  # pragma: no cover - an executor that returned something else
        planner.complete(index, False, t, exception=TypeError(f"a try returned {type(out).__name__}"))


def complete_from(
    planner: Planner, index: int, future: Any, now: Callable[[], float], stop: Stop | None = None
) -> None:
    """:func:`record` for a finished future (thread, remote or asyncio task)."""
    t = now()
    if future.cancelled():  # the run stopped, or only forever jobs were left
        from asyncio import CancelledError  # (only here: a plain run never loads asyncio)

        planner.complete(index, False, t, exception=CancelledError(), cancelled=True)
        return
    worker = getattr(future, "worker", None)
    if worker is not None:
        planner.workers[index] = worker
    exc = future.exception()
    record(planner, index, future.result() if exc is None else exc, t, stop)


def _give_up(planner: Planner, ctx: TryContext, overdue: Overdue, t: float, run_timed_out: bool) -> None:
    """Record a try the adapter gave up on (its phase overran, or the run's deadline passed)."""
    index, exc, phase, worker, holding = overdue
    spec = planner.specs[index]
    if ctx.emit is not None and phase is not None:
        try_number = planner.tries[index]
        ctx.emit(PhaseAbandoned(spec.name, try_number, phase, t, worker, holding))
        ctx.emit(PhaseEnded(spec.name, try_number, phase, False, t, *describe_error(exc)))
    planner.complete(index, False, t, exception=exc, cancelled=run_timed_out, keep_locks=bool(holding))


def _wait_seconds(planner: Planner, tries: Any, t: float) -> float | None:
    """How long the loop may wait for a try to end: until the next retry, deadline or phase deadline."""
    wake = planner.next_wakeup()
    for at in (tries.next_deadline(), planner.deadline if planner.running else None):
        if at is not None and (wake is None or at < wake):
            wake = at
    return None if wake is None else max(0.0, wake - t)


def _turn(
    planner: Planner, ctx: TryContext, tries: Any, now: Callable[[], float], clock: Any, stop: Stop, t: float
) -> float | None:
    """One turn of the driver loop from time ``t``; the time it ended, or None once the run is over."""
    if tries.concurrent:  # time passed since the last outcome (inline, the try itself took it)
        t = now()
    else:
        t = _serial(planner, tries, now, stop, t)
    if stop.exception is not None:
        _stopping(planner, tries, t, stop)
    actions = planner.next_actions(t)  # (an inactive planner starts nothing)
    if not actions and not planner.is_active():
        return None
    ended = tries.start_all(actions)  # (inline: they ran already)
    if tries.watching:
        t = now()
        run_timed_out = planner.deadline is not None and t >= planner.deadline
        given_up = tries.overdue(t, run_timed_out)
        for overdue in given_up:
            _give_up(planner, ctx, overdue, t, run_timed_out)
        if given_up:
            return t  # slots were freed: plan again before waiting
    if not ended:
        seconds = _wait_seconds(planner, tries, t)
        if seconds is None and not tries.busy() and not planner.running:  # pragma: no cover - a planner invariant
            raise RuntimeError("dojob planner is active with nothing running, ready or waiting")
        ended = tries.collect(clock, seconds)
    t = now()
    for index, out in ended:
        if type(out) is TryOutcome:
            planner.complete(index, out.ok, t, out.changed, out.result, out.exception, cause=out.cause)
        elif out is RELEASED:
            planner.release(index, t)
        elif isinstance(out, cf.Future):
            complete_from(planner, index, out, lambda: t, stop)
        else:
            record(planner, index, out, t, stop)
    return t


def _serial(planner: Planner, tries: Any, now: Callable[[], float], stop: Stop, t: float) -> float:
    """The serial stretch of a turn: while nothing stops and a try is ready, run it here and record it.

    The same steps as a turn (hand out, run, record), without the waits a turn
    may need; it returns to the turn for those and for any stop.
    """
    next_actions, complete, run = planner.next_actions, planner.complete, tries.run
    while stop.exception is None:
        actions = next_actions(t)
        if not actions:
            break
        for index in actions:
            out = run(index)
            t = now()
            if type(out) is TryOutcome:
                complete(index, out.ok, t, out.changed, out.result, out.exception, cause=out.cause)
            else:
                record(planner, index, out, t, stop)
    return t


def _stopping(planner: Planner, tries: Any, t: float, stop: Stop) -> None:
    """The stop path: nothing new starts; every try handed out is accounted for; a second stop abandons."""
    planner.stop(stop.reason, t)
    for index in sorted(planner.in_flight - tries.known()):  # handed out, lost before the adapter had it
        planner.complete(index, False, t, exception=stop.exception, interrupted=True)
    if stop.abandon:  # a second stop: stop waiting for what still runs
        for index in tries.abandon_all():
            planner.complete(index, False, t, exception=stop.exception, cancelled=True)


def drive(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
    workers: int = 1,
    executor: cf.Executor | None = None,
    remote: Any = None,
    stop: Stop | None = None,
    signals: bool = False,
) -> None:
    """Run every try the planner hands out until it is no longer active.

    Args:
        executor: an in-process executor (threads) to run tries on.
        remote: an adapter with ``submit(spec, try_number) -> Future`` running tries
            elsewhere (see :mod:`dojob.remote`).
        stop: the run's stop state (a fresh one by default).
        signals: signals are handled: one may end a phase running inline.
    """
    stop = stop or Stop()
    tries = _adapter(planner, ctx, now, workers, executor, remote, stop, signals)
    try:
        with stop.waking(tries.wake):
            t = now()
            while True:
                try:
                    turned = _turn(planner, ctx, tries, now, clock, stop, t)
                    if turned is None:
                        return
                    t = turned
                except STOPPERS as exc:  # landed in the loop itself (signals not handled)
                    stop.request(exc)
                    t = now()
    finally:
        tries.close()


def _adapter(
    planner: Planner,
    ctx: TryContext,
    now: Callable[[], float],
    workers: int,
    executor: cf.Executor | None,
    remote: Any,
    stop: Stop,
    signals: bool,
) -> Any:
    """The executor adapter for this run: remote, inline (serial) or a thread pool."""
    watch = planner.deadline is not None or planner.graph.has_timeouts
    if remote is not None:
        return PoolTries(planner, remote_submit(planner, remote), now, watch=planner.deadline is not None, remote=True)
    cwd = ctx.cwd if workers == 1 and executor is None else None
    if executor is None and workers == 1 and not watch:
        return InlineTries(planner, ctx, cwd, stop if signals else None)
    go_back = returner(cwd)
    own = ThreadPool(workers) if executor is None else None
    pool: cf.Executor = executor or own  # type: ignore[assignment]
    tries = PoolTries(planner, local_submit(planner, ctx, pool, go_back), now, watch=watch, pool=own)
    if own is not None:
        tries.closing = lambda: own.shutdown(wait=not stop.abandon)
    return tries
