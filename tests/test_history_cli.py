"""Run history through the ``dojob`` command, on SQLite and on a real PostgreSQL server."""
# ruff: noqa: F811  (the fixtures imported from history_support are used as arguments)

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from pathlib import Path

import pytest
from history_support import cli, home_env, location, postgres_server, write_world  # noqa: F401

import dojob

FAST = ["--retry-delay", "0.01", "--no-progress"]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return write_world(tmp_path)


def _run(world: Path, env: dict, *args: str, target: str = "Root", command: str = "run"):
    return cli(command, f"{world}:{target}", *FAST, *args, cwd=world.parent, env=env)


def _history(world: Path, env: dict, *args: str):
    return cli("history", *args, cwd=world.parent, env=env)


def _json(out) -> object:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_history_is_on_by_default_under_xdg_state_home(world, tmp_path):
    env = home_env(tmp_path)
    out = _run(world, env)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    default = tmp_path / "state" / "dojob" / "history.sqlite3"
    assert default.is_file()
    assert not (tmp_path / ".local").exists()
    runs = _json(_history(world, env, "--json"))
    assert [r["id"] for r in runs] == [1] and runs[0]["target"] == f"{os.path.realpath(world)}:Root"


def test_without_xdg_state_home_the_history_goes_under_home_local_state(world, tmp_path):
    env = home_env(tmp_path)
    del env["XDG_STATE_HOME"]
    assert _run(world, env).returncode == 0
    assert (tmp_path / ".local" / "state" / "dojob" / "history.sqlite3").is_file()
    assert _json(_history(world, env, "--json"))[0]["verdict"] == "converged"


def test_history_option_env_and_no_history(world, tmp_path):
    env = home_env(tmp_path)
    from_env = tmp_path / "from-env.sqlite3"
    given = tmp_path / "given.sqlite3"
    assert _run(world, {**env, "DOJOB_HISTORY": str(from_env)}).returncode == 0
    assert _run(world, {**env, "DOJOB_HISTORY": str(from_env)}, "--history", str(given)).returncode == 0
    assert _run(world, {**env, "DOJOB_HISTORY": str(from_env)}, "--no-history").returncode == 0
    assert _run(world, env, "--no-history").returncode == 0
    assert _run(world, {**env, "DOJOB_HISTORY": "off"}).returncode == 0
    assert not (tmp_path / "state" / "dojob" / "history.sqlite3").exists()  # none of these wrote the default
    assert len(_json(_history(world, env, "--history", str(from_env), "--json"))) == 1
    assert len(_json(_history(world, env, "--history", str(given), "--json"))) == 1
    assert len(_json(_history(world, {**env, "DOJOB_HISTORY": str(from_env)}, "--json"))) == 1


def test_a_bad_history_url_is_a_usage_error_before_anything_runs(world, tmp_path):
    out = _run(world, home_env(tmp_path), "--history", "mysql://db/x")
    assert out.returncode == 2
    assert "unknown history URL scheme 'mysql'" in out.stderr
    assert not (tmp_path / "world.json").exists()


def test_the_record_holds_who_where_what_and_option_names_never_values(world, tmp_path, location):
    env = home_env(tmp_path)
    secret = "s3cr3t-t0ken-value"
    out = _run(world, env, "--history", location, "--set", f"token={secret}", "--arg", secret, "-j", "2")
    assert out.returncode == 0, out.stderr
    run = _json(_history(world, env, "--history", location, "show", "last", "--json"))
    assert run["targets"] == [f"{world}:Root"] and run["target"] == f"{os.path.realpath(world)}:Root"
    assert run["roots"] == "Root"
    assert run["host"] == socket.gethostname()
    assert run["user"] == getpass.getuser()
    assert run["cwd"] == str(world.parent)
    assert run["version"] == dojob.__version__
    assert sorted(run["options"]) == sorted(
        ["--history", "--workers", "--retry-delay", "--set", "--arg", "--no-progress"]
    )
    assert run["kind"] == "run" and run["verdict"] == "converged" and run["success"] is True
    assert run["counts"]["changed"] == 3 and run["counts"]["ok"] == 1
    assert run["started"] <= run["ended"]
    jobs = {j["name"]: j for j in run["jobs"]}
    assert list(jobs) == ["Stable", "Drifty", "Flappy", "Root"]
    assert jobs["Stable"]["status"] == "changed" and jobs["Root"]["status"] == "ok"
    assert all(j["tries"] == 1 and j["elapsed"] is not None and j["elapsed"] >= 0 for j in jobs.values()), jobs
    assert secret not in json.dumps(run)
    listing = _history(world, env, "--history", location)
    assert secret not in listing.stdout
    if not location.startswith("postgresql"):
        for path in tmp_path.glob("history.sqlite3*"):
            assert secret.encode() not in path.read_bytes()


