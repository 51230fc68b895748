"""The options of one run: one frozen object instead of a dozen keywords passed along.

:func:`dojob.run`, :func:`dojob.arun`, :class:`~dojob.session.Session` and
``DoJobber.configure`` all take the same keyword arguments; they are
validated once, here, into a :class:`RunOptions`. DoJobber's ``no_act`` and
dojob's ``plan`` are one :class:`Mode`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .errors import OptionError
from .graph import check_delay
from .records import compile_inits, record


class Mode(str, enum.Enum):
    """What a run does with each job."""

    CONVERGE = "converge"  #: Check, Run if needed, recheck; retry (the default)
    NO_ACT = "no_act"  #: DoJobber's no_act: the first Check of each job whose DEPS pass; nothing else
    PLAN = "plan"  #: every job's Check once, even downstream of one that would run: the plan

    @classmethod
    def of(cls, *, no_act: bool = False, plan: bool = False) -> Mode:
        """The mode of the ``no_act``/``plan`` keyword pair (``plan`` wins)."""
        return cls.PLAN if plan else (cls.NO_ACT if no_act else cls.CONVERGE)


def _workers(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise OptionError("workers", value, "an int >= 1")


@record  # a frozen dataclass, without @dataclass's cost at start-up (see dojob.records)
class RunOptions:
    """Everything about one run but its graph, validated (see :func:`dojob.run` for each field).

    Example:
        >>> options = RunOptions.from_keywords(workers=4, plan=True)
        >>> options.mode is Mode.PLAN, options.replace(workers=1).workers
        (True, 1)
    """

    args: tuple[Any, ...] = ()
    kwargs: MappingProxyType[str, Any] = MappingProxyType({})  # (read-only: one empty mapping can be shared)
    workers: int = 1
    mode: Mode = Mode.CONVERGE
    verbose: bool = False
    debug: bool = False
    cleanup: bool = True
    observers: tuple[Any, ...] = ()
    clock: Any = None
    executor: Any = None
    timeout: float | None = None
    global_storage: dict[str, Any] | None = None
    handle_signals: bool = False
    capacity: dict[str, int] | None = None
    retry_seed: int | None = None
    strict: bool = False
    #: job name -> names of its DEPS that changed in earlier recorded runs since it last succeeded (dojob.history)
    changed_before: Mapping[str, frozenset[str]] | None = None

    def __post_init__(self) -> None:
        _workers(self.workers)
        if self.timeout is not None:
            object.__setattr__(self, "timeout", check_delay(self.timeout, option="timeout"))
        if not isinstance(self.mode, Mode):
            raise OptionError("mode", self.mode, "a dojob.Mode")

    @classmethod
    def from_keywords(
        cls,
        *,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        no_act: bool = False,
        plan: bool = False,
        observers: Iterable[Any] = (),
        **others: Any,
    ) -> RunOptions:
        """The options of ``run``'s keyword arguments (``no_act``/``plan`` become the mode).

        Raises:
            OptionError: a bad value; TypeError: an unknown keyword.
        """
        return cls(
            args=tuple(args),
            kwargs=MappingProxyType(dict(kwargs or {})),
            mode=Mode.of(no_act=no_act, plan=plan),
            observers=tuple(observers),
            **others,
        )

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def no_act(self) -> bool:
        """Only Checks run (``Mode.NO_ACT`` or ``Mode.PLAN``)."""
        return self.mode is not Mode.CONVERGE

    @property
    def plan(self) -> bool:
        return self.mode is Mode.PLAN


compile_inits()
