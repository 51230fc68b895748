"""A model of random job graphs for the property and stress tests: plans, jobs, oracle, invariants.

A :class:`JobPlan` says everything about one job: its DEPS, TRIES, RETRY_DELAY,
the try at which its world converges (or never), and the exceptions injected
into given phases of given tries. :func:`build_jobs` turns plans into Job
classes that record every phase they enter (job, phase, try, clock time) in a
:class:`Log`; :func:`expected` computes each job's outcome from the plans alone;
the ``check_*`` functions verify the invariants on a finished run.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import heapq
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dojob
from dojob import Status
from dojob.events import JobBlocked, JobFinished, TryEnded, TryStarted

PHASES = ("init", "check", "run", "recheck", "cleanup")


class Oops(Exception):
    """An ordinary injected failure."""


class OddBaseError(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit: it fails its phase."""


#: Exceptions injected by the property tests: none of them stops a run.
FAULTS: dict[str, type[BaseException]] = {
    "Oops": Oops,
    "ValueError": ValueError,
    "OddBaseError": OddBaseError,
    "GeneratorExit": GeneratorExit,
}


@dataclasses.dataclass(frozen=True)
class JobPlan:
    """One job of a random graph.

    Attributes:
        deps: indices of earlier plans (so the graph is acyclic).
        kind: "job" (check, run, recheck) or "runonly" (run only).
        succeed_at: from this try on the world is converged (None: never).
        at_once: on try ``succeed_at`` the first Check already passes (else Run converges it).
        faults: ``((try, phase), exception name)`` pairs; the phase raises it on that try.
    """

    name: str
    deps: tuple[int, ...]
    kind: str
    tries: int
    delay: float
    succeed_at: int | None
    at_once: bool
    faults: tuple[tuple[tuple[int, str], str], ...] = ()

    def fault(self, k: int, phase: str) -> str | None:
        for key, name in self.faults:
            if key == (k, phase):
                return name
        return None


# -- the oracle ----------------------------------------------------------------------


def try_outcome(p: JobPlan, k: int) -> Status | None:
    """How try ``k`` of ``p`` ends: OK, CHANGED, or None (it fails)."""
    if p.fault(k, "init"):
        return None
    s = p.succeed_at
    if p.kind == "runonly":
        return Status.CHANGED if s is not None and k >= s and not p.fault(k, "run") else None
    check_ok = s is not None and (k > s or (k == s and p.at_once))
    if check_ok and not p.fault(k, "check"):
        return Status.OK
    if s is not None and k >= s and not p.fault(k, "recheck"):
        return Status.CHANGED
    return None


def expected(plans: Sequence[JobPlan]) -> dict[str, tuple[Status, int]]:
    """Each job's ``(status, tries)`` from the plans alone (no critical job, no timeout)."""
    out: dict[str, tuple[Status, int]] = {}
    ok: list[bool] = []
    for p in plans:
        if not all(ok[d] for d in p.deps):
            out[p.name] = (Status.BLOCKED, 0)
            ok.append(False)
            continue
        for k in range(1, p.tries + 1):
            status = try_outcome(p, k)
            if status is not None:
                out[p.name] = (status, k)
                break
        else:
            out[p.name] = (Status.FAILED, p.tries)
        ok.append(out[p.name][0].ok is True)
    return out


def expected_cleanup_failures(plans: Sequence[JobPlan], outcome: dict[str, tuple[Status, int]]) -> Counter:
    """How many Cleanups of each job raise: tries whose instance was created and whose Cleanup is faulty."""
    out: Counter = Counter()
    for p in plans:
        for k in range(1, outcome[p.name][1] + 1):
            if not p.fault(k, "init") and p.fault(k, "cleanup"):
                out[p.name] += 1
    return out


# -- the jobs ------------------------------------------------------------------------


class Log:
    """Every phase entered and left, in the order it happened (thread-safe appends)."""

    def __init__(self, clock: dojob.FakeClock | None) -> None:
        self.clock = clock
        self.entries: list[tuple[str, str, int, float, str]] = []  # (job, phase, try, time, "start"|"pass"|"fail")
        self.tries: Counter = Counter()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else 0.0

    def reset(self) -> None:
        """Forget everything, to run the same jobs again."""
        with self._lock:
            self.entries = []
            self.tries = Counter()

    def add(self, job: str, phase: str, k: int, what: str) -> None:
        with self._lock:
            self.entries.append((job, phase, k, self.now(), what))

    def next_try(self, job: str) -> int:
        with self._lock:
            self.tries[job] += 1
            return self.tries[job]


def _raise(p: JobPlan, k: int, phase: str) -> None:
    name = p.fault(k, phase)
    if name is not None:
        raise FAULTS[name](f"{p.name} {phase} try {k}: injected {name}")


