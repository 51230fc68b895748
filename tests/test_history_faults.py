"""A history that fails never costs the run: locked, corrupt, read-only, unreachable, concurrent, killed."""
# ruff: noqa: F811  (the fixtures imported from history_support are used as arguments)

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from history_support import ROOT, cli, home_env, location, postgres_server, wait_for, write_world  # noqa: F401

FAST = ["--retry-delay", "0.01", "--no-progress"]
WARNING = "dojob: warning: history not recorded: "
RECAP = re.compile(
    r"(changed: [^\n]+\n)?converged in [^:]+: [13] ok, [13] changed \(0 needed retries\), 0 failed, 0 blocked, "
    r"0 interrupted\n"
)


def _run(world: Path, env: dict, *args: str, target: str = "Root", prefix: tuple[str, ...] = ()):
    cmd = [*prefix, sys.executable, "-m", "dojob", "run", f"{world}:{target}", *FAST, *args]
    return subprocess.run(cmd, cwd=world.parent, env=env, capture_output=True, text=True, timeout=120)


def _one_warning(out: subprocess.CompletedProcess, *needles: str) -> str:
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(WARNING), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _runs(location: str, env: dict, cwd: Path) -> list[dict]:
    out = cli("history", "--history", location, "--json", "-n", "1000", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return write_world(tmp_path)


def test_a_locked_history_warns_once_and_the_run_goes_on(world, tmp_path):
    env = home_env(tmp_path)
    db = tmp_path / "h.sqlite3"
    assert _run(world, env, "--history", str(db)).returncode == 0
    started = tmp_path / "locked"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time, pathlib\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "pathlib.Path(sys.argv[2]).touch()\n"
            "time.sleep(60)\n",
            str(db),
            str(started),
        ]
    )
    try:
        wait_for(started)
        t0 = time.monotonic()
        ok = _run(world, env, "--history", str(db))
        took = time.monotonic() - t0
        bad = _run(world, env, "--history", str(db), target="Bad")
    finally:
        holder.kill()
        holder.wait()
    assert ok.returncode == 0 and RECAP.fullmatch(ok.stdout), ok.stdout
    _one_warning(ok, str(db), "database is locked")
    assert took >= 4.5  # it waited for the lock (the busy timeout) before giving up
    assert bad.returncode == 1 and "FAILED  Broken (1 try)" in bad.stdout
    _one_warning(bad, "database is locked")
    assert [r["id"] for r in _runs(str(db), env, tmp_path)] == [1]  # and the lock gone, it works again
    assert _run(world, env, "--history", str(db)).stderr == ""
    assert len(_runs(str(db), env, tmp_path)) == 2


def test_a_corrupt_history_warns_once_is_left_alone_and_the_run_goes_on(world, tmp_path):
    env = home_env(tmp_path)
    db = tmp_path / "h.sqlite3"
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    ok = _run(world, env, "--history", str(db))
    assert ok.returncode == 0 and RECAP.fullmatch(ok.stdout)
    _one_warning(ok, "file is not a database")
    bad = _run(world, env, "--history", str(db), target="Bad")
    assert bad.returncode == 1
    _one_warning(bad, "file is not a database")
    assert db.read_bytes() == garbage
    shown = cli("history", "--history", str(db), cwd=tmp_path, env=env)
    assert shown.returncode == 2 and shown.stderr.count("\n") == 1 and "file is not a database" in shown.stderr


def test_a_read_only_history_warns_once_and_the_run_goes_on(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="dojob-ro-"))
    try:
        world = write_world(folder)
        env = home_env(folder)
        db = folder / "h.sqlite3"
        assert _run(world, env, "--history", str(db)).returncode == 0  # the world is set up, one run recorded
        conn = sqlite3.connect(db)
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
        conn.close()  # the last connection to close checkpoints: no -wal file left
        assert not list(folder.glob("h.sqlite3-*"))
        os.chmod(db, 0o444)
        os.chmod(folder, 0o555)
        prefix: tuple[str, ...] = ()
        state = Path(tempfile.mkdtemp(prefix="dojob-ro-state-"))  # the run lock's folder: writable
        if os.geteuid() == 0:  # root writes anything: be somebody else
            prefix = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
            os.chown(state, 65534, 65534)
        before = db.read_bytes()
        ok = _run(world, {**env, "XDG_STATE_HOME": str(state)}, "--history", str(db), prefix=prefix)
        shutil.rmtree(state, ignore_errors=True)
        assert ok.returncode == 0, ok.stderr
        assert re.fullmatch(r"changed: Flappy\nconverged in [^:]+: 3 ok, 1 changed .*\n", ok.stdout), ok.stdout
        _one_warning(ok, str(db))
        assert db.read_bytes() == before
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unreachable_postgresql_warns_once_without_its_password(world, tmp_path):
    env = home_env(tmp_path)
    ok = _run(world, env, "--history", "postgresql://dojob:hunter2@127.0.0.1:1/history")
    assert ok.returncode == 0 and RECAP.fullmatch(ok.stdout)
    line = _one_warning(ok, "postgresql://dojob:***@127.0.0.1:1/history")
    assert "hunter2" not in line
    bad = _run(world, env, "--history", "postgresql://127.0.0.1:1/history", target="Bad")
    assert bad.returncode == 1
    _one_warning(bad)


def test_without_psycopg_a_postgresql_history_warns_once(world, tmp_path):
    env = home_env(tmp_path)
    code = "import sys; sys.modules['psycopg'] = None; from dojob.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", code, "run", f"{world}:Root", *FAST, "--history", "postgresql://127.0.0.1/x"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and RECAP.fullmatch(out.stdout)
    _one_warning(out, "needs psycopg: pip install 'dojob[postgres]'")