def test_errors_are_kept_first_line_only_sanitised_and_bounded(world, tmp_path, location):
    env = home_env(tmp_path)
    out = _run(world, env, "--history", location, target="Bad")
    assert out.returncode == 1
    rows = _json(_history(world, env, "--history", location, "job", "Broken", "--json"))
    assert len(rows) == 1 and rows[0]["status"] == "failed" and rows[0]["tries"] == 1
    error = rows[0]["error"]
    assert error.startswith("ValueError: \\x1b[31mred\\x1b[0m xxx")
    assert "\x1b" not in error and "not this line" not in error
    assert len(error) == 300 and error.endswith("...")
    text = _history(world, env, "--history", location, "job", "Broken").stdout
    assert "\x1b" not in text


def test_regression_a_run_forgot_the_last_drift_and_flapping_went_unseen(world, tmp_path, location):
    """Run 1 converges, run 2 changes only Flappy, then Drifty's world is undone: run 3 sees both."""
    env = home_env(tmp_path)
    first = _run(world, env, "--history", location)
    assert first.returncode == 0 and "drifted" not in first.stdout and "idempotent" not in first.stdout
    second = _run(world, env, "--history", location)
    assert second.returncode == 0 and "idempotent" not in second.stdout
    # Flappy converged in run 1 and needs its Run again: drift, until it is seen to change every time
    assert [line for line in second.stdout.splitlines() if "drifted" in line][0].endswith("(run 1): Flappy")
    state = json.loads((tmp_path / "world.json").read_text())
    del state["drifty"]
    (tmp_path / "world.json").write_text(json.dumps(state))
    third = _run(world, env, "--history", location)
    assert third.returncode == 0
    lines = third.stdout.splitlines()
    runs = _json(_history(world, env, "--history", location, "--json"))
    since = runs[1]["started"][:19].replace("T", " ")
    assert lines[-3] == f"drifted since {since} UTC (run {runs[1]['id']}): Drifty"
    assert lines[-2] == "changed in each of the last 3 runs: is it idempotent? Flappy"
    assert lines[-1].startswith("converged in ")
    assert runs[2]["drifted"] == ["Drifty"] and runs[2]["flapping"] == ["Flappy"]
    assert runs[2]["drift_base"] == runs[1]["id"]
    text = _history(world, env, "--history", location).stdout
    assert f"drifted since {since} UTC (run {runs[1]['id']}): Drifty" in text
    assert "changed in each of the last 3 runs: is it idempotent? Flappy" in text
    shown = _history(world, env, "--history", location, "show", str(runs[2]["id"])).stdout
    assert re.search(r"^Drifty +changed +1 +\S+ ms +drifted$", shown, re.M), shown
    assert re.search(r"^Flappy +changed .*is it idempotent\?$", shown, re.M), shown


def test_flap_window_sets_how_many_runs_in_a_row(world, tmp_path, location):
    env = home_env(tmp_path)
    for _ in range(2):
        assert "idempotent" not in _run(world, env, "--history", location, "--flap-window", "3").stdout
    assert "idempotent" not in _run(world, env, "--history", location, "--flap-window", "4").stdout
    fourth = _run(world, env, "--history", location, "--flap-window", "4")
    assert "changed in each of the last 4 runs: is it idempotent? Flappy" in fourth.stdout
    two = _run(world, env, "--history", location, "--flap-window", "2")
    assert "changed in each of the last 2 runs: is it idempotent? Flappy" in two.stdout
    assert _run(world, env, "--history", location, "--flap-window", "1").returncode == 2


