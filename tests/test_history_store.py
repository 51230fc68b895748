"""The history store itself: schema migrations, what a record keeps, pruning, drift and flapping rules."""
# ruff: noqa: F811  (the fixtures imported from history_support are used as arguments)

from __future__ import annotations

import enum
import json
import math
import os
from pathlib import Path

import pytest
from history_support import cli, home_env, location, postgres_server, write_world  # noqa: F401

from dojob.events import Status
from dojob.history import History, HistoryError, default_location, display_location, drift, open_store
from dojob.history.cli_history import location_of
from dojob.history.record import build_record, names_digest, pack_names
from dojob.history.schema import SCHEMA_VERSION
from dojob.report import JobReport, Report


def _connect(location: str, migrate: bool = True):
    if location.startswith("postgresql"):
        from dojob.history.postgres import connect
    else:
        from dojob.history.sqlite import connect  # type: ignore[assignment]
    return connect(location, migrate=migrate)


def _report(statuses: dict[str, object], roots: tuple[str, ...] = ("Root",), success: bool = True) -> Report:
    jobs = {
        name: JobReport(
            name, status, 1, None, RuntimeError(f"{name} broke") if status is Status.FAILED else None, 0.0, 0.5
        )
        for name, status in statuses.items()
    }
    return Report(jobs, success=success, elapsed=1.0, roots=roots)


def test_a_v1_history_is_migrated_and_its_runs_kept(tmp_path, location):
    store = _connect(location, migrate=False)
    assert store.version() == 0
    assert store.migrate(upto=1) == 0 and store.version() == 1
    record = build_record(
        _report({"Setup": Status.OK, "Root": Status.OK}),
        started=1e9,
        ended=1e9 + 1,
        targets=["old.py:Root"],
        options=[],
    )
    digest, names = pack_names(record.names)
    statuses, tries, times = record.packed()
    with store.transaction():  # a run as dojob wrote it at schema v1: no findings, no verified
        graph = store._insert_id("INSERT INTO graphs (digest, jobs, names) VALUES (?, ?, ?)", (digest, 2, names))
        store.execute(
            "INSERT INTO runs (graph_id, started, ended, target, targets, kind, host, username, cwd, version, options, "
            "verdict, success, stopped, counts, elapsed, status_names, statuses, tries, times) "
            "VALUES (?, ?, ?, 'Root', '[\"old.py:Root\"]', 'run', 'h', 'u', '/', '0.0.1', '[]', 'converged', 1, NULL, "
            "'{}', 1.0, ?, ?, ?, ?)",
            (graph, record.started, record.ended, json.dumps(record.status_names), statuses, tries, times),
        )
    store.close()
    env = home_env(tmp_path)
    runs = json.loads(cli("history", "--history", location, "--json", cwd=tmp_path, env=env).stdout)
    assert [(r["id"], r["version"], r["verified"], r["drifted"]) for r in runs] == [(1, "0.0.1", None, [])]
    # v3: the old run's target is its TARGET resolved against the folder it ran in; its root, kept apart
    assert [(r["target"], r["roots"]) for r in runs] == [(os.path.realpath("/old.py") + ":Root", "Root")]
    store = _connect(location)
    assert store.version() == SCHEMA_VERSION == 3
    # the next run of that file is compared with the migrated one: Setup was ok then and needed its Run now
    new = store.write(
        build_record(
            _report({"Setup": Status.CHANGED, "Root": Status.OK}),
            started=2e9,
            ended=2e9,
            targets=["old.py:Root"],
            options=[],
            target=os.path.realpath("/old.py") + ":Root",
        ),
        3,
    )
    store.close()
    assert new.findings["drifted"] == ["Setup"] and new.findings["drift_base"] == 1


def test_unknown_statuses_are_kept_by_their_value(location):
    class Later(str, enum.Enum):  # a status a newer engine may add
        INTERRUPTED = "interrupted"

        @property
        def ok(self) -> None:
            return None

    report = _report({"A": Status.OK, "B": Later.INTERRUPTED, "C": Status.FAILED}, success=False)
    with _connect(location) as store:
        record = store.write(build_record(report, started=0, ended=1, targets=None, options=["--x"]), 3)
        run = store.run(record.id)
    assert [(j["name"], j["status"], j["error"]) for j in run["jobs"]] == [
        ("A", "ok", None),
        ("B", "interrupted", None),
        ("C", "failed", "RuntimeError: C broke"),
    ]
    assert run["options"] == ["--x"] and run["verdict"] == "not converged"
    assert all(math.isclose(j["elapsed"], 0.5) for j in run["jobs"])


