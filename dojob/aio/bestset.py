"""An insertion-ordered set, for a scheduler's jobs and a job's requirements.

asynciojobs uses ``orderedset.OrderedSet`` when installed and a plain ``set``
otherwise, so the order of independent jobs depends on memory addresses. This
one keeps insertion order, so listings, pictures and the order in which ready
jobs start are reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableSet
from typing import Any


class BestSet(MutableSet):
    """A mutable set that iterates in insertion order (backed by a dict).

    Supports everything ``set`` users of asynciojobs rely on: ``add``,
    ``discard``, ``remove`` (``KeyError`` if absent), ``update``, ``in``,
    ``len``, iteration, ``&``/``|``/``-`` and their in-place forms, comparisons
    with plain sets.

    Example:
        >>> s = BestSet([3, 1, 2]); s.add(1); list(s)
        [3, 1, 2]
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items: dict[Any, None] = dict.fromkeys(items)

    @classmethod
    def _from_iterable(cls, items: Iterable[Any]) -> BestSet:
        return cls(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: Any) -> None:
        self._items[item] = None

    def discard(self, item: Any) -> None:
        self._items.pop(item, None)

    def remove(self, item: Any) -> None:
        """Remove ``item``; raise ``KeyError`` if it is absent."""
        del self._items[item]

    def update(self, *iterables: Iterable[Any]) -> None:
        """Add every item of every iterable (like ``set.update``)."""
        for items in iterables:
            self._items.update(dict.fromkeys(items))

    def copy(self) -> BestSet:
        return BestSet(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._items)!r})"