def test_a_check_is_recorded_as_a_plan_and_shows_drift(world, tmp_path, location):
    env = home_env(tmp_path)
    assert _run(world, env, "--history", location).returncode == 0
    assert _run(world, env, "--history", location).returncode == 0  # Stable and Drifty ok now
    (tmp_path / "world.json").write_text(json.dumps({"stable": True}))
    plan = _run(world, env, "--history", location, command="check")
    assert plan.returncode == 1
    assert plan.stdout.splitlines()[-2].endswith("(run 2): Drifty, Flappy")  # (a plan judges no flapping)
    runs = _json(_history(world, env, "--history", location, "--json"))
    assert [r["kind"] for r in runs] == ["run", "run", "plan"]
    assert runs[2]["verdict"] == "changes needed" and runs[2]["drifted"] == ["Drifty", "Flappy"]
    assert "check: changes needed" in _history(world, env, "--history", location).stdout
    assert _run(world, env, "--history", location, "--verify", command="check").returncode == 2  # run only


def test_verify_names_unstable_jobs_exits_1_and_records_them(world, tmp_path, location):
    env = home_env(tmp_path)
    plain = _run(world, env, "--history", location, target="Shaky")
    assert plain.returncode == 0 and "UNSTABLE" not in plain.stdout
    out = _run(world, env, "--history", location, "--verify", target="Shaky")
    assert out.returncode == 1, out.stdout
    lines = out.stdout.splitlines()
    assert "UNSTABLE  Unstable (Check fails after the run): RuntimeError: check 3: the change did not hold" in lines
    assert lines[-2].endswith("(run 1): Unstable")  # its change of run 1 did not hold either: drift
    assert lines[-1].startswith("not converged in ")
    run = _json(_history(world, env, "--history", location, "show", "last", "--json"))
    assert run["verdict"] == "unstable" and run["success"] is False and run["verified"] is False
    assert run["unstable"] == {"Unstable": "RuntimeError: check 3: the change did not hold"}
    assert "unstable (Check fails after the run): Unstable" in _history(world, env, "--history", location).stdout
    stable = _run(world, env, "--history", location, "--verify")
    assert stable.returncode == 0, stable.stdout
    assert _json(_history(world, env, "--history", location, "show", "last", "--json"))["verified"] is True


def test_history_text_views(world, tmp_path):
    env = home_env(tmp_path)
    for _ in range(2):
        _run(world, env)
    _run(world, env, target="Bad")
    listing = _history(world, env)
    assert listing.returncode == 0
    heads = [line for line in listing.stdout.splitlines() if line.startswith("run ")]
    assert len(heads) == 3
    assert re.match(
        r"run 1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  world.py:Root  converged in .*: 1 ok, 3 changed, 0 failed",
        heads[0],
    )
    assert "  world.py:Bad  not converged in " in heads[2] and "1 ok, 0 changed, 1 failed, 1 blocked" in heads[2]
    assert "       changed: Stable, Drifty, Flappy" in listing.stdout
    assert _history(world, env, "Root").stdout.count("\nrun ") + 1 == 2
    assert _history(world, env, f"{world}:Bad").stdout.startswith("run 3 ")
    show = _history(world, env, "show", "1").stdout.splitlines()
    assert show[0] == heads[0]
    assert re.match(r"JOB +STATUS +TRIES +ELAPSED +NOTES$", show[3])
    job = _history(world, env, "job", "Stable").stdout.splitlines()
    assert re.match(r"RUN +WHEN +STATUS +TRIES +ELAPSED", job[0])
    assert [line.split()[0] for line in job[1:]] == ["1", "2", "3"]
    assert [line.split()[4] for line in job[1:]] == ["changed", "ok", "ok"]
    assert len(_json(_history(world, env, "-n", "2", "--json"))) == 2
    missing = _history(world, env, "show", "99")
    assert missing.returncode == 1 and missing.stderr.startswith("dojob: no run 99")
    assert _history(world, env, "show", "x").returncode == 2
    assert _history(world, env, "job", "NoSuchJob").returncode == 1


