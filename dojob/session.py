"""The :class:`Session`: everything one run of a graph needs, shared by the sync and async drivers.

A session builds the planner, the try context, the observers' dispatcher and
the run's clock from the :class:`~dojob.options.RunOptions`, announces the run,
closes it into the :class:`~dojob.report.Report` and runs the Cleanups; the
drivers (:mod:`dojob.sync`, :mod:`dojob.async_driver`) only move tries between
the planner and the executors, and :mod:`dojob.runner` wires both together.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .clock import SystemClock
from .events import RunFinished, RunStarted, Status
from .graph import JobGraph
from .job import NO_CHANGES, ChangedDeps
from .observe import Dispatcher, LogObserver, Trace, logger
from .options import RunOptions
from .plan import Planner
from .report import JobsView, Report
from .resources import check_capacity
from .stopping import Stop, guarded
from .tryproto import TryContext

if TYPE_CHECKING:
    from .remote import RemoteTries


def _changed_deps(graph: JobGraph, status: list[Status], before: Any = None) -> Callable[[int], tuple]:
    """For job ``index``, its DEPS that converged through their Run in this run (see ``Job.changed_deps``),
    and those ``before`` names for it (changed in earlier runs since it last succeeded: dojob.history)."""
    deps = graph.deps
    specs = graph.specs
    changed = Status.CHANGED
    index_of = graph.index
    earlier = {
        index_of[n]: {index_of[d] for d in ds if d in index_of} for n, ds in (before or {}).items() if n in index_of
    }

    def changed_deps(index: int) -> tuple:
        mine = deps[index]
        seen = earlier.get(index, ())
        for d in mine:  # (no list made in the common case: nothing changed)
            if status[d] is changed or d in seen:
                return ChangedDeps([specs[d].cls for d in mine if status[d] is changed or d in seen])
        return NO_CHANGES

    return changed_deps


class Session:
    """Everything one run of a graph needs; used by both drivers.

    Args:
        graph: the validated graph.
        options: the run's :class:`~dojob.options.RunOptions`; or give their
            keywords instead (``args``, ``workers``, ``no_act``, ``plan``, ...: see :func:`run`).
        stop: the run's stop state (a fresh one by default).
    """

    def __init__(
        self, graph: JobGraph, options: RunOptions | None = None, *, stop: Stop | None = None, **keywords: Any
    ) -> None:
        options = options or RunOptions.from_keywords(**keywords)
        self.graph = graph
        self.options = options
        #: The run's stop state: signals, stoppers from observers and clock reads land here.
        self.stop = stop or Stop()
        self.handle_signals = options.handle_signals
        self.workers = options.workers
        #: The run's timeout; the Cleanups together get as long again (see :meth:`cleanup`).
        self.timeout = timeout = options.timeout
        self.clock = clock = options.clock or SystemClock()
        self.t0 = t0 = guarded(clock.now, self.stop)()
        #: Seconds since the run started, on the run's clock (a stopper landing in a read is a stop request).
        self.now: Callable[[], float] = guarded(clock.now, self.stop, t0)
        observers = list(options.observers)
        if options.verbose or options.debug:
            observers.append(Trace(debug=options.debug))
        if logger.isEnabledFor(logging.DEBUG):
            observers.append(LogObserver())
        self.dispatcher = Dispatcher(observers, on_stop=self.stop.request)
        emit = self.dispatcher.emit if observers else None
        self.emit = emit
        self.planner = Planner(
            graph, max_running=self.workers, no_act=options.no_act, plan=options.plan, deadline=timeout, emit=emit,
            capacity=check_capacity(graph, options.capacity),
            rng=None if options.retry_seed is None else random.Random(options.retry_seed),
        )  # fmt: skip
        self.ctx = TryContext(
            args=options.args,
            kwargs=dict(options.kwargs),
            global_storage=options.global_storage,
            no_act=options.no_act,
            cwd=os.getcwd() if self.workers == 1 else None,
            emit=emit,
            now=self.now,
            strict=options.strict,
        )
        self.ctx.changed_deps = _changed_deps(graph, self.planner.status, options.changed_before)
        planner, stop = self.planner, self.stop
        self.ctx.stopping = lambda: planner.stopped is not None or stop.exception is not None
        self._cleaned = False
        self.remote: RemoteTries | None = None

    def start(self, driver: str) -> None:
        if self.emit is not None:
            self.emit(RunStarted(len(self.graph), self.graph.roots, self.workers, driver, 0.0))
            self.planner.announce_skipped(0.0)

    def finish(self, *, deferred_cleanup: bool) -> Report:
        """Close the planner and build the report (before the Cleanups run)."""
        t = self.now()
        planner = self.planner
        planner.finish(t)
        jobs = JobsView(
            self.graph.names,
            self.graph.index,
            (  # type: ignore[arg-type]  # (the sparse columns are dicts indexed like sequences)
                planner.status,
                planner.tries,
                planner.results,
                planner.exceptions,
                planner.started,
                planner.ended,
                planner.blocked_by,
                _plan_column(self.graph, planner.status) if planner.plan else _NOTHING,
                planner.workers,
                planner.lock_waits,
                planner.causes,
            ),
        )
        report = Report(
            jobs,
            success=planner.succeeded(),
            elapsed=t,
            stopped=planner.stopped,
            stopped_job=planner.stopped_job,
            roots=self.graph.roots,
            cleanup=self.cleanup if deferred_cleanup else None,
            graph=self.graph,
        )
        for spec in self.graph.awaitables:  # let aio jobs know how they ended (or close them)
            finished = getattr(spec.cls, "dojob_finished", None)
            if finished is not None:
                finished(jobs[spec.name])
        if self.emit is not None:
            self.emit(RunFinished(report.success, t, planner.stopped))
        return report

    def cleanup(self) -> None:
        """Run the Cleanups (see :func:`dojob.cleanup.run_cleanups`); raise :class:`CleanupError` if any raised.

        Failures of Cleanups that ran in remote workers are raised here too.
        """
        remote = self.remote.cleanup_failures if self.remote is not None else []
        if self.remote is not None:
            self.remote.cleanup_failures = []
        if not (self.ctx.instances or self.ctx.cleanup_failures or remote):  # nothing due: not even loaded
            return
        from .cleanup import run_cleanups

        run_cleanups(self.ctx, self.stop, self.clock, self.now, self.timeout, self.handle_signals,
                     on_loop=self.graph.has_async, earlier=remote)  # fmt: skip

    async def acleanup(self) -> None:
        """:meth:`cleanup` on the running loop."""
        if not (self.ctx.instances or self.ctx.cleanup_failures):
            return
        from .cleanup import arun_cleanups

        await arun_cleanups(self.ctx, self.stop, self.now, self.timeout, self.handle_signals)


class _Nothing:
    """A column that holds None for every job (saves a list per run)."""

    def __getitem__(self, index: int) -> None:
        return None


_NOTHING = _Nothing()


def _plan_column(graph: JobGraph, status: list) -> list[str | None]:
    """For a plan run, what each job's ``plan`` says (see :class:`~dojob.report.JobReport`)."""
    would_run = [s is Status.FAILED for s in status]
    upstream = [False] * len(status)
    out: list[str | None] = []
    for i, deps in enumerate(graph.deps):  # post-order: dependencies first
        upstream[i] = any(would_run[d] or upstream[d] for d in deps)
        if status[i] is Status.NOT_RUN or status[i] is Status.INTERRUPTED:  # its Check never ended: not checked
            out.append(None)
            continue
        if status[i] is Status.SKIPPED:
            out.append("skipped")
            continue
        word = "would_run" if would_run[i] else "ok"
        out.append(word + "_upstream_changes" if upstream[i] else word)
    return out
