"""The ``dojob`` command, driven as an operator would: subprocesses, real files, real signals."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import inspect
import json
import os
import re
import select
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from interrupting import interrupt, launch

import dojob
from dojob.events import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")

MOVIE_OPTIONS = ["--set", "movie=Alien", "--retry-delay", "0.01"]
GOOD_EVENING = ["--set", "battery_state=charged", "--set", "couch_space:=true"]
BAD_EVENING = ["--set", "battery_state=dead", "--set", "couch_space:=false"]


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd``; stdout and stderr captured as text."""
    environ = dict(os.environ, **(env or {}))
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if name not in (env or {}):
            environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


JOBS = """\
    import dojob

    class Leaf(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            if not self.global_storage.get("leaf"):
                raise RuntimeError("leaf missing")

        def Run(self, *args, **kwargs):
            self.global_storage["leaf"] = True

    class Broken(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            raise RuntimeError("never works")

        def Run(self, *args, **kwargs):
            pass

    class Above(dojob.Job):
        DEPS = (Broken,)

        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    class Good(dojob.DummyJob):
        DEPS = (Leaf,)

    class Bad(dojob.DummyJob):
        DEPS = (Leaf, Above)

    class AlreadyOk(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            raise AssertionError("never called")
"""


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    write(tmp_path / "jobs.py", JOBS)
    return tmp_path


@pytest.fixture
def movie(tmp_path: Path) -> Path:
    """The movie example as the CLI sees it, plus a target that also invites the friends.

    The example creates its Invite<Name> jobs in ``plan_movie_night()``; the
    wrapper does what the example's own script does before running.
    """
    write(
        tmp_path / "evening.py",
        f"""\
        import sys
        sys.path.insert(0, {str(EXAMPLES)!r})
        from movie_night import *  # noqa: F401,F403
        from movie_night import FRIENDS, invite_friends
        invite_friends(FRIENDS)
        """,
    )
    return tmp_path


# -- basics -------------------------------------------------------------------------


def test_version(tmp_path):
    out = cli("--version", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.strip() == f"dojob {dojob.__version__}"


def test_console_script_is_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (entry,) = [e for e in scripts if e.name == "dojob"]
    assert entry.value == "dojob.__main__:main"  # dojob.cli's main, behind a guard for a Ctrl-C while it loads
    import dojob.__main__

    assert entry.load() is dojob.__main__.main


def test_usage_errors_exit_2(jobs):
    assert cli(cwd=jobs).returncode == 2  # no command
    assert cli("run", cwd=jobs).returncode == 2  # no target
    out = cli("run", "jobs.py:Good", "-j", "0", cwd=jobs)
    assert out.returncode == 2 and "-j/--workers" in out.stderr
    out = cli("run", "jobs.py:Good", "--graph", "picture.nope", cwd=jobs)
    assert out.returncode == 2 and "unknown graph format 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_run_converged_exits_0(jobs):
    out = cli("run", "jobs.py:Good", cwd=jobs)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("converged in ")
    assert "1 changed (0 needed retries)" in out.stdout and "1 ok" in out.stdout
    assert out.stderr == ""  # no trace without -v, no progress off a terminal


def test_run_not_converged_exits_1_and_recaps_the_failure(jobs):
    out = cli("run", "jobs.py:Bad", cwd=jobs)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0] == "FAILED  Broken (2 tries): RuntimeError: never works"
    assert lines[1].strip() == "blocked: Above, Bad"
    assert lines[-1].startswith("not converged in ")
    assert lines[-1].endswith("0 ok, 1 changed (0 needed retries), 1 failed, 2 blocked, 0 interrupted")


def test_verbose_trace_goes_to_stderr_recap_to_stdout(jobs):
    out = cli("run", "jobs.py:Bad", "-v", cwd=jobs)
    assert out.returncode == 1
    assert out.stderr.splitlines()[:3] == ["Leaf.check: fail", "Leaf.run: pass", "Leaf.recheck: pass"]
    assert "Broken.recheck: fail" in out.stderr and "Error was" not in out.stderr
    assert "check: fail" not in out.stdout
    debug = cli("run", "jobs.py:Bad", "-d", cwd=jobs)
    assert "Error was:" in debug.stderr and "RuntimeError: never works" in debug.stderr


