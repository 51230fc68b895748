"""Typed exceptions that carry the data of what went wrong.

Every error dojob raises on purpose is a :class:`DojobError`; graph problems are
found before any job runs and say which job and which value are at fault.
"""

from __future__ import annotations

from typing import Any


def _describe(value: Any) -> str:
    """A short, safe description of a bad value for an error message."""
    text = safe_repr(value)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{text} ({safe_type_name(value)})"


def _real_dojobber_hint(value: Any) -> str:
    """What to do when ``value`` is a class of the real DoJobber package (imported next to dojob)."""
    try:
        mro = value.__mro__ if isinstance(value, type) else ()
        real = any(getattr(base, "__module__", None) == "dojobber.dojobber" for base in mro)
    except Exception:  # a hostile class: no hint
        real = False
    if real:
        return (
            ": a Job class of the real DoJobber package; run the script with "
            "'python -m dojob.dojobber SCRIPT' or import Job from dojob"
        )
    return ""


class DojobError(Exception):
    """Base class of every error raised by dojob."""


class OptionError(DojobError, ValueError, RuntimeError):
    """An option passed to ``run``/``configure`` has a bad value.

    Also a ``RuntimeError``, what DoJobber raised for a bad ``default_tries``.

    Attributes:
        option: the option's name.
        value: the offending value.
    """

    def __init__(self, option: str, value: Any, expected: str) -> None:
        self.option = option
        self.value = value
        super().__init__(f"option {option}= must be {expected}, got {_describe(value)}")


class GraphError(DojobError):
    """The job graph is invalid; raised before any job runs."""


class RootError(GraphError, TypeError):
    """A root given to the builder is not a Job class.

    Attributes:
        value: the offending root.
    """

    def __init__(self, value: Any) -> None:
        self.value = value
        super().__init__(f"a root must be a Job class, got {_describe(value)}{_real_dojobber_hint(value)}")


class DepsError(GraphError, TypeError):
    """A job's ``DEPS`` is not an iterable of Job classes.

    Attributes:
        job: the name of the job whose DEPS is wrong.
        value: the offending value (the whole DEPS, or the bad element).
    """

    def __init__(self, job: str, value: Any, why: str) -> None:
        self.job = job
        self.value = value
        super().__init__(f"job {job!r}: DEPS {why}, got {_describe(value)}{_real_dojobber_hint(value)}")


class JobAttributeError(GraphError, ValueError, RuntimeError):
    """A job class attribute such as ``TRIES`` or ``RETRY_DELAY`` has a bad value.

    Also a ``RuntimeError``, what DoJobber raised for a bad ``TRIES``/``RETRY_DELAY``.

    Attributes:
        job: the job's name.
        attribute: the attribute's name.
        value: the offending value.
    """

    def __init__(self, job: str, attribute: str, value: Any, expected: str) -> None:
        self.job = job
        self.attribute = attribute
        self.value = value
        super().__init__(f"job {job!r}: {attribute} must be {expected}, got {_describe(value)}")


class JobDefinitionError(GraphError, TypeError):
    """A job class lacks a method it needs, or defines one it must not.

    Attributes:
        job: the job's name.
    """

    def __init__(self, job: str, problem: str) -> None:
        self.job = job
        super().__init__(f"job {job!r}: {problem}")


class DuplicateJobError(GraphError, ValueError):
    """Two different classes in one graph share a name (job names must be unique).

    Attributes:
        name: the shared name.
        classes: the two classes.
    """

    def __init__(self, name: str, first: Any, second: Any) -> None:
        self.name = name
        self.classes = (first, second)

        def where(obj: Any) -> str:
            if isinstance(obj, type):
                return f"{obj.__module__}.{obj.__qualname__}"
            return repr(obj)

        message = f"two different jobs are named {name!r}: {where(first)} and {where(second)}"
        if isinstance(first, tuple) and isinstance(second, tuple) and repr(first) == repr(second):
            # two binds that print alike but differ: a value not equal to itself (NaN), or reprs that hide a difference
            message += (
                " (bound to values that look alike but are not equal, such as float('nan'), which equals"
                " nothing, not even itself: bind values that compare equal, e.g. None or a string)"
            )
        super().__init__(message)


class CycleError(GraphError, ValueError, RuntimeError):
    """The DEPS form a cycle (a job that depends on itself counts).

    Also a ``RuntimeError``, what DoJobber raised for a cycle.

    Attributes:
        cycle: the job names along the cycle; the first name is repeated at the end.
    """

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " -> ".join(cycle))


