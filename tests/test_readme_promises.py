"""README.rst's promises that no other test pinned: each test here fails if the promise it names breaks.

The comment above each test quotes the README sentence it holds to. Where README speaks of the
``dojob`` command, the test drives the command (a real process, real files, real signals).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from reconciling import Proc, env_for

import dojob

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text()


def readme_says(text: str) -> None:
    """The promise is still in README (whitespace aside): a test of a promise README dropped is noise."""
    assert " ".join(text.split()) in " ".join(README.split()), f"README no longer says: {text}"


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd``, no history unless asked for; output captured as text."""
    environ = dict(os.environ)
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        environ.pop(name, None)
    environ["DOJOB_HISTORY"] = "off"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# -- 8. the event log is flushed as it happens -------------------------------------------------------------------

PEEK = """\
    import json
    import dojob

    class Peek(dojob.Job):
        def Check(self, *args, **kwargs):
            with open(kwargs["events"]) as fh:
                seen = [json.loads(line)["event"] for line in fh]
            with open("seen.json", "w") as out:
                json.dump(seen, out)
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_event_log_is_on_disk_while_the_run_goes_on(tmp_path, workers):
    readme_says("``--events run.jsonl`` writes one JSON object per engine event, flushed as it happens")
    write(tmp_path / "peek.py", PEEK)
    out = cli("run", "peek.py:Peek", "--events", "run.jsonl", "--set", "events=run.jsonl", "-j", workers, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    # what the Check read mid-run: the run's start, its own try's start and its Check's start
    assert seen[:3] == ["RunStarted", "TryStarted", "PhaseStarted"], seen
    assert "RunFinished" not in seen


# -- 9. the loop rewrites --report and --graph after each run ----------------------------------------------------

ONCE = """\
    import os
    import dojob

    class Once(dojob.Job):
        def Check(self, *args, **kwargs):
            if not os.path.exists("done"):
                raise RuntimeError("not done yet")
        def Run(self, *args, **kwargs):
            open("done", "w").close()
"""


def test_the_loop_rewrites_its_report_and_graph_after_each_run(tmp_path):
    readme_says("``--report`` and ``--graph`` are rewritten after each run.")
    write(tmp_path / "once.py", ONCE)
    args = ["run", "once.py:Once", "--every", "0.1s", "--max-runs", "2", "--report", "r.html", "--graph", "g.dot"]
    with Proc(*args, cwd=tmp_path, env=env_for(tmp_path)) as proc:
        assert proc.finish() == 0, proc.err
    assert [line.split(" at ")[0] for line in proc.out if line.startswith("run ")] == ["run 1", "run 2"], proc.out
    assert "changed: Once" in proc.out[1] and "0 ok, 1 changed" in proc.out[0], proc.out
    # run 1 changed the job; what is on disk is run 2's: the job ok (green, not changed's dark green)
    node = next(line for line in (tmp_path / "g.dot").read_text().splitlines() if 'label="Once' in line)
    assert 'fillcolor="green"' in node, node
    page = (tmp_path / "r.html").read_text()
    assert "1 ok, 0 changed" in page and "0 ok, 1 changed" not in page


# -- 10. history: compared whatever the folder; the last 1 000 runs kept -----------------------------------------

MARKED = """\
    import os
    import dojob

    class Marked(dojob.Job):
        def Check(self, *args, **kwargs):
            if not os.path.exists("marker"):
                raise RuntimeError("no marker in " + os.getcwd())
        def Run(self, *args, **kwargs):
            open("marker", "w").close()
