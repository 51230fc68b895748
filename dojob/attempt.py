"""One try of a job (init, check, run, recheck) and the Cleanups, as steps drivers execute.

The logic of a try is written once, as a generator that yields the calls to
make (``(phase, function, args, kwargs)``) and receives their results, or their
exceptions thrown back in. :func:`execute` runs those steps in the calling
thread; :func:`aexecute` runs them on an event loop (coroutine functions
natively, plain functions in a thread). So the sync and async drivers cannot
disagree on what a try is.

Exceptions: any ``BaseException`` raised by a phase fails that phase (``GeneratorExit``
and a ``CancelledError`` nobody asked for included), except ``KeyboardInterrupt`` and
``SystemExit``, which stop the run and propagate; raised by a Cleanup, they end that
Cleanup only, and the caller raises them once every Cleanup ran.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import queue
import threading
import traceback
from collections.abc import Callable, Generator
from functools import partial
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import Any, NamedTuple

from .events import CleanupEnded, CleanupStarted, Phase, PhaseEnded, PhaseStarted
from .graph import JobSpec
from .storage import SharedStorage

INIT, CHECK, RUN, RECHECK, CLEANUP = Phase.INIT, Phase.CHECK, Phase.RUN, Phase.RECHECK, Phase.CLEANUP

#: Exceptions that stop a run instead of failing a phase.
STOPPERS = (KeyboardInterrupt, SystemExit)

Step = tuple[Phase, Callable[..., Any], tuple, dict]


class NoActError(RuntimeError):
    """A RunonlyJob cannot succeed when nothing may be run (``no_act``); DoJobber's RuntimeError and message."""


class PhaseTimeout(TimeoutError):
    """A phase ran longer than its job's ``TIMEOUT``; the try failed at once.

    Attributes:
        job, phase, timeout: which job, which phase, the limit in seconds.
    """

    def __init__(self, job: str, phase: Phase, timeout: float, *, abandoned: bool = False) -> None:
        self.job = job
        self.phase = phase
        self.timeout = timeout
        self.abandoned = abandoned
        note = "; its thread cannot be killed and runs on, abandoned" if abandoned else ""
        super().__init__(f"{job}.{phase.value} took longer than TIMEOUT={timeout:g}s{note}")

    def __reduce__(self) -> tuple[Any, ...]:  # it crosses process boundaries (remote tries)
        return (_phase_timeout, (self.job, self.phase, self.timeout, self.abandoned), self.__dict__)


def _phase_timeout(job: str, phase: Phase, timeout: float, abandoned: bool) -> PhaseTimeout:
    return PhaseTimeout(job, phase, timeout, abandoned=abandoned)


class RunTimeout(TimeoutError):
    """The run's ``timeout`` expired while this try was running."""


class CleanupTimeout(TimeoutError):
    """A Cleanup did not end within the Cleanups' bound (with a run ``timeout``, the Cleanups
    together get that many seconds again): it was abandoned, or not started at all."""


