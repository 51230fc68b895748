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
* resources (CLAIMS, USES, capacities): a try takes all its units at once
  when it starts, or waits without starving (see :mod:`dojob.resources`);
* skipped jobs (a selection's ``--skip``) are satisfied without a try;
* stopping: a CRITICAL job that fails all its tries, the run's deadline, or an
  interrupt stops the run: nothing new starts, and :meth:`cancel_running` tells
  drivers to cancel (async) or abandon (threads, for a deadline) what runs.

Forever jobs (asyncio-style monitors) do not keep a run alive: once every other
job has finished, :meth:`cancel_running` asks for them to be cancelled. A run
of forever jobs only lasts until they end (or the deadline). All
work per job is O(1) amortised plus O(log n) heap operations; blocking is
iterative.

This module holds the planner's state and what starts next; what an outcome
does (:meth:`~Planner.complete`, :meth:`~Planner.stop`, :meth:`~Planner.finish`)
is in :mod:`dojob.outcomes`, and the resource ledger in :mod:`dojob.resources`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from itertools import compress
from operator import attrgetter, not_
from typing import Any

from .events import JobFinished, LocksReleased, LockWait, Status, TryStarted
from .graph import JobGraph
from .outcomes import Outcomes
from .resources import Ledger


class SparseColumn(dict):
    """Per-job values for the few jobs that have one; None (or 0) for the others."""

    def __missing__(self, index: int) -> None:
        return None


_FOREVER = attrgetter("traits.forever")

PENDING = Status.PENDING
OK = Status.OK
CHANGED = Status.CHANGED
SKIPPED = Status.SKIPPED


class Planner(Outcomes):
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
        self._dependents = graph.dependents
        self._rng = rng
        #: Why a job was not retried although it had tries left (RETRY_ON), by index.
        self.not_retried: SparseColumn = SparseColumn()
        self._ready, self._unmet = self._first_ready()
        self._waiting: list[tuple[float, int]] = []  # (earliest start of its next try, job index)
        self._running = 0
        #: The tries handed out whose outcome the planner does not have yet.
        self.in_flight: set[int] = set()
        self._forever = graph.forever
        self._keeps_alive, self._unfinished = self._keepers()
        self._locking = graph.has_locks
        #: How many times each job was ready but waited for a lock (only jobs that did).
        self.lock_waits: SparseColumn = SparseColumn()
        self._ledger = Ledger(capacity, self.lock_waits)
        #: Where each job's last try ran, when a driver said (threads, processes).
        self.workers: SparseColumn = SparseColumn()
        #: What Run raised in each job's last try, when its recheck then failed (operator: cause before symptom).
        self.causes: SparseColumn = SparseColumn()
        #: Why the run stopped starting jobs ("critical", "timeout", "interrupted"), or None.
        self.stopped: str | None = None
        self.stopped_job: str | None = None

    def _first_ready(self) -> tuple[list[tuple[int, int, int]], list[int]]:
        """The ready heap at the start, and each job's count of unmet DEPS (skipped jobs are satisfied).

        Built with C-level iteration (map, compress): this setup is a visible
        share of a run of cheap jobs.
        """
        graph, specs = self.graph, self.specs
        unmet = list(map(len, graph.deps))
        for i in graph.skipped:  # satisfied without a try: their dependents need them no more
            self.status[i] = SKIPPED
            unmet[i] += 1  # never ready, whatever its own DEPS do
            for d in graph.dependents[i]:
                unmet[d] -= 1
        leaves = compress(range(len(specs)), map(not_, unmet))
        ready = [(0, specs[i].traits.priority, i) for i in leaves]
        heapify(ready)
        return ready, unmet

    def _keepers(self) -> tuple[list[bool], int]:
        """Which jobs the run waits for, and how many of them are left to finish.

        All but forever jobs, unless there is nothing else (a run of monitors
        lasts until they end or time out).
        """
        specs = self.specs
        n = len(specs)
        if self._forever and len(self._forever) < n:
            keeps_alive = list(map(not_, map(_FOREVER, specs)))
        else:
            keeps_alive = [True] * n
        return keeps_alive, sum(keeps_alive) - sum(keeps_alive[i] for i in self.graph.skipped)

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
        return all(s in succeeded or s is SKIPPED or specs[i].traits.forever for i, s in enumerate(self.status))

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
                heappush(ready, (tries[index], specs[index].traits.priority, index))
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
        """Up to ``free`` ready jobs whose locks can all be taken now (see :meth:`Ledger.choose`)."""
        out, waiting = self._ledger.choose(self._ready, free, self.specs)
        if self._emit is not None:
            for index in waiting:
                spec = self.specs[index]
                self._emit(LockWait(spec.name, self.tries[index] + 1, now, spec.traits.claims, spec.traits.uses))
        return out

    def holding(self, index: int) -> tuple[str, ...]:
        """The resources a running try of job ``index`` holds (its CLAIMS, then its USES)."""
        if not self._locking:
            return ()
        spec = self.specs[index]
        return (*spec.traits.claims, *spec.traits.uses)

    def release(self, index: int, now: float) -> None:
        """The thread of an abandoned try of job ``index`` ended: free the locks it kept."""
        spec = self._ledger.release_kept(index)
        if spec is None:
            return
        if self._emit is not None:
            self._emit(LocksReleased(spec.name, now, (*spec.traits.claims, *spec.traits.uses)))

    @property
    def holders(self) -> int:
        """How many abandoned tries still hold locks."""
        return self._ledger.holders

    def units_held(self) -> dict[str, int]:
        """Resource name -> units held by running tries now (for tests and displays)."""
        return self._ledger.held()