"""


def test_history_compares_runs_of_the_same_roots_whatever_the_folder_they_ran_from(tmp_path):
    readme_says("Runs are compared with the runs of the same root jobs (by name), whatever the folder they ran from.")
    history = tmp_path / "shared.sqlite3"
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        write(folder / "jobs.py", MARKED)
    one = cli("run", "jobs.py:Marked", "--history", str(history), cwd=first)
    assert one.returncode == 0 and "drifted" not in one.stdout, one.stdout + one.stderr
    again = cli("run", "jobs.py:Marked", "--history", str(history), cwd=first)  # converged: nothing to say
    assert again.returncode == 0 and "drifted" not in again.stdout, again.stdout
    two = cli("run", "jobs.py:Marked", "--history", str(history), cwd=second)
    assert two.returncode == 0, two.stderr
    drifted = r"^drifted since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(run 2\): Marked$"
    assert re.search(drifted, two.stdout, re.M), two.stdout
    shown = cli("history", "--history", str(history), "--json", cwd=tmp_path)
    cwds = [run["cwd"] for run in json.loads(shown.stdout)]
    assert sorted(cwds) == sorted([str(first), str(first), str(second)]), cwds


def test_the_command_keeps_the_last_1000_runs_of_each_target(tmp_path, monkeypatch):
    readme_says("The last 1 000 runs of each are kept.")
    from dojob.cli import main
    from dojob.history.store import Store

    pruned: list[int] = []
    real_prune = Store._prune

    def prune(self, target, keep):  # the real pruning runs; the spy only notes the bound asked for
        pruned.append(keep)
        return real_prune(self, target, keep)

    monkeypatch.setattr(Store, "_prune", prune)
    write(tmp_path / "jobs.py", MARKED)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "jobs.py:Marked", "--history", str(tmp_path / "h.sqlite3")]) == 0
    assert pruned == [1000]  # test_history_store pins that _prune keeps that many runs of a target


# -- 11. remote global_storage: a deleted key is deleted for the dependents and the caller --------------------


class DropsKey(dojob.Job):
    """Deletes ``gone`` from global_storage in its Run (in a worker process)."""

    def Check(self, *args, **kwargs):
        if "gone" in self.global_storage:
            raise RuntimeError("the key is still there")

    def Run(self, *args, **kwargs):
        del self.global_storage["gone"]
        self.global_storage["set"] = "here"


class SeesNoKey(dojob.Job):
    """Fails (one try) if the key its dependency deleted is still in its global_storage."""

    DEPS = (DropsKey,)
    TRIES = 1

    def Check(self, *args, **kwargs):
        if "gone" in self.global_storage or self.global_storage.get("set") != "here":
            raise RuntimeError(f"saw {sorted(self.global_storage)}")


def test_a_key_deleted_in_a_worker_process_is_gone_for_the_dependent_and_the_caller():
    readme_says("the ``global_storage`` keys the try set, changed or deleted, merged into the run's")
    storage = {"gone": 1, "kept": 2}
    report = dojob.run(SeesNoKey, executor="processes", workers=2, global_storage=storage, default_retry_delay=0)
    assert report.success, {n: (j.status, j.exception) for n, j in report.jobs.items()}
    assert report["DropsKey"].status is dojob.Status.CHANGED and report["DropsKey"].worker
    assert report["DropsKey"].worker.split(":")[-1] != str(os.getpid())  # it did run elsewhere
    assert storage == {"kept": 2, "set": "here"}


# -- 12. dojob list's columns ---------------------------------------------------------------------------------------

LISTED = """\
    import dojob

    class Db(dojob.Job):
        CLAIMS = ("db",)
        def Check(self, *args, **kwargs): pass
        def Run(self, *args, **kwargs): pass

    class Api(dojob.Job):
        CRITICAL = True
        DEPS = (Db,)
        RETRY_BACKOFF = 2
        RETRY_MAX_DELAY = 30
        RETRY_JITTER = 0.1
        RETRY_ON = (OSError,)
        RETRY_FROM = "end"
        def Check(self, *args, **kwargs): pass
        def Run(self, *args, **kwargs): pass

    class Plain(dojob.Job):
        DEPS = (Api,)
        def Check(self, *args, **kwargs): pass
        def Run(self, *args, **kwargs): pass
"""


def test_dojob_list_shows_critical_the_full_retry_policy_and_a_claim_without_capacity(tmp_path):
    readme_says("a ``!`` after it marks a ``CRITICAL`` job")
    readme_says("as ``x2,<=30s,+10%,on=OSError,from=end``")
    readme_says("``db:all`` a ``CLAIMS``")
    write(tmp_path / "listed.py", LISTED)
    out = cli("list", "listed.py:Plain", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert rows["Db"] == ["Db", "job", "3", "1", "-", "-", "db:all", "-"]
    assert rows["Api"] == ["Api", "job!", "3", "1", "x2,<=30s,+10%,on=OSError,from=end", "-", "-", "Db"]
    assert rows["Plain"] == ["Plain", "job", "3", "1", "-", "-", "-", "Api"]
    header = out.stdout.splitlines()[0].split()
    assert header == ["JOB", "KIND", "TRIES", "RETRY_DELAY", "RETRY_POLICY", "TAGS", "RESOURCES", "DEPS"]


# -- 13. an --only pattern equal to a name matches it, brackets and all --------------------------------------------


class Greet(dojob.Job):
    BIND_NAME = ("NAME",)

    def Check(self, *args, **kwargs):
        if self.NAME not in self.global_storage.setdefault("greeted", []):
            raise RuntimeError(f"{self.NAME} not greeted")

    def Run(self, *args, **kwargs):
        self.global_storage["greeted"].append(self.NAME)


class GreetAll(dojob.DummyJob):
    # As a glob, "Greet[NAME='Ada']" would be "Greet" and one character of NAME=Ad': it would match "GreetN",
    # "GreetA"... and none of these; as the exact name it matches the first only.
    DEPS = (Greet.bind(NAME="Ada"), Greet.bind(NAME="Adam"), Greet.bind(NAME="Bob"))


def test_an_only_pattern_equal_to_a_bound_name_selects_exactly_that_job():
    readme_says("a pattern equal to a name matches it, brackets and all")
    report = dojob.run(GreetAll, only="Greet[NAME='Ada']")
    ran = sorted(name for name, job in report.jobs.items() if job.status is not dojob.Status.NOT_RUN)
    assert ran == ["Greet[NAME='Ada']"], {n: j.status for n, j in report.jobs.items()}
    assert report["Greet[NAME='Ada']"].status is dojob.Status.CHANGED


def test_the_command_line_only_pattern_equal_to_a_bound_name_selects_exactly_that_job(tmp_path):
    write(
        tmp_path / "greet.py",
        """\
        import dojob

        class Greet(dojob.Job):
            BIND_NAME = ("NAME",)
            def Check(self, *args, **kwargs):
                import os
                if not os.path.exists("greeted-" + self.NAME):
                    raise RuntimeError("not yet")
            def Run(self, *args, **kwargs):
                open("greeted-" + self.NAME, "w").close()

        class GreetAll(dojob.DummyJob):
            DEPS = (Greet.bind(NAME="Ada"), Greet.bind(NAME="Adam"), Greet.bind(NAME="Bob"))
        """,
    )
    out = cli("run", "greet.py:GreetAll", "--only", "Greet[NAME='Ada']", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "changed: Greet[NAME='Ada']", out.stdout
    assert sorted(p.name for p in tmp_path.glob("greeted-*")) == ["greeted-Ada"]