def test_old_runs_are_pruned_per_target(location):
    with _connect(location) as store:
        ids = []
        for n in range(5):
            report = _report({f"J{n}": Status.FAILED, "Root": Status.BLOCKED}, success=False)
            ids.append(store.write(build_record(report, started=0, ended=1, targets=None, options=[]), 3, keep=3).id)
        other = store.write(
            build_record(_report({"X": Status.OK}, roots=("Other",)), started=0, ended=1, targets=None, options=[]),
            3,
            keep=3,
        )
        assert [r["id"] for r in store.runs(roots="Root")] == ids[2:]
        assert [r["id"] for r in store.runs(None)] == [*ids[2:], other.id]
        assert store._all("SELECT COUNT(*) FROM errors")[0][0] == 3
        assert store._all("SELECT COUNT(*) FROM graphs")[0][0] == 4


def test_drift_is_converged_in_the_base_and_needing_a_run_now():
    names = ["A", "B", "C", "D", "E"]
    now = ["changed", "failed", "changed", "ok", "changed"]
    # C converged through its Run in the base run: it ended converged too, and needs its Run again
    assert drift.drifted(names, now, "run", names, ["ok", "ok", "changed", "ok", "skipped"]) == ["A", "B", "C"]
    # a graph that changed: matched by name; a new job has no past
    assert drift.drifted(names, now, "run", ["B", "X", "A"], ["ok", "ok", "failed"]) == ["B"]
    assert drift.drifted(["A"], ["would_run"], "plan", ["A"], ["ok"]) == ["A"]
    assert drift.drifted(["A"], ["ok_upstream_changes"], "plan", ["A"], ["ok"]) == []


def test_flapping_needs_a_change_in_every_run_of_the_window():
    names = ["A", "B"]
    now = ["changed", "changed"]
    before = [(names, ["changed", "ok"]), (names, ["changed", "changed"])]
    assert drift.flapping(names, now, before, 3) == ["A"]
    assert drift.flapping(names, now, before[:1], 3) == []  # not enough runs yet
    assert drift.flapping(names, now, before[:1], 2) == ["A"]
    assert drift.flapping(names, ["ok", "changed"], before, 3) == []


def test_locations(tmp_path):
    assert default_location({"XDG_STATE_HOME": "/s", "HOME": "/h"}) == "/s/dojob/history.sqlite3"
    assert default_location({"XDG_STATE_HOME": "relative", "HOME": "/h"}) == "/h/.local/state/dojob/history.sqlite3"
    assert default_location({"HOME": "/h"}) == "/h/.local/state/dojob/history.sqlite3"
    assert location_of("x.db", {"DOJOB_HISTORY": "y.db"}) == ("x.db", False)
    assert location_of(None, {"DOJOB_HISTORY": "y.db"}) == ("y.db", False)
    assert location_of(None, {"DOJOB_HISTORY": "off", "HOME": "/h"}) == (None, False)
    assert location_of(None, {"HOME": "/h"}) == ("/h/.local/state/dojob/history.sqlite3", True)
    assert display_location("postgresql://me:pw@db:5432/h") == "postgresql://me:***@db:5432/h"
    assert display_location("postgresql://db/h?user=me&password=pw&x=1") == "postgresql://db/h?user=me&password=***&x=1"
    assert display_location("/plain/path:with@colon") == "/plain/path:with@colon"
    with pytest.raises(HistoryError, match="unknown history URL scheme 'mysql'"):
        History("mysql://db/h")
    with pytest.raises(HistoryError, match="flap_window must be a whole number >= 2"):
        History(tmp_path / "h", flap_window=1)
    with pytest.raises(HistoryError, match="no such folder"):
        open_store(str(tmp_path / "missing" / "h.sqlite3"))


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/h.sqlite3")
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store.conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
        assert store.version() == SCHEMA_VERSION
    finally:
        store.close()
    assert (tmp_path / "h.sqlite3").is_file()


def test_the_movie_example_remembers(tmp_path):
    """The README's session, in short: converge, a drift, jobs that change every run."""
    env = home_env(tmp_path)
    movie = str(Path(__file__).resolve().parent.parent / "examples" / "movie_night.py") + ":WatchMovie"
    good = ["--set", "battery_state=charged", "--set", "couch_space:=true", "--retry-delay", "0.01"]
    first = cli("run", movie, *good, cwd=tmp_path, env=env)
    assert first.returncode == 0 and "drifted" not in first.stdout
    second = cli("run", movie, *good, "--set", "movie=Zardoz", cwd=tmp_path, env=env)
    assert second.returncode == 1
    assert second.stdout.splitlines()[-2].startswith("drifted since ")
    drifted = second.stdout.splitlines()[-2].split(" (run 1): ")[1].split(", ")
    # PickMovie was ok and fails now; the others converged through their Run in run 1, and the
    # example's world (global_storage) starts empty each run: they need their Run again too
    assert "PickMovie" in drifted and "TurnOnTV" in drifted and "DimTheLights" not in drifted
    third = cli("run", movie, *good, cwd=tmp_path, env=env)
    assert third.returncode == 0
    flag = third.stdout.splitlines()[-2]
    assert flag.startswith("changed in each of the last 3 runs: is it idempotent? TurnOnTV, SitOnCouch, PopcornBowl")
    assert "StartMovie" not in flag  # blocked in run 2
    assert "DimTheLights" not in flag  # a RunonlyJob runs every time by design


