"""What the operator sees is the truth (issue 12): each defect found by trying dojob as an operator would.

Real file trees, real subprocesses, real outputs; every test here failed before its fix.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from interrupting import interrupt, launch

import dojob
from dojob.errors import JobDefinitionError

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd``, colourless, stdout and stderr captured."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


CHANGES_A_FILE = """\
    import os
    import dojob

    class MakeFile(dojob.Job):
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            if not os.path.exists(os.environ.get("TARGET_FILE", "made.txt")):
                raise FileNotFoundError("made.txt is missing")

        def Run(self, *args, **kwargs):
            with open(os.environ.get("TARGET_FILE", "made.txt"), "w") as fh:
                fh.write("made")

    class Root(dojob.DummyJob):
        DEPS = (MakeFile,)
"""


# -- 1. a run that changed the world always ends with a recap and its files ------------------------------------


def test_regression_stdlib_named_neighbours_of_the_job_file_do_not_crash_the_run_after_changes(tmp_path):
    project = tmp_path / "project"
    write(project / "jobs.py", CHANGES_A_FILE)
    # neighbours named like standard modules that the report (html), rich (colorsys, fractions) and
    # the event log (json... imported early anyway) use: before the fix, the report died on html.escape
    for name in ("html", "colorsys", "fractions", "difflib", "shlex", "getpass"):
        write(project / f"{name}.py", f"# the project's own {name}.py, nothing like the standard one\nBROKEN = True\n")
    out = cli(
        "run",
        "project/jobs.py:Root",
        "--report",
        "r.html",
        "--graph",
        "g.svg",
        "--junit",
        "j.xml",
        "--progress",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert (tmp_path / "made.txt").read_text() == "made"  # the world changed
    assert out.stdout.splitlines() == [
        "changed: MakeFile",
        out.stdout.splitlines()[1],
        "written: r.html, j.xml, g.svg",
    ]
    assert out.stdout.splitlines()[1].startswith("converged in ")
    page = (tmp_path / "r.html").read_text()
    assert 'id="verdict">converged<' in page and "<svg" in page
    ET.parse(tmp_path / "j.xml")


def test_regression_python_m_dojob_in_the_jobs_folder_is_not_broken_by_its_stdlib_named_files(tmp_path):
    write(tmp_path / "jobs.py", CHANGES_A_FILE)
    write(tmp_path / "helper_mod.py", "VALUE = 42\n")
    for name in ("html", "colorsys", "fractions"):
        write(tmp_path / f"{name}.py", "BROKEN = True\n")
    # python -m puts the working directory first on sys.path: here, the jobs' folder
    out = cli("run", "jobs.py:Root", "--report", "r.html", "--progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "written: r.html"
    assert 'id="verdict">converged<' in (tmp_path / "r.html").read_text()
    module_target = cli("list", "helper_mod:NotThere", cwd=tmp_path)  # modules there stay importable
    assert "helper_mod has no attribute 'NotThere'" in module_target.stderr


def test_regression_a_neighbour_imported_by_the_job_file_cannot_replace_what_dojob_imports(tmp_path):
    project = tmp_path / "project"
    write(project / "html.py", "WHO = 'the project'\n")
    write(project / "jobs.py", "import html\nassert html.WHO\n" + textwrap.dedent(CHANGES_A_FILE))
    out = cli("run", "project/jobs.py:Root", "--report", "r.html", cwd=tmp_path)
    # dojob imported the standard html before the file: the file's own import gets it, and fails at once,
    # before any job ran, instead of the report failing after the changes
    assert out.returncode == 2 and out.stdout == ""
    assert "cannot import target 'project/jobs.py:Root': AttributeError" in out.stderr
    assert not (tmp_path / "made.txt").exists()


def test_regression_an_output_that_fails_after_the_run_costs_neither_the_recap_nor_the_other_files(tmp_path):
    write(
        tmp_path / "jobs.py",
        """\
        import os, shutil
        import dojob

        class Tidy(dojob.Job):
            def Check(self, *args, **kwargs):
                if os.path.isdir("out"):
                    raise RuntimeError("out/ still there")

            def Run(self, *args, **kwargs):
                shutil.rmtree("out")  # removes the folder the graph was to be written to
        """,
    )
    (tmp_path / "out").mkdir()
    out = cli("run", "jobs.py:Tidy", "--graph", "out/g.dot", "--report", "r.html", "--junit", "j.xml", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "changed: Tidy" and lines[1].startswith("converged in ")
    assert lines[2] == "written: r.html, j.xml"
    assert lines[3].startswith("not written: out/g.dot: FileNotFoundError: ")
    assert out.stderr.startswith("dojob: error: cannot write 'out/g.dot': FileNotFoundError")
    # README: 1 when a requested output could not be written; 2 is only for mistakes found before anything ran
    assert out.returncode == 1
    assert (tmp_path / "r.html").stat().st_size > 0


def test_regression_a_graph_error_leaves_a_complete_event_log(tmp_path):
    write(
        tmp_path / "cycle.py",
        """\
        import dojob

        class A(dojob.Job):
            def Check(self, *args, **kwargs): pass
            def Run(self, *args, **kwargs): pass

        class B(dojob.Job):
            DEPS = (A,)
            def Check(self, *args, **kwargs): pass
            def Run(self, *args, **kwargs): pass

        A.DEPS = (B,)
        """,
    )
    out = cli("run", "cycle.py:B", "--events", "e.jsonl", cwd=tmp_path)
    assert out.returncode == 2
    (line,) = (tmp_path / "e.jsonl").read_text().splitlines()
    event = json.loads(line)
    assert event["event"] == "RunFailed" and event["stage"] == "graph" and event["error_type"] == "CycleError"
    assert "B -> A -> B" in event["error"]
    missing = cli("run", "nothere.py:B", "--events", "e.jsonl", cwd=tmp_path)
    assert missing.returncode == 2
    event = json.loads((tmp_path / "e.jsonl").read_text())
    assert event["stage"] == "target" and "no such file" in event["error"]


def test_regression_errors_name_the_file_not_an_internal_module(tmp_path):
    write(
        tmp_path / "jobs.py",
        """\
        import dojob

        class NotAJob:
            pass

        class Bad(dojob.Job):
            DEPS = (NotAJob,)
            def Check(self, *args, **kwargs): pass
            def Run(self, *args, **kwargs): pass
        """,
    )
    setup = """\
        import dojob

        class Setup(dojob.Job):
            def Check(self, *args, **kwargs): pass
            def Run(self, *args, **kwargs): pass
        """
    write(tmp_path / "a.py", setup)
    write(tmp_path / "b.py", setup)
    for debug in ([], ["-d"]):
        out = cli("run", "jobs.py:Bad", *debug, cwd=tmp_path)
        assert out.returncode == 2
        assert "dojob_target_" not in out.stderr, out.stderr
        assert "<class 'jobs.py:NotAJob'>" in out.stderr.splitlines()[-1]
    twice = cli("run", "a.py:Setup", "b.py:Setup", cwd=tmp_path)
    assert twice.returncode == 2
    assert twice.stderr == "dojob: graph error: two different jobs are named 'Setup': a.py:Setup and b.py:Setup\n"


def test_regression_serial_and_async_ctrl_c_do_not_claim_to_wait_for_running_tries(tmp_path):
    source = """\
        import asyncio, os, time
        import dojob

        class Sleeper(dojob.Job):
            def Check(self, *args, **kwargs):
                raise RuntimeError("not yet")

            def Run(self, *args, **kwargs):
                open("started", "w").close()
                time.sleep(30)

        class AsyncSleeper(dojob.Job):
            async def Check(self, *args, **kwargs):
                raise RuntimeError("not yet")

            async def Run(self, *args, **kwargs):
                open("started", "w").close()
                await asyncio.sleep(30)
    """
    for target in ("sleepy.py:Sleeper", "sleepy.py:AsyncSleeper"):
        (tmp_path / "started").unlink(missing_ok=True)
        proc = launch(tmp_path, source, target)
        stdout, stderr, _ = interrupt(proc, tmp_path / "started")
        assert proc.returncode == 130, (stdout, stderr)
        assert "waiting for running tries" not in stderr, (target, stderr)
        assert "dojob: interrupted: stopping now; the Cleanups run, then the recap" in stderr
        assert "run stopped: interrupted (Ctrl-C)" in stdout


# -- 2. the plan drawn as a plan ---------------------------------------------------------------------------


PLAN = """\
    import dojob

    class Done(dojob.Job):
        def Check(self, *args, **kwargs): pass
        def Run(self, *args, **kwargs): pass

    class NotYet(dojob.Job):
        DEPS = (Done,)
        def Check(self, *args, **kwargs): raise RuntimeError("the service is not configured")
        def Run(self, *args, **kwargs): pass

    class Root(dojob.DummyJob):
        DEPS = (NotYet,)
