"""The planner's resource ledger: which units of which CLAIMS/USES resource are taken, and by whom.

One rule for locks and capacities: a resource has a capacity (the run's
``capacity``, else unbounded); a try takes one unit of each resource it USES
and all the units of each it CLAIMS, all at once when it starts (so no
deadlock is possible), and gives them back when it ends. A ready job whose
units are not all free is passed over, and reserves its resources for the
round so that later jobs cannot starve it. An abandoned try keeps its units
until its thread really ends (locks follow the code, not the bookkeeping).
"""

from __future__ import annotations

from collections import Counter
from heapq import heappop, heappush
from typing import Any

from .errors import OptionError

#: The capacity of a resource the run gives none: a USES never waits for another USES.
UNBOUNDED = 1 << 62


def check_capacity(graph: Any, capacity: Any) -> dict[str, int]:
    """``capacity`` as a dict of resource -> units (each an int >= 1 naming a resource some job uses)."""
    if capacity is None:
        return {}
    if not isinstance(capacity, dict):
        raise OptionError("capacity", capacity, 'a dict of resource name -> units, e.g. {"api": 3}')
    used = {name for s in graph._distinct for name in (*s.claims, *s.uses)}
    for name, units in capacity.items():
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise OptionError(f"capacity[{name!r}]", units, "an int >= 1")
        if name not in used:
            raise OptionError("capacity", name, "names of resources some job USES or CLAIMS")
    return dict(capacity)


class Ledger:
    """The units held by running (and abandoned) tries, and the jobs passed over for want of them.

    Args:
        capacity: resource name -> how many units it has (default: unbounded).
        waits: where to count, per job index, how many times it was ready but
            waited for its units (the planner's ``lock_waits`` column).
    """

    def __init__(self, capacity: dict[str, int] | None = None, waits: dict[int, int] | None = None) -> None:
        self._capacity: dict[str, int] = dict(capacity or {})
        self._held: Counter[str] = Counter()  # units of each resource held by tries
        self._kept: dict[int, Any] = {}  # abandoned tries whose thread still holds their units
        self._waiting: set[int] = set()  # jobs told to wait in the current round
        #: How many times each job was ready but waited for its units (only jobs that did).
        self.waits: dict[int, int] = {} if waits is None else waits

    def choose(self, ready: list[tuple[int, int, int]], free: int, specs: Any) -> tuple[list[int], list[int]]:
        """Pop up to ``free`` entries of the ``ready`` heap whose units can all be taken now, and take them.

        Returns:
            The chosen job indices, and the jobs that start waiting for their
            units now (each is told once per wait, not at every round).
        """
        out: list[int] = []
        passed_over = []
        newly: list[int] = []
        reserved: set[str] = set()
        while free and ready:
            entry = heappop(ready)
            index = entry[2]
            spec = specs[index]
            if (spec.traits.claims or spec.traits.uses) and not self._acquire(spec, reserved):
                passed_over.append(entry)
                reserved.update(spec.traits.claims)
                reserved.update(spec.traits.uses)
                if index not in self._waiting:
                    self._waiting.add(index)
                    self.waits[index] = self.waits.get(index, 0) + 1
                    newly.append(index)
                continue
            self._waiting.discard(index)
            out.append(index)
            free -= 1
        for entry in passed_over:
            heappush(ready, entry)
        return out, newly

    def release(self, spec: Any) -> None:
        """Give back the units of a try of ``spec`` (if it takes any)."""
        if not spec.traits.claims and not spec.traits.uses:
            return
        held = self._held
        for name, need in self._units(spec):
            held[name] -= need
            if not held[name]:
                del held[name]

    def keep(self, index: int, spec: Any) -> None:
        """The try of job ``index`` was abandoned but its thread runs on: its units stay taken."""
        self._kept[index] = spec

    def release_kept(self, index: int) -> Any:
        """The thread of job ``index``'s abandoned try ended: give back its units; its spec, or None."""
        spec = self._kept.pop(index, None)
        if spec is not None:
            self.release(spec)
        return spec

    @property
    def holders(self) -> int:
        """How many abandoned tries still hold units."""
        return len(self._kept)

    def held(self) -> dict[str, int]:
        """Resource name -> units held now."""
        return dict(self._held)

    def _units(self, spec: Any) -> list[tuple[str, int]]:
        """The units of each resource a try of ``spec`` takes: all of a CLAIM, one of a USE."""
        capacity = self._capacity
        return [(name, capacity.get(name, UNBOUNDED)) for name in spec.claims] + [(name, 1) for name in spec.uses]

    def _acquire(self, spec: Any, reserved: set[str]) -> bool:
        """Take all of ``spec``'s units at once, or none (also refusing resources reserved this round)."""
        held = self._held
        capacity = self._capacity
        units = self._units(spec)
        for name, need in units:
            if name in reserved or held[name] + need > capacity.get(name, UNBOUNDED):
                return False
        for name, need in units:
            held[name] += need
        return True
