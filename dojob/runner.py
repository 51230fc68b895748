"""``dojob.run`` and ``dojob.arun``: build the graph, drive it through a Session, clean up, report.

:func:`run_graph` drives a built graph's :class:`~dojob.session.Session` with
the sync driver and :func:`arun_graph` with the async one; both build the
report, run the Cleanups (always after a stop) and raise what ended the run.

The keywords of :func:`run` and :func:`arun` (also those of
:class:`~dojob.options.RunOptions`):

* ``args``, ``kwargs``: passed to every Check and Run.
* ``workers``: how many tries may run at once (threads; 1 is serial and deterministic).
* ``no_act``: DoJobber's no_act: the first Check of each job whose DEPS pass; no Run, no retry.
* ``plan``: a truthful plan: every job's Check once, nothing else, *including*
  jobs downstream of one whose Check fails; ``report[name].plan`` says 'ok',
  'would_run', 'ok_upstream_changes' or 'would_run_upstream_changes'.
* ``verbose``: DoJobber's one-line-per-phase trace on stderr; ``debug``: the
  trace plus tracebacks and Cleanup lines.
* ``cleanup``: run the Cleanups at the end; if False, call ``report.cleanup()`` later.
* ``default_tries``, ``default_retry_delay``: TRIES and RETRY_DELAY of jobs that set none.
* ``observers``: callables receiving every engine event.
* ``clock``: the time source; a :class:`~dojob.clock.FakeClock` makes retries instant in tests.
* ``executor`` (:func:`run` only): where tries run instead of the built-in
  threads: ``"processes"`` (a process pool of ``workers``), ``"dask://host:port"``
  or a ``distributed.Client`` (``pip install 'dojob[dask]'``), or any
  ``concurrent.futures.Executor``; see :mod:`dojob.remote` for what travels and
  how ``global_storage`` merges.
* ``global_storage``: the dict shared by the jobs (``self.global_storage``);
  pass one to seed it or to read it after the run (default: a fresh
  :class:`~dojob.storage.SharedStorage`; pass one to keep its lock).
* ``timeout``: seconds for the whole run: then nothing new starts, running
  async tries are cancelled and sync ones abandoned, the report says
  ``stopped == "timeout"``, and the Cleanups run, together within ``timeout``
  seconds more (see :meth:`Session.cleanup <dojob.session.Session.cleanup>`).
* ``only``: glob pattern(s) on job names: run those jobs and what they need
  (see :mod:`dojob.select`); ``tags``: tag(s): run the jobs with one of these
  TAGS (and what they need); ``skip``: glob pattern(s): treat those jobs as
  satisfied without a try; they end ``skipped`` (named in the recap), what
  only they need is left out.
* ``capacity``: resource name -> units: at most that many tries USE it at
  once; a CLAIM takes all its units.
* ``retry_seed``: seeds RETRY_JITTER's random delays (repeatable runs, tests).
* ``strict``: a Check that raises a programming error (``NameError``,
  ``AttributeError``, ``TypeError``, ``ImportError``, ``SyntaxError``) fails
  its try without calling Run.
* ``handle_signals``: while the run lasts, SIGINT and SIGTERM stop it instead
  of raising wherever they land: the first starts nothing new, lets running
  tries end within their bounds and runs the Cleanups, then the run raises
  ``KeyboardInterrupt`` (:class:`~dojob.errors.Terminated` for SIGTERM); a
  second abandons what still runs. Main thread only. Off by default: signal
  handling belongs to the application (``dojob run`` turns it on).
* ``history``: record the run there and compare it with the runs before (a
  path, a ``postgresql://`` URL, True for the per-user file, or a
  :class:`dojob.history.History`); the report's ``history`` says what was found.
* ``verify``: after a converged run, every job's Check once more (no Run): a
  job whose Check fails then is unstable and the report not a success.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .bind import BoundJob
from .clock import SystemClock
from .errors import CleanupError, DojobError, OptionError
from .graph import JobGraph, build_graph
from .job import Job
from .observe import Observer
from .options import RunOptions
from .report import Report
from .select import select
from .session import Session
from .steps import is_cancelled_error
from .stopping import STOPPERS, Stop, handling_signals
from .sync import drive

if TYPE_CHECKING:
    import concurrent.futures as cf


#: How many :func:`frozen_build` windows are open in this process (nested schedulers, a run inside a
#: job): the inner ones skip the freeze without asking ``gc.get_freeze_count()``, which counts every
#: frozen object (1 ms per nested scheduler in a test process).
_open_freezes = 0
_freezes_lock = threading.Lock()
#: Set once a run found the heap frozen by the application (a pre-fork server): from then on runs leave
#: the collector alone without asking again (each question walks the frozen heap: 25 ms at 2 M objects).
_application_freezes = False


def collector_is_ours() -> bool:
    """True if a run may pause and freeze the collector: it is on, and nothing froze the heap, neither
    the application nor an enclosing run."""
    global _application_freezes
    if _open_freezes or _application_freezes or not gc.isenabled():
        return False
    if gc.get_freeze_count():
        _application_freezes = True
        return False
    return True


def pause_collector() -> None:
    """Collect the young generations, then turn the collector off for a build.

    The collection first: a freeze would move the garbage made since the last
    one (a failed try's traceback cycles) to the oldest generation uncounted,
    and a process looping over small runs would never collect it again.
    """
    gc.collect(1)
    gc.disable()


@contextlib.contextmanager
def frozen_build(build: Callable[[], JobGraph]) -> Iterator[JobGraph]:
    """Build the graph, then keep the collector from rescanning what exists by then, the graph included.

    A large graph's classes are ~10 GC objects each; every full collection
    during the run would walk them all again (measured: most of the engine's
    cost at 100 000 jobs). The collector stays off from the build until the
    freeze: otherwise its first young collection walks the whole new graph
    (~6% of a run of 4 000 cheap jobs). Objects created during the run are
    collected as usual. Skipped if the application uses ``gc.freeze()`` itself
    (see :func:`collector_is_ours`).
    """
    global _open_freezes
    if not collector_is_ours():
        yield build()
        return
    pause_collector()
    try:
        graph = build()
    except BaseException:
        gc.enable()  # an invalid graph: nothing to run, nothing frozen
        raise
    with _freezes_lock:
        _open_freezes += 1
    gc.freeze()
    gc.enable()
    try:
        yield graph
    finally:
        gc.unfreeze()
        with _freezes_lock:
            _open_freezes -= 1


def _built(roots: tuple[Any, ...], default_tries: int, default_retry_delay: float, **selection: Any) -> Any:
    """:func:`frozen_build` of the graph of ``roots``, selected (``only``, ``tags``, ``skip``): what
    :func:`run` and :func:`arun` run."""
    return frozen_build(
        lambda: select(
            build_graph(*roots, default_tries=default_tries, default_retry_delay=default_retry_delay), **selection
        )
    )


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

    from .async_driver import adrive

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

    ``roots`` are the root Job classes (or bound jobs, see :meth:`Job.bind`);
    the keywords are described in :mod:`dojob.runner` (and README).

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