def test_history_of_a_missing_file_says_so(tmp_path):
    out = cli("history", "--history", str(tmp_path / "none.sqlite3"), cwd=tmp_path, env=home_env(tmp_path))
    assert out.returncode == 1 and "no history at" in out.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_report_shows_strip_and_flagged_jobs(world, tmp_path, location):
    env = home_env(tmp_path)
    for _ in range(2):
        _run(world, env, "--history", location)
    (tmp_path / "world.json").write_text(json.dumps({"stable": True}))
    out = _run(world, env, "--history", location, "--report", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "r.html").read_text()
    top = page.index('<section id="history">')
    assert top < page.index('<section id="recap">')
    assert re.search(r'<p id="drifted"><b>drifted since [^<]+ \(run 2\):</b> Drifty</p>', page)
    assert '<p id="flapping"><b>changed in each of the last 3 runs: is it idempotent?</b> Flappy</p>' in page
    strip = page[page.index('<table class="strip"') : page.index("</table>", top)]
    assert strip.count("<th>#") == 3
    row = re.search(r"<tr><th>Drifty</th>(.*?)</tr>", strip).group(1)
    assert re.findall(r'title="(\w+)"', row) == ["changed", "ok", "changed"]


def test_python_history_is_off_unless_asked(world, tmp_path, monkeypatch):
    from dojob.target import load_target

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    ns = {name: load_target(f"{world}:{name}") for name in ("Root", "Shaky")}
    report = dojob.run(ns["Root"])
    assert report.success and not hasattr(report, "history")
    assert not (tmp_path / "state" / "dojob" / "history.sqlite3").exists()
    path = tmp_path / "h.sqlite3"
    first = dojob.run(ns["Root"], history=str(path))
    assert first.history.run_id == 1 and first.history.warning is None
    import asyncio

    second = asyncio.run(dojob.arun(ns["Root"], history=path, verify=True))
    assert second.success and second.history.run_id == 2 and second.history.verified is True
    shaky = dojob.run(ns["Shaky"], verify=True)
    assert not shaky.success and shaky.history.unstable == {
        "Unstable": "RuntimeError: check 3: the change did not hold"
    }
    assert "UNSTABLE  Unstable" in shaky.summary()
    assert not (tmp_path / "state" / "dojob" / "history.sqlite3").exists()
    mine = dojob.run(ns["Root"], history=True)  # the per-user file, as the dojob command
    assert mine.history.location == str(tmp_path / "state" / "dojob" / "history.sqlite3")
    assert mine.history.run_id == 1 and (tmp_path / "state" / "dojob" / "history.sqlite3").is_file()
    with pytest.raises(dojob.DojobError, match="history must be a path"):
        dojob.run(ns["Root"], history=3)


def test_import_dojob_loads_no_history_backend():
    import subprocess
    import sys

    backends = ("sqlite3", "psycopg", "dojob.history.sqlite", "dojob.history.postgres", "dojob.history.store")
    code = f"import sys, dojob, dojob.cli; print(sorted(m for m in {backends!r} if m in sys.modules))"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_reconcile_loop_records_each_run_and_reads_the_findings(world, tmp_path):
    env = home_env(tmp_path)
    db = str(tmp_path / "h.sqlite3")
    out = _run(world, env, "--history", db, "--every", "0.1", "--max-runs", "3")
    assert out.returncode == 0, out.stderr
    runs = _json(_history(world, env, "--history", db, "--json"))
    assert [r["verdict"] for r in runs] == ["converged"] * 3
    assert [r["flapping"] for r in runs] == [[], [], ["Flappy"]]
    assert "changed in each of the last 3 runs: is it idempotent? Flappy" in out.stdout
    # each finding once: the loop shows the history's lines, not its own copies beside them
    assert out.stdout.count("is it idempotent? Flappy") == 1 and "flapping:" not in out.stdout
    assert out.stdout.count("drifted since") == 1 and "drifted: " not in out.stdout  # Flappy in run 2
