"""The history store: one interface over SQLite and PostgreSQL (plain DB-API, no ORM).

:class:`Store` holds the SQL, written once with ``?`` placeholders; a backend
(:mod:`.sqlite`, :mod:`.postgres`) supplies the connection, how a write
transaction starts and locks, and how a new row's id comes back. Every write
is one transaction: a run lands whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import math
import zlib
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from . import HistoryError, drift
from .record import RunRecord, names_digest, pack_names, resolve, unpack_names
from .schema import MIGRATIONS, SCHEMA_VERSION, TYPES

__all__ = ["CHANGES_LOOKBACK", "DRIFT_LOOKBACK", "FLAP_LOOKBACK", "KEEP_RUNS", "Store"]

#: Runs kept per target; older ones are deleted as new ones land.
KEEP_RUNS = 1000
#: Converged runs looked back at for a job that the latest ones skipped or left out (drift).
DRIFT_LOOKBACK = 20
#: Runs looked back at, past the flap window, for a job that some of them skipped or left out.
FLAP_LOOKBACK = 10
#: Runs looked back at for the changes a job has not seen yet (``Job.changed_deps``).
CHANGES_LOOKBACK = 100
#: How a job ends having seen its DEPS as they were.
_SUCCEEDED = frozenset({"ok", "changed"})

_RUN_COLUMNS = (
    "id, graph_id, started, ended, target, targets, kind, host, username, cwd, version, options, verdict, "
    "success, stopped, counts, elapsed, status_names, statuses, tries, times, findings, verified, roots"
)


class Store:
    """A history database, open and at :data:`~dojob.history.schema.SCHEMA_VERSION`.

    Args:
        conn: a DB-API connection.
        location: what to call it in messages (no password).
    """

    backend = ""
    placeholder = "?"

    def __init__(self, conn: Any, location: str) -> None:
        self.conn = conn
        self.location = location
        self._names: dict[int, list[str]] = {}
        self._last_digest: tuple[list[str], str] | None = None

    # -- what a backend provides ------------------------------------------------------

    def _begin(self) -> None:
        raise NotImplementedError

    def _has_table(self, name: str) -> bool:
        raise NotImplementedError

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.conn.cursor()
        cur.execute(self._sql(sql), tuple(params))
        return cur

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, holding the history's write lock; rolled back on any error."""
        self._begin()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            raise
        self.conn.commit()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def close_soon(self) -> None:
        """Close without holding up the caller (a backend may finish closing in the background)."""
        self.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------

    def version(self) -> int:
        """The schema version the database is at (0: empty)."""
        if not self._has_table("schema_version"):
            return 0
        rows = self._all("SELECT version FROM schema_version")
        return int(rows[0][0]) if rows else 0

    def migrate(self, upto: int = SCHEMA_VERSION) -> int:
        """Bring the schema to version ``upto`` (default: this dojob's); return the version it was at.

        Raises:
            HistoryError: the database is at a newer version than this dojob knows.
        """
        with self.transaction():
            found = self.version()
            if found > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.location}: history schema v{found} is newer than this dojob's (v{SCHEMA_VERSION}): "
                    "upgrade dojob"
                )
            if found < upto:
                types = TYPES[self.backend]
                if found == 0:
                    self.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                    self.execute("INSERT INTO schema_version (version) VALUES (0)")
                for version in range(found, upto):
                    for statement in MIGRATIONS[version]:
                        self.execute(statement.format(**types))
                    if version == 2:  # v3: an old run's target from its TARGETs, as a run now computes it
                        self._rekey()
                self.execute("UPDATE schema_version SET version = ?", (upto,))
        return found

    def _rekey(self) -> None:
        """Give each run recorded before v3 the target a run computes now (see :func:`.record.target_key`).

        A ``dojob`` run's TARGETs are resolved against the folder it ran in; a run
        from Python recorded its root jobs' names only, and keeps them.
        """
        for run_id, target, targets, cwd in self._all("SELECT id, target, targets, cwd FROM runs"):
            given = json.loads(targets)
            if ",".join(given) == target or cwd == "?":
                continue
            key = ",".join(resolve(t, cwd) for t in given)
            if key != target:
                self.execute("UPDATE runs SET target = ? WHERE id = ?", (key, run_id))

    # -- writing ------------------------------------------------------------------

    def _digest(self, names: Sequence[str]) -> str:
        """:func:`.record.names_digest` of ``names``, remembered for the same names (a run's read and its
        write: one SHA-1 of 10 000 names saved, ~0.4 ms; comparing the lists is ~50 times cheaper)."""
        last = self._last_digest
        if last is not None and len(last[0]) == len(names) and last[0] == list(names):
            return last[1]
        digest = names_digest(names)
        self._last_digest = (list(names), digest)
        return digest

    def _graph_id(self, names: Sequence[str]) -> int:
        digest = self._digest(names)
        rows = self._all("SELECT id FROM graphs WHERE digest = ?", (digest,))
        if rows:
            return int(rows[0][0])
        digest, packed = pack_names(names)
        sql = "INSERT INTO graphs (digest, jobs, names) VALUES (?, ?, ?)"
        return self._insert_id(sql, (digest, len(names), packed))

    def names_of(self, graph_id: int) -> list[str]:
        """The job names of a stored graph (cached)."""
        names = self._names.get(graph_id)
        if names is None:
            rows = self._all("SELECT names FROM graphs WHERE id = ?", (graph_id,))
            names = self._names[graph_id] = unpack_names(rows[0][0]) if rows else []
        return names

    def _statuses_of(self, row: tuple) -> list[str]:
        vocab = json.loads(row[1])
        return [vocab[c] for c in zlib.decompress(bytes(row[2]))]

    def _rows(self, sql: str, params: Sequence[Any]) -> Generator[tuple, None, None]:
        """The rows of a query, fetched as they are read; the statement ends when the caller stops."""
        cur = self.execute(sql, params)
        try:
            while True:
                row = cur.fetchone()
                if row is None:
                    return
                yield row
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _bases(self, target: str) -> Generator[tuple[list[str], list[str], int, str], None, None]:
        """The converged runs of ``target``, newest first (at most :data:`DRIFT_LOOKBACK`), read lazily."""
        rows = self._rows(
            "SELECT graph_id, status_names, statuses, id, started FROM runs "
            "WHERE target = ? AND kind = 'run' AND success = 1 ORDER BY id DESC LIMIT ?",
            (target, DRIFT_LOOKBACK),
        )
        for row in rows:
            yield self.names_of(row[0]), self._statuses_of(row), int(row[3]), row[4]

    def write(self, record: RunRecord, flap_window: int, keep: int = KEEP_RUNS) -> RunRecord:
        """Record a run, setting its id and findings (drift, flapping) against the runs before it."""
        with self.transaction():
            graph_id = self._graph_id(record.names)
            findings = dict(record.findings)
            needs_run = any(drift.needs_run(s, record.kind) for s in record.status_names)
            changed = record.kind == "run" and "changed" in record.status_names
            statuses = record.status_of() if needs_run or changed else []
            if needs_run:
                bases = self._bases(record.target)
                try:
                    found, base_id, since = drift.drifted_since(record.names, statuses, record.kind, bases)
                finally:
                    bases.close()
                found = [n for n in found if n not in record.always_run]  # (a RunonlyJob runs every time)
                if found:
                    findings.update(drifted=found, drift_base=base_id, drift_since=since)
            if changed:
                previous = [
                    (self.names_of(row[0]), self._statuses_of(row))
                    for row in self._all(
                        "SELECT graph_id, status_names, statuses FROM runs "
                        "WHERE target = ? AND kind = 'run' ORDER BY id DESC LIMIT ?",
                        (record.target, flap_window - 1 + FLAP_LOOKBACK),
                    )
                ]
                found = drift.flapping(record.names, statuses, previous, flap_window)
                found = [n for n in found if n not in record.always_run]
                if found:
                    findings.update(flapping=found, flap_window=flap_window)
                    # the more telling finding wins: a job that changes every time is not listed as drifted too
                    left = [n for n in findings.get("drifted", ()) if n not in found]
                    if left:
                        findings["drifted"] = left
                    else:
                        for key in ("drifted", "drift_base", "drift_since"):
                            findings.pop(key, None)
            statuses_blob, tries_blob, times_blob = record.packed()
            run_id = self._insert_id(
                "INSERT INTO runs (graph_id, started, ended, target, targets, kind, host, username, cwd, version, "
                "options, verdict, success, stopped, counts, elapsed, status_names, statuses, tries, times, "
                f"findings, verified, roots) VALUES ({', '.join(['?'] * 23)})",
                (
                    graph_id,
                    record.started,
                    record.ended,
                    record.target,
                    json.dumps(record.targets),
                    record.kind,
                    record.host,
                    record.username,
                    record.cwd,
                    record.version,
                    json.dumps(record.options),
                    record.verdict,
                    1 if record.success else 0,
                    record.stopped,
                    json.dumps(record.counts),
                    record.elapsed,
                    json.dumps(record.status_names),
                    statuses_blob,
                    tries_blob,
                    times_blob,
                    json.dumps(findings),
                    None if record.verified is None else int(record.verified),
                    record.roots,
                ),
            )
            if record.errors:
                cur = self.conn.cursor()
                cur.executemany(
                    self._sql("INSERT INTO errors (run_id, position, error) VALUES (?, ?, ?)"),
                    [(run_id, pos, text) for pos, text in record.errors],
                )
            self._prune(record.target, keep)
        record.id = run_id
        record.findings = findings
        return record

    def changes_since_success(
        self, target: str, names: Sequence[str], deps: Sequence[Sequence[int]], lookback: int = CHANGES_LOOKBACK
    ) -> dict[str, frozenset[str]]:
        """Job name -> its DEPS (names) that changed in a recorded run of ``target`` since the job last
        succeeded (``ok`` or ``changed``) in one; only jobs with such DEPS are listed.

        ``names`` and ``deps`` are the graph about to run (``deps[i]``: the indices of
        job ``i``'s DEPS). One query over the latest ``lookback`` runs, read newest
        first and only as far as needed: a run in which every job succeeded ends it,
        so a converged history costs one row.
        """
        digest = self._digest(names)
        found: dict[int, set[int]] = {}
        pending: set[int] | None = None  # (made at the first run not all succeeded: a converged history has none)
        rows = self._rows(
            "SELECT r.graph_id, g.digest, r.status_names, r.statuses FROM runs r JOIN graphs g ON g.id = r.graph_id "
            "WHERE r.target = ? AND r.kind = 'run' ORDER BY r.id DESC LIMIT ?",
            (target, lookback),
        )
        try:
            for graph_id, row_digest, vocab_json, blob in rows:
                vocab = json.loads(vocab_json)
                same = row_digest == digest
                if same and set(vocab) <= _SUCCEEDED:
                    break  # every job succeeded then: nothing older is pending
                if pending is None:
                    pending = {i for i, ds in enumerate(deps) if ds}
                if not pending:
                    break
                codes = zlib.decompress(bytes(blob))
                if same:
                    statuses: Any = [vocab[c] for c in codes]
                    status = statuses.__getitem__
                else:
                    old = dict(zip(self.names_of(graph_id), (vocab[c] for c in codes), strict=False))
                    status = lambda i, old=old: old.get(names[i])  # noqa: E731
                changed = "changed" in vocab
                for i in list(pending):
                    if status(i) in _SUCCEEDED:
                        pending.discard(i)  # it saw every change up to that run (its DEPS ran before it)
                    elif changed:
                        for d in deps[i]:
                            if status(d) == "changed":
                                found.setdefault(i, set()).add(d)
                if not pending:
                    break
        finally:
            rows.close()
        return {names[i]: frozenset(names[d] for d in ds) for i, ds in found.items()}

    def _prune(self, target: str, keep: int) -> None:
        rows = self._all("SELECT id FROM runs WHERE target = ? ORDER BY id DESC LIMIT 1 OFFSET ?", (target, keep))
        if not rows:
            return
        last = rows[0][0]
        old = "SELECT id FROM runs WHERE target = ? AND id <= ?"
        graphs = [
            r[0] for r in self._all("SELECT DISTINCT graph_id FROM runs WHERE target = ? AND id <= ?", (target, last))
        ]
        self.execute(f"DELETE FROM errors WHERE run_id IN ({old})", (target, last))
        self.execute("DELETE FROM runs WHERE target = ? AND id <= ?", (target, last))
        for graph_id in graphs:  # (runs_by_graph: each an index look-up, not a scan of the runs)
            self.execute(
                "DELETE FROM graphs WHERE id = ? AND NOT EXISTS (SELECT 1 FROM runs WHERE graph_id = ?)",
                (graph_id, graph_id),
            )
        self._names.clear()

    # -- reading ------------------------------------------------------------------

    def _run_dict(self, row: tuple, jobs: bool = False) -> dict[str, Any]:
        (run_id, graph_id, started, ended, target, targets, kind, host, user, cwd, version, options, verdict, success,
         stopped, counts, elapsed, status_names, statuses, tries, times, findings, verified, roots) = row  # fmt: skip
        names = self.names_of(graph_id)
        vocab = json.loads(status_names)
        codes, tries_a, times_a = RunRecord.unpack(statuses, tries, times)
        status_list = [vocab[c] for c in codes]
        out: dict[str, Any] = {
            "id": int(run_id),
            "started": started,
            "ended": ended,
            "target": target,
            "roots": roots,
            "targets": json.loads(targets),
            "kind": kind,
            "host": host,
            "user": user,
            "cwd": cwd,
            "version": version,
            "options": json.loads(options),
            "verdict": verdict,
            "success": bool(success),
            "stopped": stopped,
            "counts": json.loads(counts),
            "elapsed": float(elapsed),
            "verified": None if verified is None else bool(verified),
            "changed": [n for n, s in zip(names, status_list, strict=False) if s == "changed"],
        }
        found = json.loads(findings or "{}")
        out["drifted"] = found.get("drifted", [])
        out["drift_base"] = found.get("drift_base")
        out["drift_since"] = found.get("drift_since")
        out["flapping"] = found.get("flapping", [])
        out["flap_window"] = found.get("flap_window")
        out["unstable"] = found.get("unstable", {})
        if jobs:
            errors = dict(self._all("SELECT position, error FROM errors WHERE run_id = ?", (run_id,)))
            drifted, flapping, unstable = set(out["drifted"]), set(out["flapping"]), out["unstable"]
            out["jobs"] = [
                {
                    "name": name,
                    "status": status_list[i],
                    "tries": int(tries_a[i]),
                    "elapsed": None if math.isnan(times_a[i]) else float(times_a[i]),
                    "error": errors.get(i),
                    "drifted": name in drifted,
                    "flapping": name in flapping,
                    "unstable": unstable.get(name),
                }
                for i, name in enumerate(names)
            ]
        return out

    @staticmethod
    def _where(target: str | None, roots: str | None) -> tuple[str, list[Any]]:
        """The WHERE clause of runs of ``target`` (a key, see :func:`.record.target_key`) or of ``roots`` (names)."""
        if target is not None:
            return "WHERE target = ? ", [target]
        if roots is not None:
            return "WHERE roots = ? ", [roots]
        return "", []

    def runs(self, target: str | None = None, limit: int = 20, *, roots: str | None = None) -> list[dict[str, Any]]:
        """The latest ``limit`` runs (of ``target``, or of these root jobs, if given), oldest first."""
        where, params = self._where(target, roots)
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs {where}ORDER BY id DESC LIMIT ?", (*params, limit))
        return [self._run_dict(row) for row in reversed(rows)]

    def run(self, run_id: int) -> dict[str, Any] | None:
        """One run with its jobs, or None."""
        rows = self._all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return self._run_dict(rows[0], jobs=True) if rows else None

    def last_id(self, target: str | None = None) -> int | None:
        """The latest run's id (of ``target``, if given)."""
        if target is None:
            rows = self._all("SELECT MAX(id) FROM runs")
        else:
            rows = self._all("SELECT MAX(id) FROM runs WHERE target = ?", (target,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def job(
        self, name: str, target: str | None = None, limit: int = 20, *, roots: str | None = None
    ) -> list[dict[str, Any]]:
        """Job ``name`` in the latest ``limit`` runs that had it (of ``target`` or ``roots``, if given), oldest
        first."""
        out: list[dict[str, Any]] = []
        where, params = self._where(target, roots)
        offset, page = 0, 200
        while len(out) < limit:
            rows = self._all(
                f"SELECT {_RUN_COLUMNS} FROM runs {where}ORDER BY id DESC LIMIT ? OFFSET ?", (*params, page, offset)
            )
            if not rows:
                break
            offset += page
            for row in rows:
                names = self.names_of(row[1])
                try:
                    i = names.index(name)
                except ValueError:
                    continue
                vocab = json.loads(row[17])
                codes, tries_a, times_a = RunRecord.unpack(row[18], row[19], row[20])
                err = self._all("SELECT error FROM errors WHERE run_id = ? AND position = ?", (row[0], i))
                found = json.loads(row[21] or "{}")
                out.append(
                    {
                        "run": int(row[0]),
                        "started": row[2],
                        "target": row[4],
                        "kind": row[6],
                        "status": vocab[codes[i]],
                        "tries": int(tries_a[i]),
                        "elapsed": None if math.isnan(times_a[i]) else float(times_a[i]),
                        "error": err[0][0] if err else None,
                        "drifted": name in found.get("drifted", ()),
                        "flapping": name in found.get("flapping", ()),
                        "unstable": found.get("unstable", {}).get(name),
                    }
                )
                if len(out) >= limit:
                    break
        return list(reversed(out))

    def strips(self, target: str, upto: int | None, limit: int = 10) -> tuple[list[int], dict[str, list[str | None]]]:
        """Each job's status in the latest ``limit`` runs of ``target`` up to run ``upto``, oldest first.

        Returns the run ids and, per job name, one status per run (None: not in that run).
        """
        params: list[Any] = [target]
        upto_sql = ""
        if upto is not None:
            upto_sql, params = " AND id <= ?", [target, upto]
        rows = self._all(
            f"SELECT graph_id, status_names, statuses, id FROM runs WHERE target = ? AND kind = 'run'{upto_sql} "
            "ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        rows.reverse()
        out: dict[str, list[str | None]] = {}
        for k, row in enumerate(rows):
            for name, status in zip(self.names_of(row[0]), self._statuses_of(row), strict=False):
                out.setdefault(name, [None] * len(rows))[k] = status
        return [int(r[3]) for r in rows], out
