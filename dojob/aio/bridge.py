"""From a scheduler's jobs to a :class:`~dojob.graph.JobGraph`, and from the run's report back to the jobs.

A scheduler run is a planner run: every job becomes an ``awaitable`` spec
(``fail_blocks=False``: requirements only order jobs, as in asynciojobs), the
async driver runs it, and the :class:`~dojob.report.Report` says how each job
ended. This module holds that translation and nothing else.

Live state. While the run goes on, each try goes through a :class:`_Try`
adapter that marks its job running, then done (on success, or when its last
try fails). Recording this in the try itself costs nothing per job; an
observer would make the core build ~5 event objects per job, which doubles
the engine's cost on large graphs. The report stays the source of truth: at
the end of the run it overwrites what the adapters recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..events import Status
from ..graph import JobGraph, JobSpec, check_delay, check_tries
from ..spec import Traits, make_spec
from . import topology
from .jobs import Job

_OK = Status.OK
_CHANGED = Status.CHANGED
_FAILED = Status.FAILED
_ENDED = frozenset({_OK, _CHANGED, _FAILED})


class _Try:
    """What the planner awaits for one job: each call of :meth:`co_run` is one try."""

    __slots__ = ("job", "tries", "count")

    def __init__(self, job: Any, tries: int) -> None:
        self.job = job
        self.tries = tries
        self.count = 0

    async def co_run(self) -> Any:
        job = self.job
        self.count += 1
        job._running = True
        try:
            if job.__class__ is Job:  # the common case, one coroutine frame less per job
                # what corun is (a factory or an awaitable) is job._factory, which mypy cannot narrow on
                value = await (job.corun() if job._factory else job.corun)  # type: ignore[misc, operator]
            else:
                value = await job.co_run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self.count >= self.tries:
                job._exception = exc
                job._done = True
            raise
        job._result = value
        job._exception = None
        job._done = True
        return value


class RunPlan:
    """One run of a scheduler: the graph for the planner and the jobs in graph order."""

    __slots__ = ("graph", "jobs")

    def __init__(self, graph: JobGraph, jobs: list[Any]) -> None:
        self.graph = graph
        self.jobs = jobs

    def by_name(self) -> dict[str, Any]:
        """Spec name -> job."""
        return {spec.name: job for spec, job in zip(self.graph.specs, self.jobs, strict=False)}

    def job_index(self, name: str | None) -> int | None:
        """The position of the job whose spec is called ``name`` (None for None)."""
        if name is None:
            return None
        index = self.graph.index.get(name)
        return index if index is not None and index < len(self.jobs) else None


def prepare(jobs: Any) -> RunPlan:
    """Order ``jobs``, reset their state, and build the graph the planner will run.

    Raises:
        CycleError: the requirements form a cycle.
        ValueError: a job requires a job outside the scheduler that is not done.
    """
    ordered, deps, outside = topology.sort(jobs)
    for job, req in outside:
        if not req.is_done():
            raise ValueError(
                f"{job.repr_main()} requires {req.repr_main()}, which is not in this scheduler"
                " (and not done): add it, or call sanitize()"
            )
    specs = []
    interned: dict[tuple, Traits] = {}  # jobs alike share one Traits: (tries, delay, critical, forever) -> it
    for k, job in enumerate(ordered):
        tries = job.tries
        if tries.__class__ is not int or tries < 1:
            tries = check_tries(tries, job=job._get_text_label(), attribute="tries")
        delay = job.retry_delay
        if delay:
            delay = check_delay(delay, job=job._get_text_label(), attribute="retry_delay")
        else:
            delay = 0.0
        forever = bool(job.forever)
        label = job.label
        name = f"{k + 1} {label if label.__class__ is str else type(job).__name__}"
        critical = bool(job.critical)
        traits = interned.get((tries, delay, critical, forever))  # (the 4 that vary: -1% of a 10 000-job run)
        if traits is None:
            # all the traits, in order (make_spec knows no defaults; JobSpec(...) measured +11% of this
            # function, +1.7% of a 10 000-job run): kind, tries, retry_delay, priority, critical,
            # is_async, has_cleanup, forever, timeout, claims, uses, fail_blocks, tags, retry
            values = ("awaitable", tries, delay, 0, critical, True, False, forever, None, (), (), False, (), None)
            traits = interned[(tries, delay, critical, forever)] = make_spec(Traits, values)
        specs.append(make_spec(JobSpec, (name, k, _Try(job, tries), traits)))
        job._running = job._done = job._scheduled = False
        job._result = job._exception = None
        job._deps = job.required
    return RunPlan(JobGraph(specs, deps, ()), ordered)


def apply(plan: RunPlan, report: Any) -> None:
    """Set every job's state from the run's report; close the coroutines of jobs that never started."""
    jobs = plan.jobs
    columns = report.jobs
    status = columns.column("status")
    results = columns.column("result")
    exceptions = columns.column("exception")
    started = columns.column("started")
    deps = plan.graph.deps
    stopper = plan.job_index(report.stopped_job)
    stopped = report.stopped is not None
    for k, job in enumerate(jobs):
        job._deps = None
        st = status[k]
        if st is _OK or st is _CHANGED:
            job._running = job._done = True
            job._result = results[k]
            job._exception = None
        elif st is _FAILED:
            job._running = job._done = True
            job._result = None
            job._exception = exceptions[k]
        elif started[k] is not None:  # cancelled: the run stopped, or a forever job
            job._running = True
            job._done = False
            job._exception = None
        else:  # never started: scheduled if released before the run stopped (it waited for a slot)
            mine = deps[k]
            job._scheduled = stopped and stopper not in mine and all(status[d] in _ENDED for d in mine)
            job._running = job._done = False
            job._exception = None
            job.close_unstarted()


def abandon(plan: RunPlan) -> None:
    """The run ended without a report: close the jobs that never started."""
    for job in plan.jobs:
        job._deps = None
        if not job._running:
            job.close_unstarted()
