"""The SQLite backend (stdlib :mod:`sqlite3`): one file, WAL, a busy timeout.

WAL lets readers work while a run is being recorded and keeps the file
readable after a writer is killed mid-write (the unfinished transaction is
simply not there); ``BEGIN IMMEDIATE`` plus the busy timeout make concurrent
writers queue rather than fail.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from . import HistoryError, display_location, path_of
from .schema import SCHEMA_VERSION
from .store import Store

__all__ = ["BUSY_TIMEOUT", "SQLiteStore", "connect", "path_of"]

#: Seconds a writer waits for another one to finish before giving up.
BUSY_TIMEOUT = 5.0


class SQLiteStore(Store):
    backend = "sqlite"
    placeholder = "?"
    #: The database file, resolved, and its (device, inode) when opened (see :func:`_keep`).
    path = ""
    ident: tuple[int, int] = (0, 0)

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _has_table(self, name: str) -> bool:
        return bool(self._all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.execute(sql, params).lastrowid)

    def close_soon(self) -> None:
        """Keep the connection open for this process's next run instead of closing it (see :func:`_keep`).

        Closing the last connection to a WAL database checkpoints it (two fsyncs)
        and deletes the WAL, so the next run creates it again (two more fsyncs:
        the file and its folder): 15-40 ms on a plain disk, more than the rest of
        the recording. Kept open, the committed runs stay in the WAL, which the
        next connection reads back, and the automatic checkpoints (every 1000
        pages of WAL) fold them into the database now and then.
        """
        conn, self.conn = self.conn, None
        if conn is not None:
            _keep(self.path, conn, self.ident)


#: Path -> the connection kept open for the process's next run, and the file's (device, inode) then.
_kept: dict[str, tuple[Any, tuple[int, int]]] = {}
_kept_lock = _thread.allocate_lock()


#: The process that started the holder (a forked child starts its own: it has no threads but its parent's).
_holder_pid = 0


def _hold(kept: dict[str, Any]) -> None:
    """Hold ``kept`` from a thread that runs no Python code: it waits in C, on a lock nobody releases,
    with ``kept`` among its call's arguments. The interpreter's shutdown never frees those, so the kept
    connections are never closed and the process ends without a checkpoint; and the thread has no frame
    to keep modules alive past the collection that frees them at exit (a ``threading`` thread's frames
    did: the exit of a 10 000-job ``dojob run`` cost 2.9M instructions more than without history, now 1.1M)."""
    global _holder_pid
    if _holder_pid == os.getpid():
        return
    _holder_pid = os.getpid()
    never = _thread.allocate_lock()
    never.acquire()
    wait = functools.partial(never.acquire)  # a C callable, with a __dict__ to hold ``kept``
    wait.kept = kept  # type: ignore[attr-defined]
    _thread.start_new_thread(wait, ())


#: Files whose connection is kept at most: a service recording into many histories holds this many
#: descriptors, not one per file it ever wrote (the least recently kept one is closed first).
KEPT_FILES = 4


def _keep(path: str, conn: Any, ident: tuple[int, int]) -> None:
    """Keep ``conn`` for the next run of this process; one per file (another one is closed: not the
    last connection then, it checkpoints nothing). Files removed or replaced since theirs was kept,
    and the oldest beyond :data:`KEPT_FILES`, have their connections closed."""
    closing = []
    with _kept_lock:
        _hold(_kept)
        if path in _kept:
            closing.append(conn)
        else:
            for other, (old, old_ident) in list(_kept.items()):
                if _ident(other) != old_ident:
                    closing.append(old)
                    del _kept[other]
            _kept[path] = (conn, ident)
            while len(_kept) > KEPT_FILES:
                closing.append(_kept.pop(next(iter(_kept)))[0])
    for each in closing:
        with contextlib.suppress(Exception):
            each.close()


def _take(path: str) -> Any:
    """The connection kept for ``path``, if the file is still the one it was opened on."""
    with _kept_lock:
        item = _kept.pop(path, None)
    if item is None:
        return None
    conn, ident = item
    if _ident(path) != ident:  # removed or replaced since: that connection writes to the old file
        with contextlib.suppress(Exception):
            conn.close()
        return None
    return conn


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def foreign(conn: Any) -> str | None:
    """Why the database of ``conn`` is another program's (its tables, named), or None: empty, or dojob's.

    A dojob history has a ``runs`` table and a ``schema_version`` table of one ``version`` column
    (another tool's ``schema_version``, Flyway's say, has more).
    """
    tables = sorted(row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if not tables:
        return None
    if "schema_version" in tables and "runs" in tables:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(schema_version)")]
        if columns == ["version"]:
            return None
    return f"not a dojob history (its tables: {', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''})"


def connect(location: str, *, create_folder: bool = False, migrate: bool = True) -> SQLiteStore:
    """Open the SQLite history at ``location`` (created if missing) and bring its schema up to date.

    Raises:
        HistoryError: the file cannot be opened or is not a dojob history.
    """
    path = os.path.expanduser(path_of(location))
    shown = display_location(location)
    real = os.path.realpath(path)
    kept = _take(real)
    if kept is not None:  # this process's last run left it open: same file, same settings
        store = SQLiteStore(kept, shown)
        store.path, store.ident = real, _ident(real) or (0, 0)
        try:
            if store.version() == SCHEMA_VERSION:
                return store
        except sqlite3.Error:
            pass
        store.close()  # migrated by another dojob meanwhile, or broken: open it afresh (and say why)
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
    store.path, store.ident = real, _ident(real) or (0, 0)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        why = foreign(conn)
        if why is not None:  # another program's database: dojob writes nothing into it, not even WAL mode
            raise HistoryError(f"{shown}: {why}")
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
