"""``dojob.run`` and ``dojob.arun``: build the graph, drive the planner, clean up, report.

A :class:`Session` holds what one run needs (planner, try context, observers,
clock); :func:`run_graph` drives it with the sync driver and :func:`arun_graph`
with the async one, sharing everything else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import gc
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .attempt import STOPPERS, TryContext, aexecute, cleanups, execute, execute_within, returner
from .clock import SystemClock
from .errors import CleanupError, DojobError, OptionError
from .events import RunFinished, RunStarted, Status
from .graph import JobGraph, build_graph, check_delay
from .job import NO_CHANGES, ChangedDeps, Job
from .observe import Dispatcher, LogObserver, Observer, Trace, logger
from .plan import Planner
from .remote import RemoteTries, resolve_executor
from .report import JobsView, Report
from .select import select
from .sync import drive


@contextlib.contextmanager
def frozen_build(build: Callable[[], JobGraph]) -> Iterator[JobGraph]:
    """Build the graph, then keep the collector from rescanning what exists by then, the graph included.

    A large graph's classes are ~10 GC objects each; every full collection
    during the run would walk them all again (measured: most of the engine's
    cost at 100 000 jobs). The collector stays off from the build until the
    freeze: otherwise its first young collection walks the whole new graph
    (~6% of a run of 4 000 cheap jobs). Objects created during the run are
    collected as usual. Skipped if the application uses ``gc.freeze()`` itself.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield build()
        return
    gc.disable()
    try:
        graph = build()
    except BaseException:
        gc.enable()  # an invalid graph: nothing to run, nothing frozen
        raise
    gc.freeze()
    gc.enable()
    try:
        yield graph
    finally:
        gc.unfreeze()


def _built(roots: tuple[Any, ...], default_tries: int, default_retry_delay: float, **selection: Any) -> Any:
    """:func:`frozen_build` of the graph of ``roots``, selected (``only``, ``tags``, ``skip``): what
    :func:`run` and :func:`arun` run."""
    return frozen_build(
        lambda: select(
            build_graph(*roots, default_tries=default_tries, default_retry_delay=default_retry_delay), **selection
        )
    )


def check_capacity(graph: JobGraph, capacity: Any) -> dict[str, int]:
    """``capacity`` as a dict of resource -> units (each an int >= 1 naming a resource some job uses)."""
    if capacity is None:
        return {}
    if not isinstance(capacity, dict):
        raise OptionError("capacity", capacity, 'a dict of resource name -> units, e.g. {"api": 3}')
    used = {name for s in graph._distinct for name in (*s.claims, *s.uses)}
    for name, units in capacity.items():
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise OptionError(f"capacity[{name!r}]", units, "an int >= 1")
        if name not in used:
            raise OptionError("capacity", name, "names of resources some job USES or CLAIMS")
    return dict(capacity)


def _changed_deps(graph: JobGraph, status: list[Status]) -> Callable[[int], tuple]:
    """For job ``index``, its DEPS that converged through their Run in this run (see ``Job.changed_deps``)."""
    deps = graph.deps
    specs = graph.specs
    changed = Status.CHANGED

    def changed_deps(index: int) -> tuple:
        mine = deps[index]
        for d in mine:  # (no list made in the common case: nothing changed)
            if status[d] is changed:
                return ChangedDeps([specs[d].cls for d in mine if status[d] is changed])
        return NO_CHANGES

    return changed_deps


def _check_workers(workers: Any) -> int:
    if isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
        return workers
    raise OptionError("workers", workers, "an int >= 1")


