"""Running tries in other processes: a process pool, or a Dask cluster.

A remote try is the same :func:`~dojob.attempt.attempt` steps, executed by
:func:`run_remote_try` in a worker. What travels:

* the job class: by reference when it is importable, by value (cloudpickle)
  when it was made dynamically, e.g. with ``type()``; ``DEPS`` are left
  behind (a try never needs them), so a class does not drag the graph along;
* the arguments and a snapshot of ``global_storage``;
* back: the outcome (result or exception, whose worker traceback is added
  as a note), the try's events, the worker's name, and the ``global_storage``
  keys the try set, changed or deleted.

The rule for ``global_storage``: when a remote try ends, the keys it set or
changed (compared by value with the snapshot it was sent) are written into
the run's ``global_storage`` and the keys it deleted are deleted; the last try
to end wins a key. So dependents see what their dependencies stored, as with
threads. A job's ``Cleanup`` runs in its worker right after its try (the
instance lives there); Cleanup failures are raised together at the end of the
run like local ones. A worker that dies makes its try fail (never hang); an
owned process pool is then replaced.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

from .attempt import STOPPERS, TryContext, TryOutcome, attempt, cleanups, execute, execute_bounded
from .clock import SystemClock
from .errors import OptionError, RemoteError, WorkerLost
from .events import Phase, PhaseAbandoned
from .graph import JobSpec
from .job import NO_CHANGES, Job
from .storage import SharedStorage

try:  # cloudpickle ships dynamically created classes by value
    import cloudpickle
except ImportError:  # pragma: no cover - a dependency of the package
    cloudpickle = None  # type: ignore[assignment]


if cloudpickle is not None:

    class _TryPickler(cloudpickle.Pickler):
        """cloudpickle, minus the DEPS of Job classes sent by value."""

        def reducer_override(self, obj: Any) -> Any:
            reduced = super().reducer_override(obj)
            if (
                reduced is not NotImplemented
                and isinstance(obj, type)
                and issubclass(obj, Job)
                and isinstance(reduced, tuple)
                and len(reduced) >= 3
                and isinstance(reduced[2], tuple)
                and reduced[2]
                and isinstance(reduced[2][0], dict)
                and "DEPS" in reduced[2][0]
            ):
                state = ({**reduced[2][0], "DEPS": ()}, *reduced[2][1:])
                reduced = (*reduced[:2], state, *reduced[3:])
            return reduced


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for a worker (classes by value when they are not importable)."""
    if cloudpickle is None:  # pragma: no cover
        return pickle.dumps(obj)
    buffer = io.BytesIO()
    _TryPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _portable(exc: BaseException | None) -> BaseException | None:
    """``exc``, with its traceback as a note, or a :class:`RemoteError` if it cannot be pickled."""
    if exc is None:
        return None
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    try:
        pickle.loads(dumps(exc))
    except Exception:
        return RemoteError(type(exc).__name__, str(exc), text)
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
    """Run one try in this (worker) process; the far end of :meth:`RemoteTries.submit`."""
    spec, try_number, args, kwargs, storage, no_act, base, want_events, changed = pickle.loads(payload)
    snapshot = pickle.loads(storage)
    working = SharedStorage(pickle.loads(storage))  # with its lock, as in the run's own process
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
    name = _worker_name()
    ctx.worker = lambda: name
    ctx.changed_deps = lambda index: changed
    if spec.timeout is None:
        out = execute(attempt(spec, try_number, ctx))
    else:  # no driver watches this process's phases: each runs on a thread waited for TIMEOUT seconds

        def abandoned(phase: Phase) -> None:
            if ctx.emit is not None:
                ctx.emit(PhaseAbandoned(spec.name, try_number, phase, ctx.now(), name))

        steps = attempt(spec, try_number, ctx)
        out = execute_bounded(steps, spec.timeout, spec.name, wait=SystemClock().get, abandoned=abandoned)
    cleanup_failures = execute(cleanups(ctx))
    changed, removed = _changes(snapshot, working)
    result = (
        TryOutcome(out.ok, out.changed, out.result, _portable(out.exception), _portable(out.cause)),
        events,
        changed,
        removed,
        [(job, _portable(exc)) for job, exc in cleanup_failures],
        name,
    )
    try:
        return dumps(result)
    except Exception as exc:  # an unpicklable result or stored value
        problem = RemoteError(type(exc).__name__, f"cannot send the try's outcome back: {exc}", "")
        return dumps((TryOutcome(False, exception=problem), events, {}, [], [], name))


