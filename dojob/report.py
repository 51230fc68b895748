"""The immutable report of a run: per-job status, tries, result, exception, timings."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from .events import Status

_OK = {status: status.ok for status in Status}  # Status.ok of each, without a property call per job


class JobReport(NamedTuple):
    """How one job ended. Times are seconds since the run started.

    ``plan`` is set by plan runs only: 'ok' (Check passes), 'would_run' (Check
    fails), or either with '_upstream_changes' when a job upstream would run,
    so the Check's answer may change. ``worker`` names where the last try ran
    (a thread or ``host:pid``; None for serial and async runs), and
    ``lock_waits`` how often the job was ready but waited for a CLAIMS/USES
    lock (None if never). A phase timeout shows as a ``TimeoutError``
    exception; an abort as the report's ``stopped``/``stopped_job``.
    ``cause`` is what Run raised in the last try when its recheck then failed:
    the cause, where ``exception`` (the recheck's) is the symptom.
    ``blocked_by`` names the failed job a *blocked* job needed, or the job whose
    interrupted try an *interrupted* job waited for (None when the run's stop
    alone kept it from starting).
    """

    name: str
    status: Status
    tries: int
    result: Any
    exception: BaseException | None
    started: float | None
    ended: float | None
    blocked_by: str | None = None
    plan: str | None = None
    worker: str | None = None
    lock_waits: int | None = None
    cause: BaseException | None = None

    @property
    def ok(self) -> bool | None:
        """DoJobber's tri-state: True succeeded, False failed, None never tried."""
        return self.status.ok

    @property
    def elapsed(self) -> float | None:
        """Seconds from the start of the first try to the end of the last, or None."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


class JobsView(Mapping[str, JobReport]):
    """A read-only name -> :class:`JobReport` mapping over per-job columns.

    Rows are built on access, so finishing a 100 000-job run costs nothing per job.

    Args:
        names: job names in order.
        index: name -> row number.
        columns: the JobReport fields after ``name``, one sequence each.
    """

    __slots__ = ("_names", "_index", "_columns")

    def __init__(self, names: Sequence[str], index: Mapping[str, int], columns: Sequence[Sequence[Any]]) -> None:
        self._names = names
        self._index = index
        self._columns = tuple(columns)

    def __getitem__(self, name: str) -> JobReport:
        i = self._index[name]
        return JobReport(name, *[column[i] for column in self._columns])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def column(self, field: str) -> Sequence[Any]:
        """All jobs' values of one JobReport field, in order (fast bulk access)."""
        column = self._columns[JobReport._fields.index(field) - 1]
        if not isinstance(column, Sequence):  # a constant column
            return [column[i] for i in range(len(self._names))]
        return column


class Report:
    """The outcome of a run; read-only.

    Attributes:
        jobs: job name -> :class:`JobReport`, in post-order (dependencies first).
        success: every job succeeded (forever jobs aside) and the run was not stopped.
        elapsed: seconds the run took, Cleanups excluded.
        stopped: why the run stopped early ("critical", "timeout", "interrupted") or None.
        stopped_job: the job that caused a critical stop, or None.
        roots: the root jobs' names.
        graph: the :class:`~dojob.graph.JobGraph` that ran (for pictures), or None.
    """

    __slots__ = ("jobs", "success", "elapsed", "stopped", "stopped_job", "roots", "graph", "_cleanup")

    # The slots, declared for type checkers: __init__ fills them once through object.__setattr__,
    # since this class's own __setattr__ refuses every write (the report is read-only).
    jobs: Mapping[str, JobReport]
    success: bool
    elapsed: float
    stopped: str | None
    stopped_job: str | None
    roots: tuple[str, ...]
    graph: Any
    _cleanup: Callable[[], None] | None

    def __init__(
        self,
        jobs: Mapping[str, JobReport],
        *,
        success: bool | None = None,
        elapsed: float,
        stopped: str | None = None,
        stopped_job: str | None = None,
        roots: tuple[str, ...] = (),
        cleanup: Callable[[], None] | None = None,
        graph: Any = None,
    ) -> None:
        setter = object.__setattr__
        if not isinstance(jobs, JobsView):
            jobs = MappingProxyType(dict(jobs))
        setter(self, "jobs", jobs)
        if success is None:
            statuses = jobs.column("status") if isinstance(jobs, JobsView) else [j.status for j in jobs.values()]
            success = stopped is None and all(s.ok for s in statuses)
        setter(self, "success", success)
        setter(self, "elapsed", elapsed)
        setter(self, "stopped", stopped)
        setter(self, "stopped_job", stopped_job)
        setter(self, "roots", roots)
        setter(self, "graph", graph)
        setter(self, "_cleanup", cleanup)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Report is read-only (tried to set {name!r})")

    def __getitem__(self, name: str) -> JobReport:
        return self.jobs[name]

    def __iter__(self) -> Iterator[JobReport]:
        return iter(self.jobs.values())

    def __len__(self) -> int:
        return len(self.jobs)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items() if v)
        return f"<Report success={self.success} {counts} elapsed={self.elapsed:.3f}s>"

    @property
    def partial_success(self) -> bool:
        """At least one job succeeded."""
        return any(j.status.ok for j in self.jobs.values())

    def statuses(self) -> dict[str, bool | None]:
        """DoJobber's ``nodestatus``: name -> True / False / None."""
        names, statuses = self._columns("status")
        return dict(zip(names, map(_OK.__getitem__, statuses), strict=True))

    def results(self) -> dict[str, Any]:
        """DoJobber's ``noderesults``: the passing Check's value of each succeeded job."""
        names, statuses = self._columns("status")
        _, results = self._columns("result")
        ok = _OK
        return {name: r for name, s, r in zip(names, statuses, results, strict=True) if ok[s]}

    def exceptions(self) -> dict[str, BaseException]:
        """DoJobber's ``nodeexceptions``: the last failure of each job that failed a try."""
        names, exceptions = self._columns("exception")
        return {name: e for name, e in zip(names, exceptions, strict=True) if e is not None}

    def _columns(self, field: str) -> tuple[Sequence[str], Sequence[Any]]:
        """The job names and one field of every job, in order: from the columns, without a row per job."""
        jobs = self.jobs
        if isinstance(jobs, JobsView):
            return list(jobs), jobs.column(field)
        return list(jobs), [getattr(j, field) for j in jobs.values()]

    def counts(self) -> dict[str, int]:
        """How many jobs ended in each status (every :class:`Status` is a key)."""
        out = {s.value: 0 for s in Status}
        for j in self.jobs.values():
            out[j.status.value] += 1
        return out

    def summary(self, *, color: bool = False) -> str:
        """The end-of-run recap as text: counts, failures with the jobs they blocked, elapsed time.

        Args:
            color: add ANSI colours (for a terminal that supports them).

        See :func:`dojob.recap.summary`.
        """
        from .recap import summary

        return summary(self, color=color)

    def to_html(
        self, timeline: Any = None, *, title: str | None = None, context: Mapping[str, str] | None = None
    ) -> str:
        """One self-contained HTML page: recap, coloured graph, timeline, failures with tracebacks.

        Args:
            timeline: a :class:`dojob.timeline.Timeline` that observed the run, for
                a timeline of every phase of every try; without it each job is one bar.
            title: the page's title.
            context: when, where and how it ran (``started``, ``host``, ``user``,
                ``cwd``, ``command``); default: this process, now.

        See :func:`dojob.htmlreport.to_html`.
        """
        from .htmlreport import to_html

        return to_html(self, timeline, title=title, context=context)

    def _repr_svg_(self) -> str | None:
        """The graph coloured by this run, for Jupyter; None when the graph is unknown."""
        if self.graph is None:
            return None
        from .render import graph_dot, svg

        return svg(graph_dot(self.graph, self))

    def cleanup(self) -> None:
        """Run the Cleanups a run with ``cleanup=False`` deferred (LIFO); later calls do nothing.

        Raises:
            CleanupError: one or more Cleanups raised (all of them ran).
        """
        if self._cleanup is not None:
            self._cleanup()
