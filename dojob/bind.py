"""Parameterised jobs: ``SendInvite.bind(EMAIL=..., NAME=...)`` instead of a ``type()`` per job.

A :class:`BoundJob` is a Job class plus a set of named values. It stands in
``DEPS`` (and as a root) wherever a class can; each try creates an instance of
the class with the values set as instance attributes, so ``self.EMAIL`` is
the bound value. Two binds of the same class with equal values are equal (and
hash alike), so ``DEPS`` dedupe them. Its name, ``SendInvite[EMAIL='...',
NAME='...']``, is the class name and the values' ``repr`` sorted by key:
readable, unique and stable across runs for values with a stable ``repr``
(strings, numbers, tuples of them, enums). A class may show fewer values in
its jobs' names with ``BIND_NAME = ("NAME",)`` (``SendInvite[NAME='Wendell
Bagg']``); two jobs that differ only in the hidden values then share a name,
which the graph build refuses (:class:`~dojob.errors.DuplicateJobError`). It pickles by reference: the class
(by its import path) and the values, never the class by value.

Binding costs a dict and a tuple, not a class: a 10 000-way fan-out is made about
5x faster than with ``type()``, and built and converged faster too (see
``benchmarks/bench_bind.py``).
"""

from __future__ import annotations

import inspect
from operator import itemgetter
from typing import Any

from .errors import JobAttributeError, JobDefinitionError

#: Names a bound value may not take: the engine reads them, or the instance needs them.
RESERVED = frozenset(
    (
        "DEPS", "TRIES", "RETRY_DELAY", "RETRY_BACKOFF", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_ON",
        "RETRY_FROM", "PRIORITY", "CRITICAL", "TIMEOUT", "CLAIMS", "USES", "TAGS", "BIND_NAME",
        "Check", "Run", "Cleanup", "bind", "storage", "global_storage", "changed_deps",
    )
)  # fmt: skip


class BoundJob(tuple):
    """A Job class with bound values; made by :meth:`dojob.Job.bind`.

    Attributes:
        job: the Job class.
        params: the bound ``(name, value)`` pairs, sorted by name.
        __name__: the job's name in the graph, trace, recap and reports.

    Attribute reads it does not hold itself go to the bound values, then to
    the class: ``bound.EMAIL`` is the value, ``bound.TRIES`` the class's.

    Under the hood a tuple ``(class, names, values, name)``: hashing and
    comparing it are C calls, which the graph build makes several of per job.
    """

    __slots__ = ()

    job = property(itemgetter(0), doc="The Job class.")
    keys = property(itemgetter(1), doc="The bound names, sorted.")
    values = property(itemgetter(2), doc="The bound values, in the order of :attr:`keys`.")
    __name__ = property(itemgetter(3), doc="The job's name.")

    @property
    def params(self) -> tuple[tuple[str, Any], ...]:
        """The bound ``(name, value)`` pairs, sorted by name."""
        return tuple(zip(self[1], self[2], strict=True))

    def __call__(self) -> Any:
        """A new instance of the class with the bound values set (what each try works on)."""
        job, keys, values, _ = self
        if job.__init__ is _OBJECT_INIT:  # no __init__ to see the values: the plain call is cheaper
            obj = job()
            obj.__dict__.update(zip(keys, values, strict=False))  # (strict=True costs more than the rest)
            return obj
        obj = job.__new__(job)
        obj.__dict__.update(zip(keys, values, strict=False))  # (strict=True costs more than the rest)
        obj.__init__()
        return obj

    def bind(self, **params: Any) -> BoundJob:
        """This job with more (or other) values bound."""
        return bind(self[0], {**dict(zip(self[1], self[2], strict=True)), **params})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # keep copy/pickle protocols off the class
            raise AttributeError(name)
        keys = self[1]
        if name in keys:
            return self[2][keys.index(name)]
        return getattr(self[0], name)

    def __repr__(self) -> str:
        """``SendInvite.bind(EMAIL='...', NAME='...')``: every value, even those BIND_NAME hides."""
        values = ", ".join(f"{k}={v!r}" for k, v in zip(self[1], self[2], strict=True))
        return f"{self[0].__name__}.bind({values})"

    def __reduce__(self) -> tuple[Any, ...]:
        # by reference: the class by its import path, the values by value
        return (_rebind, (self[0], self[1], self[2]))


def _rebind(job: type, keys: tuple[str, ...], values: tuple[Any, ...]) -> BoundJob:
    return bind(job, dict(zip(keys, values, strict=True)))


_OBJECT_INIT = object.__init__

#: ``(class, names as given)`` -> (a getter of the values in sorted order, sorted names, name template).
_PLANS: dict[tuple[type, tuple[str, ...]], tuple[Any, tuple[str, ...], str]] = {}


def bind(job: type, params: dict[str, Any]) -> BoundJob:
    """``job`` with ``params`` bound (see :meth:`dojob.Job.bind`).

    Raises:
        JobDefinitionError: no values, or a name the engine reserves or one of
            the class's methods.
        JobAttributeError: a value is not hashable.
    """
    shape = (job, tuple(params))
    plan = _PLANS.get(shape)
    if plan is None:
        plan = _plan(job, shape[1])
        if len(_PLANS) > 1024:
            _PLANS.clear()
        _PLANS[shape] = plan
    getter, keys, template = plan
    values = getter(params)
    bound = tuple.__new__(BoundJob, (job, keys, values, template.format(*values)))
    try:
        hash(values)
    except TypeError:
        bad = next(key for key, value in zip(keys, values, strict=True) if not _hashable(value))
        raise JobAttributeError(
            f"{job.__name__}.bind", bad, params[bad], "hashable (e.g. a tuple, not a list)"
        ) from None
    return bound


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _plan(job: type, given: tuple[str, ...]) -> tuple[Any, tuple[str, ...], str]:
    keys = tuple(sorted(given))
    _check_names(job, keys)
    getter = itemgetter(*keys) if len(keys) > 1 else (lambda params, key=keys[0]: (params[key],))
    shown = getattr(job, "BIND_NAME", None)
    if shown is None:
        shown = keys
    elif isinstance(shown, str) or not isinstance(shown, (tuple, list)) or not shown:
        raise JobDefinitionError(f"{job.__name__}.bind", f"BIND_NAME must be a non-empty tuple of names, got {shown!r}")
    else:
        missing = [key for key in shown if key not in keys]
        if missing:
            raise JobDefinitionError(
                f"{job.__name__}.bind", f"BIND_NAME shows {missing[0]!r} in the job's name: bind a value for it"
            )
    base = job.__name__.replace("{", "{{").replace("}", "}}")
    template = base + "[" + ", ".join(f"{key}={{{keys.index(key)}!r}}" for key in shown) + "]"
    return getter, keys, template


def _check_names(job: type, keys: tuple[str, ...]) -> None:
    where = f"{job.__name__}.bind"
    if not keys:
        raise JobDefinitionError(where, "needs at least one value, e.g. bind(NAME='x')")
    for key in keys:
        if key in RESERVED or key.startswith("_") or not key.isidentifier():
            raise JobDefinitionError(
                where, f"cannot bind {key!r}: it is not a free identifier (the engine reads it, or it is private)"
            )
        static = inspect.getattr_static(job, key, None)
        if inspect.isroutine(getattr(job, key, None)) or isinstance(static, property):
            raise JobDefinitionError(where, f"cannot bind {key!r}: it would hide the method {job.__name__}.{key}")
