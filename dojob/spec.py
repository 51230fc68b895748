"""A job's spec (what the planner and drivers know of it) and the kinds of node that stand in DEPS.

A node is a Job class, a bound job (:mod:`dojob.bind`) or an awaitable job
object (one with a ``co_run()`` coroutine, e.g. a ``dojob.aio`` job). The build
turns each into one :class:`JobSpec`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .bind import BoundJob
from .checks import check_delay, check_tries
from .job import Job
from .retry import RetryPolicy


class JobSpec(NamedTuple):
    """Everything the planner and drivers need to know about one job, fixed for a run.

    ``kind`` is "job", "dummy", "runonly" (Job classes) or "awaitable" (an
    object whose ``co_run()`` coroutine is the job, e.g. a ``dojob.aio`` job;
    then ``cls`` holds that object). ``fail_blocks`` False makes DEPS mere
    ordering, as in asynciojobs: dependents of a failed job still run.
    """

    name: str
    index: int  # type: ignore[assignment]  # a field shadowing tuple.index(): the public name of the spec's position
    cls: Any
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

    def __repr__(self) -> str:
        return f"<JobSpec {self.index}:{self.name} kind={self.kind} tries={self.tries}>"


#: A spec from all its fields in order, without the Python-level ``JobSpec.__new__``
#: (measured: that call is 10% of a build, 4% of a run of 4 000 no-op jobs).
make_spec = tuple.__new__


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
