"""The sync driver: drives the planner in this thread, or over a pool of threads.

With one worker, no executor and no timeouts, tries run inline, in post-order,
exactly like DoJobber's serial traversal (plus non-blocking retries).
Otherwise up to ``workers`` tries run at once on threads (or on any
``concurrent.futures.Executor`` given). When a job has a ``TIMEOUT`` or the run
a deadline, each try carries a :class:`~dojob.attempt.TryHandle`: a phase that
overruns fails its try at once and its thread, which cannot be killed, is
abandoned (no longer counted against ``workers``; the built-in pool starts a
replacement).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import queue
import threading
from collections.abc import Callable
from typing import Any

from .attempt import (
    ABANDONED,
    STOPPERS,
    PhaseTimeout,
    RunTimeout,
    Stopped,
    TryContext,
    TryHandle,
    attempt,
    close_dir,
    describe_error,
    execute,
    open_dir,
    returner,
)
from .clock import SystemClock
from .events import PhaseAbandoned, PhaseEnded
from .plan import Planner
from .remote import RemoteTries


class ThreadPool(cf.Executor):
    """A minimal pool of daemon threads that can replace a thread stuck in an abandoned try.

    Unlike :class:`~concurrent.futures.ThreadPoolExecutor`, a thread stuck in
    user code does not hold a slot forever, nor block interpreter exit.
    Threads start on demand (up to ``size``), so a short run starts few.
    """

    def __init__(self, size: int, *, name: str = "dojob") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._abandoned: set[str] = set()
        self._name = name
        self._size = size
        self._idle = 0
        self._lock = threading.Lock()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            item = get()
            with lock:
                self._idle -= 1
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            future.worker = threading.current_thread().name  # for the report
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the driver
                future.set_exception(exc)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        self._queue.put((future, fn, args, kwargs))
        with self._lock:
            spawn = self._queue.qsize() > self._idle and len(self._threads) - len(self._abandoned) < self._size
        if spawn:
            self._spawn()
        return future

    def abandon(self, thread_name: str | None) -> None:
        """The thread ``thread_name`` is stuck in an abandoned try: it no longer counts."""
        if thread_name:
            self._abandoned.add(thread_name)
        if self._queue.qsize():
            self._spawn()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread.name not in self._abandoned:
                    thread.join()


def complete_from(planner: Planner, index: int, future: Any, now: Callable[[], float]) -> BaseException | None:
    """Report a finished future's try to the planner; return a stopping exception, if any.

    A ``KeyboardInterrupt``/``SystemExit`` stops the planner first (so the job is
    not retried) and is returned for the driver to re-raise once it has drained.
    A try cancelled because the run stopped (or only forever jobs were left)
    ends not run.
    """
    t = now()
    if future.cancelled():
        planner.complete(index, False, t, exception=asyncio.CancelledError(), cancelled=True)
        return None
    worker = getattr(future, "worker", None)
    if worker is not None:
        planner.workers[index] = worker
    exc = future.exception()
    if type(exc) is Stopped:  # a stopper carried out of an asyncio task
        exc = exc.stopper
    if exc is None:
        out = future.result()
        planner.complete(
            index, out.ok, t, changed=out.changed, result=out.result, exception=out.exception, cause=out.cause
        )
        return None
    if isinstance(exc, STOPPERS):
        planner.stop("interrupted", t)
        planner.complete(index, False, t, exception=exc)
        return exc
    planner.complete(index, False, t, exception=exc)
    return None


def _idle(planner: Planner, clock: SystemClock, now: Callable[[], float]) -> None:
    """Nothing runs: sleep until the next retry may start (or the deadline)."""
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
    remote: RemoteTries | None = None,
) -> None:
    """Run every try the planner hands out until it is no longer active.

    Args:
        executor: an in-process executor (threads) to run tries on.
        remote: runs tries in other processes instead (see :mod:`dojob.remote`).

    On ``KeyboardInterrupt``/``SystemExit`` (from a job or from the user) the
    planner stops, running tries are waited for and recorded, and the
    exception propagates; a second ``KeyboardInterrupt`` while waiting
    abandons the tries still running (recorded as not run).
    """
    if remote is not None:
        _drive_pool(planner, ctx, now=now, clock=clock, workers=workers, executor=None, watch=False, remote=remote)
        return
    watch = planner.deadline is not None or planner.graph.has_timeouts
    if executor is None and workers == 1 and not watch:
        _drive_inline(planner, ctx, now=now, clock=clock)
    else:
        _drive_pool(planner, ctx, now=now, clock=clock, workers=workers, executor=executor, watch=watch)


def _drive_inline(planner: Planner, ctx: TryContext, *, now: Callable[[], float], clock: SystemClock) -> None:
    assert planner.deadline is None, "a run with a deadline needs the watching driver"
    specs = planner.specs
    tries = planner.tries
    complete = planner.complete
    next_actions = planner.next_actions
    cwd = open_dir(ctx.cwd) if ctx.cwd is not None else None
    go_back = returner(cwd)
    try:
        t = now()
        while True:
            # (is_active only when nothing starts: without a deadline, which
            # this driver never has, a finished planner starts nothing)
            actions = next_actions(t)
            if not actions:
                if not planner.is_active():
                    break
                _idle(planner, clock, now)
                t = now()
                continue
            for index in actions:
                try:
                    out = execute(attempt(specs[index], tries[index], ctx), go_back)
                except STOPPERS as exc:
                    t = now()
                    planner.stop("interrupted", t)
                    complete(index, False, t, exception=exc)
                    raise
                ok, changed, result, exception, cause = out
                t = now()
                complete(index, ok, t, changed, result, exception, cause=cause)
    finally:
        close_dir(cwd)


def _abandon_overruns(
    planner: Planner,
    ctx: TryContext,
    running: dict[cf.Future, int],
    handles: dict[int, TryHandle],
    pool: cf.Executor,
    now: Callable[[], float],
) -> int:
    """Fail and forget the tries whose phase overran, or all of them once the run timed out.

    Returns how many tries were abandoned.
    """
    timed_out = planner.stopped == "timeout"
    t = now()
    abandoned = 0
    for future, index in sorted(running.items(), key=lambda item: item[1]):
        handle = handles[index]
        if not handle.abandon_if_late(t, timed_out):
            continue
        del running[future]
        del handles[index]
        spec = planner.specs[index]
        phase = handle.phase
        if timed_out:
            exc: BaseException = RunTimeout(f"the run timed out while {spec.name} was running; its thread runs on")
        else:
            exc = PhaseTimeout(spec.name, phase, spec.timeout or 0.0, abandoned=True)
        if ctx.emit is not None and phase is not None:
            try_number = planner.tries[index]
            ctx.emit(PhaseAbandoned(spec.name, try_number, phase, t, handle.worker))
            ctx.emit(PhaseEnded(spec.name, try_number, phase, False, t, *describe_error(exc)))
        planner.complete(index, False, t, exception=exc, cancelled=timed_out)
        abandoned += 1
        if isinstance(pool, ThreadPool):
            pool.abandon(handle.worker)
    return abandoned


def _drive_pool(
    planner: Planner,
    ctx: TryContext,
    *,
    now: Callable[[], float],
    clock: SystemClock,
    workers: int,
    executor: cf.Executor | None,
    watch: bool,
    remote: RemoteTries | None = None,
) -> None:
    specs = planner.specs
    tries = planner.tries
    go_back = returner(ctx.cwd) if workers == 1 and executor is None else None
    pool = executor or (None if remote else ThreadPool(workers))
    running: dict[cf.Future, int] = {}
    handles: dict[int, TryHandle] = {}
    finished: queue.SimpleQueue = queue.SimpleQueue()  # filled by done callbacks, in worker threads
    abandoned_all = False

    def nudge() -> None:  # a phase with a deadline began: recompute how long to wait
        finished.put(None)

    try:
        while planner.is_active():
            for index in planner.next_actions(now()):
                handle = TryHandle(now, specs[index].timeout, nudge) if watch else None
                if remote is not None:
                    future = remote.submit(specs[index], tries[index])
                else:
                    future = pool.submit(execute, attempt(specs[index], tries[index], ctx), go_back, handle)
                running[future] = index
                if handle is not None:
                    handles[index] = handle
                future.add_done_callback(finished.put)
            if watch and _abandon_overruns(planner, ctx, running, handles, pool, now):
                continue  # the planner may have work to hand out now
            if remote is not None and planner.stopped == "timeout" and running:
                t = now()  # remote tries cannot be stopped: the run no longer waits for them
                for index in sorted(running.values()):
                    exc = RunTimeout(f"the run timed out while {specs[index].name} was running remotely")
                    planner.complete(index, False, t, exception=exc, cancelled=True)
                running.clear()
                continue
            if not running:
                if planner.is_active():
                    _idle(planner, clock, now)
                continue
            wake = planner.next_wakeup()
            if watch:
                deadlines = [h.deadline for h in handles.values() if h.deadline is not None]
                if deadlines and (wake is None or min(deadlines) < wake):
                    wake = min(deadlines)
            done = clock.get(finished, None if wake is None else max(0.0, wake - now()))
            while not finished.empty() or done is not None:  # drain every try that ended, then plan again
                if done is None:
                    done = finished.get()
                    if done is None:
                        continue  # a wake-up only
                index = running.pop(done, None)
                if index is not None:  # else: abandoned earlier, already recorded
                    handles.pop(index, None)
                    if done.cancelled() or done.exception() is not None or done.result() is not ABANDONED:
                        stopper = complete_from(planner, index, done, now)
                        if stopper is not None:
                            raise stopper
                done = None
    except BaseException:
        planner.stop("interrupted", now())
        pending = sorted(running.items(), key=lambda item: item[1])
        try:
            while pending:
                cf.wait([pending[0][0]])
                future, index = pending.pop(0)
                complete_from(planner, index, future, now)
        except KeyboardInterrupt as again:  # a second Ctrl-C: stop waiting, abandon the tries still running
            abandoned_all = True
            t = now()
            for _future, index in pending:
                planner.complete(index, False, t, exception=again, cancelled=True)
        raise
    finally:
        if executor is None and pool is not None:
            pool.shutdown(wait=not abandoned_all)
