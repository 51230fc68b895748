"""The SQLite backend (stdlib :mod:`sqlite3`): one file, WAL, a busy timeout.

WAL lets readers work while a run is being recorded and keeps the file
readable after a writer is killed mid-write (the unfinished transaction is
simply not there); ``BEGIN IMMEDIATE`` plus the busy timeout make concurrent
writers queue rather than fail.
"""

from __future__ import annotations

import contextlib
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
    #: The database file, resolved (what the keeper keeps a connection to).
    path = ""

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _has_table(self, name: str) -> bool:
        return bool(self._all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.execute(sql, params).lastrowid)

    def close_soon(self) -> None:
        """Hand the connection to this process's keeper instead of closing it (see :func:`_keeper`).

        Closing the last connection to a WAL database checkpoints it (two fsyncs)
        and deletes the WAL, so the next run creates it again (two more fsyncs:
        the file and its folder): 15-40 ms on a plain disk, more than the rest of
        the recording. Kept open, the committed runs stay in the WAL, which the
        next connection reads back, and the automatic checkpoints (every 1000
        pages of WAL) fold them into the database now and then.
        """
        conn, self.conn = self.conn, None
        if conn is not None:
            _keep(self.path, conn)


#: The keeper's inbox: ``(path, connection)`` to keep, closing the one kept before for that path.
_inbox: Any = None
_inbox_lock = threading.Lock()


def _keeper(inbox: Any) -> None:
    """Keep the newest connection to each history file open for as long as the process lives.

    A daemon thread's frame outlives the interpreter's shutdown, so what it
    holds is never closed: the process ends without a checkpoint. The
    connection kept before is closed when a newer one arrives, which is open
    then, so that close is not the last and checkpoints nothing either.
    """
    kept: dict[str, Any] = {}
    while True:
        path, conn = inbox.get()
        old = kept.pop(path, None)
        kept[path] = conn
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()


def _keep(path: str, conn: Any) -> None:
    global _inbox
    with _inbox_lock:
        if _inbox is None:
            import queue

            _inbox = queue.SimpleQueue()
            threading.Thread(target=_keeper, args=(_inbox,), name="dojob-history-keeper", daemon=True).start()
    _inbox.put((path, conn))


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
    store.path = os.path.realpath(path)
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
