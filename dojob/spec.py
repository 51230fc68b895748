"""A job's spec (what the planner and drivers know of it) and the kinds of node that stand in DEPS.

A node is a Job class, a bound job (:mod:`dojob.bind`) or an awaitable job
object (one with a ``co_run()`` coroutine, e.g. a ``dojob.aio`` job). The build
turns each into one :class:`JobSpec`.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, NamedTuple

from .bind import BoundJob
from .checks import check_delay, check_tries
from .job import Job
from .retry import RetryPolicy


class Traits(NamedTuple):
    """What a job's class decides of its spec: shared by every job with the same values.

    ``kind`` is "job", "dummy", "runonly" (Job classes) or "awaitable" (an
    object whose ``co_run()`` coroutine is the job, e.g. a ``dojob.aio`` job).
    ``fail_blocks`` False makes DEPS mere ordering, as in asynciojobs:
    dependents of a failed job still run. Jobs made alike repeat these values,
    so a build interns them (:func:`intern_traits`): one tuple per distinct
    set, not 14 fields per job (measured: 185 -> 88 bytes per job's spec).
    """

    kind: str
    tries: int
    retry_delay: float
    priority: int = 0
    critical: bool = False
    is_async: bool = False
    has_cleanup: bool = False
    forever: bool = False
    timeout: float | None = None
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    fail_blocks: bool = True
    tags: tuple[str, ...] = ()
    retry: RetryPolicy | None = None


class _SpecFields(NamedTuple):
    name: str
    index: int  # type: ignore[assignment]  # a field shadowing tuple.index(): the public name of the spec's position
    cls: Any
    traits: Traits


def _trait(field: str) -> Any:
    """A read-only attribute of the spec that reads its traits' ``field`` (in C: no Python frame per read)."""
    return property(attrgetter(f"traits.{field}"), doc=f"The job's ``{field}`` (of its :class:`Traits`).")


class JobSpec(_SpecFields):
    """Everything the planner and drivers need to know about one job, fixed for a run.

    Its own fields are ``name``, ``index``, ``cls`` (the Job class, or the
    awaitable object) and ``traits`` (:class:`Traits`, shared by jobs alike);
    each trait reads as an attribute of the spec too (``spec.tries``). Made
    as ``JobSpec(name, index, cls, kind, tries, retry_delay, priority=...)``
    or, without the Python-level ``__new__``, by :func:`make_spec`.
    """

    __slots__ = ()

    def __new__(
        cls, name: str, index: int, node: Any, kind: str, tries: int, retry_delay: float, **traits: Any
    ) -> JobSpec:
        return tuple.__new__(cls, (name, index, node, Traits(kind, tries, retry_delay, **traits)))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _rebuild, (tuple(self),)  # (the default would call __new__ with the 4 fields)

    def __repr__(self) -> str:
        return f"<JobSpec {self.index}:{self.name} kind={self.kind} tries={self.tries}>"

    kind = _trait("kind")
    tries = _trait("tries")
    retry_delay = _trait("retry_delay")
    priority = _trait("priority")
    critical = _trait("critical")
    is_async = _trait("is_async")
    has_cleanup = _trait("has_cleanup")
    forever = _trait("forever")
    timeout = _trait("timeout")
    claims = _trait("claims")
    uses = _trait("uses")
    fail_blocks = _trait("fail_blocks")
    tags = _trait("tags")
    retry = _trait("retry")


def _rebuild(fields: tuple[Any, ...]) -> JobSpec:
    """A spec from its 4 fields (what unpickling calls)."""
    return tuple.__new__(JobSpec, fields)


#: A spec from its 4 fields, ``make_spec(JobSpec, (name, index, cls, traits))``, without the
#: Python-level ``JobSpec.__new__`` (measured: that call is 10% of a build, 4% of a run of 4 000 no-op jobs).
make_spec = tuple.__new__


def intern_traits(traits: Traits, interned: dict[Traits, Traits]) -> Traits:
    """The one :class:`Traits` equal to ``traits`` in ``interned`` (a build's), added if new; unhashable as it is."""
    try:
        return interned.setdefault(traits, traits)
    except TypeError:  # an unhashable value (e.g. in a retry policy): not shared
        return traits


def is_job_class(value: Any) -> bool:
    """Whether ``value`` is a Job class or a bound job (what a root may be)."""
    return (isinstance(value, type) and issubclass(value, Job)) or type(value) is BoundJob


def is_awaitable_node(value: Any) -> bool:
    """Whether ``value`` is a job object run by awaiting its ``co_run()`` (e.g. a ``dojob.aio`` job)."""
    return not isinstance(value, type) and callable(getattr(value, "co_run", None))


def node_name(value: Any) -> str:
    """The graph name of a Job class, a bound job or an awaitable node."""
    if isinstance(value, type) or type(value) is BoundJob:
        return value.__name__
    label = getattr(value, "label", None)
    if isinstance(label, str) and label and label != "NOLABEL":
        return label
    return f"{type(value).__name__}@{id(value):x}"


def awaitable_spec(node: Any, index: int, default_tries: int, default_delay: float) -> JobSpec:
    """The spec of an awaitable node: its ``tries``, ``retry_delay``, ``critical`` and ``forever``, checked."""
    name = node_name(node)
    tries = getattr(node, "tries", None)
    tries = default_tries if tries is None else check_tries(tries, job=name, attribute="tries")
    delay = getattr(node, "retry_delay", None)
    delay = default_delay if delay is None else check_delay(delay, job=name, attribute="retry_delay")
    return JobSpec(
        name, index, node, "awaitable", tries, delay,
        critical=bool(getattr(node, "critical", False)),
        is_async=True,
        forever=bool(getattr(node, "forever", False)),
    )  # fmt: skip