class CleanupError(DojobError):
    """One or more ``Cleanup`` methods raised; all Cleanups ran anyway.

    Attributes:
        failures: ``(job name, exception)`` pairs, in the order the Cleanups ran.
        report: the run's report, when the Cleanups ran at the end of a run.
    """

    def __init__(self, failures: list[tuple[str, BaseException]], report: Any = None) -> None:
        self.failures = list(failures)
        self.report = report
        parts = "; ".join(f"{name}: {safe_type_name(exc)}: {safe_str(exc)}" for name, exc in self.failures)
        n = len(self.failures)
        super().__init__(f"{n} Cleanup{'s' if n != 1 else ''} failed: {parts}")


class SelectionError(DojobError, ValueError):
    """A selection (``--only``, ``--tags``, ``--skip``) names nothing in the graph.

    Attributes:
        option: "only", "tags" or "skip".
        pattern: the pattern or tag that matched no job.
    """

    def __init__(self, option: str, pattern: str, why: str = "matches no job") -> None:
        self.option = option
        self.pattern = pattern
        super().__init__(f"--{option} {pattern!r} {why}")


def safe_str(obj: Any, *, named: bool = False) -> str:
    """``str(obj)``, or a placeholder when its ``__str__`` raises (a user's hostile exception).

    The placeholder is ``<unprintable>`` (``<unprintable TypeName>`` if ``named``).
    """
    try:
        text = str(obj)
        if type(text) is str:
            return text
    except BaseException:  # noqa: BLE001 - nothing a user's __str__ raises may break a run
        pass
    return f"<unprintable {safe_type_name(obj)}>" if named else "<unprintable>"


def safe_repr(obj: Any) -> str:
    """``repr(obj)``, or a placeholder when its ``__repr__`` raises."""
    try:
        text = repr(obj)
        if type(text) is str:
            return text
    except BaseException:  # noqa: BLE001
        pass
    return f"<unrepresentable {safe_type_name(obj)}>"


def safe_type_name(obj: Any) -> str:
    """The name of ``obj``'s type, whatever its metaclass does."""
    name = getattr(type(obj), "__name__", None)
    return name if type(name) is str else "object"


class NoActError(DojobError, RuntimeError):
    """A RunonlyJob cannot succeed when nothing may be run (``no_act``, a plan)."""


class StoppedBeforeRun(DojobError):
    """The run was stopping (Ctrl-C, SIGTERM, ``--timeout``, a CRITICAL failure) when this try's Check
    failed: its Run, a change to the world, was not started. The job ends interrupted."""


class PhaseTimeout(DojobError, TimeoutError):
    """A phase ran longer than its job's ``TIMEOUT``; the try failed at once.

    Attributes:
        job, phase, timeout: which job, which phase, the limit in seconds.
        abandoned: its thread could not be stopped and runs on.
        holding: the CLAIMS/USES the abandoned phase still holds until its thread ends.
    """

    def __init__(
        self, job: str, phase: Any, timeout: float, *, abandoned: bool = False, holding: tuple[str, ...] = ()
    ) -> None:
        self.job = job
        self.phase = phase
        self.timeout = timeout
        self.abandoned = abandoned
        self.holding = tuple(holding)
        note = "; its thread cannot be killed and runs on, abandoned" if abandoned else ""
        if holding:
            note += ", still holding " + ", ".join(holding)
        value = getattr(phase, "value", phase)
        super().__init__(f"{job}.{value} took longer than TIMEOUT={timeout:g}s{note}")

    def __reduce__(self) -> tuple[Any, ...]:  # it crosses process boundaries (remote tries)
        return (_phase_timeout, (self.job, self.phase, self.timeout, self.abandoned, self.holding), self.__dict__)


def _phase_timeout(job: str, phase: Any, timeout: float, abandoned: bool, holding: tuple = ()) -> PhaseTimeout:
    return PhaseTimeout(job, phase, timeout, abandoned=abandoned, holding=holding)


class RunTimeout(DojobError, TimeoutError):
    """The run's ``timeout`` expired while this try was running."""


class CleanupTimeout(DojobError, TimeoutError):
    """A Cleanup did not end within the Cleanups' bound (with a run ``timeout``, the Cleanups
    together get that many seconds again): it was abandoned, or not started at all."""


class RemoteError(DojobError):
    """Stands for an exception that could not be sent back from a worker.

    Attributes:
        type_name: the original exception's class name.
        traceback_text: the traceback as formatted in the worker.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str) -> None:
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text
        super().__init__(f"{type_name}: {message}")

    def __reduce__(self) -> tuple:
        return (RemoteError, (self.type_name, self.message, self.traceback_text), self.__dict__)  # (marks too)


class WorkerLost(DojobError):
    """The worker running a try died (or the executor refused the try)."""


class Terminated(KeyboardInterrupt):
    """A stop asked for by a signal other than SIGINT (SIGTERM: ``kill``, ``systemctl stop``).

    It behaves like Ctrl-C's ``KeyboardInterrupt`` (it is one), so code that
    cleans up on Ctrl-C cleans up on SIGTERM too. Not a :class:`DojobError`:
    it is a stop, not an error.

    Attributes:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signum}")