def build_jobs(plans: Sequence[JobPlan], log: Log, *, use_async: bool = False) -> list[type]:
    """Job classes for ``plans`` that record into ``log``; returns them in plan order."""
    classes: list[type] = []
    for p in plans:
        classes.append(_job_class(p, [classes[d] for d in p.deps], log, use_async))
    return classes


def _job_class(p: JobPlan, deps: list[type], log: Log, use_async: bool) -> type:
    name = p.name

    def init(self: Any) -> None:
        k = self._k = log.next_try(name)
        log.add(name, "init", k, "start")
        try:
            _raise(p, k, "init")
        except BaseException:
            log.add(name, "init", k, "fail")
            raise

    def phase(self: Any, which: str, passes: bool) -> str:
        k = self._k
        log.add(name, which, k, "start")
        try:
            _raise(p, k, which)
            if not passes:
                raise RuntimeError(f"{name} {which} try {k}: not converged")
        except BaseException:
            log.add(name, which, k, "fail")
            raise
        log.add(name, which, k, "pass")
        return f"{name}-{which}-{k}"

    def check(self: Any) -> str:
        k, s = self._k, p.succeed_at
        if self._check_phase == "check":
            return phase(self, "check", s is not None and (k > s or (k == s and p.at_once)))
        return phase(self, "recheck", s is not None and k >= s)

    def run(self: Any) -> str:
        s = p.succeed_at
        return phase(self, "run", p.kind != "runonly" or (s is not None and self._k >= s))

    def cleanup(self: Any) -> None:
        phase(self, "cleanup", True)

    body: dict[str, Any] = {"DEPS": deps, "TRIES": p.tries, "RETRY_DELAY": p.delay, "__init__": init}
    if use_async:

        async def a_check(self: Any, *a: Any, **kw: Any) -> str:
            await asyncio.sleep(0)  # let other tries interleave
            return check(self)

        async def a_run(self: Any, *a: Any, **kw: Any) -> str:
            return run(self)

        async def a_cleanup(self: Any) -> None:
            cleanup(self)

        methods = {"Check": a_check, "Run": a_run, "Cleanup": a_cleanup}
    else:
        methods = {
            "Check": lambda self, *a, **kw: check(self),
            "Run": lambda self, *a, **kw: run(self),
            "Cleanup": cleanup,
        }
    if p.kind == "runonly":
        del methods["Check"]
    body.update(methods)
    base = dojob.RunonlyJob if p.kind == "runonly" else dojob.Job
    return type(name, (base,), body)


def roots_of(plans: Sequence[JobPlan], classes: Sequence[type]) -> list[type]:
    """The jobs no other job depends on."""
    used = {d for p in plans for d in p.deps}
    return [c for i, c in enumerate(classes) if i not in used]


# -- the invariants --------------------------------------------------------------------


def check_report(plans: Sequence[JobPlan], report: dojob.Report) -> None:
    """Statuses and tries match the oracle; None exactly when a dependency did not succeed; success iff all True."""
    want = expected(plans)
    got = {j.name: (j.status, j.tries) for j in report}
    assert got == want
    statuses = report.statuses()
    for p in plans:
        deps_ok = all(statuses[plans[d].name] is True for d in p.deps)
        assert (statuses[p.name] is None) == (not deps_ok), p.name
    assert report.success == all(v is True for v in statuses.values())


def check_log(plans: Sequence[JobPlan], log: Log, *, strict_lifo: bool) -> None:
    """The invariants read from what the jobs themselves recorded."""
    by_name = {p.name: p for p in plans}
    succeeded_at: dict[str, int] = {}  # job -> position of the phase end that made it succeed
    starts: dict[str, list[float]] = {}
    created: list[tuple[str, int]] = []  # instances whose __init__ returned, in the order it was called
    check_started: dict[tuple[str, int], int] = {}
    init_at: dict[tuple[str, int], int] = {}
    cleaned: list[tuple[str, int]] = []
    for pos, (job, phase, k, t, what) in enumerate(log.entries):
        p = by_name[job]
        if phase == "init" and what == "start":
            # no job starts before all its DEPS succeeded
            for d in p.deps:
                dep = plans[d].name
                assert dep in succeeded_at and succeeded_at[dep] < pos, f"{job} try {k} started before {dep} succeeded"
            starts.setdefault(job, []).append(t)
            init_at[(job, k)] = pos
            created.append((job, k))
        elif phase == "init" and what == "fail":
            created.remove((job, k))
        elif phase in ("check", "recheck", "run") and what == "start":
            check_started.setdefault((job, k), pos)
        elif phase == "cleanup" and what == "start":
            cleaned.append((job, k))
        ends_try = (phase in ("check", "recheck") and p.kind == "job") or (phase == "run" and p.kind == "runonly")
        if what == "pass" and ends_try and job not in succeeded_at:
            succeeded_at[job] = pos
    for job, times in starts.items():
        p = by_name[job]
        assert len(times) <= p.tries, f"{job} tried {len(times)} times, TRIES={p.tries}"
        for a, b in zip(times, times[1:]):
            assert b - a >= p.delay - 1e-9, f"{job}: tries {a} and {b} closer than RETRY_DELAY={p.delay}"
    # every instance whose Check (or Run) ran is cleaned up exactly once, newest first
    assert Counter(cleaned) == Counter(created)
    assert len(set(cleaned)) == len(cleaned)
    if strict_lifo:
        assert cleaned == created[::-1]
    else:
        # threads: an instance is registered somewhere between its __init__ and its first phase,
        # so "a before b" is known only when a's first phase started before b's __init__; then
        # b must be cleaned up before a. Checked in O(n log n) with a prefix minimum.
        order = {inst: n for n, inst in enumerate(cleaned)}
        by_start = sorted(created, key=check_started.__getitem__)
        first_phases = [check_started[a] for a in by_start]
        prefix_min: list[int] = []
        for a in by_start:
            prefix_min.append(min(order[a], prefix_min[-1]) if prefix_min else order[a])
        for b in created:
            before = bisect.bisect_left(first_phases, init_at[b])  # instances surely registered before b
            if before:
                assert order[b] < prefix_min[before - 1], f"{b} was cleaned up after an older instance"


