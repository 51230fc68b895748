"""Engine events: frozen records of what happened, in the order it happened.

The planner and the drivers emit these; observers (the stderr trace, logging,
progress, reports, JSON lines) render them. Events hold plain data only (names,
numbers, strings), so they can be logged, compared and serialised; the
exception objects themselves live in the run's report.

Times are seconds since the run started, read from the run's clock.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing has it from Python 3.11 on; only type checkers need it

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorator: decorator


SCHEMA_VERSION = 1


class _Record:
    """What ``@dataclass(frozen=True, slots=True)`` would generate for every event, written once.

    ``@dataclass`` compiles each method of each class (and re-creates the class for
    ``slots``), which made ``import dojob.events`` a large part of ``dojob run``'s
    start-up. Here the shared methods are written once, :func:`_record` makes the
    slotted class and its fields, and :func:`_make_inits` compiles every ``__init__``
    in one ``exec``. The records stay dataclasses to :mod:`dataclasses`
    (``fields``, ``asdict``, ``replace``, ``FrozenInstanceError``).
    """

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> tuple[Any, ...]:
        return self._values()

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for name, value in zip(self.__dataclass_fields__, state, strict=True):
            object.__setattr__(self, name, value)


_RECORDS: list[type[_Record]] = []
_T = TypeVar("_T", bound=type)


@dataclass_transform(frozen_default=True)  # type checkers see the fields, __init__ and frozenness
def _record(cls: _T) -> _T:
    """The record class that ``cls`` declares (annotated fields, defaults last), slotted and frozen."""
    names = tuple(cls.__annotations__)
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name in names:
        field: dataclasses.Field[Any] = dataclasses.field(default=cls.__dict__.get(name, dataclasses.MISSING))
        field.name, field.type = name, cls.__annotations__[name]
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what fields() lists
        fields[name] = field
    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__annotations__": cls.__annotations__,
        "__slots__": names,
        "__match_args__": names,
        "__dataclass_fields__": fields,
    }
    record = type(cls.__name__, (_Record,), namespace)
    _RECORDS.append(record)
    return record  # type: ignore[return-value]


def _make_inits() -> None:
    """Give every record its ``__init__``, all compiled by one ``exec``.

    Each sets its slots through their descriptors, which is faster than the
    ``object.__setattr__`` calls a frozen dataclass makes: events are created per phase.
    """
    lines: list[str] = []
    namespace: dict[str, Any] = {}
    for k, record in enumerate(_RECORDS):
        params, body = ["self"], []
        for name, field in record.__dataclass_fields__.items():
            if field.default is dataclasses.MISSING:
                params.append(name)
            else:
                namespace[f"_d{k}_{name}"] = field.default
                params.append(f"{name}=_d{k}_{name}")
            namespace[f"_s{k}_{name}"] = getattr(record, name).__set__
            body.append(f"    _s{k}_{name}(self, {name})")
        lines += [f"def _init{k}({', '.join(params)}):", *body]
    exec("\n".join(lines), namespace)  # noqa: S102 - source built above from the field names
    for k, record in enumerate(_RECORDS):
        init = namespace[f"_init{k}"]
        init.__qualname__ = f"{record.__qualname__}.__init__"
        type.__setattr__(record, "__init__", init)


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


_make_inits()

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
