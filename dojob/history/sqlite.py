"""The SQLite backend (stdlib :mod:`sqlite3`): one file, WAL, a busy timeout.

WAL lets readers work while a run is being recorded and keeps the file
readable after a writer is killed mid-write (the unfinished transaction is
simply not there); ``BEGIN IMMEDIATE`` plus the busy timeout make concurrent
writers queue rather than fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from . import HistoryError, display_location
from .schema import SCHEMA_VERSION
from .store import Store

__all__ = ["BUSY_TIMEOUT", "SQLiteStore", "connect", "path_of"]

#: Seconds a writer waits for another one to finish before giving up.
BUSY_TIMEOUT = 5.0


def path_of(location: str) -> str:
    """The file of a location: a path, or ``sqlite:///relative`` / ``sqlite:////absolute``."""
    if location.lower().startswith("sqlite://"):
        return location[len("sqlite:///") :] if location[9:10] == "/" else location[len("sqlite://") :]
    return location


class SQLiteStore(Store):
    backend = "sqlite"
    placeholder = "?"

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _has_table(self, name: str) -> bool:
        return bool(self._all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.execute(sql, params).lastrowid)

    def close_soon(self) -> None:
        """Close from a daemon thread: the last connection's checkpoint (two fsyncs) does not delay the run.

        If the process exits first, the checkpoint is simply not done: the WAL
        keeps the committed run and the next connection carries on from it.
        """
        threading.Thread(target=self.close, name="dojob-history-close", daemon=True).start()


def connect(location: str, *, create_folder: bool = False, migrate: bool = True) -> SQLiteStore:
    """Open the SQLite history at ``location`` (created if missing) and bring its schema up to date.

    Raises:
        HistoryError: the file cannot be opened or is not a dojob history.
    """
    path = os.path.expanduser(path_of(location))
    shown = display_location(location)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if create_folder:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        elif not os.path.isdir(folder):
            raise HistoryError(f"{shown}: no such folder {folder!r}")
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    except OSError as exc:
        raise HistoryError(f"{shown}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise HistoryError(f"{shown}: {exc}") from None
    store = SQLiteStore(conn, shown)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if not mode or str(mode[0]).lower() != "wal":
            raise HistoryError(f"{shown}: cannot use write-ahead logging (journal mode {mode and mode[0]!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        no_checkpoint = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
        if no_checkpoint is not None:  # Python 3.12+: leave checkpoints to the automatic ones (two fsyncs saved)
            conn.setconfig(no_checkpoint, True)  # type: ignore[attr-defined]
        if migrate and store.version() != SCHEMA_VERSION:
            store.migrate()
    except sqlite3.Error as exc:
        store.close()
        raise HistoryError(f"{shown}: {exc}") from None
    except BaseException:
        store.close()
        raise
    return store
