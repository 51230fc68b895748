"""``PureScheduler`` and ``Scheduler``: sets of jobs run by dojob's planner.

A scheduler is a set of jobs whose ``required`` sets form a DAG. Running it
means: translate the jobs into a :class:`~dojob.graph.JobGraph`
(:mod:`dojob.aio.bridge`), run that with :func:`dojob.runner.arun_graph` (the
planner and the async driver every dojob run uses), and read the report back.
So windowing, retries, critical stops, the timeout and forever jobs follow the
planner's rules; nothing here decides which job starts when.

A :class:`Scheduler` is also a job, so schedulers nest; a critical one raises
instead of returning False, which makes failures bubble up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from .. import async_driver  # noqa: F401 (loaded now, not inside a first run's timing)
from ..errors import CycleError, OptionError
from ..graph import check_delay
from ..runner import arun_graph, frozen_build
from . import bridge, dot, listing  # noqa: F401
from .bestset import BestSet
from .feedback import Feedback, debug_enabled
from .jobs import AbstractJob, _run_blocking, shutdown_jobs
from .sequence import flatten
from .topology import closure, entry_jobs, exit_jobs, successors_map, topological_order


def _check_window(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise OptionError("jobs_window", value, "None or an int >= 0 (0 and None mean no limit)")


class PureScheduler:
    """A set of jobs to run in an order that respects their requirements.

    Args:
        *jobs_or_sequences: jobs and :class:`~dojob.aio.Sequence` objects.
        jobs_window: at most this many jobs run at once; None or 0: no limit.
        timeout: seconds for the whole run, nested schedulers' jobs included:
            then every running job is cancelled and the run fails.
        shutdown_timeout: seconds :meth:`co_shutdown` waits for the jobs' ``co_shutdown()``.
        watch: a :class:`~dojob.aio.Watch` for the times of verbose output.
        verbose: print a line for every start, end and stop.

    Attributes:
        jobs: the jobs, an insertion-ordered set.
        report: the :class:`~dojob.report.Report` of the last run, or None.

    Example:
        >>> s = Scheduler(Sequence(Job(fetch()), Job(build())), Job(lint()), jobs_window=2)
        >>> s.run()
        True
    """

    _dojob_scheduler = True

    def __init__(
        self,
        *jobs_or_sequences: Any,
        jobs_window: int | None = None,
        timeout: float | None = None,
        shutdown_timeout: float | None = 1,
        watch: Any = None,
        verbose: bool = False,
    ) -> None:
        self.jobs: BestSet = BestSet(flatten(jobs_or_sequences))
        self.jobs_window = jobs_window
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self.watch = watch
        self.verbose = verbose
        self.report: Any = None
        self._failed_critical = False
        self._failed_timeout: float | bool = False
        self._critical_exception: BaseException | None = None
        self._did_shutdown = False

    # -- a set of jobs ----------------------------------------------------------------
    def update(self, jobs: Iterable[Any]) -> PureScheduler:
        """Add jobs and sequences; return the scheduler."""
        self.jobs.update(flatten(jobs))
        return self

    def add(self, job: Any) -> Any:
        """Add one job (or sequence); return it."""
        self.update([job])
        return job

    def remove(self, job: Any) -> PureScheduler:
        """Remove a job; return the scheduler.

        Raises:
            KeyError: the job is not in the scheduler.
        """
        self.jobs.remove(job)
        return self

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.jobs)

    def __contains__(self, job: object) -> bool:
        return job in self.jobs

    # -- outcome ---------------------------------------------------------------------
    def failed_time_out(self) -> float | bool:
        """The timeout value if the last run timed out (truthy), else False."""
        return self._failed_timeout

    def failed_critical(self) -> bool:
        """Whether the last run stopped because a critical job raised."""
        return self._failed_critical

    def why(self) -> str:
        """Why the last run failed, or ``"FINE"``."""
        if self._failed_timeout is not False:
            return f"TIMED OUT after {self._failed_timeout}s"
        if self._failed_critical:
            return "a CRITICAL job has raised an exception"
        return "FINE"

    # -- running -----------------------------------------------------------------------
    def run(self) -> bool:
        """Run the scheduler on a new event loop; see :meth:`co_run`."""
        return _run_blocking(self.co_run())

    orchestrate = run

    async def co_run(self) -> bool:
        """Run every job once its requirements are done; return True iff the run succeeded.

        Success: every non-forever job completed within ``timeout`` and no
        critical job raised (non-critical exceptions do not count). Forever
        jobs are cancelled once the others are done; a scheduler holding only
        forever jobs runs them until they end or the timeout. Jobs that never
        started have their coroutine closed.

        As in asynciojobs 0.21.3, a run that ends (success, critical failure or
        timeout) ends with :meth:`co_shutdown`: every job's ``co_shutdown()`` is
        awaited, within ``shutdown_timeout``, and the scheduler is then shut down
        (a later ``shutdown()`` does nothing). A nested scheduler shuts down at the
        end of its own run. A run that raises (cancelled, interrupted) does not.

        Raises:
            CycleError: the requirements form a cycle.
            ValueError: a job requires one outside the scheduler that is not done.
            OptionError: ``jobs_window`` or ``timeout`` is invalid.
        """
        self._failed_critical = False
        self._failed_timeout = False
        self._critical_exception = None
        self._did_shutdown = False
        window = _check_window(self.jobs_window)
        timeout = self.timeout
        if timeout is not None:
            check_delay(timeout, option="timeout")
        if not self.jobs:
            return True
        # the collector does not rewalk the jobs and graph during the run (10 000 jobs: -6% instructions)
        with frozen_build(lambda: bridge.prepare(self.jobs)) as plan:  # type: ignore[arg-type, return-value]
            return await self._run_plan(cast(bridge.RunPlan, plan), window, timeout)

    async def _run_plan(self, plan: bridge.RunPlan, window: int, timeout: float | None) -> bool:
        observers = []
        debug = debug_enabled()
        if self.verbose or debug:
            listing.assign_ids(self)
            observers.append(Feedback(self, plan.by_name(), debug=debug))
        try:
            report = await arun_graph(
                plan.graph,
                cleanup=False,
                workers=window or len(plan.graph),
                timeout=timeout,
                observers=observers,
            )
        except BaseException as exc:  # cancelled, interrupted: record what happened, then propagate
            partial = getattr(exc, "report", None)
            if partial is None:
                bridge.abandon(plan)
            else:
                bridge.apply(plan, partial)
                self.report = partial
            raise
        bridge.apply(plan, report)
        self.report = report
        await self.co_shutdown()
        if report.stopped == "timeout":
            self._failed_timeout = timeout  # type: ignore[assignment]
        elif report.stopped == "critical":
            self._failed_critical = True
            index = plan.job_index(report.stopped_job)
            if index is not None:
                self._critical_exception = plan.jobs[index]._exception
        return report.stopped is None

    # -- shutdown ------------------------------------------------------------------------
    def shutdown(self) -> bool | None:
        """Call :meth:`co_shutdown` on a new event loop."""
        return _run_blocking(self.co_shutdown())

    async def co_shutdown(self) -> bool | None:
        """Await every job's ``co_shutdown()`` (nested schedulers included), once per run.

        Returns:
            True if they all returned within ``shutdown_timeout``; False if one
            raised or was too late (it is then cancelled); None if this
            scheduler was already shut down since its last run.
        """
        if self._did_shutdown:
            return None
        self._did_shutdown = True
        if not self.jobs:
            return True
        say = self._say if (self.verbose or debug_enabled()) else None
        if say is not None:
            say("scheduler is shutting down...")
        return await shutdown_jobs(self.jobs, self.shutdown_timeout, warn=say)

    def _say(self, text: str) -> None:
        """One verbose line about the scheduler itself, as asynciojobs prints it."""
        Feedback(self, {})._say(text)

    def close_idle_jobs(self) -> None:
        """Close the coroutines of the jobs (nested ones included) that are idle."""
        for job in self.iterate_jobs():
            if job.is_idle():
                job.close_unstarted()

    def close_all_jobs(self) -> None:
        """Close the coroutines of every job (nested ones included), e.g. before dropping a scheduler."""
        for job in self.iterate_jobs():
            close = getattr(job, "close", None)
            if close is not None:
                close()
            else:
                job.close_unstarted()

    # -- the graph --------------------------------------------------------------------------
    def check_cycles(self) -> bool:
        """Whether the requirements (nested schedulers' included) form no cycle."""
        stack: list[Any] = [self]
        while stack:
            try:
                ordered = topological_order(stack.pop().jobs)
            except CycleError:
                return False
            stack.extend(job for job in ordered if listing.is_scheduler(job))
        return True

    def sanitize(self, verbose: bool | None = None) -> bool:
        """Drop requirements on jobs outside each scheduler (nested ones too).

        Returns:
            True if nothing had to be removed, anywhere.
        """
        if verbose is None:
            verbose = self.verbose
        clean = True
        stack: list[Any] = [self]
        while stack:
            owner = stack.pop()
            for job in owner.jobs:
                before = len(job.required)
                job.required &= owner.jobs
                if len(job.required) != before:
                    clean = False
                    if verbose:
                        print(f"WARNING: {job.repr_main()} had {before - len(job.required)} requirement(s) removed")
                if listing.is_scheduler(job):
                    stack.append(job)
        return clean

    def topological_order(self) -> Iterator[Any]:
        """The jobs, each after its requirements.

        Raises:
            CycleError: the requirements form a cycle.
        """
        return iter(topological_order(self.jobs))

    def entry_jobs(self) -> Iterator[Any]:
        """The jobs with no requirement."""
        return iter(entry_jobs(self.jobs))

    def exit_jobs(self, *, discard_forever: bool = True, compute_backlinks: bool = True) -> Iterator[Any]:
        """The jobs no other job requires (forever jobs left out if ``discard_forever``)."""
        return iter(exit_jobs(self.jobs, discard_forever=discard_forever))

    def repr_entries(self) -> str:
        """``entries={ids}`` of the jobs with no requirement (ids from the last listing)."""
        return "entries=" + listing.ids_of(entry_jobs(self.jobs))

    def repr_exits(self) -> str:
        """``exits={ids}`` of the jobs no other job requires, forever jobs aside."""
        return "exits=" + listing.ids_of(exit_jobs(self.jobs))

    def predecessors(self, *starts: Any) -> set[Any]:
        """The jobs of this scheduler that one of ``starts`` requires."""
        return {req for job in starts for req in job.required if req in self.jobs}

    def successors(self, *starts: Any, compute_backlinks: bool = True) -> set[Any]:
        """The jobs of this scheduler that require one of ``starts``."""
        succ = successors_map(self.jobs)
        return {after for job in starts for after in succ.get(job, ())}

    def predecessors_upstream(self, *starts: Any) -> set[Any]:
        """Every job that one of ``starts`` requires, directly or not."""
        jobs = self.jobs
        return closure(starts, lambda job: [req for req in job.required if req in jobs])

    def successors_downstream(self, *starts: Any, compute_backlinks: bool = True) -> set[Any]:
        """Every job that requires one of ``starts``, directly or not."""
        succ = successors_map(self.jobs)
        return closure(starts, lambda job: succ.get(job, ()))

    def bypass_and_remove(self, job: Any) -> None:
        """Remove ``job``, making the jobs that required it require its requirements.

        Raises:
            ValueError: ``job`` is not in this scheduler.
        """
        if job not in self.jobs:
            raise ValueError(f"job {job!r} is not in {self!r}")
        for down in self.jobs:
            if job in down.required:
                down.required.discard(job)
                down.requires(list(job.required))
        self.jobs.remove(job)

    def keep_only(self, remains: Iterable[Any]) -> None:
        """Keep only the jobs in ``remains``, then :meth:`sanitize`."""
        self.jobs &= set(remains)
        self.sanitize()

    def keep_only_between(
        self,
        *,
        starts: Iterable[Any] | None = None,
        ends: Iterable[Any] | None = None,
        keep_starts: bool = True,
        keep_ends: bool = True,
    ) -> None:
        """Keep the jobs downstream of ``starts`` and upstream of ``ends`` (either may be omitted)."""
        starts = set(starts or ())
        ends = set(ends or ())
        down = self.successors_downstream(*starts) if starts else set(self.jobs)
        up = self.predecessors_upstream(*ends) if ends else set(self.jobs)
        keep = down & up
        if keep_starts:
            keep |= starts
        if keep_ends:
            keep |= ends
        self.jobs = BestSet(job for job in self.jobs if job in keep)
        self.sanitize()

    def iterate_jobs(self, scan_schedulers: bool = False) -> Iterator[Any]:
        """Every job, nested ones included; nested schedulers (and this one) too if ``scan_schedulers``."""
        if scan_schedulers:
            yield self
        stack = [iter(self.jobs)]
        while stack:
            job = next(stack[-1], None)
            if job is None:
                stack.pop()
                continue
            if listing.is_scheduler(job):
                if scan_schedulers:
                    yield job
                stack.append(iter(job.jobs))
            else:
                yield job

    # -- text ----------------------------------------------------------------------------
    def list(self, details: bool = False, silence_done_jobs: bool = False) -> None:
        """Print the jobs in topological order with their state badges (see the README's legend).

        Raises:
            CycleError: the requirements form a cycle (use :meth:`list_safe`).
        """
        listing.list_jobs(self, details, silence_done_jobs)

    def list_safe(self, silence_done_jobs: bool = False) -> None:
        """Print the jobs in no particular order; works on cyclic graphs."""
        listing.list_safe(self, silence_done_jobs)

    def debrief(self, details: bool = False, silence_done_jobs: bool = False) -> None:
        """Print why the run failed, the listing and the jobs' exceptions."""
        listing.debrief(self, details, silence_done_jobs)

    def stats(self) -> str:
        """``"{done}D + {ongoing}R + {idle}I = {total}"``."""
        done, ongoing, idle, total = listing.counts(self)
        return f"{done}D + {ongoing}R + {idle}I = {total}"

    def __repr__(self) -> str:
        done, ongoing, idle, total = listing.counts(self)
        return f"{type(self).__name__} with {done} done + {ongoing} ongoing + {idle} idle = {total} job(s)"

    # -- pictures -------------------------------------------------------------------------
    def dot_format(self) -> str:
        """The graph as DOT text (drawn by :mod:`dojob.render`)."""
        return dot.dot_format(self)

    def _repr_svg_(self) -> str:
        """The graph as SVG, so a scheduler displays as a picture in Jupyter."""
        from ..render import svg

        return svg(self.dot_format())

    def export_as_dotfile(self, filename: str) -> str:
        """Write :meth:`dot_format` to ``filename``; return ``"(Over)wrote {filename}"``."""
        with open(filename, "w", encoding="utf-8") as output:
            output.write(self.dot_format())
        return f"(Over)wrote {filename}"

    def graph(self) -> Any:
        """The graph as a ``graphviz.Source`` (displays in Jupyter; ``.format``/``.render()`` to save)."""
        from graphviz import Source

        return Source(self.dot_format())

    def export_as_graphic(self, filename: str, suffix: str) -> str:
        """Write ``{filename}.dot`` and render it to ``{filename}.{suffix}``; return the latter.

        Raises:
            RenderError: Graphviz is missing or fails.
        """
        from ..render import render

        source = self.dot_format()
        with open(f"{filename}.dot", "w", encoding="utf-8") as output:
            output.write(source)
        target = f"{filename}.{suffix}"
        with open(target, "wb") as output:
            output.write(render(source, suffix))
        return target

    def export_as_pngfile(self, filename: str) -> str:
        return self.export_as_graphic(filename, "png")

    def export_as_svgfile(self, filename: str) -> str:
        return self.export_as_graphic(filename, "svg")


class Scheduler(PureScheduler, AbstractJob):
    """A scheduler that is also a job, so it can be nested; critical by default.

    Args:
        *jobs_or_sequences, jobs_window, timeout, shutdown_timeout, watch,
        verbose: as for :class:`PureScheduler`.
        **kwds: as for :class:`~dojob.aio.AbstractJob` (``critical``,
            ``forever``, ``label``, ``required``, ``scheduler``).

    As a job, its result is its own ``co_run()`` value.
    """

    def __init__(
        self,
        *jobs_or_sequences: Any,
        jobs_window: int | None = None,
        timeout: float | None = None,
        shutdown_timeout: float | None = 1,
        watch: Any = None,
        verbose: bool = False,
        **kwds: Any,
    ) -> None:
        PureScheduler.__init__(
            self,
            *jobs_or_sequences,
            jobs_window=jobs_window,
            timeout=timeout,
            shutdown_timeout=shutdown_timeout,
            watch=watch,
            verbose=verbose,
        )
        AbstractJob.__init__(self, **kwds)

    async def co_run(self) -> bool:
        """:meth:`PureScheduler.co_run`, but a critical scheduler raises instead of returning False.

        Raises:
            TimeoutError: a critical scheduler timed out.
            Exception: the exception of the critical job that failed a critical scheduler.
        """
        ok = await PureScheduler.co_run(self)
        if ok or not self.critical:
            return ok
        if self._failed_timeout is not False:
            raise TimeoutError("critical scheduler took too long")
        if self._critical_exception is not None:
            raise self._critical_exception
        raise RuntimeError(f"{self.repr_main()} failed for no known reason")  # pragma: no cover

    def close_unstarted(self) -> None:
        """Close the coroutines of the jobs (nested ones included) that did not start."""
        for job in self.jobs:
            if not job.is_running():
                job.close_unstarted()