def resolve_executor(executor: Any, workers: int) -> tuple[cf.Executor | None, bool, Callable[[], None]]:
    """``executor`` as ``(Executor or None, remote?, close)``.

    Accepts None (built-in threads), ``"threads"``, ``"processes"`` (a pool of
    ``workers`` processes owned by the run), ``"dask://host:port"`` (a Dask
    cluster; ``pip install dojob[dask]``), a ``distributed.Client``, or any
    ``concurrent.futures.Executor`` (a ``ThreadPoolExecutor`` runs tries in this
    process; any other executor is treated as remote).
    """
    if executor is None or executor == "threads":
        return None, False, lambda: None
    if executor == "processes":
        pool = cf.ProcessPoolExecutor(max_workers=workers)
        return pool, True, lambda: pool.shutdown(wait=True, cancel_futures=True)
    if isinstance(executor, str) and executor.startswith(("dask://", "tcp://")):
        try:
            import distributed
        except ImportError:
            raise OptionError("executor", executor, "usable: install the dask extra (pip install 'dojob[dask]')")
        address = executor.replace("dask://", "tcp://", 1)
        client = distributed.Client(address, set_as_default=False)
        return client.get_executor(), True, client.close
    if type(executor).__name__ == "Client" and hasattr(executor, "get_executor"):
        return executor.get_executor(), True, lambda: None
    if isinstance(executor, cf.ThreadPoolExecutor):
        return executor, False, lambda: None
    if isinstance(executor, cf.Executor):
        return executor, True, lambda: None
    raise OptionError(
        "executor", executor, "None, 'threads', 'processes', 'dask://host:port', a distributed.Client or an Executor"
    )


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
            payload = dumps(
                (
                    spec,
                    try_number,
                    ctx.args,
                    ctx.kwargs,
                    dumps(dict(ctx.global_storage)),
                    ctx.no_act,
                    self.now(),
                    ctx.emit is not None,
                    ctx.changed_deps(spec.index) if ctx.changed_deps is not None else NO_CHANGES,
                )
            )
            inner = self.executor.submit(run_remote_try, payload)
        except cf.BrokenExecutor as exc:
            self._broken(exc)
            outer.set_result(TryOutcome(False, exception=WorkerLost(f"{spec.name}: the executor is broken: {exc}")))
            return outer
        except Exception as exc:  # e.g. an argument that cannot be pickled
            outer.set_result(TryOutcome(False, exception=exc))
            return outer
        inner.add_done_callback(lambda done: self._arrived(spec, done, outer))
        return outer

    def _broken(self, exc: BaseException) -> None:
        if self.replace is not None:
            self.executor = self.replace()

    def _arrived(self, spec: JobSpec, inner: cf.Future, outer: cf.Future) -> None:
        try:
            reply = pickle.loads(inner.result())
        except STOPPERS as exc:
            outer.set_exception(exc)
            return
        except BaseException as exc:
            if isinstance(exc, cf.BrokenExecutor):
                self._broken(exc)
            lost = WorkerLost(f"{spec.name}: the worker running it was lost: {type(exc).__name__}: {exc}")
            lost.__cause__ = exc
            outer.set_result(TryOutcome(False, exception=lost))
            return
        outcome, events, changed, removed, cleanup_failures, worker = reply
        outer.worker = worker  # for the report
        emit = self.ctx.emit
        if emit is not None:
            for event in events:
                emit(event)
        storage = self.ctx.global_storage
        storage.update(changed)
        for key in removed:
            storage.pop(key, None)
        self.cleanup_failures.extend(cleanup_failures)
        outer.set_result(outcome)
