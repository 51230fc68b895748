"""Frozen records without ``@dataclass``'s cost: what it generates, written once or compiled together.

``@dataclass`` compiles each generated method of each class (and re-creates the
class for ``slots``): for the 14 event records, :class:`~dojob.options.RunOptions` and
the command's ``RunFailed`` and ``RunVerified`` that was a large part of ``dojob run``'s
start-up. Here the shared methods are written once on :class:`Record`, :func:`record`
makes a slotted class and its fields, and :func:`compile_inits` compiles the
``__init__`` of every class declared so far in one ``exec``. The records stay
dataclasses to :mod:`dataclasses` (``fields``, ``asdict``, ``replace``, ``FrozenInstanceError``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # typing has it from Python 3.11 on; only type checkers need it

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorator: decorator


__all__ = ["Record", "compile_inits", "record"]


class Record:
    """What ``@dataclass(frozen=True, slots=True)`` generates (but ``__init__``), for every record."""

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


_PENDING: list[type[Record]] = []
_T = TypeVar("_T", bound=type)


@dataclass_transform(frozen_default=True)  # type checkers see the fields, __init__ and frozenness
def record(cls: _T) -> _T:
    """The record class that ``cls`` declares: its annotated fields (defaults last), slotted and frozen.

    Its methods are kept; a ``__post_init__`` is called by ``__init__`` as a dataclass's is.
    It has no ``__init__`` until :func:`compile_inits` runs (once, after the module's last record).
    """
    annotations = cls.__dict__.get("__annotations__", {})
    names = tuple(annotations)
    fields: dict[str, dataclasses.Field[Any]] = {}
    for name in names:
        field: dataclasses.Field[Any] = dataclasses.field(default=cls.__dict__.get(name, dataclasses.MISSING))
        field.name, field.type = name, annotations[name]
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what fields() lists
        fields[name] = field
    namespace = {k: v for k, v in cls.__dict__.items() if k not in fields and k not in ("__dict__", "__weakref__")}
    namespace.update(__slots__=names, __match_args__=names, __dataclass_fields__=fields)
    made = type(cls.__name__, (Record,), namespace)
    _PENDING.append(made)
    return made  # type: ignore[return-value]


def compile_inits() -> None:
    """Give every record declared since the last call its ``__init__``, all compiled by one ``exec``.

    Each sets its slots through their descriptors, which is faster than the
    ``object.__setattr__`` calls a frozen dataclass makes (events are created per phase).
    """
    lines: list[str] = []
    namespace: dict[str, Any] = {}
    for k, made in enumerate(_PENDING):
        params, body = ["self"], []
        for name, field in made.__dataclass_fields__.items():
            if field.default is dataclasses.MISSING:
                params.append(name)
            else:
                namespace[f"_d{k}_{name}"] = field.default
                params.append(f"{name}=_d{k}_{name}")
            namespace[f"_s{k}_{name}"] = getattr(made, name).__set__
            body.append(f"    _s{k}_{name}(self, {name})")
        if hasattr(made, "__post_init__"):
            body.append("    self.__post_init__()")
        lines += [f"def _init{k}({', '.join(params)}):", *body]
    exec("\n".join(lines), namespace)  # noqa: S102 - source built above from the field names
    for k, made in enumerate(_PENDING):
        init = namespace[f"_init{k}"]
        init.__qualname__ = f"{made.__qualname__}.__init__"
        type.__setattr__(made, "__init__", init)
    _PENDING.clear()
