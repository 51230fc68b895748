"""Typed exceptions that carry the data of what went wrong.

Every error dojob raises on purpose is a :class:`DojobError`; graph problems are
found before any job runs and say which job and which value are at fault.
"""

from __future__ import annotations

from typing import Any


def _describe(value: Any) -> str:
    """A short, safe description of a bad value for an error message."""
    text = repr(value)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{text} ({type(value).__name__})"


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

        super().__init__(f"two different jobs are named {name!r}: {where(first)} and {where(second)}")


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
        parts = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.failures)
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
