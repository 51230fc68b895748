"""The history's tables and how to get there from any older version.

Each entry of :data:`MIGRATIONS` takes the schema from version ``n`` to ``n + 1``;
a database records its version in the one-row ``schema_version`` table. The
statements are written once for both backends: ``{id}``, ``{real}`` and
``{blob}`` stand for the column types each one spells differently.

A run is one row of ``runs``. Its jobs' columns are stored with it, packed
(see :mod:`dojob.history.record`): recording a 10 000-job run is one row, not
10 000. Job names live in ``graphs``, once per distinct graph. Errors are the
only per-job rows, one per job that had one.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TYPES"]

#: Column types per backend.
TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "blob": "BLOB"},
    "postgres": {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "blob": "BYTEA"},
}

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: runs, the graphs they ran, their errors
    (
        """CREATE TABLE graphs (
            id {id},
            digest TEXT NOT NULL UNIQUE,
            jobs INTEGER NOT NULL,
            names {blob} NOT NULL
        )""",
        """CREATE TABLE runs (
            id {id},
            graph_id INTEGER NOT NULL REFERENCES graphs (id),
            started TEXT NOT NULL,
            ended TEXT NOT NULL,
            target TEXT NOT NULL,
            targets TEXT NOT NULL,
            kind TEXT NOT NULL,
            host TEXT NOT NULL,
            username TEXT NOT NULL,
            cwd TEXT NOT NULL,
            version TEXT NOT NULL,
            options TEXT NOT NULL,
            verdict TEXT NOT NULL,
            success INTEGER NOT NULL,
            stopped TEXT,
            counts TEXT NOT NULL,
            elapsed {real} NOT NULL,
            status_names TEXT NOT NULL,
            statuses {blob} NOT NULL,
            tries {blob} NOT NULL,
            times {blob} NOT NULL
        )""",
        "CREATE INDEX runs_by_target ON runs (target, id)",
        """CREATE TABLE errors (
            run_id INTEGER NOT NULL REFERENCES runs (id),
            position INTEGER NOT NULL,
            error TEXT NOT NULL,
            PRIMARY KEY (run_id, position)
        )""",
    ),
    # v2: what the run was found to be against its history (drift, flapping, verification)
    (
        "ALTER TABLE runs ADD COLUMN findings TEXT NOT NULL DEFAULT '{{}}'",
        "ALTER TABLE runs ADD COLUMN verified INTEGER",
    ),
    # v3: a run's target is its TARGETs with their files resolved; its root jobs' names move to
    # ``roots`` (what the target was until v2); an old run's target is worked out again from its
    # TARGETs and cwd by :meth:`~dojob.history.store.Store.migrate`
    (
        "ALTER TABLE runs ADD COLUMN roots TEXT NOT NULL DEFAULT ''",
        "UPDATE runs SET roots = target",
        "CREATE INDEX runs_by_roots ON runs (roots, id)",
        "CREATE INDEX runs_by_graph ON runs (graph_id)",
    ),
)

#: The version this dojob writes.
SCHEMA_VERSION = len(MIGRATIONS)