class TryHandle:
    """Shared between the sync driver and the thread running one try, to watch phase timeouts.

    The worker records the current phase and its deadline; the driver may mark
    the try abandoned once the deadline passes. Whoever takes the lock first
    decides: a phase that ends in time is never abandoned.
    """

    __slots__ = ("lock", "phase", "deadline", "abandoned", "worker", "now", "timeout", "wake")

    def __init__(self, now: Callable[[], float], timeout: float | None, wake: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.phase: Phase | None = None
        self.deadline: float | None = None
        self.abandoned = False
        self.worker: str | None = None
        self.now = now
        self.timeout = timeout
        self.wake = wake  # tells the driver a new deadline exists

    def begin(self, phase: Phase) -> None:
        with self.lock:
            self.phase = phase
            self.worker = threading.current_thread().name
            self.deadline = None if self.timeout is None else self.now() + self.timeout
        if self.timeout is not None and self.wake is not None:
            self.wake()

    def end(self) -> bool:
        """The phase returned; False if the driver abandoned the try meanwhile."""
        with self.lock:
            self.deadline = None
            return not self.abandoned

    def abandon_if_late(self, now: float, run_deadline_passed: bool = False) -> bool:
        """Mark the try abandoned if its phase overran (or the run's deadline passed)."""
        with self.lock:
            if self.abandoned:
                return False
            if run_deadline_passed or (self.deadline is not None and now >= self.deadline):
                self.abandoned = True
                return True
            return False


#: What :func:`execute` returns for a try the driver abandoned.
ABANDONED = object()


class _Raised(Exception):
    """Carries a ``GeneratorExit`` raised by a phase into the steps.

    Thrown in bare, it would read as the steps being closed; a phase that
    raises it fails like any other.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc


def _throwable(exc: BaseException) -> BaseException:
    """What to throw into the steps for a phase that raised ``exc``."""
    return _Raised(exc) if isinstance(exc, GeneratorExit) else exc


class TryOutcome(NamedTuple):
    """How a try ended: ``changed`` is True when it converged through Run.

    ``cause`` is what Run raised in a try whose recheck then failed (the cause; ``exception`` the symptom).
    """

    ok: bool
    changed: bool = False
    result: Any = None
    exception: BaseException | None = None
    cause: BaseException | None = None  # operator: the Run's error, shown before the recheck's


#: Exceptions a Check raises because it is wrong, not because the world is: ``strict`` fails them without Run.
PROGRAMMING_ERRORS = (NameError, AttributeError, TypeError, ImportError, SyntaxError)  # operator: --strict


_PASSED = TryOutcome(True, False, None)

_CONVERGE = {"job": (CHECK, RUN, RECHECK), "dummy": (CHECK, RUN, RECHECK), "runonly": (RUN,), "awaitable": (RUN,)}
_CHECK_ONLY = {"job": (CHECK,), "dummy": (CHECK,), "runonly": (), "awaitable": ()}


class TryContext:
    """What every try of a run shares: arguments, storage, the cleanup stack, the emitter.

    Attributes:
        instances: ``(spec, instance)`` of every job with a Cleanup whose Check
            (or Run, for a RunonlyJob) was called, in call order: the Cleanup stack.
    """

    __slots__ = (
        "args", "kwargs", "global_storage", "no_act", "phases", "cwd", "instances", "cleanup_failures",
        "emit", "now", "worker", "changed_deps", "strict",
    )  # fmt: skip

    def __init__(
        self,
        *,
        args: tuple = (),
        kwargs: dict | None = None,
        global_storage: dict | None = None,
        no_act: bool = False,
        cwd: str | None = None,
        emit: Callable[[Any], None] | None = None,
        now: Callable[[], float] = lambda: 0.0,
        strict: bool = False,
    ) -> None:
        self.strict = strict  # operator: a Check failing with a PROGRAMMING_ERRORS fails the try, no Run
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        #: A :class:`~dojob.storage.SharedStorage` unless the caller passed its own dict.
        self.global_storage = SharedStorage() if global_storage is None else global_storage
        self.no_act = no_act
        #: The phases of a try, by job kind (none for a run-only job that may not run).
        self.phases: dict[str, tuple[Phase, ...]] = _CHECK_ONLY if no_act else _CONVERGE
        self.cwd = cwd
        self.instances: list[tuple[JobSpec, Any]] = []
        #: ``(job name, exception)`` of each Cleanup that failed so far.
        self.cleanup_failures: list[tuple[str, BaseException]] = []
        self.emit = emit
        self.now = now
        #: Names where a phase runs, for events (a thread name by default).
        self.worker: Callable[[], str] = _thread_name
        #: Job index -> its DEPS that changed in this run (set by the run; ``Job.changed_deps``).
        self.changed_deps: Callable[[int], tuple] | None = None


def _thread_name() -> str:
    return threading.current_thread().name


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, formatted traceback)`` of an exception, as plain strings."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not break the run
        message = f"<unprintable {type(exc).__name__}>"
    return type(exc).__name__, message, tb


def attempt(spec: JobSpec, try_number: int, ctx: TryContext) -> Generator[Step, Any, TryOutcome]:
    """The steps of one try of ``spec``: create, check, and if that fails run then recheck.

    Each phase is one ``yield``; the executor sends back its value or throws
    its exception in. The instance is created in the generator itself (on the
    caller's thread or loop). Events are built only when the run has observers.
    """
    emit = ctx.emit
    kind = spec.kind
    if kind == "awaitable":  # an object whose co_run() is the whole job
        obj = spec.cls
        state: dict[str, Any] = {}
        args, kwargs = (), {}
        run_name = "co_run"
    else:
        try:
            obj = spec.cls()  # no step of its own: creating the instance needs no executor
        except STOPPERS:
            raise
        except BaseException as exc:
            if emit is not None:
                emit(PhaseEnded(spec.name, try_number, INIT, False, ctx.now(), *describe_error(exc)))
            return TryOutcome(False, exception=exc)
        # Job has no __slots__, so every instance has a __dict__; writing to it
        # directly skips the class-hierarchy search that setattr does each time.
        state = obj.__dict__
        state["storage"] = {}
        state["global_storage"] = ctx.global_storage
        if ctx.changed_deps is not None:  # read lazily by Job.changed_deps (most jobs never ask)
            state["_dojob_changed"] = (ctx.changed_deps, spec.index)
        if spec.has_cleanup:
            ctx.instances.append((spec, obj))
        args = ctx.args
        kwargs = ctx.kwargs
        run_name = "Run"
    phases = ctx.phases[kind]
    if not phases:  # a run-only job when nothing may run: it cannot pass its (implicit) check
        exc = NoActError("Runonly node check intentionally fails first time.")
        if emit is not None:
            emit(PhaseEnded(spec.name, try_number, CHECK, False, ctx.now(), *describe_error(exc)))
        return TryOutcome(False, exception=exc)
    run_error = None  # operator: the Run's exception, the cause of a failing recheck
    for phase in phases:
        try:  # a method the class lacks fails its phase, as in DoJobber
            if phase is RUN:
                fn = getattr(obj, run_name)
            else:
                state["_check_phase"] = "check" if phase is CHECK else "recheck"
                fn = obj.Check
        except AttributeError:
            fn = _absent(obj, run_name if phase is RUN else "Check")
        if emit is not None:
            emit(PhaseStarted(spec.name, try_number, phase, ctx.now(), ctx.worker()))
        try:
            value = yield phase, fn, args, kwargs
        except GeneratorExit:
            raise
        except BaseException as exc:
            if type(exc) is _Raised:
                exc = exc.exc
            state[_EXCEPTION_ATTR[phase]] = exc  # DoJobber's per-try attributes
            if emit is not None:
                emit(PhaseEnded(spec.name, try_number, phase, False, ctx.now(), *describe_error(exc)))
            if phase is CHECK and ctx.strict and isinstance(exc, PROGRAMMING_ERRORS):  # operator: --strict
                return TryOutcome(False, exception=exc)
            if phase is RUN:  # operator: kept as the cause if the recheck fails
                run_error = exc
            if phase is not RECHECK and len(phases) > 1 and not isinstance(exc, PhaseTimeout):
                continue  # a failed Check leads to Run; Run's outcome is ignored, the recheck decides
            return TryOutcome(False, exception=exc, cause=run_error)
        state[_RESULT_ATTR[phase]] = value
        if emit is not None:
            emit(PhaseEnded(spec.name, try_number, phase, True, ctx.now()))
        if phase is CHECK:
            return _PASSED if value is None else TryOutcome(True, False, value)
        if phase is RUN and len(phases) > 1:
            continue
        return TryOutcome(True, True, value)
    raise AssertionError("unreachable")  # pragma: no cover


#: The instance attributes DoJobber sets after each phase (``Job`` holds their None defaults).
_RESULT_ATTR = {CHECK: "_check_results", RUN: "_run_results", RECHECK: "_recheck_results"}
_EXCEPTION_ATTR = {CHECK: "_check_exception", RUN: "_run_exception", RECHECK: "_recheck_exception"}


def _absent(obj: Any, name: str) -> Callable[..., Any]:
    """A phase for a method ``obj`` lacks: calling it raises the AttributeError."""

    def absent(*_args: Any, **_kwargs: Any) -> Any:
        return getattr(obj, name)

    return absent


def cleanups(ctx: TryContext) -> Generator[Step, Any, list[tuple[str, BaseException]]]:
    """The steps of the Cleanups: every instance on the stack, newest first, each once.

    Every Cleanup runs even if others raise; returns the ``(job name, exception)`` failures,
    which are also kept in ``ctx.cleanup_failures`` as they happen (for a run interrupted meanwhile).
    """
    failures = ctx.cleanup_failures
    emit = ctx.emit
    stack = ctx.instances
    while stack:
        spec, obj = stack.pop()
        if emit is not None:
            emit(CleanupStarted(spec.name, ctx.now()))
        try:
            yield CLEANUP, obj.Cleanup, (), {}
        except GeneratorExit:
            raise
        except BaseException as exc:
            if type(exc) is _Raised:
                exc = exc.exc
            failures.append((spec.name, exc))
            if emit is not None:
                emit(CleanupEnded(spec.name, False, ctx.now(), *describe_error(exc)))
            continue
        if emit is not None:
            emit(CleanupEnded(spec.name, True, ctx.now()))
    return failures


def returner(cwd: str | int | None) -> Callable[[], None] | None:
    """A call that goes back to ``cwd`` (a path, or a descriptor from :func:`open_dir`: 3x cheaper), or None."""
    if cwd is None:
        return None
    return partial(os.fchdir if type(cwd) is int else os.chdir, cwd)


def open_dir(path: str) -> str | int:
    """A descriptor for ``path`` to restore the working directory cheaply, or the path itself."""
    if hasattr(os, "fchdir") and hasattr(os, "O_DIRECTORY"):
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            pass
    return path


def close_dir(cwd: str | int | None) -> None:
    if type(cwd) is int:
        os.close(cwd)


def _is_coroutine_function(fn: Any) -> bool:
    """``inspect.iscoroutinefunction``, reading the flag directly for plain functions and methods."""
    func = fn.__func__ if type(fn) is MethodType else fn
    if type(func) is FunctionType:
        return bool(func.__code__.co_flags & CO_COROUTINE)
    return inspect.iscoroutinefunction(fn)


def _refuse_awaitable(phase: Phase, value: Any) -> None:
    """A sync phase returned an awaitable: close it (no "never awaited" warning) and fail the phase."""
    close = getattr(value, "close", None)
    if close is not None:
        close()
    raise TypeError(f"{phase.value} returned an awaitable; run jobs with coroutines through the async driver")


def execute(
    steps: Generator[Step, Any, Any],
    go_back: Callable[[], None] | None = None,
    handle: TryHandle | None = None,
) -> Any:
    """Run ``steps`` in this thread; return the generator's value.

    Args:
        steps: from :func:`attempt` or :func:`cleanups`.
        go_back: if set, called before every phase to restore the working
            directory (serial runs; see :func:`returner`).
        handle: if set, phases are watched for timeouts by the driver; once it
            abandons the try, the steps are closed and :data:`ABANDONED` is returned.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                phase, fn, args, kwargs = steps.send(value)
            else:
                phase, fn, args, kwargs = steps.throw(_throwable(error))
        except StopIteration as stop:
            return stop.value
        error = None
        if handle is not None:
            handle.begin(phase)
        try:
            if go_back is not None:
                go_back()
            value = fn(*args, **kwargs) if kwargs else fn(*args)
            if value is not None and inspect.isawaitable(value):
                _refuse_awaitable(phase, value)
        except STOPPERS as exc:
            if phase is not CLEANUP:
                steps.close()
                raise
            error = exc  # every Cleanup runs; the caller raises the stopper after them
            value = None
        except BaseException as exc:
            error = exc
            value = None
        if handle is not None and not handle.end():
            steps.close()
            return ABANDONED


def execute_within(
    steps: Generator[Step, Any, Any],
    within: float,
    *,
    now: Callable[[], float],
    wait: Callable[[queue.SimpleQueue, float | None], Any],
    cwd: str | None = None,
) -> Any:
    """Run ``steps`` like :func:`execute`, all of them within ``within`` seconds (the Cleanups under a run timeout).

    Each step runs on a daemon thread of its own; one still running when the
    time is up is abandoned (its thread runs on, it never delays exit), and the
    later ones are not started: each fails with :class:`CleanupTimeout`.

    Args:
        now: the clock.
        wait: ``wait(queue, seconds)``: the next item of the queue, or None once
            ``seconds`` passed (a clock's ``get``).
        cwd: if set, go back there before every step.
    """
    end = now() + within

    def late(phase: Phase, started: bool) -> BaseException:
        if started:
            return CleanupTimeout(f"still running when the Cleanups' bound of {within:g}s passed; its thread runs on")
        return CleanupTimeout(f"not started: the Cleanups' bound of {within:g}s had passed")

    return _execute_on_threads(steps, lambda phase: end - now(), late, wait, returner(cwd))


def execute_bounded(
    steps: Generator[Step, Any, Any],
    timeout: float,
    job: str,
    *,
    wait: Callable[[queue.SimpleQueue, float | None], Any],
    abandoned: Callable[[Phase], None] | None = None,
) -> Any:
    """Run ``steps`` like :func:`execute`, each phase within ``timeout`` seconds (a job's ``TIMEOUT``).

    For executors without a driver watching the phases (a worker process):
    each phase runs on a daemon thread of its own; one that overruns is
    abandoned (its thread runs on) and fails with :class:`PhaseTimeout`, which
    fails the try at once, as on the run's own threads. ``abandoned(phase)`` is
    called first.
    """

    def late(phase: Phase, started: bool) -> BaseException:
        if abandoned is not None:
            abandoned(phase)
        return PhaseTimeout(job, phase, timeout, abandoned=True)

    return _execute_on_threads(steps, lambda phase: timeout, late, wait, None)


def _execute_on_threads(
    steps: Generator[Step, Any, Any],
    budget: Callable[[Phase], float],
    late: Callable[[Phase, bool], BaseException],
    wait: Callable[[queue.SimpleQueue, float | None], Any],
    go_back: Callable[[], None] | None,
) -> Any:
    """:func:`execute`, each step on a daemon thread waited for at most ``budget(phase)`` seconds.

    A step whose budget is already spent is not started; one still running when
    it is spent is abandoned. Either fails with ``late(phase, started)``.
    Stoppers (raised by a phase, or Ctrl-C while waiting) end a Cleanup only;
    in any other phase they close the steps and propagate, as in :func:`execute`.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                phase, fn, args, kwargs = steps.send(value)
            else:
                phase, fn, args, kwargs = steps.throw(_throwable(error))
        except StopIteration as stop:
            return stop.value
        value = error = None
        left = budget(phase)
        if left <= 0:
            error = late(phase, False)
            continue
        box: queue.SimpleQueue = queue.SimpleQueue()

        def work(
            fn: Callable[..., Any] = fn, args: tuple = args, kwargs: dict = kwargs, box: queue.SimpleQueue = box
        ) -> None:
            try:
                if go_back is not None:
                    go_back()
                box.put((True, fn(*args, **kwargs)))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box.put((False, exc))

        threading.Thread(target=work, name=f"dojob-{phase.value}", daemon=True).start()
        try:
            outcome = wait(box, left)
        except STOPPERS as exc:  # Ctrl-C while it runs: the step is abandoned
            if phase is not CLEANUP:
                steps.close()
                raise
            error = exc
            continue
        if outcome is None:
            error = late(phase, True)
            continue
        ok, value = outcome
        if not ok:
            error, value = value, None
            if isinstance(error, STOPPERS) and phase is not CLEANUP:
                steps.close()
                raise error
        elif value is not None and phase is not CLEANUP and inspect.isawaitable(value):
            try:
                _refuse_awaitable(phase, value)
            except TypeError as exc:
                error, value = exc, None


def _in_dir(cwd: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        os.chdir(cwd)
        return fn(*args, **kwargs)

    return call


async def _call_with_timeout(awaitable: Any, timeout: float) -> Any:
    """Await ``awaitable`` for at most ``timeout`` seconds; raise :class:`asyncio.TimeoutError` past it.

    Unlike ``asyncio.wait_for``, a ``TimeoutError`` raised by the awaitable
    itself is not mistaken for an overrun: it propagates as is.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise _Overrun
    return task.result()


class _Overrun(Exception):
    """Internal: a phase overran its timeout."""


class Stopped(Exception):
    """Carries a ``KeyboardInterrupt``/``SystemExit`` raised in a try out of its asyncio task.

    Raised bare, asyncio would re-raise it straight out of the event loop, past
    the driver (no report, no Cleanups); the async driver unwraps it instead.
    """

    def __init__(self, stopper: BaseException) -> None:
        super().__init__(repr(stopper))
        self.stopper = stopper


def _being_cancelled() -> bool:
    """Whether someone asked to cancel the current task (assumed so where Python cannot tell)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


def _in_daemon_thread(fn: Callable[..., Any], args: tuple, kwargs: dict) -> asyncio.Future:
    """Start ``fn`` on a daemon thread of its own; return a future of ``(ok, value or exception)``.

    Unlike ``asyncio.to_thread``, nothing ever joins the thread: a phase that is
    abandoned (its timeout, the run's) delays neither ``asyncio.run`` nor the
    interpreter's exit. The outcome travels as a value, so any exception (even
    ``StopIteration``) reaches the caller as raised.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: tuple[bool, Any]) -> None:
        if not future.done():  # else: cancelled, the phase was abandoned
            future.set_result(outcome)

    def work() -> None:
        try:
            outcome = (True, context.run(fn, *args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the loop
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the loop is closed: nobody waits for this phase any more
            pass

    threading.Thread(target=work, name="dojob-phase", daemon=True).start()
    return future


async def aexecute(
    steps: Generator[Step, Any, Any],
    cwd: str | None = None,
    timeout: float | None = None,
    job: str = "?",
    *,
    within: float | None = None,
) -> Any:
    """Run ``steps`` on the running loop: coroutine functions natively, plain ones on a daemon thread.

    A phase longer than
    ``timeout`` is cancelled (a thread phase is abandoned) and fails the try
    with :class:`PhaseTimeout` naming ``job``. Cancellation closes the steps and propagates.

    Args:
        within: seconds for all the steps together (the Cleanups under a run
            timeout): a step still running then is cancelled or abandoned, and
            the later ones are not started; each fails with :class:`CleanupTimeout`.
    """
    loop = asyncio.get_running_loop()
    end = None if within is None else loop.time() + within
    value: Any = None
    error: BaseException | None = None
    cancellation: asyncio.CancelledError | None = None
    while True:
        try:
            if error is None:
                phase, fn, args, kwargs = steps.send(value)
            else:
                phase, fn, args, kwargs = steps.throw(_throwable(error))
        except StopIteration as stop:
            if cancellation is not None:
                raise cancellation from None
            return stop.value
        error = None
        value = None
        in_thread = False
        limit = None if phase is CLEANUP else timeout
        if end is not None:
            left = end - loop.time()
            if left <= 0:
                error = CleanupTimeout(f"not started: the Cleanups' bound of {within:g}s had passed")
                continue
            limit = left if limit is None else min(limit, left)
        try:
            if _is_coroutine_function(fn):
                if cwd is not None:
                    os.chdir(cwd)
                awaitable = fn(*args, **kwargs)
            else:
                in_thread = True
                awaitable = _in_daemon_thread(_in_dir(cwd, fn) if cwd else fn, args, kwargs)
            value = await (awaitable if limit is None else _call_with_timeout(awaitable, limit))
            if in_thread:
                ok, value = value
                if not ok:
                    raise value
            if value is not None and inspect.isawaitable(value):
                value = await value
        except _Overrun:
            value = None
            if phase is CLEANUP:
                fate = "its thread runs on" if in_thread else "cancelled"
                error = CleanupTimeout(f"still running when the Cleanups' bound of {within:g}s passed; {fate}")
            else:
                error = PhaseTimeout(job, phase, timeout or 0.0, abandoned=in_thread)
        except (asyncio.CancelledError, *STOPPERS) as exc:
            cancelled = isinstance(exc, asyncio.CancelledError)
            if phase is CLEANUP or (cancelled and not _being_cancelled()):
                # every Cleanup runs: a stopper ends this one, and the caller raises it after
                # them; so does a cancellation of this task (Ctrl-C under asyncio.run), raised
                # here after them. A CancelledError the job raised itself fails the phase.
                if phase is CLEANUP and cancelled and _being_cancelled():
                    cancellation = exc
                error = exc
                value = None
                continue
            steps.close()
            raise
        except BaseException as exc:
            error = exc
            value = None