"""


def test_regression_dojob_check_draws_jobs_that_would_run_as_a_plan_not_as_failures(tmp_path):
    write(tmp_path / "plan.py", PLAN)
    out = cli("check", "plan.py:Root", "--report", "r.html", "--graph", "g.dot", "--junit", "j.xml", cwd=tmp_path)
    assert out.returncode == 1
    dot = (tmp_path / "g.dot").read_text()
    not_yet = next(line for line in dot.splitlines() if 'label="NotYet' in line)
    assert 'fillcolor="orange"' in not_yet and "would run" in not_yet
    assert 'fillcolor="red"' not in dot
    page = (tmp_path / "r.html").read_text()
    assert 'id="verdict">changes needed<' in page and "not converged" not in page
    assert '<section id="failures">' not in page and '<section id="plan"><h2>Would run</h2>' in page
    timeline = page[page.index('<section id="timeline">') :]
    assert "<title>would_run</title>" in timeline and "<title>failed</title>" not in timeline
    # the counts table and the text recap on the same page agree
    last = out.stdout.splitlines()[-2]
    assert last.startswith("changes needed") and ": 1 ok, 1 would run, 1 ok now, upstream will change" in last
    counts = re.search(r'<table id="counts">.*?</table>', page, re.S).group()
    assert re.findall(r"<td class=num>(\d+)</td>", counts)[:3] == ["1", "1", "1"]
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.find("testcase[@name='NotYet']/failure").get("type") == "would_run"


# -- 3. the cause, not the symptom ---------------------------------------------------------------------------------


COPY = """\
    import os, shutil
    import dojob

    class Copy(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *args, **kwargs):
            if not os.path.exists("dest.txt"):
                raise FileNotFoundError("dest.txt is missing")

        def Run(self, *args, **kwargs):
            shutil.copy("source.txt", "dest.txt")  # there is no source.txt: the cause
