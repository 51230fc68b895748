"""The planner: a pure, I/O-free state machine that decides everything about a run.

Which job may start, when a failed job may retry, what becomes blocked, which
resources are locked, when the run must stop and when it is over: the sync and
async drivers both drive this one class, so their semantics are identical by
construction. It never reads a clock, sleeps or prints; drivers pass the time
in and read decisions out, like :class:`graphlib.TopologicalSorter`::

    planner = Planner(graph, max_running=4)
    while planner.is_active():
        for index in planner.next_actions(now()):
            start_try(index)                 # the driver runs the try
        ...                                  # wait for a try to end, or next_wakeup()
        planner.complete(index, ok, now(), result=..., exception=...)
    planner.finish(now())

Rules, in order of precedence when choosing the next try:

* round-robin: the ready heap is keyed ``(tries used, PRIORITY, post-order
  index)``, so every ready job's k-th try sorts before any job's (k+1)-th;
* retry delays: failed jobs wait in a second heap keyed by the earliest start
  of their next try (previous start + RETRY_DELAY, or what the job's retry
  policy says: backoff, cap, jitter, from the try's end; see
  :mod:`dojob.retry`); waiting never blocks others; an exception outside
  RETRY_ON fails the job at once;
* resources, one rule for locks and capacities: a resource has a capacity
  (the run's ``capacity``, else unbounded); a try takes one unit of each
  resource it USES and all the units of each it CLAIMS, all at once when it
  starts (so no deadlock is possible) and gives them back when it ends; a
  ready job whose units are not all free is passed over, and reserves its
  resources so that later jobs cannot starve it;
* skipped jobs (a selection's ``--skip``) are satisfied without a try;
* stopping: a CRITICAL job that fails all its tries, the run's deadline, or an
  interrupt stops the run: nothing new starts, and :meth:`cancel_running` tells
  drivers to cancel (async) or abandon (threads, for a deadline) what runs.

Forever jobs (asyncio-style monitors) do not keep a run alive: once every other
job has finished, :meth:`cancel_running` asks for them to be cancelled. A run
of forever jobs only lasts until they end (or the deadline). All
work per job is O(1) amortised plus O(log n) heap operations; blocking is
iterative.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from itertools import compress
from operator import attrgetter, not_
from typing import Any

from .events import (
    JobBlocked,
    JobFinished,
    LocksReleased,
    LockWait,
    RunStopping,
    Status,
    TryEnded,
    TryStarted,
)
from .graph import JobGraph


class SparseColumn(dict):
    """Per-job values for the few jobs that have one; None (or 0) for the others."""

    def __missing__(self, index: int) -> None:
        return None


_FOREVER = attrgetter("forever")

PENDING = Status.PENDING
OK = Status.OK
CHANGED = Status.CHANGED
FAILED = Status.FAILED
BLOCKED = Status.BLOCKED
NOT_RUN = Status.NOT_RUN
SKIPPED = Status.SKIPPED
INTERRUPTED = Status.INTERRUPTED

#: The capacity of a resource the run gives none: a USES never waits for another USES.
UNBOUNDED = 1 << 62


class Planner:
    """Decides which tries start, retries, locks, blocking and stopping for one run.

    Args:
        graph: the validated graph.
        max_running: how many tries may run at once (>= 1).
        no_act: give every job a single try (a Check-only run).
        plan: a truthful plan: every job gets one Check, even downstream of a
            job whose Check fails (that job "would run"); nothing is blocked.
        deadline: the time after which nothing new starts (the run times out).
        emit: called with each event, or None to build no events at all.
        capacity: resource name -> how many units it has (default: unbounded);
            a try takes one unit of each of its USES and all of each of its CLAIMS.
        rng: the random source of RETRY_JITTER (seed one for repeatable delays).

    All times are floats on the driver's clock; events carry them as given.
    """

    def __init__(
        self,
        graph: JobGraph,
        *,
        max_running: int = 1,
        no_act: bool = False,
        plan: bool = False,
        deadline: float | None = None,
        emit: Callable[[Any], None] | None = None,
        capacity: dict[str, int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be >= 1, got {max_running}")
        self.graph = graph
        self.specs = specs = graph.specs
        n = len(specs)
        self._emit = emit
        self._max_running = max_running
        self.plan = plan
        self.deadline = deadline
        self._single_try = no_act or plan
        self.status: list[Status] = [PENDING] * n
        self.tries: list[int] = [0] * n
        self.results: list[Any] = [None] * n
        self.exceptions: list[BaseException | None] = [None] * n
        self.started: list[float | None] = [None] * n  # start of the first try
        self.last_start: list[float] = [0.0] * n
        self.ended: list[float | None] = [None] * n  # end of the last try
        self.blocked_by: list[str | None] = [None] * n
        # Per-job columns are built with C-level iteration (map, compress): this
        # setup is a visible share of a run of cheap jobs.
        self._unmet = unmet = list(map(len, graph.deps))
        self._dependents = graph.dependents
        self._rng = rng
        #: Why a job was not retried although it had tries left (RETRY_ON), by index.
        self.not_retried: SparseColumn = SparseColumn()
        skipped = graph.skipped
        for i in skipped:  # satisfied without a try: their dependents need them no more
            self.status[i] = SKIPPED
            unmet[i] += 1  # never ready, whatever its own DEPS do
            for d in graph.dependents[i]:
                unmet[d] -= 1
        leaves = compress(range(n), map(not_, unmet))
        self._ready: list[tuple[int, int, int]] = [(0, specs[i].priority, i) for i in leaves]
        heapify(self._ready)
        self._waiting: list[tuple[float, int]] = []
        self._running = 0
        #: The tries handed out whose outcome the planner does not have yet.
        self.in_flight: set[int] = set()
        self._kept: dict[int, Any] = {}  # abandoned tries whose thread still holds their locks
        self._forever = graph.forever
        # Jobs whose end the run waits for: all but forever jobs, unless there
        # is nothing else (a run of monitors lasts until they end or time out).
        if self._forever and len(self._forever) < n:
            self._keeps_alive = list(map(not_, map(_FOREVER, specs)))
        else:
            self._keeps_alive = [True] * n
        self._unfinished = sum(self._keeps_alive) - sum(self._keeps_alive[i] for i in skipped)
        self._locking = graph.has_locks
        self._capacity: dict[str, int] = dict(capacity or {})
        self._held: Counter[str] = Counter()  # units of each resource held by running tries
        self._lock_waits: set[int] = set()  # jobs told to wait for a lock in this round
        #: How many times each job was ready but waited for a lock (only jobs that did).
        self.lock_waits: SparseColumn = SparseColumn()
        #: Where each job's last try ran, when a driver said (threads, processes).
        self.workers: SparseColumn = SparseColumn()
        #: What Run raised in each job's last try, when its recheck then failed (operator: cause before symptom).
        self.causes: SparseColumn = SparseColumn()
        #: Why the run stopped starting jobs ("critical", "timeout", "interrupted"), or None.
        self.stopped: str | None = None
        self.stopped_job: str | None = None

    # -- queries -----------------------------------------------------------
    @property
    def running(self) -> int:
        """How many tries are running."""
        return self._running

    def is_active(self) -> bool:
        """Whether the driver must keep going: a try runs, or a job may still start."""
        if self._running:
            return True
        return self.stopped is None and self._unfinished > 0

    def cancel_running(self) -> bool:
        """Whether tries still running should be cancelled now.

        True once the run stopped (critical failure, deadline) or when only
        forever jobs are left. Async drivers cancel; the sync driver abandons
        threads only when the deadline passed (threads cannot be cancelled).
        """
        return self._running > 0 and (self.stopped is not None or self._unfinished == 0)

    def next_wakeup(self) -> float | None:
        """When the driver must call :meth:`next_actions` again at the latest, or None.

        The earliest of the next retry and the run's deadline.
        """
        if self.stopped is not None:
            return None
        wake = self._waiting[0][0] if self._waiting else None
        if self.deadline is not None and (wake is None or self.deadline < wake):
            return self.deadline
        return wake

    def succeeded(self) -> bool:
        """Every job that is not a forever job succeeded, and the run was not stopped."""
        if self.stopped is not None:
            return False
        succeeded = (OK, CHANGED)
        if not self._forever:
            status = self.status
            return status.count(OK) + status.count(CHANGED) == len(status) - len(self.graph.skipped)
        specs = self.specs
        return all(s in succeeded or s is SKIPPED or specs[i].forever for i, s in enumerate(self.status))

    def announce_skipped(self, now: float) -> None:
        """Emit a ``JobFinished(status=SKIPPED)`` for each skipped job (drivers call it once, after RunStarted)."""
        if self._emit is not None:
            for i in sorted(self.graph.skipped):
                self._emit(JobFinished(self.specs[i].name, SKIPPED, 0, now))

    # -- transitions -------------------------------------------------------
    def next_actions(self, now: float) -> list[int]:
        """Start as many ready tries as free slots and locks allow; return their job indices.

        The try number of each is ``tries[index]`` after this call. Past the
        deadline, stops the run instead.
        """
        if self.stopped is not None:
            return []
        if self.deadline is not None and now >= self.deadline:
            self.stop("timeout", now)
            return []
        waiting = self._waiting
        if waiting and waiting[0][0] <= now:
            ready = self._ready
            tries = self.tries
            specs = self.specs
            while waiting and waiting[0][0] <= now:
                index = heappop(waiting)[1]
                heappush(ready, (tries[index], specs[index].priority, index))
        free = self._max_running - self._running
        ready = self._ready
        if free <= 0 or not ready or not self._unfinished:  # (only forever jobs left: start nothing more)
            return []
        if self._locking:
            out = self._choose_locked(free, now)
        elif free == 1:
            out = [heappop(ready)[2]]
        else:
            out = [heappop(ready)[2] for _ in range(min(free, len(ready)))]
        tries = self.tries
        emit = self._emit
        for index in out:
            tries[index] = try_number = tries[index] + 1
            self.last_start[index] = now
            if try_number == 1:
                self.started[index] = now
            if emit is not None:
                emit(TryStarted(self.specs[index].name, try_number, now))
        self._running += len(out)
        self.in_flight.update(out)
        return out

    def _choose_locked(self, free: int, now: float) -> list[int]:
        """Pop up to ``free`` ready jobs whose locks can all be taken now; pass over (and reserve for) the others."""
        ready = self._ready
        specs = self.specs
        out: list[int] = []
        passed_over = []
        reserved: set[str] = set()
        while free and ready:
            entry = heappop(ready)
            index = entry[2]
            spec = specs[index]
            if (spec.claims or spec.uses) and not self._acquire(spec, reserved):
                passed_over.append(entry)
                reserved.update(spec.claims)
                reserved.update(spec.uses)
                if index not in self._lock_waits:
                    self._lock_waits.add(index)
                    self.lock_waits[index] = self.lock_waits.get(index, 0) + 1
                    if self._emit is not None:
                        self._emit(LockWait(spec.name, self.tries[index] + 1, now, spec.claims, spec.uses))
                continue
            self._lock_waits.discard(index)
            out.append(index)
            free -= 1
        for entry in passed_over:
            heappush(ready, entry)
        return out

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
                self._kept[index] = self.specs[index]
            else:
                self._release(self.specs[index])
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
                    heappush(self._ready, (0, self.specs[d].priority, d))

    def _failed_try(self, index: int, now: float, exception: BaseException | None, cancelled: bool) -> bool:
        """:meth:`complete` for a failed try: retry, or end the job; True if its dependents may still run."""
        spec = self.specs[index]
        emit = self._emit
        self.exceptions[index] = exception
        tries_left = self.tries[index] < (1 if self._single_try else spec.tries)
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
            retry = spec.retry
            if retry is None:  # DoJobber's rule
                retry_at: float | None = self.last_start[index] + spec.retry_delay
            else:
                retry_at = self._retry_at(index, retry, now, exception)
            if retry_at is not None:
                heappush(self._waiting, (retry_at, index))
                if emit is not None:
                    emit(TryEnded(spec.name, self.tries[index], False, now, retry_at))
                return False
        if emit is not None:
            emit(TryEnded(spec.name, self.tries[index], False, now))
        release = self.plan or not spec.fail_blocks
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
        if spec.critical and not self.plan and self.stopped is None:
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

    def holding(self, index: int) -> tuple[str, ...]:
        """The resources a running try of job ``index`` holds (its CLAIMS, then its USES)."""
        if not self._locking:
            return ()
        spec = self.specs[index]
        return (*spec.claims, *spec.uses)

    def release(self, index: int, now: float) -> None:
        """The thread of an abandoned try of job ``index`` ended: free the locks it kept."""
        spec = self._kept.pop(index, None)
        if spec is None:
            return
        self._release(spec)
        if self._emit is not None:
            self._emit(LocksReleased(spec.name, now, (*spec.claims, *spec.uses)))

    @property
    def holders(self) -> int:
        """How many abandoned tries still hold locks."""
        return len(self._kept)

    def stop(self, reason: str, now: float, *, job: str | None = None) -> None:
        """Start no new try from now on (running ones may still complete). First reason wins."""
        if self.stopped is not None:
            return
        self.stopped = reason
        self.stopped_job = job
        if self._emit is not None:
            self._emit(RunStopping(reason, now, job, self._running))

    def finish(self, now: float) -> None:
        """Close the run; call once :meth:`is_active` is False.

        A try still in flight (a driver that lost it) ends interrupted; so does a
        job waiting for a retry when the run stopped (it had tries left) and every
        job downstream of an interrupted one; other jobs never started are not run.
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

    # -- internals -----------------------------------------------------------
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
        return start + retry.delay(self.specs[index].retry_delay, self.tries[index], self._rng)

    def _units(self, spec: Any) -> list[tuple[str, int]]:
        """The units of each resource a try of ``spec`` takes: all of a CLAIM, one of a USE."""
        capacity = self._capacity
        return [(name, capacity.get(name, UNBOUNDED)) for name in spec.claims] + [(name, 1) for name in spec.uses]

    def _acquire(self, spec: Any, reserved: set[str]) -> bool:
        """Take all of ``spec``'s units at once, or none (also refusing resources reserved this round).

        The one rule: a try may start when, for each resource, the units it
        takes fit in what the resource's capacity leaves free.
        """
        held = self._held
        capacity = self._capacity
        units = self._units(spec)
        for name, need in units:
            if name in reserved or held[name] + need > capacity.get(name, UNBOUNDED):
                return False
        for name, need in units:
            held[name] += need
        return True

    def _release(self, spec: Any) -> None:
        """Give back the units of ``spec`` (if it takes any)."""
        if not spec.claims and not spec.uses:
            return
        held = self._held
        for name, need in self._units(spec):
            held[name] -= need
            if not held[name]:
                del held[name]

    def units_held(self) -> dict[str, int]:
        """Resource name -> units held by running tries now (for tests and displays)."""
        return dict(self._held)

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
