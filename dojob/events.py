"""Engine events: frozen records of what happened, in the order it happened.

The planner and the drivers emit these; observers (the stderr trace, logging,
progress, reports, JSON lines) render them. Events hold plain data only (names,
numbers, strings), so they can be logged, compared and serialised; the
exception objects themselves live in the run's report.

Times are seconds since the run started, read from the run's clock.
"""

from __future__ import annotations

import enum

from .records import Record as _Record
from .records import compile_inits
from .records import record as _record

SCHEMA_VERSION = 1


class Phase(str, enum.Enum):
    """One step of a try, or of the end of a run."""

    INIT = "init"  #: creating the job instance (``__init__``)
    CHECK = "check"
    RUN = "run"
    RECHECK = "recheck"
    CLEANUP = "cleanup"


class Status(str, enum.Enum):
    """Where a job stands; :attr:`ok` maps it to DoJobber's True/False/None."""

    PENDING = "pending"  #: not finished yet
    OK = "ok"  #: Check passed at once
    CHANGED = "changed"  #: converged after Run (recheck passed)
    FAILED = "failed"  #: tried and failed all its tries
    BLOCKED = "blocked"  #: never tried, a dependency failed
    NOT_RUN = "not_run"  #: never tried although the run was not stopped (after a forever job)
    SKIPPED = "skipped"  #: never tried: a selection's --skip treats it as satisfied
    #: the run stopped (Ctrl-C, SIGTERM, timeout, a critical failure) while the job was
    #: mid-try or had tries left, a job downstream of such a job, or one it kept from starting
    INTERRUPTED = "interrupted"

    @property
    def ok(self) -> bool | None:
        """DoJobber's tri-state: True succeeded, False failed, None never tried."""
        if self is Status.OK or self is Status.CHANGED:
            return True
        if self is Status.FAILED:
            return False
        return None


@_record
class RunStarted(_Record):
    """A run of ``jobs`` jobs from ``roots`` started, on ``workers`` workers of ``driver``."""

    jobs: int
    roots: tuple[str, ...]
    workers: int
    driver: str
    time: float = 0.0


@_record
class TryStarted(_Record):
    """Try ``try_number`` of ``job`` started."""

    job: str
    try_number: int
    time: float


@_record
class PhaseStarted(_Record):
    """A phase started; ``worker`` names where it runs (a thread or process)."""

    job: str
    try_number: int
    phase: Phase
    time: float
    worker: str | None = None


@_record
class PhaseEnded(_Record):
    """A phase ended; ``ok`` False means it raised (``error*`` describe it)."""

    job: str
    try_number: int
    phase: Phase
    ok: bool
    time: float
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None


@_record
class TryEnded(_Record):
    """A try ended; ``retry_at`` is when the next try may start, None if none will."""

    job: str
    try_number: int
    ok: bool
    time: float
    retry_at: float | None = None


@_record
class JobFinished(_Record):
    """``job`` ended with ``status`` after ``tries`` tries."""

    job: str
    status: Status
    tries: int
    time: float


@_record
class JobBlocked(_Record):
    """``job`` will never run because ``blocked_by`` failed."""

    job: str
    blocked_by: str
    time: float


@_record
class LockWait(_Record):
    """``job`` is ready but waits: a resource it CLAIMS or USES is held by a running try."""

    job: str
    try_number: int
    time: float
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()


@_record
class PhaseAbandoned(_Record):
    """A sync phase overran its TIMEOUT (or the run's deadline): its try is failed at once
    and its thread, which cannot be killed, runs on unwatched."""

    job: str
    try_number: int
    phase: Phase
    time: float
    worker: str | None = None
    #: the CLAIMS/USES the phase keeps until its thread really ends
    holding: tuple[str, ...] = ()


@_record
class LocksReleased(_Record):
    """The thread of an abandoned phase of ``job`` ended: the locks it held are free again."""

    job: str
    time: float
    released: tuple[str, ...] = ()


@_record
class RunStopping(_Record):
    """The run starts no new job from now on; ``reason`` says why; ``running`` tries are still running."""

    reason: str
    time: float
    job: str | None = None
    running: int = 0


@_record
class CleanupStarted(_Record):
    """The Cleanup of ``job`` started."""

    job: str
    time: float


@_record
class CleanupEnded(_Record):
    """The Cleanup of ``job`` ended; ``ok`` False means it raised (``error*`` describe it)."""

    job: str
    ok: bool
    time: float
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None


@_record
class RunFinished(_Record):
    """The run ended; ``stopped`` says why it stopped early, None if it did not."""

    success: bool
    time: float
    stopped: str | None = None


compile_inits()

Event = (
    RunStarted
    | TryStarted
    | PhaseStarted
    | PhaseEnded
    | TryEnded
    | JobFinished
    | JobBlocked
    | LockWait
    | PhaseAbandoned
    | LocksReleased
    | RunStopping
    | CleanupStarted
    | CleanupEnded
    | RunFinished
)