def check_round_robin(plans: Sequence[JobPlan], events: Sequence[Any]) -> None:
    """Among jobs ready at the moment a try starts, none has used fewer tries than the one starting.

    Ready at time t: not running, not finished, every dependency finished OK,
    and its last failed try's ``retry_at`` (if any) is <= t. Built from the
    planner's own events (TryStarted, TryEnded, JobFinished, JobBlocked).
    """
    deps = {p.name: [plans[d].name for d in p.deps] for p in plans}
    used: Counter = Counter()
    running: set[str] = set()
    finished: set[str] = set()
    succeeded: set[str] = set()
    retry_at: dict[str, float] = {}
    names = [p.name for p in plans]
    for e in events:
        kind = type(e)
        if kind is TryStarted:
            k = e.try_number - 1
            assert used[e.job] == k and e.job not in running and e.job not in finished
            assert all(d in succeeded for d in deps[e.job])
            assert retry_at.get(e.job, float("-inf")) <= e.time + 1e-9
            for x in names:
                if x == e.job or x in running or x in finished or used[x] >= k:
                    continue
                ready = all(d in succeeded for d in deps[x]) and retry_at.get(x, float("-inf")) <= e.time
                assert not ready, f"{e.job} got try {k + 1} while {x}, ready, had used only {used[x]}"
            running.add(e.job)
            used[e.job] += 1
        elif kind is TryEnded:
            running.discard(e.job)
            if e.retry_at is not None:
                retry_at[e.job] = e.retry_at
        elif kind is JobFinished:
            finished.add(e.job)
            if e.status.ok:
                succeeded.add(e.job)
        elif kind is JobBlocked:
            finished.add(e.job)


def check_round_robin_fast(plans: Sequence[JobPlan], events: Sequence[Any]) -> None:
    """:func:`check_round_robin` in O(events log n), for large graphs.

    Keeps the set of ready jobs (dependencies succeeded, not running, retry
    delay over) with a count of them per number of tries used: a starting
    try must be of a ready job, and use the fewest tries among them.
    """
    dependents: dict[str, list[str]] = {p.name: [] for p in plans}
    unmet = {p.name: len(p.deps) for p in plans}
    for p in plans:
        for d in p.deps:
            dependents[plans[d].name].append(p.name)
    used: Counter = Counter()
    ready = {name for name, n in unmet.items() if not n}
    per_count: Counter = Counter({0: len(ready)})
    waiting: list[tuple[float, str]] = []
    for e in events:
        kind = type(e)
        if kind is TryStarted:
            while waiting and waiting[0][0] <= e.time:
                _, name = heapq.heappop(waiting)
                ready.add(name)
                per_count[used[name]] += 1
            assert e.job in ready, f"{e.job} started try {e.try_number} while not ready"
            k = e.try_number - 1
            assert used[e.job] == k
            fewest = min(c for c, n in per_count.items() if n)
            assert fewest == k, f"{e.job} got try {k + 1} while a ready job had used only {fewest}"
            ready.discard(e.job)
            per_count[k] -= 1
            used[e.job] += 1
        elif kind is TryEnded:
            if e.retry_at is not None:
                heapq.heappush(waiting, (e.retry_at, e.job))
        elif kind is JobFinished and e.status.ok:
            for d in dependents[e.job]:
                unmet[d] -= 1
                if not unmet[d]:
                    ready.add(d)
                    per_count[0] += 1
