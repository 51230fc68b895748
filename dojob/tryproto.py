"""The try protocol: one try of a job (init, check, run, recheck) and the Cleanups, as steps.

The logic of a try is written once, as a generator that yields the calls to
make (``(phase, function, args, kwargs)``) and receives their results, or their
exceptions thrown back in. The step loops of :mod:`dojob.steps` run those
steps (inline, on threads, on an event loop), so no driver can disagree on
what a try is.

An instance joins the Cleanup stack when its first phase is about to be
called, not before: a RunonlyJob under ``no_act`` (nothing of it runs) has no
Cleanup called.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from .errors import NoActError, PhaseTimeout, StoppedBeforeRun, safe_str, safe_type_name
from .events import CleanupEnded, CleanupStarted, Phase, PhaseEnded, PhaseStarted
from .graph import JobSpec
from .stopping import STOPPERS
from .storage import SharedStorage

INIT, CHECK, RUN, RECHECK, CLEANUP = Phase.INIT, Phase.CHECK, Phase.RUN, Phase.RECHECK, Phase.CLEANUP

Step = tuple[Phase, Callable[..., Any], tuple, dict]


class Raised(Exception):
    """Carries a ``GeneratorExit`` raised by a phase into the steps.

    Thrown in bare, it would read as the steps being closed; a phase that
    raises it fails like any other.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc


class TryOutcome(NamedTuple):
    """How a try ended: ``changed`` is True when it converged through Run.

    ``cause`` is what Run raised in a try whose recheck then failed (the cause; ``exception`` the symptom).
    """

    ok: bool
    changed: bool = False
    result: Any = None
    exception: BaseException | None = None
    cause: BaseException | None = None


#: Exceptions a Check raises because it is wrong, not because the world is: ``strict`` fails them without Run.
PROGRAMMING_ERRORS = (NameError, AttributeError, TypeError, ImportError, SyntaxError)


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
        "emit", "now", "worker", "changed_deps", "strict", "stopping",
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
        #: A Check failing with one of :data:`PROGRAMMING_ERRORS` fails the try without Run.
        self.strict = strict
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        #: A :class:`~dojob.storage.SharedStorage` unless the caller passed its own dict.
        self.global_storage: Any = SharedStorage() if global_storage is None else global_storage
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
        #: Whether the run is stopping: then a try whose Check failed starts no Run (set by the run).
        self.stopping: Callable[[], bool] | None = None


