"""``dojob.run`` and ``dojob.arun``: build the graph, drive the planner, clean up, report.

A :class:`Session` holds what one run needs (planner, try context, observers,
clock); :func:`run_graph` drives it with the sync driver and :func:`arun_graph`
with the async one, sharing everything else.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .bind import BoundJob
from .cleanup import arun_cleanups, run_cleanups
from .clock import SystemClock
from .errors import CleanupError, DojobError, OptionError
from .events import RunFinished, RunStarted, Status
from .graph import JobGraph, build_graph
from .job import NO_CHANGES, ChangedDeps, Job
from .observe import Dispatcher, LogObserver, Observer, Trace, logger
from .options import RunOptions
from .plan import Planner
from .report import JobsView, Report
from .select import select
from .steps import is_cancelled_error
from .stopping import STOPPERS, Stop, guarded, handling_signals
from .sync import drive
from .tryproto import TryContext

if TYPE_CHECKING:
    from .remote import RemoteTries


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
        run_cleanups(self.ctx, self.stop, self.clock, self.now, self.timeout, self.handle_signals,
                     on_loop=self.graph.has_async, earlier=remote)  # fmt: skip

    async def acleanup(self) -> None:
        """:meth:`cleanup` on the running loop."""
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


def _conclude(session: Session, report: Report, error: BaseException | None, failures: CleanupError | None) -> Report:
    """Raise what ended the run (a stop, then a driver error, then failed Cleanups) with the report, or return it."""
    stopper = session.stop.exception or error
    if stopper is not None:
        with contextlib.suppress(Exception):  # lets the CLI recap an interrupted run
            stopper.report = report  # type: ignore[attr-defined]
            stopper.cleanup_failures = list(session.ctx.cleanup_failures)  # type: ignore[attr-defined]
        raise stopper
    if failures is not None:
        failures.report = report
        raise failures
    return report


def _signals(stop: Stop, wanted: bool) -> contextlib.AbstractContextManager[None]:
    return handling_signals(stop) if wanted else contextlib.nullcontext()


def _epilogue(session: Session, cleanup: bool) -> tuple[Report, CleanupError | None]:
    """Build the report, then run the Cleanups (always after a stop); no stop leaves this early."""
    report = None
    while report is None:
        try:
            report = session.finish(deferred_cleanup=not cleanup)
        except STOPPERS as exc:  # (signals not handled) landed while building the report: build it again
            session.stop.request(exc)
    failures = None
    if cleanup or session.stop.exception is not None:
        try:
            session.cleanup()
        except CleanupError as exc:
            failures = exc
        except BaseException as exc:  # a stopper or a cancellation raised by a Cleanup, after all of them ran
            if not isinstance(exc, STOPPERS) and not is_cancelled_error(exc):
                raise
            session.stop.note(exc)
    return report, failures


def _nothing() -> None:
    pass


def run_graph(graph: JobGraph, options: RunOptions | None = None, **keywords: Any) -> Report:
    """Run a built graph with the sync driver (or the async one if it has coroutine jobs).

    Give the :class:`~dojob.options.RunOptions`, or their keywords (see :func:`run`).
    """
    options = options or RunOptions.from_keywords(**keywords)
    if graph.has_async:
        return _run_async_graph(graph, options)
    stop = Stop()
    cleanup, executor, handle_signals = options.cleanup, options.executor, options.handle_signals
    with _signals(stop, handle_signals):
        session = Session(graph, options, stop=stop)
        if executor is None:  # built-in threads: no need to load dojob.remote (and cloudpickle)
            pool, is_remote, close = None, False, _nothing
        else:
            from .remote import resolve_executor

            pool, is_remote, close = resolve_executor(executor, session.workers)
        remote = None
        if is_remote:
            assert pool is not None  # a remote executor is always an Executor
            from .remote import RemoteTries

            # (no replacement pool: dojob's own process pool isolates a worker's death, it never breaks)
            remote = session.remote = RemoteTries(pool, session.ctx, session.now, None)
        session.start("sync" if session.workers == 1 and pool is None else ("remote" if remote else "threads"))
        error = None
        try:
            drive(
                session.planner,
                session.ctx,
                now=session.now,
                clock=session.clock,
                workers=session.workers,
                executor=None if remote else pool,
                remote=remote,
                stop=stop,
                signals=handle_signals,
            )
        except BaseException as exc:  # a fault of an executor or of the driver: still report and clean up
            error = exc
        finally:
            if remote is not None and remote.executor is not pool:
                remote.executor.shutdown(wait=False, cancel_futures=True)
            close()
        report, failures = _epilogue(session, cleanup)
        return _conclude(session, report, error, failures)


def _run_async_graph(graph: JobGraph, options: RunOptions) -> Report:
    """:func:`run_graph` of a graph with coroutine jobs: :func:`arun_graph` in a new event loop."""
    executor = options.executor
    if executor is not None and executor != "threads":
        raise OptionError(
            "executor",
            executor,
            "unset for a graph with async jobs (they run on this process's event loop, "
            "their plain phases on its threads)",
        )
    import asyncio  # here: a graph without coroutine jobs runs without loading asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise DojobError("this graph has async jobs and an event loop is already running: use 'await dojob.arun(...)'")
    try:
        return asyncio.run(arun_graph(graph, options.replace(executor=None)))
    except KeyboardInterrupt as exc:
        # Ctrl-C: asyncio cancelled the run, which stopped, cleaned up and reported, then
        # turned the cancellation into a fresh KeyboardInterrupt: give it the report
        report = getattr(exc.__context__, "report", None)
        if report is not None and getattr(exc, "report", None) is None:
            exc.report = report  # type: ignore[attr-defined]
            exc.cleanup_failures = getattr(exc.__context__, "cleanup_failures", [])  # type: ignore[attr-defined]
        raise


async def arun_graph(graph: JobGraph, options: RunOptions | None = None, **keywords: Any) -> Report:
    """Run a built graph with the async driver on the running loop (options as for :func:`run_graph`)."""
    import asyncio

    from .aio.driver import adrive

    options = options or RunOptions.from_keywords(**keywords)
    if options.executor is not None and options.executor != "threads":
        raise OptionError("executor", options.executor, "unset with the async driver (its tries run on the loop)")
    cleanup = options.cleanup
    stop = Stop()
    with _signals(stop, options.handle_signals):
        session = Session(graph, options, stop=stop)
        session.start("async")
        error = None
        try:
            await adrive(session.planner, session.ctx, now=session.now, clock=session.clock, stop=stop)
        except BaseException as exc:  # a fault of the driver: still report and clean up
            error = exc
        report = None
        while report is None:
            try:
                report = session.finish(deferred_cleanup=not cleanup)
            except STOPPERS as exc:
                stop.request(exc)
        failures = None
        if cleanup or stop.exception is not None:
            try:
                await session.acleanup()
            except CleanupError as exc:
                failures = exc
            except (asyncio.CancelledError, *STOPPERS) as exc:  # raised by (or while) a Cleanup, after all ran
                stop.note(exc)
        return _conclude(session, report, error, failures)


def _recorded(history: Any, verify: bool, aio: bool = False) -> Any:
    """The driver with :mod:`dojob.history` around it: verify, record, compare (imported only when asked)."""
    from .history.hook import arecorded, recorded

    return arecorded(arun_graph, history, verify) if aio else recorded(run_graph, history, verify)


def run(
    *roots: type[Job] | BoundJob,
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
    handle_signals: bool = False,
    history: Any = None,
    verify: bool = False,
) -> Report:
    """Converge the graph of ``roots``: try every job whose DEPS succeeded, retry, report.

    Args:
        *roots: the root Job class(es) (or bound jobs, see :meth:`Job.bind`).
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
        handle_signals: while the run lasts, SIGINT and SIGTERM stop it instead of
            raising wherever they land: the first starts nothing new, lets running
            tries end within their bounds and runs the Cleanups, then the run raises
            ``KeyboardInterrupt`` (:class:`~dojob.errors.Terminated` for SIGTERM);
            a second abandons what still runs. Main thread only. Off by default:
            signal handling belongs to the application (``dojob run`` turns it on).
        history: record the run there and compare it with the runs before (a
            path, a ``postgresql://`` URL, True for the per-user file, or a
            :class:`dojob.history.History`); the report's ``history`` says what was found.
        verify: after a converged run, every job's Check once more (no Run): a
            job whose Check fails then is unstable and the report not a success.

    Returns:
        The immutable :class:`~dojob.report.Report`.

    Raises:
        GraphError: the graph is invalid (nothing ran).
        SelectionError: a pattern or tag of ``only``/``tags``/``skip`` matches no job (nothing ran).
        CleanupError: a Cleanup raised; ``.report`` holds the report.
        KeyboardInterrupt, SystemExit: raised by a job or the user, after the Cleanups ran
            (``.report`` holds the report).

    Example:
        >>> report = dojob.run(WatchMovie, kwargs={"movie": "Alien"}, workers=4)
        >>> report.success, report["Popcorn"].tries
    """
    options = RunOptions.from_keywords(
        args=args, kwargs=kwargs, workers=workers, no_act=no_act, plan=plan, verbose=verbose, debug=debug,
        cleanup=cleanup, observers=observers, clock=clock, executor=executor, timeout=timeout,
        global_storage=global_storage, handle_signals=handle_signals, capacity=capacity, retry_seed=retry_seed,
        strict=strict,
    )  # fmt: skip
    driver = run_graph if history is None and not verify else _recorded(history, verify)
    with _built(roots, default_tries, default_retry_delay, only=only, tags=tags, skip=skip) as graph:
        return driver(graph, options)


async def arun(
    *roots: type[Job] | BoundJob,
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
    handle_signals: bool = False,
    history: Any = None,
    verify: bool = False,
) -> Report:
    """:func:`run` on the running event loop, with the async driver; same options and report."""
    options = RunOptions.from_keywords(
        args=args, kwargs=kwargs, workers=workers, no_act=no_act, plan=plan, verbose=verbose, debug=debug,
        cleanup=cleanup, observers=observers, clock=clock, timeout=timeout, global_storage=global_storage,
        handle_signals=handle_signals, capacity=capacity, retry_seed=retry_seed, strict=strict,
    )  # fmt: skip
    driver = arun_graph if history is None and not verify else _recorded(history, verify, aio=True)
    with _built(roots, default_tries, default_retry_delay, only=only, tags=tags, skip=skip) as graph:
        return await driver(graph, options)