class Session:
    """Everything one run of a graph needs; used by both drivers.

    Args:
        graph: the validated graph.
        args, kwargs: passed to every Check and Run.
        workers: how many tries may run at once.
        no_act: only the first Check of each job (DoJobber's no_act).
        plan: every job's Check once, nothing else, nothing blocked (see :func:`run`).
        verbose, debug: write DoJobber's trace to stderr.
        observers: more callables to receive every event.
        clock: the time source (a FakeClock in tests).
        global_storage: the dict shared by all jobs (a fresh one by default).
        timeout: seconds after which nothing new starts and the run is reported timed out.
        capacity: resource name -> units (see :func:`run`).
        retry_seed: seeds the random source of RETRY_JITTER.
    """

    def __init__(
        self,
        graph: JobGraph,
        *,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        workers: int = 1,
        no_act: bool = False,
        plan: bool = False,
        verbose: bool = False,
        debug: bool = False,
        observers: Iterable[Observer] = (),
        clock: SystemClock | None = None,
        global_storage: dict[str, Any] | None = None,
        timeout: float | None = None,
        capacity: dict[str, int] | None = None,
        retry_seed: int | None = None,
        strict: bool = False,
    ) -> None:
        self.graph = graph
        self.workers = _check_workers(workers)
        if timeout is not None:
            timeout = check_delay(timeout, option="timeout")
        #: The run's timeout; the Cleanups together get as long again (see :meth:`cleanup`).
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.t0 = t0 = self.clock.now()
        clock_now = self.clock.now
        #: Seconds since the run started, on the run's clock.
        self.now: Callable[[], float] = lambda: clock_now() - t0
        observers = list(observers)
        if verbose or debug:
            observers.append(Trace(debug=debug))
        if logger.isEnabledFor(logging.DEBUG):
            observers.append(LogObserver())
        self.dispatcher = Dispatcher(observers)
        emit = self.dispatcher.emit if observers else None
        self.emit = emit
        self.planner = Planner(
            graph, max_running=self.workers, no_act=no_act, plan=plan, deadline=timeout, emit=emit,
            capacity=check_capacity(graph, capacity), rng=None if retry_seed is None else random.Random(retry_seed),
        )  # fmt: skip
        self.ctx = TryContext(
            args=tuple(args),
            kwargs=kwargs,
            global_storage=global_storage,
            no_act=no_act or plan,
            cwd=os.getcwd() if self.workers == 1 else None,
            emit=emit,
            now=self.now,
            strict=strict,
        )
        self.ctx.changed_deps = _changed_deps(graph, self.planner.status)
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
            (
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
        """Run the Cleanups (LIFO), each instance once; raise :class:`CleanupError` if any raised.

        Failures of Cleanups that ran in remote workers are raised here too.
        With a run ``timeout``, the Cleanups together get that many seconds:
        one still running then is abandoned and the rest are not started (each
        fails with :class:`~dojob.attempt.CleanupTimeout`). A ``KeyboardInterrupt``
        or ``SystemExit`` raised in a Cleanup ends that Cleanup only; it is
        raised once all of them ran.
        """
        ctx, within = self.ctx, self.timeout
        if self.graph.has_async:
            failures = asyncio.run(aexecute(cleanups(ctx), ctx.cwd, within=within))
        elif within is not None:
            failures = execute_within(cleanups(ctx), within, now=self.now, wait=self.clock.get, cwd=ctx.cwd)
        else:
            failures = execute(cleanups(ctx), returner(ctx.cwd))
        if self.remote is not None:
            failures = self.remote.cleanup_failures + failures
            self.remote.cleanup_failures = []
        _raise_failures(failures)

    async def acleanup(self) -> None:
        """:meth:`cleanup` on the running loop."""
        _raise_failures(await aexecute(cleanups(self.ctx), self.ctx.cwd, within=self.timeout))


def _raise_failures(failures: list[tuple[str, BaseException]]) -> None:
    """Raise the first stopper a Cleanup raised, else :class:`CleanupError` if any Cleanup failed."""
    for _, exc in failures:
        if isinstance(exc, STOPPERS):
            raise exc
    if failures:
        raise CleanupError(failures)


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
        if status[i] is Status.NOT_RUN:
            out.append(None)
            continue
        if status[i] is Status.SKIPPED:
            out.append("skipped")
            continue
        word = "would_run" if would_run[i] else "ok"
        out.append(word + "_upstream_changes" if upstream[i] else word)
    return out


def _conclude(report: Report, stopper: BaseException | None, failures: CleanupError | None, ctx: TryContext) -> Report:
    if stopper is not None:
        with contextlib.suppress(Exception):  # lets the CLI recap an interrupted run
            stopper.report = report  # type: ignore[attr-defined]
            stopper.cleanup_failures = list(ctx.cleanup_failures)  # type: ignore[attr-defined]
        raise stopper
    if failures is not None:
        failures.report = report
        raise failures
    return report


def run_graph(
    graph: JobGraph,
    *,
    cleanup: bool = True,
    executor: cf.Executor | str | Any = None,
    **options: Any,
) -> Report:
    """Run a built graph with the sync driver (or the async one if it has coroutine jobs)."""
    if graph.has_async:
        if executor is not None and executor != "threads":
            raise OptionError(
                "executor",
                executor,
                "unset for a graph with async jobs (they run on this process's event loop, "
                "their plain phases on its threads)",
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                return asyncio.run(arun_graph(graph, cleanup=cleanup, **options))
            except KeyboardInterrupt as exc:
                # Ctrl-C: asyncio cancelled the run, which stopped, cleaned up and reported, then
                # turned the cancellation into a fresh KeyboardInterrupt: give it the report
                report = getattr(exc.__context__, "report", None)
                if report is not None and getattr(exc, "report", None) is None:
                    exc.report = report  # type: ignore[attr-defined]
                    exc.cleanup_failures = getattr(exc.__context__, "cleanup_failures", [])  # type: ignore[attr-defined]
                raise
        raise DojobError("this graph has async jobs and an event loop is already running: use 'await dojob.arun(...)'")
    session = Session(graph, **options)
    pool, is_remote, close = resolve_executor(executor, session.workers)
    remote = None
    if is_remote:
        replace = None
        if executor == "processes":

            def replace() -> cf.Executor:  # a worker died: the pool is broken, start another
                return cf.ProcessPoolExecutor(max_workers=session.workers)

        remote = session.remote = RemoteTries(pool, session.ctx, session.now, replace)
    session.start("sync" if session.workers == 1 and pool is None else ("remote" if remote else "threads"))
    stopper = None
    try:
        drive(
            session.planner,
            session.ctx,
            now=session.now,
            clock=session.clock,
            workers=session.workers,
            executor=None if remote else pool,
            remote=remote,
        )
    except BaseException as exc:
        stopper = exc
    finally:
        if remote is not None and remote.executor is not pool:
            remote.executor.shutdown(wait=False, cancel_futures=True)
        close()
    report = session.finish(deferred_cleanup=not cleanup)
    failures = None
    if cleanup or stopper is not None:
        try:
            session.cleanup()
        except CleanupError as exc:
            failures = exc
        except STOPPERS as exc:  # raised by a Cleanup, after all of them ran
            stopper = stopper or exc
    return _conclude(report, stopper, failures, session.ctx)


async def arun_graph(graph: JobGraph, *, cleanup: bool = True, **options: Any) -> Report:
    """Run a built graph with the async driver on the running loop."""
    from .aio.driver import adrive

    session = Session(graph, **options)
    session.start("async")
    stopper = None
    try:
        await adrive(session.planner, session.ctx, now=session.now, clock=session.clock)
    except BaseException as exc:
        stopper = exc
    report = session.finish(deferred_cleanup=not cleanup)
    failures = None
    if cleanup or stopper is not None:
        try:
            await session.acleanup()
        except CleanupError as exc:
            failures = exc
        except (asyncio.CancelledError, *STOPPERS) as exc:  # raised by (or while) a Cleanup, after all of them ran
            stopper = stopper or exc
    return _conclude(report, stopper, failures, session.ctx)


def run(
    *roots: type[Job],
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    workers: int = 1,
    no_act: bool = False,
    plan: bool = False,
    verbose: bool = False,
    debug: bool = False,
    cleanup: bool = True,
    default_tries: int = 3,
    default_retry_delay: float = 1,
    observers: Iterable[Observer] = (),
    clock: SystemClock | None = None,
    executor: cf.Executor | str | Any = None,
    timeout: float | None = None,
    global_storage: dict[str, Any] | None = None,
    only: str | Iterable[str] | None = None,
    tags: str | Iterable[str] | None = None,
    skip: str | Iterable[str] | None = None,
    capacity: dict[str, int] | None = None,
    retry_seed: int | None = None,
    strict: bool = False,
) -> Report:
    """Converge the graph of ``roots``: try every job whose DEPS succeeded, retry, report.

    Args:
        *roots: the root Job class(es).
        args, kwargs: passed to every Check and Run.
        workers: how many tries may run at once (threads; 1 is serial and deterministic).
        no_act: DoJobber's no_act: the first Check of each job whose DEPS pass; no Run, no retry.
        plan: a truthful plan: every job's Check once, nothing else, *including*
            jobs downstream of one whose Check fails; ``report[name].plan`` says
            'ok', 'would_run', 'ok_upstream_changes' or 'would_run_upstream_changes'.
        verbose: DoJobber's one-line-per-phase trace on stderr.
        debug: the trace plus tracebacks and Cleanup lines.
        cleanup: run the Cleanups at the end; if False, call ``report.cleanup()`` later.
        default_tries: TRIES of jobs that set none.
        default_retry_delay: RETRY_DELAY of jobs that set none.
        observers: callables receiving every engine event.
        clock: the time source; a :class:`~dojob.clock.FakeClock` makes retries instant in tests.
        executor: where tries run instead of the built-in threads: ``"processes"`` (a
            process pool of ``workers``), ``"dask://host:port"`` or a ``distributed.Client``
            (``pip install 'dojob[dask]'``), or any ``concurrent.futures.Executor``;
            see :mod:`dojob.remote` for what travels and how ``global_storage`` merges.
        global_storage: the dict shared by the jobs (``self.global_storage``); pass
            one to seed it or to read it after the run (default: a fresh
            :class:`~dojob.storage.SharedStorage`; pass one to keep its lock).
        timeout: seconds for the whole run: then nothing new starts, running async
            tries are cancelled and sync ones abandoned, the report says
            ``stopped == "timeout"``, and the Cleanups run, together within
            ``timeout`` seconds more (see :meth:`Session.cleanup`).
        only: glob pattern(s) on job names: run those jobs and what they need (see :mod:`dojob.select`).
        tags: tag(s): run the jobs with one of these TAGS (and what they need).
        skip: glob pattern(s): treat those jobs as satisfied without a try; they
            end ``skipped`` (named in the recap), what only they need is left out.
        capacity: resource name -> units: at most that many tries USE it at once;
            a CLAIM takes all its units.
        retry_seed: seeds RETRY_JITTER's random delays (repeatable runs, tests).
        strict: a Check that raises a programming error (``NameError``,
            ``AttributeError``, ``TypeError``, ``ImportError``, ``SyntaxError``)
            fails its try without calling Run.

    Returns:
        The immutable :class:`~dojob.report.Report`.

    Raises:
        GraphError: the graph is invalid (nothing ran).
        SelectionError: a pattern or tag of ``only``/``tags``/``skip`` matches no job (nothing ran).
        CleanupError: a Cleanup raised; ``.report`` holds the report.
        KeyboardInterrupt, SystemExit: raised by a job or the user, after the Cleanups ran.

    Example:
        >>> report = dojob.run(WatchMovie, kwargs={"movie": "Alien"}, workers=4)
        >>> report.success, report["Popcorn"].tries
    """
    with _built(roots, default_tries, default_retry_delay, only=only, tags=tags, skip=skip) as graph:
        return run_graph(
            graph,
            args=args,
            kwargs=kwargs,
            workers=workers,
            no_act=no_act,
            plan=plan,
            verbose=verbose,
            debug=debug,
            cleanup=cleanup,
            observers=observers,
            clock=clock,
            executor=executor,
            timeout=timeout,
            global_storage=global_storage,
            capacity=capacity,
            retry_seed=retry_seed,
            strict=strict,
        )


async def arun(
    *roots: type[Job],
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    workers: int = 1,
    no_act: bool = False,
    plan: bool = False,
    verbose: bool = False,
    debug: bool = False,
    cleanup: bool = True,
    default_tries: int = 3,
    default_retry_delay: float = 1,
    observers: Iterable[Observer] = (),
    clock: SystemClock | None = None,
    timeout: float | None = None,
    global_storage: dict[str, Any] | None = None,
    only: str | Iterable[str] | None = None,
    tags: str | Iterable[str] | None = None,
    skip: str | Iterable[str] | None = None,
    capacity: dict[str, int] | None = None,
    retry_seed: int | None = None,
    strict: bool = False,
) -> Report:
    """:func:`run` on the running event loop, with the async driver; same options and report."""
    with _built(roots, default_tries, default_retry_delay, only=only, tags=tags, skip=skip) as graph:
        return await arun_graph(
            graph,
            args=args,
            kwargs=kwargs,
            workers=workers,
            no_act=no_act,
            plan=plan,
            verbose=verbose,
            debug=debug,
            cleanup=cleanup,
            observers=observers,
            clock=clock,
            timeout=timeout,
            global_storage=global_storage,
            capacity=capacity,
            retry_seed=retry_seed,
            strict=strict,
        )
