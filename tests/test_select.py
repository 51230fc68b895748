"""Selection: only (globs), tags, skip; in dojob.run and on the command line (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dojob
from dojob import SelectionError, Status
from dojob.events import JobFinished, TryStarted
from dojob.render import graph_dot

DRIVERS = [
    pytest.param({}, id="serial"),
    pytest.param({"workers": 3}, id="threads"),
    pytest.param({"workers": 2, "executor": "processes"}, id="processes"),
    pytest.param({"asynchronous": True}, id="async"),
]


def graph(asynchronous: bool = False):
    """Root -> (App -> (Db, Config), Web -> (Config, Cdn)); Db tagged db, Web and Cdn tagged web."""
    made = {}

    def job(name, deps=(), tags=()):
        if asynchronous:

            async def check(self, *a, **k):
                if self.global_storage.get(type(self).__name__) is None:
                    raise LookupError("not yet")

            async def run(self, *a, **k):
                self.global_storage[type(self).__name__] = True
        else:

            def check(self, *a, **k):
                if self.global_storage.get(type(self).__name__) is None:
                    raise LookupError("not yet")

            def run(self, *a, **k):
                self.global_storage[type(self).__name__] = True

        made[name] = type(name, (dojob.Job,), {"DEPS": tuple(made[d] for d in deps), "TAGS": tags,
                                                "Check": check, "Run": run})  # fmt: skip
        return made[name]

    job("Db", tags=("db",))
    job("Config")
    job("Cdn", tags=("web",))
    job("App", ("Db", "Config"))
    job("Web", ("Config", "Cdn"), tags=("web", "front"))
    made["Root"] = type("Root", (dojob.DummyJob,), {"DEPS": (made["App"], made["Web"])})
    return made


def run(options, **selection):
    options = dict(options)
    jobs = graph(options.pop("asynchronous", False))
    storage: dict = {}
    started = []
    report = dojob.run(
        jobs["Root"], global_storage=storage, observers=[lambda e: started.append(e.job) if isinstance(e, TryStarted)
                                                          else None], **options, **selection,
    )  # fmt: skip
    return report, storage, started


@pytest.mark.parametrize("options", DRIVERS)
def test_only_runs_the_matches_and_what_they_need(options):
    report, storage, started = run(options, only="App")
    assert list(report.jobs) == ["Db", "Config", "App"]
    assert sorted(storage) == ["App", "Config", "Db"]
    assert sorted(started) == ["App", "Config", "Db"] and report.success
    assert report.roots == ("App",)


@pytest.mark.parametrize("options", DRIVERS)
def test_tags_select_and_union_with_only(options):
    report, storage, _ = run(options, tags=["db"])
    assert list(report.jobs) == ["Db"]
    report, storage, _ = run(options, tags="web", only="D?")
    assert list(report.jobs) == ["Db", "Config", "Cdn", "Web"] and sorted(storage) == ["Cdn", "Config", "Db", "Web"]


def test_globs_are_fnmatch_and_repeatable():
    report, _, _ = run({}, only=["C*", "Web"])
    assert list(report.jobs) == ["Config", "Cdn", "Web"]
    report, _, _ = run({}, only="[DC]?*")
    assert list(report.jobs) == ["Db", "Config", "Cdn"]


@pytest.mark.parametrize(
    "selection, option, pattern",
    [
        ({"only": "Ap"}, "only", "Ap"),
        ({"only": ["App", "Nope*"]}, "only", "Nope*"),
        ({"tags": "dbs"}, "tags", "dbs"),
        ({"skip": "Dbx"}, "skip", "Dbx"),
        ({"only": "Web", "skip": "Db"}, "skip", "Db"),  # Db is not part of that selection
    ],
)
def test_a_pattern_that_matches_nothing_is_an_error_before_anything_runs(selection, option, pattern):
    jobs = graph()
    started = []
    with pytest.raises(SelectionError) as info:
        dojob.run(jobs["Root"], observers=[started.append], **selection)
    assert (info.value.option, info.value.pattern) == (option, pattern)
    assert repr(pattern) in str(info.value) and f"--{option}" in str(info.value)
    assert started == []


@pytest.mark.parametrize("options", DRIVERS)
def test_skip_treats_the_job_as_satisfied_and_says_so(options, capsys):
    report, storage, started = run(options, skip="App", verbose=True)
    # Db is needed only through App: left out; Config is still needed by Web
    assert list(report.jobs) == ["Config", "App", "Cdn", "Web", "Root"]
    assert report["App"].status is Status.SKIPPED and report["App"].tries == 0
    assert "App" not in started and "App" not in storage and "Db" not in storage
    assert report.success and report["Root"].status is Status.OK
    assert report["App"].ok is None  # DoJobber's tri-state: never tried
    recap = report.summary()
    assert "SKIPPED  App (--skip: treated as satisfied, not checked)" in recap
    assert recap.splitlines()[-1].endswith("1 skipped")
    assert "App: skipped (--skip: treated as satisfied, not checked)" in capsys.readouterr().err
    assert report.counts()["skipped"] == 1


def test_skip_is_an_event_after_run_started():
    jobs = graph()
    events = []
    dojob.run(jobs["Root"], skip=["Web", "Cd*"], observers=[events.append])
    assert type(events[0]).__name__ == "RunStarted"
    skipped = [e for e in events if isinstance(e, JobFinished) and e.status is Status.SKIPPED]
    assert [e.job for e in skipped] == ["Web"]  # Cdn only needed through Web: not in the run at all
    assert events.index(skipped[0]) == 1


def test_skip_in_the_graph_picture_and_the_report_page():
    jobs = graph()
    report = dojob.run(jobs["Root"], skip="Web")
    dot = graph_dot(report.graph, report)
    line = next(row for row in dot.splitlines() if 'label="Web' in row)
    assert 'fillcolor="lightyellow"' in line and "dotted" in line
    assert "skipped" in report.to_html()


def test_skip_in_a_plan():
    jobs = graph()
    report = dojob.run(jobs["Root"], plan=True, skip="Config")
    assert report["Config"].status is Status.SKIPPED
    assert report["Config"].plan == "skipped" and report["Web"].plan == "would_run_upstream_changes"
    assert report["Db"].plan == "would_run" and report["App"].plan == "would_run_upstream_changes"
    lines = report.summary().splitlines()
    assert "Config  SKIPPED (--skip: treated as satisfied, not checked)" in lines
    assert lines[-1].endswith("1 skipped")


def test_a_skipped_job_does_not_hide_a_failure_elsewhere():
    jobs = graph()
    jobs["Cdn"].Run = lambda self, *a, **k: None  # never converges
    jobs["Cdn"].TRIES = 1
    report = dojob.run(jobs["Root"], skip="App")
    assert not report.success
    assert report["Web"].status is Status.BLOCKED and report["App"].status is Status.SKIPPED


def test_regression_a_selection_keeps_post_order_and_round_robin():
    jobs = graph()
    report = dojob.run(jobs["Root"], only=["Web", "App"], workers=1)
    assert list(report.jobs) == ["Db", "Config", "App", "Cdn", "Web"]


# -- the command line ---------------------------------------------------------------


JOBS = """\
import dojob

