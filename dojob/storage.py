"""``SharedStorage``: the run's ``global_storage``, a dict with a lock for read-modify-write.

Under ``workers > 1`` several tries may touch ``self.global_storage`` at once.
Single operations on a dict (``d[k]``, ``d[k] = v``, ``d.setdefault(k, v)``,
``d.pop(k)``) are atomic in CPython, but a read followed by a write is not: two
jobs incrementing one counter can both read 3 and both write 4. Hold
``global_storage.lock`` around such sequences, or use :meth:`SharedStorage.update_atomic`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SharedStorage"]


class SharedStorage(dict):
    """A dict shared by every job of a run, with a re-entrant :attr:`lock` for compound updates.

    It is a real ``dict`` (DoJobber code keeps working) and pickles as one: the
    lock is not pickled, a new one is made on the far side.

    Attributes:
        lock: a :class:`threading.RLock`; hold it for read-modify-write sequences.

    Example:
        >>> class Count(dojob.Job):
        ...     def Check(self, *args, **kwargs):
        ...         self.global_storage.update_atomic("seen", lambda n: n + 1, 0)
        ...         with self.global_storage.lock:
        ...             hosts = self.global_storage.setdefault("hosts", [])
        ...             if "web1" not in hosts:
        ...                 hosts.append("web1")
    """

    __slots__ = ("lock",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()

    def update_atomic(self, key: Any, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Set ``self[key] = fn(self.get(key, default))`` under :attr:`lock`; return the new value.

        Args:
            key: the key to update.
            fn: computes the new value from the current one; keep it short (it holds the lock).
            default: the current value when ``key`` is missing.
        """
        with self.lock:
            value = fn(self.get(key, default))
            self[key] = value
            return value

    def __reduce__(self) -> tuple:
        # items after creation (not as an argument), so a storage that contains itself pickles
        return (type(self), (), None, None, iter(self.items()))

    def __copy__(self) -> SharedStorage:
        return type(self)(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"
