"""The event records keep a frozen dataclass's behaviour though their eq/hash/repr are written once.

``dojob.events`` builds its records without ``@dataclass``, from a shared base and one
``exec`` for all their inits (generating methods per class was a third of ``dojob run``'s
start-up); each record must still compare, hash, print, pickle and refuse
writes exactly as ``@dataclass(frozen=True, slots=True)`` would make it.
"""

from __future__ import annotations

import dataclasses
import pickle
import typing

import pytest

from dojob import events

RECORDS = [
    obj
    for obj in vars(events).values()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == events.__name__
]
HOSTILE = ["", "J\n0\x00", "ü' ) \\", "x" * 300]


def sample(cls: type, salt: int) -> tuple[typing.Any, dict[str, typing.Any]]:
    """An instance of ``cls`` with every field set (hostile strings for the str ones)."""
    values: dict[str, typing.Any] = {}
    for k, f in enumerate(dataclasses.fields(cls)):
        kind = str(f.type)
        if "Phase" in kind:
            values[f.name] = events.Phase.RUN
        elif "Status" in kind:
            values[f.name] = events.Status.CHANGED
        elif "tuple" in kind:
            values[f.name] = (HOSTILE[(k + salt) % 4], "db")
        elif kind.startswith("str"):
            values[f.name] = HOSTILE[(k + salt) % 4]
        elif "bool" in kind:
            values[f.name] = bool(salt % 2)
        elif "float" in kind:
            values[f.name] = 0.25 * (k + salt)
        else:
            values[f.name] = k + salt
    return cls(**values), values


def reference(cls: type) -> type:
    """The same record made by a plain ``@dataclass(frozen=True, slots=True)``."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    fields = [(n, t, dataclasses.field(default=f.default)) for n, t, f in fields]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


def test_every_record_is_checked() -> None:
    assert len(RECORDS) == 14
    assert {c.__name__ for c in RECORDS} >= {"RunStarted", "PhaseEnded", "JobFinished", "RunFinished"}


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_records_behave_as_frozen_dataclasses(cls: type) -> None:
    ref = reference(cls)
    one, values = sample(cls, 1)
    same, _ = sample(cls, 1)
    other, _ = sample(cls, 2)
    ref_one = ref(**values)
    assert repr(one) == repr(ref_one)
    assert one == same and not one != same and hash(one) == hash(same) == hash(ref_one)
    assert one != other and len({one, same, other}) == 2
    assert one != ref_one  # another class: never equal, as dataclasses compare
    assert (one == values) is False and one.__eq__(ref_one) is NotImplemented
    assert dataclasses.asdict(one) == values and dataclasses.replace(one) == one
    assert pickle.loads(pickle.dumps(one)) == one
    assert not hasattr(one, "__dict__")
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(one, name, "changed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(one, name)
    assert cls.__match_args__ == ref.__match_args__
