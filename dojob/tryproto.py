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


PASSED = TryOutcome(True, False, None)

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


def absent(obj: Any, name: str) -> Callable[..., Any]:
    """For a method ``name`` that ``obj`` lacks, a call that raises its AttributeError.

    As in DoJobber, a job without Check or Run fails that phase, never the run.
    """

    def absent(*_args: Any, **_kwargs: Any) -> Any:
        return getattr(obj, name)

    return absent


#: getattr's default when a phase's method is missing.
MISSING: Any = object()


#: The instance attributes DoJobber sets after each phase (``Job`` holds their None defaults).
_RESULT_ATTR = {CHECK: "_check_results", RUN: "_run_results", RECHECK: "_recheck_results"}
_EXCEPTION_ATTR = {CHECK: "_check_exception", RUN: "_run_exception", RECHECK: "_recheck_exception"}


#: The attribute that marks an exception raised while creating a job's instance (it pickles with the
#: exception, so a process or Dask worker's verdict comes back with it).
INIT_FAILURE = "_dojob_failed_in_init"


def mark_init_failure(exc: BaseException) -> None:
    """Mark ``exc`` as raised by the job's ``__init__`` (read by :func:`dojob.diagnose.failed_in_init`)."""
    try:
        setattr(exc, INIT_FAILURE, True)
    except Exception:  # noqa: BLE001 - a hostile __setattr__: the diagnosis is lost, not the run
        pass


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


#: What :func:`prepare` readies for the phases of a try: the instance (or awaitable object), its ``__dict__``
#: (a fresh dict for an awaitable), the phases' arguments, the name of the Run method and the phases.
Begun = tuple[Any, dict, tuple, dict, str, tuple[Phase, ...]]


def prepare(spec: JobSpec, try_number: int, ctx: TryContext) -> Begun | TryOutcome:
    """A try up to its first phase: the instance created and given its storage, on the Cleanup stack if it
    has a Cleanup (:data:`Begun`); or the outcome of a try that ends before any phase."""
    traits = spec.traits
    if (kind := traits.kind) == "awaitable":  # an object whose co_run() is the whole job
        obj, state, args, kwargs, run_name = spec.cls, {}, (), {}, "co_run"
    else:
        try:
            obj = spec.cls()  # no step of its own: creating the instance needs no executor
        except STOPPERS:
            raise
        except BaseException as exc:
            mark_init_failure(exc)
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
    return obj, state, args, kwargs, run_name, phases


def phase_call(
    spec: JobSpec, try_number: int, ctx: TryContext, begun: Begun, phase: Phase
) -> Callable[..., Any] | TryOutcome:
    """The function to call for ``phase`` of a try (its start told, ``_check_phase`` set), or the outcome
    of a try whose Run a stopping run does not start."""
    if phase is RUN and ctx.stopping is not None and ctx.stopping():  # a stopping run starts no change
        return _not_started(spec)
    if ctx.emit is not None:
        ctx.emit(PhaseStarted(spec.name, try_number, phase, ctx.now(), ctx.worker()))
    if phase is not RUN:
        begun[1]["_check_phase"] = "check" if phase is CHECK else "recheck"
    name = begun[4] if phase is RUN else "Check"
    fn = getattr(begun[0], name, MISSING)  # (no helper call: -2% instructions of a serial run of 4 000 jobs)
    return absent(begun[0], name) if fn is MISSING else fn


def phase_passed(spec: JobSpec, try_number: int, ctx: TryContext, begun: Begun, phase: Phase, value: Any) -> Any:
    """``phase`` returned ``value``: the try's outcome, or None if it goes on (a Run before its recheck)."""
    begun[1][_RESULT_ATTR[phase]] = value
    if ctx.emit is not None:
        ctx.emit(PhaseEnded(spec.name, try_number, phase, True, ctx.now()))
    if phase is CHECK:
        return PASSED if value is None else TryOutcome(True, False, value)
    if phase is RUN and len(begun[5]) > 1:
        return None
    return TryOutcome(True, True, value)


def phase_failed(
    spec: JobSpec, try_number: int, ctx: TryContext, begun: Begun, phase: Phase, exc: BaseException, cause: Any
) -> TryOutcome | None:
    """``phase`` raised ``exc`` (``cause``: what this try's Run raised): the try's outcome, or None if it
    goes on (a failed Check leads to Run)."""
    begun[1][_EXCEPTION_ATTR[phase]] = exc  # DoJobber's per-try attributes
    if ctx.emit is not None:
        ctx.emit(PhaseEnded(spec.name, try_number, phase, False, ctx.now(), *describe_error(exc)))
    if _goes_on(phase, exc, ctx, begun[5]):
        return None
    return TryOutcome(False, exception=exc, cause=cause if phase is RECHECK else None)


def attempt(
    spec: JobSpec, try_number: int, ctx: TryContext, begun: Begun | None = None, start: int = 0
) -> Generator[Step, Any, TryOutcome]:
    """The steps of one try of ``spec``: create, check, and if that fails run then recheck (a ``yield`` each).

    ``begun`` (from :func:`prepare`) and ``start``: the rest of a try whose first ``start`` phases were
    called already without steps, and went on (see :func:`dojob.steps.try_inline`).
    """
    if begun is None:
        got: Any = prepare(spec, try_number, ctx)  # (Any: mypy narrows no "type() is")
        if type(got) is TryOutcome:
            return got
        begun = got
    args, kwargs = begun[2], begun[3]
    run_error = None  # the Run's exception: the cause, if the recheck then fails
    for phase in begun[5][start:]:
        fn: Any = phase_call(spec, try_number, ctx, begun, phase)
        if type(fn) is TryOutcome:
            return fn
        try:
            value = yield phase, fn, args, kwargs
        except GeneratorExit:
            raise
        except BaseException as exc:
            if type(exc) is Raised:
                exc = exc.exc
            if phase is RUN:
                run_error = exc
            ended = phase_failed(spec, try_number, ctx, begun, phase, exc, run_error)
        else:
            ended = phase_passed(spec, try_number, ctx, begun, phase, value)
        if ended is not None:
            return ended
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
