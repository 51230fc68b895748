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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .clock import SystemClock
from .errors import CleanupError, CleanupTimeout, DojobError, OptionError
from .events import RunFinished, RunStarted, Status
from .graph import JobGraph, build_graph, check_delay
from .job import Job
from .observe import Dispatcher, LogObserver, Observer, Trace, logger
from .plan import Planner
from .remote import RemoteTries, resolve_executor
from .report import JobsView, Report
from .steps import OnLoop, OnThreads, arun_steps, inline, run_steps
from .stopping import STOPPERS, Stop, guarded, handling_signals
from .sync import drive, returner
from .tryproto import TryContext, cleanups


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


def _built(roots: tuple[Any, ...], default_tries: int, default_retry_delay: float) -> Any:
    """:func:`frozen_build` of the graph of ``roots``: what :func:`run` and :func:`arun` run."""
    return frozen_build(
        lambda: build_graph(*roots, default_tries=default_tries, default_retry_delay=default_retry_delay)
    )


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
        handle_signals: bool = False,
        stop: Stop | None = None,
    ) -> None:
        self.graph = graph
        #: The run's stop state: signals, stoppers from observers and clock reads land here.
        self.stop = stop or Stop()
        self.handle_signals = handle_signals
        self.workers = _check_workers(workers)
        if timeout is not None:
            timeout = check_delay(timeout, option="timeout")
        #: The run's timeout; the Cleanups together get as long again (see :meth:`cleanup`).
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.t0 = t0 = guarded(self.clock.now, self.stop)()
        clock_now = self.clock.now
        #: Seconds since the run started, on the run's clock (a stopper landing in a read is a stop request).
        self.now: Callable[[], float] = guarded(lambda: clock_now() - t0, self.stop)
        observers = list(observers)
        if verbose or debug:
            observers.append(Trace(debug=debug))
        if logger.isEnabledFor(logging.DEBUG):
            observers.append(LogObserver())
        self.dispatcher = Dispatcher(observers, on_stop=self.stop.request)
        emit = self.dispatcher.emit if observers else None
        self.emit = emit
        self.planner = Planner(graph, max_running=self.workers, no_act=no_act, plan=plan, deadline=timeout, emit=emit)
        self.ctx = TryContext(
            args=tuple(args),
            kwargs=kwargs,
            global_storage=global_storage,
            no_act=no_act or plan,
            cwd=os.getcwd() if self.workers == 1 else None,
            emit=emit,
            now=self.now,
        )
        self._cleaned = False
        self.remote: RemoteTries | None = None

    def start(self, driver: str) -> None:
        if self.emit is not None:
            self.emit(RunStarted(len(self.graph), self.graph.roots, self.workers, driver, 0.0))

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
            self.emit(RunFinished(report.success, t, planner.stopped))  # type: ignore[attr-defined]
        return report

    def cleanup(self) -> None:
        """Run the Cleanups (LIFO), each instance once; raise :class:`CleanupError` if any raised.

        Failures of Cleanups that ran in remote workers are raised here too.
        With a run ``timeout``, the Cleanups together get that many seconds:
        one still running then is abandoned and the rest are not started (each
        fails with :class:`~dojob.errors.CleanupTimeout`). An interrupt ends the
        Cleanup it lands in, never the others: this is a loop no stop leaves
        early; a stopper raised by a Cleanup is raised once all of them ran.
        """
        ctx, stop = self.ctx, self.stop
        end = None if self.timeout is None else self.now() + self.timeout
        while ctx.instances:
            try:
                if self.graph.has_async:
                    asyncio.run(self.acleanup(collect=False, end=end))
                else:
                    run_steps(cleanups(ctx), self._cleanup_caller(end))
            except STOPPERS as exc:  # landed between two Cleanups: the others still run
                stop.request(exc)
        failures = list(ctx.cleanup_failures)
        if self.remote is not None:
            failures = self.remote.cleanup_failures + failures
            self.remote.cleanup_failures = []
        _raise_failures(failures)

    def _signals(self) -> Stop | None:
        """The stop state, when signals are handled (a signal then ends the running Cleanup)."""
        return self.stop if self.handle_signals else None

    def _cleanup_caller(self, end: float | None) -> Any:
        """How each Cleanup is called: inline, or on a thread of its own within the Cleanups' bound."""
        signals = self._signals()
        go_back = returner(self.ctx.cwd)
        if end is None:
            return inline(go_back, signals, cleanups=True)
        within = self.timeout

        def late(phase: Any, started: bool) -> BaseException:
            if started:
                return CleanupTimeout(
                    f"still running when the Cleanups' bound of {within:g}s passed; its thread runs on"
                )
            return CleanupTimeout(f"not started: the Cleanups' bound of {within:g}s had passed")

        return OnThreads(lambda phase: end - self.now(), late, self.clock.get, go_back, signals)

    async def acleanup(self, *, collect: bool = True, end: float | None = None) -> None:
        """:meth:`cleanup` on the running loop."""
        ctx = self.ctx
        if end is None and self.timeout is not None:
            end = self.now() + self.timeout
        while ctx.instances:
            within = None if end is None else end - self.now()
            try:
                await arun_steps(cleanups(ctx), OnLoop(ctx.cwd, within=within, stop=self._signals()))
            except (asyncio.CancelledError, *STOPPERS) as exc:  # between two Cleanups, or cancelled
                self.stop.request(exc)
        if collect:
            _raise_failures(list(ctx.cleanup_failures))


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
        except (asyncio.CancelledError, *STOPPERS) as exc:  # raised by a Cleanup, after all of them ran
            session.stop.note(exc)
    return report, failures