def test_a_newer_schema_is_left_alone(world, tmp_path):
    env = home_env(tmp_path)
    db = tmp_path / "h.sqlite3"
    assert _run(world, env, "--history", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    out = _run(world, env, "--history", str(db))
    assert out.returncode == 0
    _one_warning(out, "history schema v99 is newer than this dojob's (v3): upgrade dojob")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)


def _holder(location: str, started: Path, seconds: float) -> subprocess.Popen:
    """A process that holds the history's write lock for ``seconds``."""
    code = textwrap.dedent(
        """\
        import pathlib, sys, time
        from dojob.history import open_store
        store = open_store(sys.argv[1])
        with store.transaction():
            pathlib.Path(sys.argv[2]).touch()
            time.sleep(float(sys.argv[3]))
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, location, str(started), str(seconds)], env=dict(os.environ, PYTHONPATH=str(ROOT))
    )


def test_concurrent_writers_all_land(tmp_path, location):
    env = home_env(tmp_path)
    worlds = []
    for n in range(4):
        (tmp_path / f"w{n}").mkdir()
        worlds.append(write_world(tmp_path / f"w{n}"))
    # one target: the module `world:Root`, found in each run's own folder (a file target would be
    # five targets: each world.py's own history)
    write_world(tmp_path)
    first = cli("run", "world:Root", *FAST, "--history", location, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr  # the schema exists
    started = tmp_path / "held"
    holder = _holder(location, started, 1.5)
    wait_for(started)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dojob", "run", "world:Root", *FAST, "--history", location, "--lock", "run.lock"],
            cwd=w.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in worlds
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert holder.wait(timeout=60) == 0
    for proc, (stdout, stderr) in zip(procs, outs, strict=True):
        assert proc.returncode == 0 and stderr == "", stderr
        assert RECAP.search(stdout), stdout
    # each writer saw every run that landed before it: runs 3, 4 and 5 find jobs that changed in three in a row
    flag = "changed in each of the last 3 runs: is it idempotent? Stable, Drifty, Flappy"
    assert sum(flag in out for out, _ in outs) == 3
    runs = _runs(location, env, tmp_path)
    assert len(runs) == 5 and len({r["id"] for r in runs}) == 5
    assert sorted(r["cwd"] for r in runs[1:]) == sorted(str(w.parent) for w in worlds)
    assert all(r["counts"]["changed"] == 3 for r in runs)
    assert [bool(r["flapping"]) for r in runs] == [False, False, True, True, True]


WRITER = """\
import math, sys
from dojob.events import Status
from dojob.history import open_store
from dojob.history.record import build_record
from dojob.report import JobReport, Report

n = int(sys.argv[2])
jobs = {
    f"Job{i}": JobReport(f"Job{i}", Status.FAILED, 2, None, RuntimeError(f"error {i} " + "e" * 200), 0.0, 1.0)
    for i in range(n)
}
report = Report(jobs, success=False, elapsed=1.0, roots=("Big",))
store = open_store(sys.argv[1])
written = 0
while True:
    record = build_record(report, started=0.0, ended=1.0, targets=None, options=[])
    store.write(record, 3)
    written += 1
    print(written, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_a_readable_history(tmp_path, location):
    env = home_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, location, "20000"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for _ in range(3):  # three runs written; the fourth is being written
            assert proc.stdout.readline()
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if not location.startswith("postgresql"):
        with sqlite3.connect(location) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    runs = _runs(location, env, tmp_path)
    assert len(runs) >= 3
    for run in runs:
        shown = cli("history", "--history", location, "show", str(run["id"]), "--json", cwd=tmp_path, env=env)
        jobs = json.loads(shown.stdout)["jobs"]
        assert len(jobs) == 20000 and all(j["error"] and j["status"] == "failed" for j in jobs)
    world = write_world(tmp_path)
    after = _run(world, env, "--history", location)
    assert after.returncode == 0 and after.stderr == ""
    assert len(_runs(location, env, tmp_path)) == len(runs) + 1


SLEEPY = """\
    import time
    import dojob

    class Prepare(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def Cleanup(self):
            raise RuntimeError("cleanup broke")

    class Sleeper(dojob.Job):
        DEPS = (Prepare,)

        def Check(self, *args, **kwargs):
            open("started", "w").close()
            time.sleep(60)

        def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (Sleeper,)
"""


def test_an_interrupted_run_with_a_failed_cleanup_is_recorded_and_exits_130(tmp_path):
    from interrupting import interrupt, launch

    db = tmp_path / "h.sqlite3"
    proc = launch(tmp_path, SLEEPY, "sleepy.py:Root", "--history", str(db), "--no-progress", env=home_env(tmp_path))
    stdout, stderr, _ = interrupt(proc, tmp_path / "started", pause=0)
    assert proc.returncode == 130, (stdout, stderr)
    assert "cleanup failed: Prepare: RuntimeError: cleanup broke" in stdout
    assert "warning" not in stderr
    run = json.loads(
        cli("history", "--history", str(db), "show", "last", "--json", cwd=tmp_path, env=home_env(tmp_path)).stdout
    )
    assert run["stopped"] == "interrupted" and run["verdict"] == "not converged, cleanup failed: Prepare"
    assert [(j["name"], j["status"], j["tries"], j["error"]) for j in run["jobs"]] == [
        ("Prepare", "ok", 1, None),
        ("Sleeper", "interrupted", 1, "KeyboardInterrupt"),  # the engine's Status.INTERRUPTED, by its value
        ("Root", "interrupted", 0, None),
    ]
    assert run["counts"]["interrupted"] == 2
