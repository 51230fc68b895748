"""The planner: a pure, I/O-free state machine that decides everything about a run.

Which job may start, when a failed job may retry, what becomes blocked, when
the run is over: the sync and async drivers both drive this one class, so their
semantics are identical by construction. It never reads a clock, sleeps or
prints; drivers pass the time in and read decisions out, like
:class:`graphlib.TopologicalSorter`::

    planner = Planner(graph, max_running=4)
    while planner.is_active():
        for index in planner.next_actions(now()):
            start_try(index)                 # the driver runs the try
        ...                                  # wait for a try to end, or next_wakeup()
        planner.complete(index, ok, now(), result=..., exception=...)
    planner.finish(now())

Round-robin retries fall out of the ready heap's key ``(tries used, priority,
post-order index)``: every ready job's k-th try sorts before any job's (k+1)-th.
Failed jobs wait in a second heap keyed by the earliest time of their next try,
so waiting for a retry never blocks another job. All work per job is O(1)
amortised (O(log n) heap operations); blocking is iterative.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Any

from .events import (
    JobBlocked,
    JobFinished,
    RunStopping,
    Status,
    TryEnded,
    TryStarted,
)
from .graph import JobGraph

PENDING = Status.PENDING
OK = Status.OK
CHANGED = Status.CHANGED
FAILED = Status.FAILED
BLOCKED = Status.BLOCKED
NOT_RUN = Status.NOT_RUN


class Planner:
    """Decides which tries start, retries and blocking for one run of a :class:`JobGraph`.

    Args:
        graph: the validated graph.
        max_running: how many tries may run at once (>= 1).
        no_act: give every job a single try (a Check-only run).
        plan: a truthful plan: every job gets one Check, even downstream of a
            job whose Check fails (that job "would run"); nothing is blocked.
        emit: called with each event, or None to build no events at all.

    All times are floats on the driver's clock; events carry them as given.
    """

    def __init__(
        self,
        graph: JobGraph,
        *,
        max_running: int = 1,
        no_act: bool = False,
        plan: bool = False,
        emit: Callable[[Any], None] | None = None,
    ) -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be >= 1, got {max_running}")
        self.graph = graph
        self.specs = specs = graph.specs
        n = len(specs)
        self._emit = emit
        self._max_running = max_running
        self.plan = plan
        self._max_tries = [1] * n if no_act or plan else [s.tries for s in specs]
        self.status: list[Status] = [PENDING] * n
        self.tries: list[int] = [0] * n
        self.results: list[Any] = [None] * n
        self.exceptions: list[BaseException | None] = [None] * n
        self.started: list[float | None] = [None] * n  # start of the first try
        self.last_start: list[float] = [0.0] * n
        self.ended: list[float | None] = [None] * n  # end of the last try
        self.blocked_by: list[str | None] = [None] * n
        self._unmet = [len(d) for d in graph.deps]
        self._ready: list[tuple[int, int, int]] = [(0, specs[i].priority, i) for i in range(n) if not self._unmet[i]]
        heapify(self._ready)
        self._waiting: list[tuple[float, int]] = []
        self._running = 0
        self._unfinished = n
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

    def next_wakeup(self) -> float | None:
        """The earliest time a waiting retry becomes ready, or None."""
        if self.stopped is None and self._waiting:
            return self._waiting[0][0]
        return None

    # -- transitions -------------------------------------------------------
    def next_actions(self, now: float) -> list[int]:
        """Start as many ready tries as free slots allow; return their job indices.

        The try number of each is ``tries[index]`` after this call.
        """
        if self.stopped is not None:
            return []
        ready = self._ready
        waiting = self._waiting
        tries = self.tries
        while waiting and waiting[0][0] <= now:
            index = heappop(waiting)[1]
            heappush(ready, (tries[index], self.specs[index].priority, index))
        free = self._max_running - self._running
        if free <= 0 or not ready:
            return []
        out = []
        emit = self._emit
        started = self.started
        last_start = self.last_start
        while free and ready:
            index = heappop(ready)[2]
            tries[index] += 1
            last_start[index] = now
            if started[index] is None:
                started[index] = now
            out.append(index)
            free -= 1
            if emit is not None:
                emit(TryStarted(self.specs[index].name, tries[index], now))
        self._running += len(out)
        return out

    def complete(
        self,
        index: int,
        ok: bool,
        now: float,
        *,
        changed: bool = False,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Record the end of a try of job ``index``: succeed, schedule a retry, or fail and block."""
        self._running -= 1
        self.ended[index] = now
        spec = self.specs[index]
        emit = self._emit
        if ok:
            status = CHANGED if changed else OK
            self.status[index] = status
            self.results[index] = result
            self._unfinished -= 1
            if emit is not None:
                emit(TryEnded(spec.name, self.tries[index], True, now))
                emit(JobFinished(spec.name, status, self.tries[index], now))
            self._release_dependents(index)
            return
        self.exceptions[index] = exception
        if self.stopped is None and self.tries[index] < self._max_tries[index]:
            retry_at = self.last_start[index] + spec.retry_delay
            heappush(self._waiting, (retry_at, index))
            if emit is not None:
                emit(TryEnded(spec.name, self.tries[index], False, now, retry_at))
            return
        if emit is not None:
            emit(TryEnded(spec.name, self.tries[index], False, now))
        if self.plan:  # the job would run: its dependents are still checked
            self.status[index] = FAILED
            self._unfinished -= 1
            if emit is not None:
                emit(JobFinished(spec.name, FAILED, self.tries[index], now))
            self._release_dependents(index)
            return
        self._fail(index, now)
        if spec.critical and self.stopped is None:
            self.stop("critical", now, job=spec.name)

    def _release_dependents(self, index: int) -> None:
        """Job ``index`` is done: dependents whose last unmet dependency it was become ready."""
        if self.stopped is not None:
            return
        unmet = self._unmet
        specs = self.specs
        for d in self.graph.dependents[index]:
            unmet[d] -= 1
            if not unmet[d]:
                heappush(self._ready, (0, specs[d].priority, d))

    def stop(self, reason: str, now: float, *, job: str | None = None) -> None:
        """Start no new try from now on (running ones may still complete). First reason wins."""
        if self.stopped is not None:
            return
        self.stopped = reason
        self.stopped_job = job
        if self._emit is not None:
            self._emit(RunStopping(reason, now, job))

    def finish(self, now: float) -> None:
        """Close the run: jobs waiting for a retry fail, jobs never started are not run.

        Call once :meth:`is_active` is False.
        """
        if self._running:
            raise RuntimeError(f"finish() called while {self._running} tries still run")
        for _, index in sorted(self._waiting):
            if self.status[index] is PENDING:
                self._fail(index, now)
        self._waiting.clear()
        self._ready.clear()
        status = self.status
        for index in range(len(status)):
            if status[index] is PENDING:
                status[index] = NOT_RUN
        self._unfinished = 0

    def _fail(self, index: int, now: float) -> None:
        """Mark job ``index`` failed and every job downstream of it blocked (iteratively)."""
        status = self.status
        status[index] = FAILED
        self._unfinished -= 1
        name = self.specs[index].name
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
            self._unfinished -= 1
            if emit is not None:
                emit(JobBlocked(self.specs[d].name, name, now))
            stack.extend(dependents[d])