def run_graph(
    graph: JobGraph,
    *,
    cleanup: bool = True,
    executor: cf.Executor | str | Any = None,
    handle_signals: bool = False,
    **options: Any,
) -> Report:
    """Run a built graph with the sync driver (or the async one if it has coroutine jobs)."""
    if graph.has_async:
        return _run_async_graph(graph, cleanup, executor, handle_signals, options)
    stop = Stop()
    with _signals(stop, handle_signals):
        session = Session(graph, stop=stop, handle_signals=handle_signals, **options)
        pool, is_remote, close = resolve_executor(executor, session.workers)
        remote = None
        if is_remote:
            replace = None
            if executor == "processes":

                def replace() -> cf.Executor:  # a worker died: the pool is broken, start another
                    return cf.ProcessPoolExecutor(max_workers=session.workers)

            assert pool is not None  # a remote executor is always an Executor
            remote = session.remote = RemoteTries(pool, session.ctx, session.now, replace)
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


def _run_async_graph(graph: JobGraph, cleanup: bool, executor: Any, handle_signals: bool, options: dict) -> Report:
    """:func:`run_graph` of a graph with coroutine jobs: :func:`arun_graph` in a new event loop."""
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
        pass
    else:
        raise DojobError("this graph has async jobs and an event loop is already running: use 'await dojob.arun(...)'")
    try:
        return asyncio.run(arun_graph(graph, cleanup=cleanup, handle_signals=handle_signals, **options))
    except KeyboardInterrupt as exc:
        # Ctrl-C: asyncio cancelled the run, which stopped, cleaned up and reported, then
        # turned the cancellation into a fresh KeyboardInterrupt: give it the report
        report = getattr(exc.__context__, "report", None)
        if report is not None and getattr(exc, "report", None) is None:
            exc.report = report  # type: ignore[attr-defined]
            exc.cleanup_failures = getattr(exc.__context__, "cleanup_failures", [])  # type: ignore[attr-defined]
        raise


async def arun_graph(graph: JobGraph, *, cleanup: bool = True, handle_signals: bool = False, **options: Any) -> Report:
    """Run a built graph with the async driver on the running loop."""
    from .aio.driver import adrive

    stop = Stop()
    with _signals(stop, handle_signals):
        session = Session(graph, stop=stop, handle_signals=handle_signals, **options)
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
    handle_signals: bool = False,
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
        handle_signals: while the run lasts, SIGINT and SIGTERM stop it instead of
            raising wherever they land: the first starts nothing new, lets running
            tries end within their bounds and runs the Cleanups, then the run raises
            ``KeyboardInterrupt`` (:class:`~dojob.errors.Terminated` for SIGTERM);
            a second abandons what still runs. Main thread only. Off by default:
            signal handling belongs to the application (``dojob run`` turns it on).

    Returns:
        The immutable :class:`~dojob.report.Report`.

    Raises:
        GraphError: the graph is invalid (nothing ran).
        CleanupError: a Cleanup raised; ``.report`` holds the report.
        KeyboardInterrupt, SystemExit: raised by a job or the user, after the Cleanups ran
            (``.report`` holds the report).

    Example:
        >>> report = dojob.run(WatchMovie, kwargs={"movie": "Alien"}, workers=4)
        >>> report.success, report["Popcorn"].tries
    """
    with _built(roots, default_tries, default_retry_delay) as graph:
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
            handle_signals=handle_signals,
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
    handle_signals: bool = False,
) -> Report:
    """:func:`run` on the running event loop, with the async driver; same options and report."""
    with _built(roots, default_tries, default_retry_delay) as graph:
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
            handle_signals=handle_signals,
        )