def test_hostile_job_names_are_shown_escaped(tmp_path):
    import dojob

    evil = "Evil\x1b[2J\nName\u202e<b>"
    job = type(evil, (dojob.Job,), {"Check": lambda self, *a, **k: None, "Run": lambda self, *a, **k: None})
    db = tmp_path / "h.sqlite3"
    report = dojob.run(job, history=db)
    assert report.history.run_id == 1
    env = home_env(tmp_path)
    for args in (["show", "last"], ["job", evil], []):
        out = cli("history", "--history", str(db), *args, cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\u202e" not in out.stdout
        assert args[:1] == ["job"] or "Evil\\x1b[2J\\x0aName\\u202e<b>" in out.stdout
    shown = json.loads(cli("history", "--history", str(db), "show", "last", "--json", cwd=tmp_path, env=env).stdout)
    assert shown["jobs"][0]["name"] == evil  # JSON keeps the name exact
    section = report.to_html().split('<section id="history">')[1].split("</section>")[0]
    assert "<tr><th>Evil\\x1b[2J\\x0aName\\u202e&lt;b&gt;</th>" in section
    assert evil not in section and "<b>" not in section


def test_a_no_act_run_is_no_base_for_drift_and_does_not_break_a_streak(tmp_path):
    import dojob

    calls = {"n": 0}

    def check(self, *a, **k):
        if not self.global_storage.get("done"):
            raise RuntimeError("not yet")

    def run(self, *a, **k):
        calls["n"] += 1
        self.global_storage["done"] = True

    job = type("Again", (dojob.Job,), {"Check": check, "Run": run})
    db = tmp_path / "h.sqlite3"
    assert dojob.run(job, history=db).history.flapping == []
    assert dojob.run(job, history=db).history.flapping == []
    look = dojob.run(job, history=db, no_act=True)
    assert not look.success and look.history.flapping == [] and calls["n"] == 2
    third = dojob.run(job, history=db)
    assert third.history.flapping == ["Again"]  # the look-only run in between is not one of the window's
    with open_store(str(db)) as store:
        assert [r["kind"] for r in store.runs(roots="Again")] == ["run", "run", "no_act", "run"]


def test_changes_since_success_reads_back_only_as_far_as_a_run_the_job_succeeded_in(location):
    names = ["Config", "Cert", "Restart", "Root"]
    deps = [(), (), (0, 1), (2,)]

    def write(statuses: dict[str, Status], success: bool = False) -> None:
        report = _report(statuses, success=success)
        store.write(build_record(report, started=0, ended=1, targets=None, options=[], target="t"), 3)

    ok, changed, failed, blocked = Status.OK, Status.CHANGED, Status.FAILED, Status.BLOCKED
    with _connect(location) as store:
        assert store.changes_since_success("t", names, deps) == {}  # no history yet
        write({"Config": changed, "Cert": ok, "Restart": failed, "Root": blocked})
        write({"Config": ok, "Cert": changed, "Restart": failed, "Root": blocked})
        # the same graph with a job less (a subset): Restart not in it, so its changes still count
        write({"Config": changed, "Cert": ok})
        assert store.changes_since_success("t", names, deps) == {"Restart": frozenset({"Config", "Cert"})}
        assert store.changes_since_success("t", names, deps, lookback=1) == {"Restart": frozenset({"Config"})}
        assert store.changes_since_success("other", names, deps) == {}  # another target's runs are not read
        # Restart succeeds: what changed before (and in that same run: it ran after its DEPS) is seen
        write({"Config": changed, "Cert": ok, "Restart": changed, "Root": ok}, success=True)
        assert store.changes_since_success("t", names, deps) == {}
        # a job new to the history (or renamed) never succeeded: it is owed every change in the runs read
        write({"Config": changed, "Cert": ok, "Restart": failed, "Root": blocked})
        assert store.changes_since_success("t", ["Config", "Cert", "Reload", "Root"], deps) == {
            "Reload": frozenset({"Config", "Cert"})
        }
        assert store.changes_since_success("t", names, deps) == {"Restart": frozenset({"Config"})}
        assert store.changes_since_success("t", names, [(), (), (), ()]) == {}  # no DEPS: nothing owed
        # the digest remembered between a run's read and its write is that of the same names only
        assert store._digest(("A", "B")) == store._digest(["A", "B"]) == names_digest(["A", "B"])
        assert store._digest(["A", "C"]) == names_digest(["A", "C"]) != names_digest(["A", "B"])
