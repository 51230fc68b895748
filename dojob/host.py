"""This machine's host name, without importing :mod:`socket`.

On POSIX ``socket.gethostname()`` is ``uname(2)``'s node name; reading it from
:func:`os.uname` spares every ``dojob run`` the import of ``socket`` (and
``selectors``), which only the lock file, the history and reports need it for.
"""

from __future__ import annotations

import os

__all__ = ["hostname"]


def hostname() -> str:
    """The host name, as ``socket.gethostname()`` gives it."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # pragma: no cover - not POSIX

    return socket.gethostname()  # pragma: no cover