"""


def test_regression_a_failed_job_shows_the_runs_error_before_the_rechecks(tmp_path):
    write(tmp_path / "copyjob.py", COPY)
    out = cli("run", "copyjob.py:Copy", "-v", "--report", "r.html", "--junit", "j.xml", cwd=tmp_path)
    assert out.returncode == 1
    first = out.stdout.splitlines()[0]
    assert first.startswith("FAILED  Copy (2 tries): Run raised FileNotFoundError: [Errno 2] No such file")
    assert "source.txt" in first and first.endswith("; then the recheck: FileNotFoundError: dest.txt is missing")
    assert first.index("source.txt") < first.index("dest.txt is missing")
    assert re.search(r'^Copy\.run: fail "FileNotFoundError: .*source\.txt', out.stderr, re.M), out.stderr
    page = (tmp_path / "r.html").read_text()
    failures = page[page.index('<section id="failures">') :]
    assert "source.txt" in failures and "<summary>Run's traceback</summary>" in failures
    assert failures.index("source.txt") < failures.index("dest.txt is missing")
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase[@name='Copy']/failure")
    assert failure.get("message") == first.removeprefix("FAILED  ")  # README: its message is its recap line
    assert "Run raised:" in failure.text and "then the recheck failed:" in failure.text


def test_regression_the_report_carries_the_cause(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(textwrap.dedent(COPY), namespace)
    report = dojob.run(namespace["Copy"])
    job = report["Copy"]
    assert isinstance(job.cause, FileNotFoundError) and "source.txt" in str(job.cause)
    assert str(job.exception) == "dest.txt is missing"
    for workers in (2,):
        again = dojob.run(namespace["Copy"], workers=workers)
        assert "source.txt" in str(again["Copy"].cause)


def test_regression_the_recap_names_what_changed(tmp_path):
    write(tmp_path / "jobs.py", CHANGES_A_FILE)
    out = cli("run", "jobs.py:Root", cwd=tmp_path)
    assert out.stdout.splitlines()[0] == "changed: MakeFile"
    again = cli("run", "jobs.py:Root", cwd=tmp_path)
    assert not any(line.startswith("changed:") for line in again.stdout.splitlines())  # converged: nothing changed


# -- 4. programming errors ------------------------------------------------------------------------------------------


BUGS = """\
    import os
    import dojob

    class BadInit(dojob.Job):
        def __init__(self):
            raise RuntimeError("init went wrong")
        def Check(self, *args, **kwargs): pass
        def Run(self, *args, **kwargs): pass

    class Typo(dojob.Job):
        RETRY_DELAY = 0
        def Check(self, *args, **kwargs):
            return os.path.exits("x")          # AttributeError: a bug, not drift
        def Run(self, *args, **kwargs):
            open("run-called", "a").write("x")

    class Root(dojob.DummyJob):
        DEPS = (BadInit, Typo)
