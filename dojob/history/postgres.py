"""The PostgreSQL backend (psycopg 3), for teams whose hosts share one history.

Same schema and behaviour as SQLite. Writers serialise on a transaction-level
advisory lock (so drift and flapping are computed against every run before
them); waits for it are bounded by ``lock_timeout``. Install the client with
``pip install 'dojob[postgres]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import HistoryError, display_location
from .schema import SCHEMA_VERSION
from .store import Store

__all__ = ["CONNECT_TIMEOUT", "LOCK_KEY", "PostgresStore", "connect"]

#: Seconds to reach the server before giving up.
CONNECT_TIMEOUT = 5
#: The advisory lock writers take (``dojob`` in ASCII).
LOCK_KEY = 0x646F6A6F62


class PostgresStore(Store):
    backend = "postgres"
    placeholder = "%s"

    def _begin(self) -> None:
        self.conn.rollback()  # end the implicit transaction of earlier reads
        self.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))

    def _has_table(self, name: str) -> bool:
        rows = self._all(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()",
            (name,),
        )
        return bool(rows)

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.execute(sql + " RETURNING id", params).fetchone()[0])


def _message(exc: BaseException, location: str) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    shown = display_location(location)
    if shown != location:  # never echo a password that a driver message may quote
        secret = location.partition("://")[2].rpartition("@")[0].partition(":")[2]
        if secret:
            line = line.replace(secret, "***")
    return f"{shown}: {line}"


def connect(location: str, *, create_folder: bool = False, migrate: bool = True) -> PostgresStore:
    """Connect to the PostgreSQL history at ``location`` and bring its schema up to date.

    Raises:
        HistoryError: psycopg is missing, the server cannot be reached, or the schema is newer.
    """
    del create_folder  # a server has no folder
    try:
        import psycopg
    except ImportError:
        raise HistoryError("a PostgreSQL history needs psycopg: pip install 'dojob[postgres]'") from None
    try:
        conn = psycopg.connect(location, connect_timeout=CONNECT_TIMEOUT, autocommit=False)
    except (psycopg.Error, ValueError) as exc:
        raise HistoryError(_message(exc, location)) from None
    store = PostgresStore(conn, display_location(location))
    try:
        store.execute("SET lock_timeout = '5s'")
        store.execute("SET statement_timeout = '60s'")
        conn.commit()
        if migrate and store.version() != SCHEMA_VERSION:
            store.migrate()
    except psycopg.Error as exc:
        store.close()
        raise HistoryError(_message(exc, location)) from None
    except BaseException:
        store.close()
        raise
    return store