def _thread_name() -> str:
    return threading.current_thread().name


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, formatted traceback)`` of an exception, as plain strings; never raises."""
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    except BaseException:  # noqa: BLE001 - a hostile __str__/__repr__ must not break the run
        tb = f"{safe_type_name(exc)}: {safe_str(exc)}"
    return safe_type_name(exc), safe_str(exc, named=True), tb


def _absent(obj: Any, name: str) -> Callable[..., Any]:
    """For a method ``name`` that ``obj`` lacks, a call that raises its AttributeError.

    As in DoJobber, a job without Check or Run fails that phase, never the run.
    """

    def absent(*_args: Any, **_kwargs: Any) -> Any:
        return getattr(obj, name)

    return absent


_MISSING: Any = object()


#: The instance attributes DoJobber sets after each phase (``Job`` holds their None defaults).
_RESULT_ATTR = {CHECK: "_check_results", RUN: "_run_results", RECHECK: "_recheck_results"}
_EXCEPTION_ATTR = {CHECK: "_check_exception", RUN: "_run_exception", RECHECK: "_recheck_exception"}


def _ended(spec: JobSpec, try_number: int, phase: Phase, exc: BaseException, ctx: TryContext) -> TryOutcome:
    """Tell the observers that ``phase`` of this try failed with ``exc``, which ends the try."""
    if ctx.emit is not None:
        ctx.emit(PhaseEnded(spec.name, try_number, phase, False, ctx.now(), *describe_error(exc)))
    return TryOutcome(False, exception=exc)


def _goes_on(phase: Phase, exc: BaseException, ctx: TryContext, phases: tuple[Phase, ...]) -> bool:
    """Whether a try goes on after ``phase`` failed with ``exc``: a failed Check leads to Run, whose
    outcome is ignored (the recheck decides); not past its ``TIMEOUT``, nor, under ``strict``, after a
    Check raised a programming error (Run would not fix it)."""
    if phase is RECHECK or len(phases) == 1 or isinstance(exc, PhaseTimeout):
        return False
    return not (phase is CHECK and ctx.strict and isinstance(exc, PROGRAMMING_ERRORS))


def _not_started(spec: JobSpec) -> TryOutcome:
    """The outcome of a try whose Run a stopping run did not start."""
    return TryOutcome(False, exception=StoppedBeforeRun(f"{spec.name}: Run not started, the run is stopping"))


def attempt(spec: JobSpec, try_number: int, ctx: TryContext) -> Generator[Step, Any, TryOutcome]:
    """The steps of one try of ``spec``: create, check, and if that fails run then recheck (a ``yield`` each)."""
    emit = ctx.emit
    traits = spec.traits
    if (kind := traits.kind) == "awaitable":  # an object whose co_run() is the whole job
        obj, state, args, kwargs, run_name = spec.cls, {}, (), {}, "co_run"
    else:
        try:
            obj = spec.cls()  # no step of its own: creating the instance needs no executor
        except STOPPERS:
            raise
        except BaseException as exc:
            return _ended(spec, try_number, INIT, exc, ctx)
        state = obj.__dict__  # not setattr: it searches the class hierarchy (callgrind: +3% on 4 000 jobs)
        state["storage"] = {}
        state["global_storage"] = ctx.global_storage
        if ctx.changed_deps is not None:  # read lazily by Job.changed_deps (most jobs never ask)
            state["_dojob_changed"] = (ctx.changed_deps, spec.index)
        args, kwargs, run_name = ctx.args, ctx.kwargs, "Run"
    phases = ctx.phases[kind]
    if not phases:  # a run-only job when nothing may run: it cannot pass its (implicit) check
        return _ended(spec, try_number, CHECK, NoActError("Runonly node check intentionally fails first time."), ctx)
    if traits.has_cleanup and kind != "awaitable":
        ctx.instances.append((spec, obj))  # its first phase is called next: its Cleanup will be due
    run_error = None  # the Run's exception: the cause, if the recheck then fails
    for phase in phases:
        if phase is RUN and ctx.stopping is not None and ctx.stopping():  # a stopping run starts no change
            return _not_started(spec)
        if emit is not None:
            emit(PhaseStarted(spec.name, try_number, phase, ctx.now(), ctx.worker()))
        if phase is not RUN:
            state["_check_phase"] = "check" if phase is CHECK else "recheck"
        name = run_name if phase is RUN else "Check"
        fn = getattr(obj, name, _MISSING)  # (no helper call: -2% instructions of a serial run of 4 000 jobs)
        if fn is _MISSING:
            fn = _absent(obj, name)
        try:
            value = yield phase, fn, args, kwargs
        except GeneratorExit:
            raise
        except BaseException as exc:
            if type(exc) is Raised:
                exc = exc.exc
            state[_EXCEPTION_ATTR[phase]] = exc  # DoJobber's per-try attributes
            if emit is not None:
                emit(PhaseEnded(spec.name, try_number, phase, False, ctx.now(), *describe_error(exc)))
            if phase is RUN:
                run_error = exc
            if _goes_on(phase, exc, ctx, phases):
                continue
            return TryOutcome(False, exception=exc, cause=run_error if phase is RECHECK else None)
        state[_RESULT_ATTR[phase]] = value
        if emit is not None:
            emit(PhaseEnded(spec.name, try_number, phase, True, ctx.now()))
        if phase is CHECK:
            return _PASSED if value is None else TryOutcome(True, False, value)
        if phase is RUN and len(phases) > 1:
            continue
        return TryOutcome(True, True, value)
    raise AssertionError("unreachable")  # pragma: no cover


def cleanups(ctx: TryContext) -> Generator[Step, Any, list[tuple[str, BaseException]]]:
    """The steps of the Cleanups: every instance on the stack, newest first, each once.

    Every Cleanup runs even if others raise; returns the ``(job name, exception)`` failures,
    which are also kept in ``ctx.cleanup_failures`` as they happen (for a run interrupted meanwhile).
    An instance leaves the stack before its Cleanup is called: none is ever called twice.
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
            if type(exc) is Raised:
                exc = exc.exc
            failures.append((spec.name, exc))
            if emit is not None:
                emit(CleanupEnded(spec.name, False, ctx.now(), *describe_error(exc)))
            continue
        if emit is not None:
            emit(CleanupEnded(spec.name, True, ctx.now()))
    return failures
