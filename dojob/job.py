"""The classes users subclass: :class:`Job`, :class:`DummyJob`, :class:`RunonlyJob`.

A job is a class. Its ``Check`` says whether the world is already as it should
be (it passes by returning, fails by raising); its ``Run`` tries to make it so.
The engine creates a fresh instance for every try, so nothing leaks between
tries except through ``global_storage``. No engine logic lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from .bind import BoundJob
from .bind import bind as _bind


class Job:
    """A unit of idempotent convergence: Check, and if that fails, Run then Check again.

    Class attributes (all optional):

    * ``DEPS``: the Job classes that must succeed before this one is tried.
      May be mutated before a run (e.g. ``Parent.DEPS.append(type(...))``) to
      create jobs dynamically.
    * ``TRIES``: how many tries (check, run, recheck) before giving up, an int
      >= 1; None takes the run's ``default_tries``.
    * ``RETRY_DELAY``: the minimum number of seconds between the starts of two
      tries of this job; None takes the run's ``default_retry_delay``.
    * ``PRIORITY``: among jobs ready at the same moment with the same number of
      tries used, lower runs first (default 0).
    * ``CRITICAL``: if True and the job fails all its tries, the run stops:
      nothing new starts, running tries finish (async ones are cancelled),
      Cleanups run and the run is reported as stopped by this job.
    * ``TIMEOUT``: seconds each phase (check, run, recheck) may take; an
      overrun fails the try at once (no recheck). Async phases are cancelled;
      a sync phase's thread cannot be killed: it is abandoned and runs on.
    * ``CLAIMS`` / ``USES``: names of resources this job locks exclusively /
      shares during a try; conflicting tries never run at the same time. With
      a run's ``capacity={"api": 3}``, at most 3 tries USE "api" at once, and
      a CLAIM takes all 3 units.
    * ``TAGS``: words to select jobs by (``dojob run --tags db``).
    * Retry policy: ``RETRY_BACKOFF`` (each delay is the previous one times
      this factor, default 1), ``RETRY_MAX_DELAY`` (a cap, default None),
      ``RETRY_JITTER`` (up to this fraction of the delay is added at random,
      default 0), ``RETRY_ON`` (the exception types worth a retry; any other
      fails the job at once; default None: all), ``RETRY_FROM`` ("start": the
      delay counts from the start of the failed try, DoJobber's rule; "end":
      from its end).

    ``Job.bind(NAME=value, ...)`` makes a parameterised job (see :mod:`dojob.bind`).

    During a try, ``self.storage`` is a dict shared by that try's Check, Run
    and recheck (fresh for every try) and ``self.global_storage`` is the one
    dict of the whole run (a :class:`~dojob.storage.SharedStorage`: with
    ``workers > 1``, hold ``self.global_storage.lock`` for read-modify-write, or
    use ``self.global_storage.update_atomic(key, fn, default)``).

    ``Check``, ``Run`` and ``Cleanup`` may be ``async def``; such jobs run on an
    event loop.

    Example:
        >>> class HasUser(Job):
        ...     def Check(self, *args, **kwargs):
        ...         import pwd
        ...         pwd.getpwnam(kwargs["username"])
        ...     def Run(self, *args, **kwargs):
        ...         subprocess.run(["adduser", kwargs["username"]], check=True)
    """

    DEPS: ClassVar[Iterable[Any]] = ()
    TRIES: ClassVar[int | None] = None
    RETRY_DELAY: ClassVar[float | None] = None
    PRIORITY: ClassVar[int] = 0
    CRITICAL: ClassVar[bool] = False
    TIMEOUT: ClassVar[float | None] = None
    CLAIMS: ClassVar[tuple[str, ...]] = ()
    USES: ClassVar[tuple[str, ...]] = ()
    TAGS: ClassVar[tuple[str, ...]] = ()
    RETRY_BACKOFF: ClassVar[float] = 1
    RETRY_MAX_DELAY: ClassVar[float | None] = None
    RETRY_JITTER: ClassVar[float] = 0
    RETRY_ON: ClassVar[tuple[type[BaseException], ...] | None] = None
    RETRY_FROM: ClassVar[str] = "start"

    #: How the engine treats the class: "job", "dummy" or "runonly".
    _dojob_kind: ClassVar[str] = "job"

    storage: dict[str, Any]
    global_storage: dict[str, Any]
    #: "check" or "recheck" while Check runs (DoJobber compatibility).
    _check_phase: str | None = None
    #: DoJobber's per-try attributes, set on the instance as each phase ends: what the
    #: phase returned, or what it raised (the other one stays None).
    _check_results: Any = None
    _check_exception: BaseException | None = None
    _run_results: Any = None
    _run_exception: BaseException | None = None
    _recheck_results: Any = None
    _recheck_exception: BaseException | None = None

    @property
    def changed_deps(self) -> ChangedDeps:
        """During a try: the DEPS that changed in this run, or since this job last succeeded (:class:`ChangedDeps`)."""
        how = self.__dict__.get("_dojob_changed")
        return NO_CHANGES if how is None else how[0](how[1])

    @classmethod
    def bind(cls, **params: Any) -> BoundJob:
        """This job with ``params`` as instance attributes: a job of its own, usable in DEPS.

        Example:
            >>> invite = SendInvite.bind(EMAIL="bagg@example.com", NAME="Wendell Bagg")
            >>> invite.__name__
            "SendInvite[EMAIL='bagg@example.com', NAME='Wendell Bagg']"
        """
        return _bind(cls, params)

    # Check, Run and (optionally) Cleanup are defined by subclasses:
    #   def Check(self, *args, **kwargs) -> Any: ...
    #   def Run(self, *args, **kwargs) -> Any: ...
    #   def Cleanup(self) -> None: ...


class DummyJob(Job):
    """A job that only groups its ``DEPS``; it succeeds once they all have.

    Example:
        >>> class Everything(DummyJob):
        ...     DEPS = (Database, WebServer)
    """

    _dojob_kind: ClassVar[str] = "dummy"

    def Check(self, *args: Any, **kwargs: Any) -> None:
        """Always passes."""

    def Run(self, *args: Any, **kwargs: Any) -> None:
        """Always passes (as DoJobber's: a subclass whose own Check fails gets check, run, recheck)."""


class RunonlyJob(Job):
    """A job with no Check: its ``Run`` runs on every try and passes unless it raises.

    Its result is ``Run``'s return value. It cannot succeed with ``no_act``, as
    its Run never executes then. Prefer a real Check when you can write one.
    """

    _dojob_kind: ClassVar[str] = "runonly"


class ChangedDeps(tuple):
    """The entries of a job's DEPS that changed (converged through their Run) in this run, and, with a run
    history, in the recorded runs since this job last succeeded (so a failed run loses no notification).

    A tuple of classes and bound jobs, in DEPS order; ``in`` also accepts a job
    name: ``if WriteConfig in self.changed_deps`` or ``"WriteConfig" in ...``.
    """

    __slots__ = ()

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return any(getattr(dep, "__name__", None) == item for dep in self)
        return tuple.__contains__(self, item)


#: What ``changed_deps`` holds when no DEPS changed.
NO_CHANGES = ChangedDeps()