def test_several_targets_from_one_file_share_their_jobs(jobs):
    out = cli("run", "jobs.py:Good", "jobs.py:Leaf", "jobs.py:AlreadyOk", "-j", "2", "--events", "e.jsonl", cwd=jobs)
    assert out.returncode == 0, out.stderr
    assert "2 ok, 1 changed" in out.stdout  # Leaf, shared by two roots, is one job
    started = json.loads((jobs / "e.jsonl").read_text().splitlines()[0])
    assert started["roots"] == ["Good", "Leaf", "AlreadyOk"] and started["jobs"] == 3


def test_module_target(tmp_path):
    pkg = tmp_path / "opsjobs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg / "web.py", JOBS)
    out = cli("run", "opsjobs.web:Good", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


def test_tries_and_retry_delay_options(jobs):
    write(
        jobs / "flaky.py",
        """\
        import dojob

        class Flaky(dojob.Job):
            def Check(self, *args, **kwargs):
                n = self.global_storage.setdefault("n", [])
                n.append(1)
                if len(n) < 5:
                    raise RuntimeError(f"call {len(n)}")

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    # Check passes on its 5th call: the 1st check of the 3rd try (each try checks, runs, rechecks).
    out = cli("run", "flaky.py:Flaky", "--tries", "2", "--retry-delay", "0", cwd=jobs)
    assert out.returncode == 1 and "(2 tries): RuntimeError: call 4" in out.stdout
    out = cli("run", "flaky.py:Flaky", "--tries", "3", "--retry-delay", "0.01", cwd=jobs)
    assert out.returncode == 0 and "1 ok (1 needed retries), 0 changed (0 needed retries)" in out.stdout


def test_no_cleanup_and_cleanup_failures(tmp_path):
    write(
        tmp_path / "tidy.py",
        """\
        import os
        import dojob

        class Tidy(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

            def Cleanup(self):
                open("tidied", "w").close()

        class Messy(dojob.Job):
            DEPS = (Tidy,)

            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

            def Cleanup(self):
                raise OSError("disk full")
        """,
    )
    out = cli("run", "tidy.py:Tidy", "--no-cleanup", cwd=tmp_path)
    assert out.returncode == 0 and not (tmp_path / "tidied").exists()
    out = cli("run", "tidy.py:Messy", cwd=tmp_path)
    assert out.returncode == 1
    assert (tmp_path / "tidied").exists()
    assert "cleanup failed: Messy: OSError: disk full" in out.stdout
    assert out.stdout.splitlines()[0].startswith("converged in ")


# -- --set and --arg ----------------------------------------------------------------


ECHO = """\
    import json
    import dojob

    class Echo(dojob.Job):
        def Check(self, *args, **kwargs):
            with open("seen.json", "w") as fh:
                json.dump({"args": args, "kwargs": kwargs,
                           "types": {k: type(v).__name__ for k, v in kwargs.items()}}, fh)

        def Run(self, *args, **kwargs):
            pass
"""


def test_set_and_arg_values_are_strings_unless_typed_with_colon_equals(tmp_path):
    write(tmp_path / "echo.py", ECHO)
    sets = ["n:=3", "ratio:=0.5", "flag:=true", "off:=False", "nothing:=None", "movie=The Princess Bride"]
    sets += ["version=1.10", "count=3", 'quoted:="3"', "items:=[1, 2]", 'conf:={"a": 1}', "empty=", "expr=a=b"]
    sets += ["zip=007", 'truth:="False"', "n:=4"]
    argv = [x for s in sets for x in ("--set", s)] + ["--arg", "5", "--arg", ":=5", "--arg", ":=[true]"]
    out = cli("run", "echo.py:Echo", *argv, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["args"] == ["5", 5, [True]]
    assert seen["kwargs"] == {
        "n": 4,  # the last one wins
        "ratio": 0.5,
        "flag": True,
        "off": False,  # Python's spelling is accepted after :=
        "nothing": None,
        "movie": "The Princess Bride",
        "version": "1.10",  # never the float 1.1
        "count": "3",
        "quoted": "3",
        "items": [1, 2],
        "conf": {"a": 1},
        "empty": "",
        "expr": "a=b",
        "zip": "007",
        "truth": "False",  # the string, asked for explicitly
    }
    assert seen["types"]["flag"] == "bool" and seen["types"]["quoted"] == "str"


@pytest.mark.parametrize("item", ["couch_space=False", "couch_space=true", "couch_space=None", "couch_space=null"])
def test_regression_a_plain_boolean_looking_value_is_refused_not_a_truthy_string(tmp_path, item):
    write(tmp_path / "echo.py", ECHO)
    out = cli("run", "echo.py:Echo", "--set", item, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    word = item.split("=")[1]
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"dojob: error: --set couch_space={word} would be the string {word!r}")
    assert "couch_space:=" in line  # says how to write the value
    assert not (tmp_path / "seen.json").exists()  # nothing ran
    arg = cli("run", "echo.py:Echo", "--arg", word, cwd=tmp_path)
    assert arg.returncode == 2 and "--arg number 1" in arg.stderr and ":=" in arg.stderr


def test_a_typed_value_that_is_not_json_is_a_usage_error_that_does_not_echo_it(tmp_path):
    write(tmp_path / "echo.py", ECHO)
    out = cli("run", "echo.py:Echo", "--set", "token:={hunter2", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("dojob: error: --set token:=... is not JSON at character 2")
    assert "hunter2" not in out.stderr + out.stdout


def test_regression_set_without_equals_says_what_to_write_and_does_not_echo_the_value(jobs):
    out = cli("run", "jobs.py:Good", "--set", "hunter2-secret", cwd=jobs)
    assert out.returncode == 2
    # one precise line, not argparse's top-level usage
    assert out.stderr.splitlines() == [
        "dojob: error: --set number 1 has no '=': write --set KEY=VALUE (a string) or --set KEY:=JSON (a typed value)"
    ]
    assert "hunter2" not in out.stderr + out.stdout


def test_regression_set_self_is_refused_before_every_check_fails_with_a_type_error(jobs):
    for item in ("self=1", "self:=1", " self =x"):
        out = cli("run", "jobs.py:Good", "--set", item, cwd=jobs)
        assert out.returncode == 2, out
        assert out.stderr.splitlines() == [
            "dojob: error: --set self=...: 'self' is the job itself in Check and Run; choose another key"
        ]


# -- exit 2: targets and graphs -------------------------------------------------------


def _one_line_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("dojob: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_targets_exit_2_with_one_line(tmp_path):
    write(tmp_path / "jobs.py", JOBS)
    write(tmp_path / "broken_import.py", "import dojob\nx = 1 / 0\n")
    write(tmp_path / "notjob.py", "Root = 42\n")
    _one_line_error(cli("run", "missing.py:Root", cwd=tmp_path), "no such file: missing.py")
    _one_line_error(cli("run", "jobs.py:Nope", cwd=tmp_path), "jobs.py has no attribute 'Nope'")
    _one_line_error(cli("check", "jobs.py", cwd=tmp_path), "expected path/to/file.py:RootJob")
    _one_line_error(cli("list", "notjob.py:Root", cwd=tmp_path), "Root is not a Job class (it is a int)")
    _one_line_error(cli("graph", "no_such_pkg.mod:Root", cwd=tmp_path), "no module named 'no_such_pkg'")
    _one_line_error(
        cli("run", "broken_import.py:Root", cwd=tmp_path), "cannot import", "ZeroDivisionError: division by zero"
    )
    debug = cli("run", "broken_import.py:Root", "-d", cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr


CYCLE = """\
    import dojob

    class A(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    class B(A):
        DEPS = (A,)

    A.DEPS = (B,)

    class Root(dojob.DummyJob):
        DEPS = (A,)

    class BadDeps(dojob.DummyJob):
        DEPS = ("not a job",)
"""


@pytest.mark.parametrize("command", ["run", "check", "list", "graph"])
def test_graph_errors_exit_2_with_one_line(tmp_path, command):
    write(tmp_path / "cycle.py", CYCLE)
    _one_line_error(cli(command, "cycle.py:Root", cwd=tmp_path), "graph error: dependency cycle: A -> B -> A")
    _one_line_error(cli(command, "cycle.py:BadDeps", cwd=tmp_path), "graph error: job 'BadDeps': DEPS", "'not a job'")
    debug = cli(command, "cycle.py:Root", "-d", cwd=tmp_path)
    assert debug.returncode == 2 and "CycleError" in debug.stderr and "Traceback" in debug.stderr


SLOW = """\
    import time
    import dojob

    class Quick(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    class Slow(dojob.Job):
        DEPS = (Quick,)

        def Check(self, *args, **kwargs):
            time.sleep(5)

        def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (Slow,)
"""


def test_timeout_stops_the_run(tmp_path):
    assert "timeout" in inspect.signature(dojob.run).parameters  # else --timeout is a usage error
    write(tmp_path / "slow.py", SLOW)
    started = time.monotonic()
    out = cli("run", "slow.py:Root", "--timeout", "0.3", "--report", "run.html", cwd=tmp_path)
    assert time.monotonic() - started < 4
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("INTERRUPTED  Slow during try 1 (RunTimeout: ")
    assert lines[1] == "             not started: Root"
    assert lines[2] == "run stopped: the run's timeout passed"
    assert lines[3].endswith("1 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 2 interrupted")
    page = (tmp_path / "run.html").read_text()
    assert "abandoned at its timeout, its thread left running" in page and "RunTimeout" in page
    bad = cli("run", "slow.py:Root", "--timeout", "-1", cwd=tmp_path)
    assert bad.returncode == 2 and "--timeout" in bad.stderr


def test_a_job_calling_sys_exit_is_recapped_and_its_status_kept(tmp_path):
    write(
        tmp_path / "quitter.py",
        """\
        import sys
        import dojob

        class Quitter(dojob.Job):
            def Check(self, *args, **kwargs):
                sys.exit(7)

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    out = cli("run", "quitter.py:Quitter", cwd=tmp_path)
    assert out.returncode == 7
    assert out.stdout.splitlines()[0] == "INTERRUPTED  Quitter during try 1 (SystemExit: 7)"


def test_regression_a_report_naming_a_directory_is_refused_before_anything_runs(jobs):
    (jobs / "taken.html").mkdir()
    out = cli("run", "jobs.py:Leaf", "--report", "taken.html", "--graph", "g.dot", cwd=jobs)
    # before: the run converged, then exited 2 ("usage or graph error") over a report it never wrote
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "dojob: error: --report 'taken.html' is a directory: name a file\n"
    assert not (jobs / "g.dot").exists()


def test_every_output_path_is_checked_before_anything_runs(jobs):
    cases = [
        (["--junit", "nowhere/j.xml"], "--junit 'nowhere/j.xml': no such directory"),
        (
            ["--events", "e.jsonl", "--graph", "e.dot", "--graph", "e.dot"],
            "--graph 'e.dot': the same file as --graph 'e.dot'",
        ),
        (["--report", "r.html", "--junit", "./r.html"], "--junit './r.html': the same file as --report 'r.html'"),
        (["--graph", "g"], "cannot tell the graph format of 'g'"),
    ]
    for options, message in cases:
        out = cli("run", "jobs.py:Good", *options, cwd=jobs)
        assert out.returncode == 2 and out.stdout == "", (options, out.stdout)
        assert message in out.stderr, (options, out.stderr)
        assert not (jobs / "r.html").exists() and not (jobs / "e.jsonl").exists()


# -- exit 130 ---------------------------------------------------------------------------


SLEEPY = """\
    import os
    import time
    import dojob

    class Prepare(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def Cleanup(self):
            open("cleaned-up", "w").close()

    class Sleeper(dojob.Job):
        DEPS = (Prepare,)

        def Check(self, *args, **kwargs):
            open("started", "w").close()
            time.sleep(60)

        def Run(self, *args, **kwargs):
            pass

    class After(dojob.DummyJob):
        DEPS = (Sleeper,)

    class Elsewhere(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (After, Elsewhere)
"""


def test_ctrl_c_cleans_up_recaps_and_exits_130(tmp_path):
    proc = launch(tmp_path, SLEEPY, "sleepy.py:Root", "--events", "run.jsonl", "--report", "run.html")
    stdout, stderr, _ = interrupt(proc, tmp_path / "started", pause=0)
    assert proc.returncode == 130, (stdout, stderr)
    assert (tmp_path / "cleaned-up").exists()
    assert "Traceback" not in stderr
    lines = stdout.splitlines()
    assert lines[0] == "INTERRUPTED  Sleeper during try 1 (KeyboardInterrupt)"
    assert lines[1].strip() == "not started: After, Root"  # interrupted, not blocked: nothing failed
    assert "run stopped: interrupted (Ctrl-C)" in lines
    assert [line for line in lines if line.startswith("not converged")][0].endswith(
        "1 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 4 interrupted"
    )
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-3:] == ["RunFinished", "CleanupStarted", "CleanupEnded"]  # Cleanups after the run
    assert events[-3]["stopped"] == "interrupted" and events[-1]["job"] == "Prepare"
    stopping = [e for e in events if e["event"] == "RunStopping"]
    assert len(stopping) == 1 and stopping[0]["reason"] == "interrupted"
    assert "interrupted" in (tmp_path / "run.html").read_text()


# -- the movie example ----------------------------------------------------------------------


def test_movie_night_recap_when_the_evening_fails(movie):
    out = cli("run", "evening.py:WatchMovie", *MOVIE_OPTIONS, *BAD_EVENING, cwd=movie)
    assert out.returncode == 1, out.stderr
    assert out.stdout.splitlines() == [
        "FAILED  TurnOnTV (3 tries): RuntimeError: Remote batteries are dead.",
        "        blocked: StartMovie, WatchMovie",
        "FAILED  SitOnCouch (3 tries): RuntimeError: No space on couch.",
        "        also blocks: StartMovie, WatchMovie",
        "changed: DimTheLights, PopcornBowl, Popcorn, Pizza, SendInvite[NAME='Wendell Bagg'], "
        "SendInvite[NAME='Lawyer Cat'], SendInvite[NAME='Ada Lovelace'], FriendsArrive",
        out.stdout.splitlines()[-1],
    ]
    last = out.stdout.splitlines()[-1]
    assert re.fullmatch(
        r"not converged in [0-9.]+ m?s: 3 ok, 8 changed \(3 needed retries\), 2 failed, 2 blocked, 0 interrupted", last
    ), last


def test_movie_night_recap_when_the_evening_works(movie):
    out = cli("run", "evening.py:WatchMovie", *MOVIE_OPTIONS, *GOOD_EVENING, "-j", "4", cwd=movie)
    assert out.returncode == 0, out.stderr
    changed, line = out.stdout.splitlines()
    assert changed.startswith("changed: TurnOnTV, SitOnCouch, DimTheLights, ") and changed.endswith(", StartMovie")
    assert len(changed.split(", ")) == 11
    assert re.fullmatch(
        r"converged in [0-9.]+ m?s: 4 ok, 11 changed \(3 needed retries\), 0 failed, 0 blocked, 0 interrupted", line
    )


def test_movie_night_check_reports_the_whole_plan(movie):
    out = cli("check", "evening.py:WatchMovie", *MOVIE_OPTIONS, *GOOD_EVENING, cwd=movie)
    assert out.returncode == 1
    plan = {line.split()[0]: line.split(None, 1)[1] for line in out.stdout.splitlines()[:-1]}
    assert plan["PickMovie"] == "ok"
    assert plan["TurnOnTV"] == "would run  (RuntimeError: TV is off.)"
    assert plan["Popcorn"].startswith("would run, upstream will change")
    assert plan["Snacks"] == "ok now, upstream will change"
    assert plan["WatchMovie"] == "ok now, upstream will change"
    assert len(plan) == 15
    assert out.stdout.splitlines()[-1].startswith("changes needed")
    bad_movie = cli("check", "evening.py:PickMovie", "--set", "movie=Zardoz", cwd=movie)
    assert bad_movie.returncode == 1 and "would run  (ValueError: Zardoz? Really?)" in bad_movie.stdout


def test_check_exits_0_when_nothing_would_run(jobs):
    out = cli("check", "jobs.py:AlreadyOk", cwd=jobs)
    assert out.returncode == 0
    assert out.stdout.splitlines()[0].split() == ["AlreadyOk", "ok"]
    assert out.stdout.splitlines()[-1].startswith("nothing would run")


def test_list_shows_jobs_in_dependency_order(movie):
    out = cli("list", str(EXAMPLES / "movie_night.py") + ":WatchMovie", "--retry-delay", "2", cwd=movie)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["JOB", "KIND", "TRIES", "RETRY_DELAY", "RETRY_POLICY", "TAGS", "RESOURCES", "DEPS"]
    start = lines[0].index("KIND")  # job names may hold spaces (bound jobs): cut at the column
    rows = [[line[:start].rstrip(), *line[start:].split(None, 6)] for line in lines[1:]]
    table = {row[0]: [row[1], row[2], row[3], row[7]] for row in rows}
    assert list(table)[-2:] == ["StartMovie", "WatchMovie"]
    assert table["Popcorn"] == ["job", "5", "0.05", "PopcornBowl"]
    assert table["PickMovie"] == ["job", "1", "2", "-"]
    assert table["DimTheLights"][0] == "runonly" and table["Snacks"][0] == "dummy"
    assert table["StartMovie"][3] == "TurnOnTV, SitOnCouch, DimTheLights, PickMovie, Snacks, FriendsArrive"
    order = list(table)
    for name, (_, _, _, deps) in table.items():
        for dep in deps.split(", ") if deps != "-" else []:
            assert order.index(dep) < order.index(name)


# -- the event log ------------------------------------------------------------------------------

EVENT_NAMES = {
    "RunStarted",
    "TryStarted",
    "PhaseStarted",
    "PhaseEnded",
    "TryEnded",
    "JobFinished",
    "JobBlocked",
    "RunStopping",
    "CleanupStarted",
    "CleanupEnded",
    "RunFinished",
    "LockWait",
    "PhaseAbandoned",
}


def test_event_log_schema(movie):
    out = cli("run", "evening.py:WatchMovie", *MOVIE_OPTIONS, *BAD_EVENING, "--events", "run.jsonl", cwd=movie)
    assert out.returncode == 1
    lines = (movie / "run.jsonl").read_text(encoding="ascii").splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        assert event["schema"] == SCHEMA_VERSION == 1
        assert event["event"] in EVENT_NAMES
        stamp = dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))
        assert stamp.tzinfo is not None and stamp.utcoffset() == dt.timedelta(0)
        assert isinstance(event["time"], (int, float))
        cls = getattr(dojob.events, event["event"])
        assert set(event) == {"schema", "event", "ts"} | set(cls.__dataclass_fields__)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert events[0]["roots"] == ["WatchMovie"] and events[0]["jobs"] == 15
    assert {"job": "TurnOnTV", "phase": "recheck", "ok": False, "error": "Remote batteries are dead."}.items() <= [
        e for e in events if e["event"] == "PhaseEnded" and e["job"] == "TurnOnTV"
    ][-1].items()
    finished = {e["job"]: e["status"] for e in events if e["event"] == "JobFinished"}
    assert finished["TurnOnTV"] == "failed" and finished["Popcorn"] == "changed" and finished["PickMovie"] == "ok"
    blocked = {e["job"]: e["blocked_by"] for e in events if e["event"] == "JobBlocked"}
    assert blocked == {"StartMovie": "TurnOnTV", "WatchMovie": "TurnOnTV"}
    assert events[-1] == {**events[-1], "success": False, "stopped": None}
    assert "written: run.jsonl" in out.stdout


# -- pictures -----------------------------------------------------------------------------------

HOSTILE = """\
    import dojob

    def job(name, deps=(), fail=False):
        def check(self, *args, **kwargs):
            if fail:
                raise RuntimeError(name + " failed")
        return type(name, (dojob.Job,), {"DEPS": list(deps), "Check": check, "Run": lambda self, *a, **k: None,
                                         "TRIES": 1})

    SCRIPT = job('<script>alert("x")</script>')
    QUOTES = job('say "hi" {braces} [brackets] \\\\N', [SCRIPT])
    NEWLINES = job("two\\nlines\\r\\nand\\x1b[31m ansi", [QUOTES], fail=True)
    EDGY = job("a -> b; c", [SCRIPT])
    Root = job("digraph { x }", [NEWLINES, EDGY])
"""
HOSTILE_NAMES = 5


def _svg_titles(svg_text: str) -> list[str]:
    root = ET.fromstring(svg_text)
    ns = "{http://www.w3.org/2000/svg}"
    return [g.find(f"{ns}title").text for g in root.iter(f"{ns}g") if g.get("class") == "node"]


def test_graph_command_with_hostile_names_renders_with_graphviz(tmp_path):
    write(tmp_path / "hostile.py", HOSTILE)
    out = cli("graph", "hostile.py:Root", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("digraph dojob {")
    for suffix in ("dot", "svg", "png"):
        done = cli("graph", "hostile.py:Root", "-o", f"g.{suffix}", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    dot_text = (tmp_path / "g.dot").read_text()
    assert dot_text == out.stdout
    rendered = subprocess.run(["dot", "-Tsvg", "g.dot"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert rendered.stderr == ""
    assert len(_svg_titles(rendered.stdout)) == HOSTILE_NAMES
    svg_text = (tmp_path / "g.svg").read_text()
    assert len(_svg_titles(svg_text)) == HOSTILE_NAMES
    assert "<script>" not in svg_text and "&lt;script&gt;" in svg_text
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_graph_option_of_a_run_is_coloured_by_status(tmp_path):
    write(tmp_path / "hostile.py", HOSTILE)
    out = cli("run", "hostile.py:Root", "--graph", "run.dot", "--graph", "run.svg", cwd=tmp_path)
    assert out.returncode == 1
    svg_text = (tmp_path / "run.svg").read_text()
    assert 'fill="red"' in svg_text and 'fill="green"' in svg_text and 'fill="grey"' in svg_text
    out = cli("run", "hostile.py:Root", "--graph", "run.dot", cwd=tmp_path)
    dot_text = (tmp_path / "run.dot").read_text()
    assert dot_text.count('fillcolor="red"') == 1 and dot_text.count('fillcolor="grey"') == 1
    subprocess.run(["dot", "-Tsvg", "-o", "again.svg", "run.dot"], cwd=tmp_path, check=True)


# -- secrets ------------------------------------------------------------------------------------

SECRETIVE = """\
    import dojob

    class Login(dojob.Job):
        def Check(self, *args, **kwargs):
            if kwargs["token"] != args[0]:
                raise PermissionError("token mismatch")
            if not self.global_storage.get("logged in"):
                raise RuntimeError("not logged in")

        def Run(self, *args, **kwargs):
            self.global_storage["logged in"] = kwargs["token"] == args[0]

    class Deploy(dojob.Job):
        DEPS = (Login,)
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            raise RuntimeError("deploy check failed for user " + kwargs["user"])

        def Run(self, *args, **kwargs):
            pass
"""


def test_set_and_arg_values_appear_in_no_output(tmp_path):
    write(tmp_path / "secretive.py", SECRETIVE)
    secret = "s3cr3t-Tok3n-5f1a9c"
    out = cli(
        "run",
        "secretive.py:Deploy",
        "--set",
        f"token={secret}",
        "--arg",
        secret,
        "--set",
        "user=ops",
        "-d",
        "--events",
        "run.jsonl",
        "--report",
        "run.html",
        "--graph",
        "run.dot",
        "--graph",
        "run.svg",
        cwd=tmp_path,
    )
    assert out.returncode == 1, out.stderr
    assert "Login.recheck: pass" in out.stderr  # the secret was used...
    assert "deploy check failed for user ops" in out.stdout  # ...and the jobs' own messages are shown
    outputs = {"stdout": out.stdout, "stderr": out.stderr}
    for name in ("run.jsonl", "run.html", "run.dot", "run.svg"):
        outputs[name] = (tmp_path / name).read_text()
    for name, text in outputs.items():
        assert secret not in text, name
        assert secret[:8] not in text, name


# -- live progress on a terminal ------------------------------------------------------------------

PROGRESS_JOBS = """\
    import time
    import dojob

    def job(name, deps=(), fail_first=False):
        def check(self, *args, **kwargs):
            if not self.global_storage.get(name):
                raise RuntimeError("not yet")

        def run(self, *args, **kwargs):
            time.sleep(0.15)
            n = self.global_storage[name + " runs"] = self.global_storage.get(name + " runs", 0) + 1
            if n > 1 or not fail_first:
                self.global_storage[name] = True

        return type(name, (dojob.Job,), {"DEPS": list(deps), "Check": check, "Run": run, "RETRY_DELAY": 0.5})

    Alpha = job("Alpha")
    Beta = job("Beta", fail_first=True)
    Root = job("Root", [Alpha, Beta])
"""


def run_on_a_terminal(args: list[str], cwd: Path, env: dict | None = None) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; return (status, stdout, what the terminal got)."""
    master, slave = os.openpty()
    environ = dict(os.environ, COLUMNS="110", LINES="40", TERM="xterm-256color", **(env or {}))
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if not env or name not in env:
            environ.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.stdout.read().decode()
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, b"".join(chunks).decode("utf-8", "replace")


def screen_lines(raw: str) -> list[str]:
    """What ended up on lines of the terminal: escape sequences removed, carriage returns split."""
    text = ANSI.sub("", raw)
    out = []
    for line in text.split("\n"):
        out.extend(part for part in line.split("\r") if part.strip())
    return out


def test_progress_on_a_terminal_with_the_trace_intact(tmp_path):
    write(tmp_path / "slow.py", PROGRESS_JOBS)
    status, stdout, terminal = run_on_a_terminal(["run", "slow.py:Root", "-j", "2", "-v"], tmp_path)
    assert status == 0, terminal
    assert stdout.startswith("changed: Alpha, Beta, Root\nconverged in ")  # the recap is on stdout, clean
    assert "\x1b" not in stdout
    lines = screen_lines(terminal)
    assert any(re.search(r"\b0/3 done\b", line) for line in lines), lines
    assert any(re.search(r"\b3/3 done\b", line) for line in lines), lines
    assert any("running (2): " in line and "Alpha (run, try 1)" in line for line in lines), lines
    assert any("retries waiting (1): Beta" in line for line in lines), lines
    trace = [line for line in lines if re.fullmatch(r"\w+\.(check|run|recheck): .*", line)]
    assert sorted(trace) == sorted(
        [
            "Alpha.check: fail",
            "Alpha.run: pass",
            "Alpha.recheck: pass",
            "Beta.check: fail",
            "Beta.run: pass",
            'Beta.recheck: fail "not yet"',
            "Beta.check: fail",
            "Beta.run: pass",
            "Beta.recheck: pass",
            "Root.check: fail",
            "Root.run: pass",
            "Root.recheck: pass",
        ]
    )
    for line in trace:  # every trace line is whole: never glued to the progress display
        assert "done" not in line and "running" not in line


def test_no_progress_on_a_terminal_when_asked(tmp_path):
    write(tmp_path / "slow.py", PROGRESS_JOBS)
    status, stdout, terminal = run_on_a_terminal(["run", "slow.py:Alpha", "--no-progress", "-v"], tmp_path)
    assert status == 0
    assert "done" not in terminal and "\x1b[" not in terminal
    assert screen_lines(terminal) == ["Alpha.check: fail", "Alpha.run: pass", "Alpha.recheck: pass"]


def test_executor_option_runs_tries_in_worker_processes(tmp_path):
    target = tmp_path / "pids.py"
    target.write_text(
        "import os, dojob\n"
        "class Where(dojob.Job):\n"
        "    def Check(self, *a, **k):\n"
        "        if 'pid' not in self.global_storage: raise LookupError\n"
        "    def Run(self, *a, **k):\n"
        "        self.global_storage['pid'] = os.getpid()\n"
        "class Root(dojob.Job):\n"
        "    DEPS = (Where,)\n"
        "    def Check(self, *a, **k):\n"
        "        assert self.global_storage['pid'] != k['cli_pid'], 'ran in the dojob process'\n"
        "    def Run(self, *a, **k): pass\n"
    )
    script = (
        "import os, sys, runpy; sys.argv[2:2] = ['--set', f'cli_pid={os.getpid()}']; "
        "runpy.run_module('dojob', run_name='__main__')"
    )
    ok = subprocess.run(
        [sys.executable, "-c", script, "run", f"{target}:Root", "--executor", "processes", "-j", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr + ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "dojob", "run", f"{target}:Root", "--executor", "nowhere"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--executor" in bad.stderr
