"""Memory across runs: a history of runs, drift, non-idempotent jobs, verification.

A :class:`History` says where runs are recorded (a SQLite file or a
``postgresql://`` URL) and how; ``dojob.run(..., history=...)`` and the ``dojob``
command record every run there, then compare it with the runs before it:

* a job that was converged in the last converged run that looked at it and
  needs its Run now has *drifted*;
* a job that changed in each of the last K runs (this one included) is flagged:
  is it idempotent?
* with ``verify=True`` every job's Check is called once more after a converged
  run: a job whose Check fails then is *unstable*;
* each job's ``changed_deps`` also holds its DEPS that changed in recorded runs
  since it last succeeded (read once, when the run starts).

Recording never costs the run: a history that cannot be opened or written
produces one warning (see :attr:`History.warn`) and the run's verdict is
unchanged. This module imports no database client; the backends are loaded
when a history is opened.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import DojobError

__all__ = [
    "DEFAULT_FLAP_WINDOW",
    "History",
    "HistoryError",
    "HistoryWarning",
    "default_location",
    "display_location",
    "open_store",
]

#: Runs a job must have changed in, in a row, to be flagged as maybe not idempotent.
DEFAULT_FLAP_WINDOW = 3


class HistoryError(DojobError):
    """The history cannot be opened, read or written (the message says which and why)."""


class HistoryWarning(UserWarning):
    """A run was not recorded, or not compared with its history; the run itself is unaffected."""


def default_location(environ: Mapping[str, str] | None = None) -> str:
    """The per-user history file: ``$XDG_STATE_HOME/dojob/history.sqlite3``, else ``~/.local/state/dojob/``."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(state):  # the XDG spec: a relative value is invalid and ignored
        home = env.get("HOME") or os.path.expanduser("~")
        state = os.path.join(home, ".local", "state")
    return os.path.join(state, "dojob", "history.sqlite3")


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a file path."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.replace("+", "").isalnum()


def backend_of(location: str) -> str:
    """``"sqlite"`` or ``"postgres"``.

    Raises:
        HistoryError: a URL of another kind of database.
    """
    if not is_url(location):
        return "sqlite"
    scheme = location.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme == "sqlite":
        return "sqlite"
    raise HistoryError(f"unknown history URL scheme {scheme!r}: use a file path, sqlite:///PATH or postgresql://...")


def path_of(location: str) -> str:
    """The file of a SQLite location: a path, or ``sqlite:///relative`` / ``sqlite:////absolute``."""
    if location.lower().startswith("sqlite://"):
        return location[len("sqlite:///") :] if location[9:10] == "/" else location[len("sqlite://") :]
    return location


def display_location(location: str) -> str:
    """``location`` fit to print: a URL's password replaced with ``***``."""
    if not is_url(location):
        return location
    scheme, _, rest = location.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    if "password=" in path:
        import re

        path = re.sub(r"(password=)[^&]*", r"\1***", path)
    return f"{scheme}://{userinfo}{at}{hostport}{slash}{path}"


def _warn_python(message: str) -> None:
    warnings.warn(message, HistoryWarning, stacklevel=4)


class History:
    """Where and how a run is recorded.

    Args:
        location: a SQLite file path, ``sqlite:///PATH`` or ``postgresql://...``;
            ``True`` for :func:`default_location`.
        targets: what was asked for, as the ``dojob`` command's TARGETs; the
            runs compared are those of the same TARGETs, their files resolved
            (default: each root job's ``module:Name``, see :func:`.record.target_key`).
        options: the option *names* given (never their values).
        flap_window: K: a job that changed in each of the last K runs is flagged.
        warn: called with one line when the history cannot be used
            (default: a :class:`HistoryWarning`).
        create_folder: create the file's folder if missing (the default location does).
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | bool,
        *,
        targets: Sequence[str] | None = None,
        options: Sequence[str] = (),
        flap_window: int = DEFAULT_FLAP_WINDOW,
        warn: Callable[[str], None] | None = None,
        create_folder: bool | None = None,
    ) -> None:
        if location is True:
            location = default_location()
            create_folder = True if create_folder is None else create_folder
        if isinstance(location, bool) or not isinstance(location, (str, os.PathLike)):
            raise HistoryError(f"history must be a path, a URL or True, not {type(location).__name__}")
        self.location = os.fspath(location)
        backend_of(self.location)  # an unknown scheme is an error before anything runs
        if not isinstance(flap_window, int) or isinstance(flap_window, bool) or flap_window < 2:
            raise HistoryError(f"flap_window must be a whole number >= 2, not {flap_window!r}")
        self.targets = tuple(targets) if targets is not None else None
        self.options = tuple(options)
        self.flap_window = flap_window
        self.warn = warn or _warn_python
        self.create_folder = bool(create_folder)

    def __repr__(self) -> str:
        return f"History({display_location(self.location)!r}, flap_window={self.flap_window})"

    @classmethod
    def coerce(cls, value: Any) -> History:
        """``value`` as a History: a History, a path, a URL or True."""
        return value if isinstance(value, History) else cls(value)


def open_store(location: str, *, create_folder: bool = False) -> Any:
    """Open (and migrate) the history at ``location``; a :class:`~dojob.history.store.Store`.

    Raises:
        HistoryError: it cannot be opened, or its schema is newer than this dojob's.
    """
    if backend_of(location) == "postgres":
        from .postgres import connect
    else:
        from .sqlite import connect  # type: ignore[assignment]
    return connect(location, create_folder=create_folder)