"""


def test_regression_programming_errors_are_marked_in_plan_recap_report_and_junit(tmp_path):
    write(tmp_path / "bugs.py", BUGS)
    plan = cli("check", "bugs.py:Root", cwd=tmp_path)
    assert "BadInit  cannot start  (programming error in __init__: RuntimeError: init went wrong)" in plan.stdout
    assert "Typo     would run  (programming error in Check? AttributeError: " in plan.stdout
    assert plan.stdout.splitlines()[-1].endswith(", 2 programming errors")
    out = cli("run", "bugs.py:Root", "--report", "r.html", "--junit", "j.xml", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert lines[0] == "FAILED  BadInit (3 tries): programming error in __init__: RuntimeError: init went wrong"
    assert lines[2].startswith("FAILED  Typo (3 tries): programming error in Check: AttributeError: ")
    assert "programming error in __init__" in (tmp_path / "r.html").read_text()
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite.get("errors") == "2" and suite.find("testcase[@name='Typo']/error") is not None
    assert (tmp_path / "run-called").read_text() == "xxx"  # without --strict, Run ran on each try


def test_regression_strict_fails_programming_errors_without_calling_run(tmp_path, monkeypatch):
    write(tmp_path / "bugs.py", BUGS)
    out = cli("run", "bugs.py:Root", "--strict", cwd=tmp_path)
    assert out.returncode == 1
    assert not (tmp_path / "run-called").exists()
    assert "FAILED  Typo (3 tries): programming error in Check: AttributeError: " in out.stdout
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(textwrap.dedent(BUGS), namespace)
    for workers in (1, 3):
        report = dojob.run(namespace["Typo"], strict=True, workers=workers, default_retry_delay=0)
        assert isinstance(report["Typo"].exception, AttributeError) and report["Typo"].tries == 3
    assert not (tmp_path / "run-called").exists()


@pytest.mark.parametrize(
    ("body", "typo", "suggestion"),
    [
        ("Tries = 5", "Tries", "TRIES"),
        ("deps = ()", "deps", "DEPS"),
        ("RETRY_DELAYS = 1", "RETRY_DELAYS", "RETRY_DELAY"),
        ("def check(self, *args, **kwargs): pass", "check", "Check"),
        ("def Cleanpu(self): pass", "Cleanpu", "Cleanup"),
        ("CRITICAl = True", "CRITICAl", "CRITICAL"),
    ],
)
def test_regression_typos_of_known_names_are_errors_with_a_suggestion(body, typo, suggestion):
    ns: dict = {}
    source = f"""
