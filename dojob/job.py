"""The classes users subclass: :class:`Job`, :class:`DummyJob`, :class:`RunonlyJob`.

A job is a class. Its ``Check`` says whether the world is already as it should
be (it passes by returning, fails by raising); its ``Run`` tries to make it so.
The engine creates a fresh instance for every try, so nothing leaks between
tries except through ``global_storage``. No engine logic lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


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
      shares during a try; conflicting tries never run at the same time.

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
