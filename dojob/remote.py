"""Running tries in other processes: the far end in a worker, and the adapter the driver submits to.

A remote try is the same :func:`~dojob.attempt.attempt` steps, executed by
:func:`run_remote_try` in a worker. What travels:

* the job class, by reference or by value as :mod:`dojob.shipping` decides
  per class; ``DEPS`` are left behind (a try never needs them), so a class
  does not drag the graph along;
* the arguments and a snapshot of ``global_storage``;
* back: the outcome (result or exception, whose worker traceback is added
  as a note), the try's events, the worker's name, the ``global_storage``
  keys the try set, changed or deleted, the Cleanup failures, and the
  ``KeyboardInterrupt``/``SystemExit`` the job raised, if it did.

The rule for ``global_storage``: when a remote try ends, the keys it set or
changed (compared by value with the snapshot it was sent) are written into
the run's ``global_storage`` and the keys it deleted are deleted; the last try
to end wins a key. A job's ``Cleanup`` runs in its worker right after its try
(the instance lives there), also when the job raised a stopper. A worker that
dies fails its own try with :class:`WorkerLost` (never hangs, never re-runs:
see :mod:`dojob.remote_pool` and :mod:`dojob.remote_dask`).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import pickle
import time
import traceback
from collections.abc import Callable
from typing import Any

from .attempt import STOPPERS, TryContext, TryOutcome, attempt, cleanups, execute, execute_bounded
from .clock import SystemClock
from .diagnose import failed_in_init
from .errors import DojobError, OptionError, RemoteError, WorkerLost
from .events import Phase, PhaseAbandoned
from .graph import JobSpec
from .host import hostname
from .job import NO_CHANGES
from .shipping import dumps
from .storage import SharedStorage
from .tryproto import mark_init_failure

#: The start methods ``executor="processes:<method>"`` takes.
START_METHODS = ("fork", "spawn", "forkserver")


class ShippingError(DojobError):
    """A worker could not load a try (its job class or arguments), e.g. a module it cannot import.

    Attributes:
        job: the job's name; worker: where it happened; problem: what went wrong.
    """

    def __init__(self, job: str, worker: str, problem: str) -> None:
        self.job = job
        self.worker = worker
        self.problem = problem
        super().__init__(
            f"{job}: worker {worker} cannot load the try: {problem} (a class goes by reference when its "
            "module is importable by name here, see dojob.shipping; the workers must then be able to import it)"
        )

    def __reduce__(self) -> tuple:
        return (ShippingError, (self.job, self.worker, self.problem))


def _worker_name() -> str:
    return f"{hostname()}:{os.getpid()}"


def _portable(exc: BaseException | None) -> BaseException | None:
    """``exc``, with its traceback as a note, or a :class:`RemoteError` if it cannot be pickled."""
    if exc is None:
        return None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    try:
        pickle.loads(dumps(exc))
    except Exception:
        stand_in = RemoteError(type(exc).__name__, str(exc), text)
        if failed_in_init(exc):
            mark_init_failure(stand_in)
        return stand_in
    if hasattr(exc, "add_note"):
        exc.add_note(f"(in worker {_worker_name()})\n{text}")
    return exc


def _changes(before: dict, after: dict) -> tuple[dict, list]:
    """The keys of ``after`` that are new or differ from ``before``, and the keys deleted."""
    changed = {}
    for key, value in after.items():
        if key not in before:
            changed[key] = value
            continue
        try:
            same = bool(before[key] == value)
        except Exception:
            same = False
        if not same:
            changed[key] = value
    return changed, [key for key in before if key not in after]


def run_remote_try(payload: bytes) -> bytes:
    """Run one try in this (worker) process; the far end of :meth:`RemoteTries.submit`.

    Never raises: a try that cannot be loaded fails with :class:`ShippingError`;
    a ``KeyboardInterrupt``/``SystemExit`` raised by the job ends its try, the
    Cleanups of the instances it made still run here, and the stopper is sent
    back for the run to stop on.
    """
    name = _worker_name()
    job, try_number, blob = pickle.loads(payload)
    try:
        spec, args, kwargs, storage, no_act, base, want_events, changed_deps = pickle.loads(blob)
        snapshot = pickle.loads(storage)
        working = SharedStorage(pickle.loads(storage))  # with its lock, as in the run's own process
    except Exception as exc:
        unloadable = ShippingError(job, name, f"{type(exc).__name__}: {exc}")
        return dumps((TryOutcome(False, exception=unloadable), [], {}, [], [], name, None))
    events: list[Any] = []
    t0 = time.monotonic()
    ctx = TryContext(
        args=args,
        kwargs=kwargs,
        global_storage=working,
        no_act=no_act,
        emit=events.append if want_events else None,
        now=lambda: base + (time.monotonic() - t0),
    )
    ctx.worker = lambda: name
    ctx.changed_deps = lambda index: changed_deps
    stopper: BaseException | None = None
    try:
        if spec.traits.timeout is None:
            out = execute(attempt(spec, try_number, ctx))
        else:  # no driver watches this process's phases: each runs on a thread waited for TIMEOUT seconds

            def abandoned(phase: Phase) -> None:
                if ctx.emit is not None:
                    ctx.emit(PhaseAbandoned(spec.name, try_number, phase, ctx.now(), name))

            steps = attempt(spec, try_number, ctx)
            out = execute_bounded(steps, spec.traits.timeout, spec.name, wait=SystemClock().get, abandoned=abandoned)
    except STOPPERS as exc:  # the job stops the run; its instance still gets its Cleanup, here
        stopper = exc
        out = TryOutcome(False, exception=exc)
    cleanup_failures = execute(cleanups(ctx))
    changed, removed = _changes(snapshot, working)
    result = (
        TryOutcome(out.ok, out.changed, out.result, _portable(out.exception), _portable(out.cause)),
        events,
        changed,
        removed,
        [(job, _portable(exc)) for job, exc in cleanup_failures],
        name,
        _portable(stopper),
    )
    try:
        return dumps(result)
    except Exception as exc:  # an unpicklable result or stored value
        problem = RemoteError(type(exc).__name__, f"cannot send the try's outcome back: {exc}", "")
        return dumps((TryOutcome(False, exception=problem), events, {}, [], [], name, _portable(stopper)))


def _start_method(executor: str) -> str | None:
    """The start method of ``"processes"`` or ``"processes:<method>"`` (None: multiprocessing's default)."""
    _, sep, method = executor.partition(":")
    if not sep:
        return None
    if method not in START_METHODS:
        raise OptionError("executor", executor, "'processes' or 'processes:' + one of " + ", ".join(START_METHODS))
    return method


def resolve_executor(executor: Any, workers: int) -> tuple[cf.Executor | None, bool, Callable[[], None]]:
    """``executor`` as ``(Executor or None, remote?, close)``.

    Accepts None (built-in threads), ``"threads"``, ``"processes"`` or
    ``"processes:fork|spawn|forkserver"`` (a :class:`~dojob.remote_pool.ProcessPool`
    of ``workers`` processes owned by the run: ``close`` kills those still busy),
    ``"dask://host:port"`` (a Dask cluster, whose client the run makes and closes;
    ``pip install dojob[dask]``), a ``distributed.Client`` (or its
    ``get_executor()``), or any ``concurrent.futures.Executor`` (a
    ``ThreadPoolExecutor`` runs tries in this process; any other executor is
    treated as remote). Dask clients are wrapped in a
    :class:`~dojob.remote_dask.DaskExecutor` (each try runs at most once).
    """
    if executor is None or executor == "threads":
        return None, False, lambda: None
    if isinstance(executor, str) and (executor == "processes" or executor.startswith("processes:")):
        from .remote_pool import ProcessPool

        pool = ProcessPool(workers, start_method=_start_method(executor))
        return pool, True, pool.terminate
    if isinstance(executor, str) and executor.startswith(("dask://", "tcp://")):
        try:
            import distributed
        except ImportError:
            raise OptionError("executor", executor, "usable: install the dask extra (pip install 'dojob[dask]')")
        from .remote_dask import DaskExecutor

        address = executor.replace("dask://", "tcp://", 1)
        dask = DaskExecutor(distributed.Client(address, set_as_default=False), owned=True)
        return dask, True, dask.shutdown
    client = _dask_client(executor)
    if client is not None:
        from .remote_dask import DaskExecutor

        dask = DaskExecutor(client)
        return dask, True, dask.shutdown
    if isinstance(executor, cf.ThreadPoolExecutor):
        return executor, False, lambda: None
    if isinstance(executor, cf.Executor):
        return executor, True, lambda: None
    raise OptionError(
        "executor",
        executor,
        "None, 'threads', 'processes[:fork|spawn|forkserver]', 'dask://host:port', a distributed.Client or an Executor",
    )


def _dask_client(executor: Any) -> Any:
    """The ``distributed.Client`` behind ``executor`` (a client or its ``get_executor()``), else None."""
    import sys

    distributed = sys.modules.get("distributed")  # a client exists only if distributed was imported
    if distributed is None:
        return None
    if isinstance(executor, distributed.Client):
        return executor
    if isinstance(executor, distributed.cfexecutor.ClientExecutor):
        return executor._client
    return None


class RemoteTries:
    """Submits tries to an out-of-process executor and turns the replies into local outcomes.

    The future returned by :meth:`submit` resolves to a :class:`TryOutcome`
    after the try's events were emitted and its ``global_storage`` changes
    merged, so the driver treats remote and local tries alike.

    Args:
        executor: where tries run.
        ctx: the run's try context (arguments, storage, emitter).
        now: the run's clock.
        replace: called to get a fresh executor after the current one broke
            (a worker died), or None to keep failing tries on a broken one.
    """

    def __init__(
        self,
        executor: cf.Executor,
        ctx: TryContext,
        now: Callable[[], float],
        replace: Callable[[], cf.Executor] | None = None,
    ) -> None:
        self.executor = executor
        self.ctx = ctx
        self.now = now
        self.replace = replace
        #: Cleanup failures reported by workers, raised with the local ones at the end.
        self.cleanup_failures: list[tuple[str, BaseException]] = []

    def submit(self, spec: JobSpec, try_number: int) -> cf.Future:
        ctx = self.ctx
        outer: cf.Future = cf.Future()
        outer.set_running_or_notify_cancel()
        try:
            blob = dumps(
                (
                    spec,
                    ctx.args,
                    ctx.kwargs,
                    dumps(dict(ctx.global_storage)),
                    ctx.no_act,
                    self.now(),
                    ctx.emit is not None,
                    ctx.changed_deps(spec.index) if ctx.changed_deps is not None else NO_CHANGES,
                )
            )
            payload = pickle.dumps((spec.name, try_number, blob), pickle.HIGHEST_PROTOCOL)
            inner = self.executor.submit(run_remote_try, payload)
        except cf.BrokenExecutor as exc:
            self._broken(exc)
            outer.set_result(TryOutcome(False, exception=WorkerLost(f"{spec.name}: the executor is broken: {exc}")))
            return outer
        except Exception as exc:  # e.g. an argument that cannot be pickled
            outer.set_result(TryOutcome(False, exception=exc))
            return outer
        inner.add_done_callback(lambda done: self._arrived(spec, try_number, done, outer))
        return outer

    def _broken(self, exc: BaseException) -> None:
        if self.replace is not None:
            self.executor = self.replace()

    def _arrived(self, spec: JobSpec, try_number: int, inner: cf.Future, outer: cf.Future) -> None:
        try:
            data = inner.result()
        except BaseException as exc:  # the try's worker is gone, or the executor failed it
            if isinstance(exc, cf.BrokenExecutor):
                self._broken(exc)
            outer.set_result(TryOutcome(False, exception=_lost(spec.name, try_number, exc, outer)))
            return
        try:
            reply = pickle.loads(data)
        except Exception as exc:
            problem = RemoteError(type(exc).__name__, f"cannot load the try's outcome sent back: {exc}", "")
            outer.set_result(TryOutcome(False, exception=problem))
            return
        outcome, events, changed, removed, cleanup_failures, worker, stopper = reply
        outer.worker = worker  # type: ignore[attr-defined]  # for the report
        emit = self.ctx.emit
        if emit is not None:
            for event in events:
                emit(event)
        storage = self.ctx.global_storage
        storage.update(changed)
        for key in removed:
            storage.pop(key, None)
        self.cleanup_failures.extend(cleanup_failures)
        if stopper is not None:
            outer.set_exception(stopper)
        else:
            outer.set_result(outcome)


def _lost(job: str, try_number: int, exc: BaseException, outer: cf.Future) -> WorkerLost:
    """The :class:`WorkerLost` a try fails with when its executor reports ``exc`` instead of a reply."""
    name = type(exc).__name__
    pid = getattr(exc, "pid", None)
    if name == "ProcessDied" and pid is not None:
        outer.worker = f"{hostname()}:{pid}"  # type: ignore[attr-defined]
        why = f"{exc}; only this try is lost, the pool starts a new process"
    elif name == "KilledWorker":
        why = f"its Dask worker died ({exc}); the cluster does not run it again, dojob decides on retries"
    elif isinstance(exc, cf.CancelledError):
        why = "the executor cancelled it"
    else:
        why = f"{name}: {exc}"
    lost = WorkerLost(f"{job}: try {try_number} was lost with its worker: {why}")
    lost.__cause__ = exc
    return lost