import dojob
class Job(dojob.Job):
    {body}
    def Check(self, *args, **kwargs): raise RuntimeError("x")
    def Run(self, *args, **kwargs): raise AssertionError("must not run")
"""
    exec(source, ns)
    with pytest.raises(
        JobDefinitionError, match=rf"defines '{typo}', which dojob does not read: did you mean {suggestion}"
    ):
        dojob.run(ns["Job"])


def test_typo_check_leaves_ordinary_names_alone():
    class Fine(dojob.Job):
        TRIES = 2
        url = "http://example.com"
        retries_seen = 0

        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def helper(self):
            pass

    assert dojob.run(Fine).success


def test_regression_a_typo_is_reported_by_the_cli_before_anything_runs(tmp_path):
    write(
        tmp_path / "typo.py",
        """\
        import dojob

        class Job(dojob.Job):
            Tries = 5
            def Check(self, *args, **kwargs): raise RuntimeError("x")
            def Run(self, *args, **kwargs): open("ran", "w").close()
        """,
    )
    out = cli("run", "typo.py:Job", cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "ran").exists()
    assert out.stderr == (
        "dojob: graph error: job 'Job': defines 'Tries', which dojob does not read: did you mean TRIES?\n"
    )


# -- 6. pictures ----------------------------------------------------------------------------------------------------


def test_regression_a_huge_error_message_does_not_break_the_picture(tmp_path):
    write(
        tmp_path / "loud.py",
        """\
        import dojob

        class Loud(dojob.Job):
            TRIES = 1
            def Check(self, *args, **kwargs): raise RuntimeError("x" * 20000 + " end")
            def Run(self, *args, **kwargs): pass
        """,
    )
    out = cli("run", "loud.py:Loud", "--graph", "g.svg", "--report", "r.html", cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # failed, but every file was written
    assert out.stdout.splitlines()[-1] == "written: r.html, g.svg"
    ET.parse(tmp_path / "g.svg")
    page = (tmp_path / "r.html").read_text()
    assert "could not be drawn" not in page and '<div class="figure"><svg' in page
    assert all(len(line) < 3000 for line in (tmp_path / "g.svg").read_text().splitlines() if "<title>" in line)


def test_regression_invisible_characters_in_names_are_shown(tmp_path):
    write(
        tmp_path / "names.py",
        """\
        import dojob

        def job(name, fails):
            def check(self, *args, **kwargs):
                if fails:
                    raise RuntimeError("no\u200bthing\u200e here")
            return type(name, (dojob.Job,), {"Check": check, "Run": lambda self, *a, **k: None, "TRIES": 1})

        Root = type("Root", (dojob.DummyJob,), {"DEPS": (job("DeployProd", False), job("Deploy\\u200bProd", True),
                                                         job("Deploy\\u2067Prod", True))})
        """,
    )
    listing = cli("list", "names.py:Root", cwd=tmp_path)
    assert "Deploy\\u200bProd" in listing.stdout and "Deploy\\u2067Prod" in listing.stdout
    assert "\u200b" not in listing.stdout and "\u2067" not in listing.stdout
    out = cli("run", "names.py:Root", "--graph", "g.dot", "--report", "r.html", cwd=tmp_path)
    assert "FAILED  Deploy\\u200bProd (1 try)" in out.stdout and "\u200b" not in out.stdout
    dot = (tmp_path / "g.dot").read_text()
    assert "\u200b" not in dot and "Deploy\\\\u200bProd" in dot
    page = (tmp_path / "r.html").read_text()  # names, messages and the tracebacks' text alike
    assert "\u200b" not in page and "\u200e" not in page and "\u2067" not in page
    assert "no\\u200bthing\\u200e here" in page and "Deploy\\u200bProd" in page


def test_regression_a_wide_fan_out_is_summarised_in_the_picture_and_report(tmp_path):
    write(
        tmp_path / "fan.py",
        """\
        import dojob

        def leaf(i):
            def check(self, *args, **kwargs):
                if i in (7, 30):
                    raise RuntimeError(f"host {i} unreachable")
            return type(f"Host{i:02d}", (dojob.Job,), {"Check": check, "Run": lambda self, *a, **k: None,
                                                       "TRIES": 1})

        Root = type("Root", (dojob.DummyJob,), {"DEPS": tuple(leaf(i) for i in range(50))})
        """,
    )
    out = cli("run", "fan.py:Root", "--graph", "g.dot", "--report", "r.html", cwd=tmp_path)
    assert out.returncode == 1
    dot = (tmp_path / "g.dot").read_text()
    nodes = [line for line in dot.splitlines() if re.match(r"  n\d+ \[", line)]
    assert len(nodes) == 4, nodes  # Root, the two failures one by one, and one node for the 48 others
    assert any('label="48 jobs ok' in line for line in nodes)
    assert sum('fillcolor="red"' in line for line in nodes) == 2
    assert "48 jobs ok" in (tmp_path / "r.html").read_text()
    graph = cli("graph", "fan.py:Root", cwd=tmp_path)
    assert "50 jobs pending" in graph.stdout


# -- 8. JUnit, and when / where / how ---------------------------------------------------------------------------


def test_junit_has_one_testcase_per_job_and_the_report_says_when_where_and_how(tmp_path):
    write(tmp_path / "copyjob.py", COPY)
    write(tmp_path / "jobs.py", CHANGES_A_FILE)
    out = cli(
        "run", "jobs.py:Root", "copyjob.py:Copy", "--set", "password=hunter2", "--arg", "s3cret",
        "--junit", "j.xml", "--report", "r.html", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 1
    tree = ET.parse(tmp_path / "j.xml").getroot()
    suite = tree.find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"MakeFile", "Root", "Copy"}
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("errors") == "0"
    assert cases["Copy"].find("failure") is not None and cases["MakeFile"].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    page = (tmp_path / "r.html").read_text()
    for value in (props["host"], props["user"], str(tmp_path)):
        assert value and value in page
    assert props["cwd"] == str(tmp_path)
    assert props["command"] == (
        "dojob run jobs.py:Root copyjob.py:Copy --set password=\u2026 --arg \u2026 --junit j.xml --report r.html"
    )
    assert "hunter2" not in page + (tmp_path / "j.xml").read_text() and "s3cret" not in page
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", props["started"])


# -- 9. first steps: no Graphviz, no browser needed to run jobs -------------------------------------------------


def test_jobs_run_without_graphviz_and_pictures_say_how_to_get_it(tmp_path):
    write(tmp_path / "jobs.py", CHANGES_A_FILE)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PATH"] = "/nonexistent"  # no dot, no chromium, nothing
    run = [sys.executable, "-m", "dojob", "run", "jobs.py:Root"]
    svg = subprocess.run([*run, "--graph", "g.svg"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert svg.returncode == 2 and not (tmp_path / "made.txt").exists()  # refused before anything changed
    assert svg.stderr == (
        "dojob: error: writing 'g.svg' needs Graphviz's 'dot' program, which is not installed: "
        "sudo apt-get install graphviz (macOS: brew install graphviz), or write a .dot file\n"
    )
    out = subprocess.run(
        [*run, "--graph", "g.dot", "--report", "r.html"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "written: r.html, g.dot"
    page = (tmp_path / "r.html").read_text()
    assert "The graph could not be drawn" in page and "Graphviz" in page  # the report says why, and how


# -- statuses this code does not know are shown, never a crash ---------------------------------------------------


def test_a_status_the_views_do_not_know_is_shown_by_name_everywhere():
    import enum

    from dojob.junit import to_junit
    from dojob.render import graph_dot
    from dojob.report import JobReport, Report

    class Future(str, enum.Enum):  # e.g. a status another part of dojob adds later
        PAUSED = "paused"

        @property
        def ok(self):
            return None

    class Only(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    real = dojob.run(Only)
    job = JobReport("Only", Future.PAUSED, 1, None, RuntimeError("held"), 0.0, 0.1)
    report = Report({"Only": job}, success=False, elapsed=0.1, roots=("Only",), graph=real.graph)
    text = report.summary()
    assert "PAUSED       Only (try 1): RuntimeError: held" in text
    assert text.splitlines()[-1].endswith(", 1 paused")
    dot = graph_dot(report.graph, report)
    assert 'fillcolor="lightpink"' in dot and "paused" in dot
    page = report.to_html()
    assert "paused" in page
    ET.fromstring(to_junit(report))


def test_junit_marks_blocked_jobs_skipped_and_stays_valid_xml_with_hostile_text(tmp_path):
    from dojob.junit import to_junit

    def check(self, *args, **kwargs):
        raise RuntimeError('bad \x00\x1b[31m byte \ud800 and <xml/> & "quotes"')

    hostile = type("Evil\x1b]0;title\x07\x01Name", (dojob.Job,), {"Check": check, "Run": lambda s, *a, **k: None})
    hostile.TRIES = 1
    above = type("Above", (dojob.Job,), {"DEPS": (hostile,), "Check": lambda s, *a, **k: None, "Run": lambda s: None})
    report = dojob.run(above)
    data = to_junit(report, context={"command": "dojob run x\x1b"})
    root = ET.fromstring(data)
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert cases["Above"].find("skipped").get("message") == "blocked by Evil\x1b]0;title\x07\x01Name".translate(
        {0x1B: "\\x1b", 0x07: "\\x07", 0x01: "\\x01"}
    )
    (evil,) = [c for name, c in cases.items() if name.startswith("Evil")]
    assert "<xml/>" in evil.find("failure").get("message")
    assert root.find("testsuite").get("skipped") == "1" and root.find("testsuite").get("failures") == "1"


def test_the_command_line_shown_in_reports_hides_every_spelling_of_set_and_arg_values():
    from dojob.cli import command_line

    argv = ["run", "j.py:R", "--set", "token=hunter2", '--set=pw:="x1"', "--se", "k=v2", "--arg", "a3"]
    argv += ["--arg=:=[4]", "--ar", "a5", "--report", "my report.html"]
    shown = command_line(argv)
    assert shown == (
        "dojob run j.py:R --set token=\u2026 --set=pw:=\u2026 --se k=\u2026 --arg \u2026 --arg=:=\u2026 --ar \u2026 "
        "--report 'my report.html'"
    )
    for secret in ("hunter2", "x1", "v2", "a3", "[4]", "a5"):
        assert secret not in shown


def test_regression_typo_check_knows_the_retry_policy_and_tag_attributes():
    """RETRY_MAX_DELAY was taken for a typo of RETRY_DELAY once both features met."""
    import dojob

    class Capped(dojob.Job):
        RETRY_DELAY = 0
        RETRY_BACKOFF = 2
        RETRY_MAX_DELAY = 1
        RETRY_JITTER = 0
        RETRY_FROM = "end"
        TAGS = ("db",)

        def Check(self):
            return True

        def Run(self):
            pass

    report = dojob.run(Capped)
    assert report.success and report["Capped"].tries == 1

    class Typo(dojob.Job):
        RETRY_MAX_DELAYS = 1

        def Check(self):
            return True

    with pytest.raises(dojob.JobDefinitionError, match="did you mean RETRY_MAX_DELAY"):
        dojob.run(Typo)
