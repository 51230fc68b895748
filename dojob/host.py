"""Where and as whom dojob runs: the host name and the user name, without ``socket`` or ``getpass``.

On POSIX ``socket.gethostname()`` is ``uname(2)``'s node name, and
``getpass.getuser()`` reads four environment variables, then the password
database; doing the same here spares every ``dojob run`` the imports of
``socket`` (with ``selectors``) and ``getpass`` (with ``termios``), which the lock
file, the history and the reports needed only for these two names.
"""

from __future__ import annotations

import os

__all__ = ["hostname", "username"]


def hostname() -> str:
    """The host name, as ``socket.gethostname()`` gives it."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket  # pragma: no cover - not POSIX

    return socket.gethostname()  # pragma: no cover


def username() -> str:
    """The user's login name, as ``getpass.getuser()`` finds it.

    Raises:
        KeyError: the user id has no password entry (nor do the variables name one);
        ImportError: no ``pwd`` module (not POSIX).
    """
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(name)
        if user:
            return user
    import pwd

    return pwd.getpwuid(os.getuid())[0]