class Db(dojob.Job):
    TAGS = ("db",)
    def Check(self, *a, **k):
        if "Db" not in self.global_storage: raise LookupError("no db")
    def Run(self, *a, **k):
        self.global_storage["Db"] = 1

class Web(dojob.Job):
    TAGS = ("web",)
    DEPS = (Db,)
    def Check(self, *a, **k):
        if "Web" not in self.global_storage: raise LookupError("no web")
    def Run(self, *a, **k):
        self.global_storage["Web"] = 1

class Mail(dojob.Job):
    def Check(self, *a, **k):
        pass
    def Run(self, *a, **k):
        pass

class Root(dojob.DummyJob):
    DEPS = (Web, Mail)
"""


def cli(*argv, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(dojob.__file__).parent.parent)
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "dojob", *argv], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "site.py").write_text(JOBS)
    return tmp_path


def test_cli_only_tags_and_skip(site):
    out = cli("run", "site.py:Root", "--only", "Web", cwd=site)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("converged") and "2 changed" in out.stdout
    out = cli("run", "site.py:Root", "--tags", "db,web", "--skip", "Db", "-v", cwd=site)
    assert out.returncode == 0, out.stderr  # skipped and nothing failed: a success, said loudly
    assert "Db: skipped (--skip: treated as satisfied, not checked)" in out.stderr
    assert "SKIPPED  Db (--skip: treated as satisfied, not checked)" in out.stdout


def test_cli_list_and_graph_follow_the_selection(site):
    out = cli("list", "site.py:Root", "--skip", "Web", cwd=site)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert list(rows) == ["Web", "Mail", "Root"] and rows["Web"][1] == "SKIPPED:job" and rows["Web"][5] == "web"
    out = cli("graph", "site.py:Root", "--only", "Db", cwd=site)
    assert out.returncode == 0 and 'label="Db"' in out.stdout and "Web" not in out.stdout
    out = cli("graph", "site.py:Root", "--skip", "Web", cwd=site)
    web = next(line for line in out.stdout.splitlines() if 'label="Web"' in line)
    assert out.returncode == 0 and 'fillcolor="lightyellow"' in web and "Db" not in out.stdout
    out = cli("check", "site.py:Root", "--only", "Mail", cwd=site)
    assert out.returncode == 0 and "Mail" in out.stdout and "Web" not in out.stdout


@pytest.mark.parametrize("command", ["run", "check", "list", "graph"])
def test_cli_pattern_matching_nothing_exits_2_naming_it(site, command):
    out = cli(command, "site.py:Root", "--only", "Wbe*", cwd=site)
    assert out.returncode == 2
    assert out.stderr.strip() == "dojob: error: --only 'Wbe*' matches no job"
    assert out.stdout == ""


def test_cli_skip_help_documents_the_meaning(site):
    out = cli("run", "--help", cwd=site)
    assert "treat the jobs matching this glob as satisfied" in " ".join(out.stdout.split())


def test_tags_are_validated_naming_the_job():
    bad = type("Bad", (dojob.Job,), {"TAGS": "db", "Check": lambda s: None, "Run": lambda s: None})
    with pytest.raises(dojob.JobAttributeError, match="job 'Bad': TAGS must be a tuple of tags"):
        dojob.build_graph(bad)


def test_skipped_in_the_event_log_and_with_arun(tmp_path):
    import asyncio
    import json

    from dojob.eventlog import EventLog

    jobs = graph()
    path = tmp_path / "events.jsonl"
    with path.open("w") as fh:
        report = asyncio.run(dojob.arun(jobs["Root"], only="App", skip="Db", observers=[EventLog(fh)]))
    assert list(report.jobs) == ["Db", "Config", "App"] and report["Db"].status is Status.SKIPPED
    logged = [json.loads(line) for line in path.read_text().splitlines()]
    assert {"event": "JobFinished", "job": "Db", "status": "skipped", "tries": 0} == {
        k: logged[1][k] for k in ("event", "job", "status", "tries")
    }
