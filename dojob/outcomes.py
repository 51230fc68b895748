"""How a try's end is recorded: success, a retry, failure and blocking, interruption, the run's close.

:class:`Outcomes` is the half of the :class:`~dojob.plan.Planner` that takes
outcomes in (the other half decides what starts): a try that succeeded
releases its dependents; a failed one is retried when the job has tries left
and its retry policy allows, else the job fails and blocks what needs it; a
stop makes every job it cut short, or kept from starting, *interrupted* (never
*failed*: that means "used all its tries"). Pure like the planner: no clock,
no I/O; events go to ``emit``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heappush
from typing import Any

from .events import JobBlocked, JobFinished, RunStopping, Status, TryEnded
from .graph import JobGraph, JobSpec
from .resources import Ledger

PENDING = Status.PENDING
OK = Status.OK
CHANGED = Status.CHANGED
FAILED = Status.FAILED
BLOCKED = Status.BLOCKED
NOT_RUN = Status.NOT_RUN
INTERRUPTED = Status.INTERRUPTED


class Outcomes:
    """The planner's outcome transitions: :meth:`complete`, :meth:`stop`, :meth:`finish` (see the module)."""

    # the planner's state these transitions read and write (set by Planner.__init__)
    graph: JobGraph
    specs: tuple[JobSpec, ...]
    plan: bool
    status: list[Status]
    tries: list[int]
    results: list[Any]
    exceptions: list[BaseException | None]
    last_start: list[float]
    ended: list[float | None]
    blocked_by: list[str | None]
    not_retried: dict[int, str]
    causes: dict[int, BaseException | None]
    in_flight: set[int]
    stopped: str | None
    stopped_job: str | None
    _emit: Callable[[Any], None] | None
    _single_try: bool
    _running: int
    _unfinished: int
    _unmet: list[int]
    _dependents: Any
    _keeps_alive: list[bool]
    _ready: list[tuple[int, int, int]]
    _waiting: list[tuple[float, int]]
    _locking: bool
    _ledger: Ledger
    _rng: random.Random | None

    def complete(
        self,
        index: int,
        ok: bool,
        now: float,
        changed: bool = False,
        result: Any = None,
        exception: BaseException | None = None,
        *,
        cancelled: bool = False,
        interrupted: bool = False,
        keep_locks: bool = False,
        cause: BaseException | None = None,
    ) -> None:
        """Record the end of a try of job ``index``: succeed, schedule a retry, or fail and block.

        Args:
            cancelled: the try was cut short because the run stopped (the job
                ends interrupted) or only forever jobs were left (not run); it blocks nothing.
            interrupted: a stop (Ctrl-C, SIGTERM) cut the try short: the job ends interrupted.
            keep_locks: the try's thread runs on (abandoned): its locks stay held
                until :meth:`release` (locks follow the code, not the bookkeeping).
            cause: what Run raised in this try, when its recheck then failed.
        """
        try:
            self.in_flight.remove(index)
        except KeyError:
            raise RuntimeError(f"complete() of {self.specs[index].name!r}, which has no try running") from None
        self._running -= 1
        if cause is not None or index in self.causes:  # operator: the cause of the last failed try
            self.causes[index] = None if ok else cause
        self.ended[index] = now
        if self._locking:
            if keep_locks:
                self._ledger.keep(index, self.specs[index])
            else:
                self._ledger.release(self.specs[index])
        if interrupted:
            self._interrupted(index, now, exception)
            return
        if ok:
            status = CHANGED if changed else OK
            self.status[index] = status
            self.results[index] = result
            if self._keeps_alive[index]:
                self._unfinished -= 1
            if self._emit is not None:
                name = self.specs[index].name
                self._emit(TryEnded(name, self.tries[index], True, now))
                self._emit(JobFinished(name, status, self.tries[index], now))
        elif not self._failed_try(index, now, exception, cancelled):
            return
        if self.stopped is None:  # dependents whose last unmet dependency this was become ready
            unmet = self._unmet
            for d in self._dependents[index]:
                unmet[d] = left = unmet[d] - 1
                if not left:
                    heappush(self._ready, (0, self.specs[d].traits.priority, d))

    def _failed_try(self, index: int, now: float, exception: BaseException | None, cancelled: bool) -> bool:
        """:meth:`complete` for a failed try: retry, or end the job; True if its dependents may still run."""
        spec = self.specs[index]
        emit = self._emit
        self.exceptions[index] = exception
        tries_left = self.tries[index] < (1 if self._single_try else spec.traits.tries)
        if cancelled or (self.stopped is not None and tries_left):  # cut short, or it had tries left
            status = INTERRUPTED if self.stopped is not None else NOT_RUN
            self.status[index] = status
            if self._keeps_alive[index]:
                self._unfinished -= 1
            if emit is not None:
                emit(TryEnded(spec.name, self.tries[index], False, now))
                emit(JobFinished(spec.name, status, self.tries[index], now))
            return False
        if tries_left:
            retry = spec.traits.retry
            if retry is None:  # DoJobber's rule
                retry_at: float | None = self.last_start[index] + spec.traits.retry_delay
            else:
                retry_at = self._retry_at(index, retry, now, exception)
            if retry_at is not None:
                heappush(self._waiting, (retry_at, index))
                if emit is not None:
                    emit(TryEnded(spec.name, self.tries[index], False, now, retry_at))
                return False
        if emit is not None:
            emit(TryEnded(spec.name, self.tries[index], False, now))
        release = self.plan or not spec.traits.fail_blocks
        if release:
            # a plan: the job would run, its dependents are still checked;
            # asyncio-style ordering: dependents run after a failure too
            self.status[index] = FAILED
            if self._keeps_alive[index]:
                self._unfinished -= 1
            if emit is not None:
                emit(JobFinished(spec.name, FAILED, self.tries[index], now))
        else:
            self._fail(index, now)
        if spec.traits.critical and not self.plan and self.stopped is None:
            self.stop("critical", now, job=spec.name)
        return release

    def _interrupted(self, index: int, now: float, exception: BaseException | None) -> None:
        """:meth:`complete` for a try a stop cut short: the job ends interrupted (never failed)."""
        self.exceptions[index] = exception
        self.status[index] = INTERRUPTED
        if self._keeps_alive[index]:
            self._unfinished -= 1
        if self._emit is not None:
            name = self.specs[index].name
            self._emit(TryEnded(name, self.tries[index], False, now))
            self._emit(JobFinished(name, INTERRUPTED, self.tries[index], now))

    def finish(self, now: float) -> None:
        """Close the run; call once :meth:`is_active` is False.

        A try still in flight (a driver that lost it) ends interrupted; so does a
        job waiting for a retry when the run stopped (it had tries left), and so
        does every job a stop kept from starting; without a stop, a job never
        started (one waiting for a forever job) is not run.
        """
        for index in sorted(self.in_flight):
            self.stopped = self.stopped or "interrupted"
            self.complete(index, False, now, interrupted=True)
        status = self.status
        for _, index in sorted(self._waiting):
            if status[index] is PENDING:
                if self.stopped is not None:
                    self._interrupted(index, now, self.exceptions[index])
                else:
                    self._fail(index, now)
        self._waiting.clear()
        self._ready.clear()
        if PENDING in status:
            self._close_pending(now)
        self._unfinished = 0

    def _close_pending(self, now: float) -> None:
        """Jobs never started (deps first): after a stop they end interrupted, else not run.

        A stop is why they never started, so every view of the run (recap, report,
        JUnit, history, event log) reads "interrupted" from this one status; one
        downstream of an interrupted try names it in ``blocked_by``.
        """
        status = self.status
        deps = self.graph.deps
        specs = self.specs
        emit = self._emit
        end = NOT_RUN if self.stopped is None else INTERRUPTED
        for index in range(len(status)):  # post-order: a job's dependencies come before it
            if status[index] is not PENDING:
                continue
            status[index] = end
            if end is INTERRUPTED:  # the interrupted try it waited for, if any
                self.blocked_by[index] = next(filter(None, map(self._cut_origin, deps[index])), None)
            if emit is not None:
                emit(JobFinished(specs[index].name, end, 0, now))

    def _cut_origin(self, index: int) -> str | None:
        """The job whose interrupted try job ``index`` ended with (itself if it was tried), or None."""
        if self.status[index] is not INTERRUPTED:
            return None
        return self.specs[index].name if self.tries[index] else self.blocked_by[index]

    def _retry_at(self, index: int, retry: Any, now: float, exception: BaseException | None) -> float | None:
        """When job ``index`` may try again under its retry policy, or None if RETRY_ON refuses the failure."""
        refused = retry.refuses(exception)
        if refused is not None:
            self.not_retried[index] = refused
            if exception is not None and hasattr(exception, "add_note"):
                exception.add_note(refused)  # the reason travels with the error, into the report
            return None
        if self._rng is None:
            self._rng = random.Random()
        start = now if retry.from_end else self.last_start[index]
        return start + retry.delay(self.specs[index].traits.retry_delay, self.tries[index], self._rng)

    def _fail(self, index: int, now: float) -> None:
        """Mark job ``index`` failed and every job downstream of it blocked (iteratively)."""
        status = self.status
        specs = self.specs
        keeps_alive = self._keeps_alive
        status[index] = FAILED
        if keeps_alive[index]:
            self._unfinished -= 1
        name = specs[index].name
        emit = self._emit
        if emit is not None:
            emit(JobFinished(name, FAILED, self.tries[index], now))
        dependents = self.graph.dependents
        stack = list(dependents[index])
        while stack:
            d = stack.pop()
            if status[d] is not PENDING:
                continue
            status[d] = BLOCKED
            self.blocked_by[d] = name
            if keeps_alive[d]:
                self._unfinished -= 1
            if emit is not None:
                emit(JobBlocked(specs[d].name, name, now))
            stack.extend(dependents[d])

    def stop(self, reason: str, now: float, *, job: str | None = None) -> None:
        """Start no new try from now on (running ones may still complete). First reason wins."""
        if self.stopped is not None:
            return
        self.stopped = reason
        self.stopped_job = job
        if self._emit is not None:
            self._emit(RunStopping(reason, now, job, self._running))

    # -- internals -----------------------------------------------------------
