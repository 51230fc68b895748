"""README.rst's promises that no other test pinned: each test here fails if the promise it names breaks.

The comment above each test quotes the README sentence it holds to. Where README speaks of the
``dojob`` command, the test drives the command (a real process, real files, real signals).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
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


def test_history_compares_runs_of_the_same_file_whatever_the_folder_they_ran_from(tmp_path):
    readme_says("Runs are compared with the runs of the same *target*: the TARGETs of the ``dojob`` command with")
    readme_says("their files resolved")
    history = tmp_path / "shared.sqlite3"
    folder = tmp_path / "first"
    folder.mkdir()
    write(folder / "jobs.py", MARKED)
    one = cli("run", "first/jobs.py:Marked", "--history", str(history), cwd=tmp_path)
    assert one.returncode == 0 and "drifted" not in one.stdout, one.stdout + one.stderr
    again = cli("run", "first/jobs.py:Marked", "--history", str(history), cwd=tmp_path)  # converged: nothing to say
    assert again.returncode == 0 and "drifted" not in again.stdout, again.stdout
    two = cli("run", "jobs.py:Marked", "--history", str(history), cwd=folder)  # the same file, named from elsewhere
    assert two.returncode == 0, two.stderr
    drifted = r"^drifted since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(run 2\): Marked$"
    assert re.search(drifted, two.stdout, re.M), two.stdout
    shown = cli("history", "--history", str(history), "--json", cwd=tmp_path)
    cwds = [run["cwd"] for run in json.loads(shown.stdout)]
    assert sorted(cwds) == sorted([str(tmp_path), str(tmp_path), str(folder)]), cwds


def test_the_command_keeps_the_last_1000_runs_of_each_target(tmp_path, monkeypatch):
    readme_says("The last 1 000 runs of each target are kept.")
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


# -- 14. SIGHUP re-imports the target's own module, not the modules it imports ----------------------------------


def test_a_reload_reimports_the_target_module_but_not_the_modules_it_imports(tmp_path):
    readme_says("Only the target's own module is re-imported, not the modules it imports.")
    write(tmp_path / "helper.py", 'VALUE = "old"\n')
    app = """\
        import dojob
        import helper

        TAG = "{tag}"

        class Show(dojob.Job):
            def Check(self, *args, **kwargs):
                with open("seen.txt", "a") as fh:
                    fh.write(TAG + ":" + helper.VALUE + "\\n")
    """
    write(tmp_path / "app.py", app.format(tag="v1"))
    with Proc("run", "app.py:Show", "--every", "1h", cwd=tmp_path, env=env_for(tmp_path)) as proc:
        proc.wait_for(r"^run 1 at ")
        write(tmp_path / "helper.py", 'VALUE = "new"\n')
        write(tmp_path / "app.py", app.format(tag="v2"))
        proc.signal(signal.SIGHUP)
        proc.wait_for(r"^dojob: reloaded app\.py:Show: 1 job", stream="err")
        proc.wait_for(r"^run 2 at ")
        proc.signal(signal.SIGTERM)
        assert proc.finish() == 143, proc.err
    # run 2 ran the new app.py (v2) with the helper module it had imported the first time
    assert (tmp_path / "seen.txt").read_text().splitlines() == ["v1:old", "v2:old"]


# -- 15. pictures: the tooltip's order, a programming error's note, the fold beyond 12 dependencies ---------------

PICTURED = """\
    import dojob

    class Fails(dojob.Job):
        TRIES = 1
        def Check(self, *args, **kwargs):
            raise RuntimeError("the recheck says no")
        def Run(self, *args, **kwargs):
            raise OSError("the run broke")

    class Buggy(dojob.Job):
        TRIES = 1
        def Check(self, *args, **kwargs):
            return undefined_name
        def Run(self, *args, **kwargs):
            pass

    def leaves(prefix, n):
        body = {"Check": lambda self, *a, **k: None, "Run": lambda self, *a, **k: None}
        return [type(f"{prefix}{i:02d}", (dojob.Job,), dict(body)) for i in range(n)]

    class Twelve(dojob.DummyJob):
        DEPS = leaves("Apart", 12)

    class Thirteen(dojob.DummyJob):
        DEPS = leaves("Folded", 13)

    class Root(dojob.DummyJob):
        DEPS = (Fails, Buggy, Twelve, Thirteen)
"""


def test_the_graph_puts_the_runs_error_first_notes_programming_errors_and_folds_beyond_12_deps(tmp_path):
    readme_says("A failed job's tooltip gives the Run's error before the recheck's; a programming error says so")
    readme_says("a job with more than 12 dependencies has the simple ones (leaves only it needs, failures aside)")
    write(tmp_path / "pictured.py", PICTURED)
    out = cli("run", "pictured.py:Root", "--graph", "g.dot", "--retry-delay", "0", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    dot = (tmp_path / "g.dot").read_text()
    nodes = {m.group(1): m.group(0) for m in re.finditer(r'^\s*n\d+ \[label="([^"\\]*)[^\n]*', dot, re.M)}
    tooltip = re.search(r'tooltip="([^"]*)"', nodes["Fails"]).group(1)
    assert tooltip.index("OSError: the run broke") < tooltip.index("RuntimeError: the recheck says no"), tooltip
    assert re.search(r'label="Buggy\\n1 try, [^"]*\\nprogramming error in Check"', nodes["Buggy"]), nodes["Buggy"]
    assert "NameError" in nodes["Buggy"]
    # 12 dependencies: each drawn; 13: the leaves fold into one node per status, each still named in its tooltip
    assert sorted(n for n in nodes if n.startswith("Apart")) == [f"Apart{i:02d}" for i in range(12)]
    assert not any(n.startswith("Folded") for n in nodes), sorted(nodes)
    (fold,) = [line for n, line in nodes.items() if n.startswith("13 jobs ok")]
    assert all(f"Folded{i:02d}" in fold for i in range(13)), fold


# -- 16. the five programming-error types ----------------------------------------------------------------------

PROGRAMMING_ERRORS = {
    "NameError": "undefined_name",
    "AttributeError": "os.path.exits('x')",
    "TypeError": "len(5)",
    "ImportError": "from os import no_such_name_for_dojob",
    "SyntaxError": "compile('def', 'x.py', 'exec')",
}


@pytest.mark.parametrize("kind", sorted(PROGRAMMING_ERRORS))
def test_each_programming_error_type_is_marked_and_strict_fails_it_without_its_run(kind):
    readme_says(
        "A job whose Check fails because its code is wrong (``NameError``, ``AttributeError``, ``TypeError``, "
        "``ImportError``, ``SyntaxError``) is marked"
    )
    from dojob.diagnose import programming_error

    runs: list[str] = []
    namespace: dict = {"os": os}
    exec(f"def check(self, *args, **kwargs):\n    {PROGRAMMING_ERRORS[kind]}\n", namespace)
    job = type("Buggy", (dojob.Job,), {"Check": namespace["check"], "Run": lambda self, *a, **k: runs.append("x")})
    plan = dojob.run(job, plan=True)
    assert "(programming error in Check? " + kind in plan.summary(), plan.summary()
    report = dojob.run(job, strict=True, default_retry_delay=0)
    assert report["Buggy"].status is dojob.Status.FAILED
    assert type(report["Buggy"].exception).__name__ == kind
    assert programming_error(report["Buggy"]) == "Check"
    assert f"FAILED  Buggy (3 tries): programming error in Check: {kind}: " in report.summary(), report.summary()
    assert runs == []  # --strict: Run never called
    lenient = dojob.run(job, default_retry_delay=0)
    assert lenient["Buggy"].status is dojob.Status.FAILED and runs == ["x", "x", "x"]


# -- 17. a job's TIMEOUT does not bound its Cleanup -------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 4])
def test_a_jobs_timeout_does_not_apply_to_its_cleanup(workers):
    readme_says("the job's ``TIMEOUT`` applies to its Check, Run and recheck, not to its Cleanup")
    cleaned: list[float] = []

    class SlowCleanup(dojob.Job):
        TIMEOUT = 0.1

        def Check(self, *args, **kwargs):
            pass

        def Cleanup(self):
            started = time.monotonic()
            time.sleep(0.3)
            cleaned.append(time.monotonic() - started)

    report = dojob.run(SlowCleanup, workers=workers)  # a Cleanup failure would raise CleanupError
    assert report.success and report["SlowCleanup"].status is dojob.Status.OK
    assert len(cleaned) == 1 and cleaned[0] >= 0.3


# -- 18. DoJobber differences: silent imports; write_graph() without Graphviz -----------------------------------


def _python(code: str, cwd: Path, path: str) -> subprocess.CompletedProcess:
    """``python -c CODE`` with ``PATH`` set to ``path`` (no ``dot``, no ``display`` when empty)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PATH"] = path
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", ["dojob.compat", "dojob.dojobber"])
def test_nothing_is_printed_at_import_even_without_graphviz_or_imagemagick(tmp_path, module):
    readme_says("nothing is printed at import (DoJobber prints ``** Graphs will not be supported``")
    done = _python(f"import {module}", tmp_path, path="")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_write_graph_without_graphviz_raises_render_error_and_writes_nothing(tmp_path):
    readme_says("``write_graph()`` without Graphviz raises ``RenderError`` (a ``RuntimeError``")
    code = textwrap.dedent(
        """\
        import dojob
        from dojob import RenderError

        class Root(dojob.Job):
            def Check(self, *args, **kwargs):
                pass
            def Run(self, *args, **kwargs):
                pass

        dj = dojob.DoJobber()
        dj.configure(Root)
        dj.checknrun()
        with open("graph.png", "wb") as fh:
            try:
                dj.write_graph(fh)
            except RenderError as exc:
                assert isinstance(exc, RuntimeError)
                print("RenderError:", exc)
            else:
                print("no error")
        """
    )
    done = _python(code, tmp_path, path="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("RenderError: "), done.stdout
    assert "graphviz" in done.stdout.lower()
    assert (tmp_path / "graph.png").read_bytes() == b""


# -- 19. --verify: a fresh instance, the same arguments and global_storage, no Run ------------------------------


def test_verify_checks_a_fresh_instance_with_the_same_arguments_and_storage_and_no_run():
    readme_says(
        "every job's Check is called once more on a fresh instance, with the same arguments and "
        "``global_storage`` and no Run"
    )
    checks: list[tuple[object, tuple, dict, object]] = []
    runs: list[object] = []

    class Settles(dojob.Job):
        def Check(self, *args, **kwargs):
            checks.append((self, args, dict(kwargs), self.global_storage))
            if "settled" not in self.global_storage:
                raise RuntimeError("not settled")

        def Run(self, *args, **kwargs):
            runs.append(self)
            self.global_storage["settled"] = True

    storage = dojob.SharedStorage()
    report = dojob.run(Settles, args=("a", 1), kwargs={"k": "v"}, global_storage=storage, verify=True)
    assert report.success, report.summary()
    assert len(runs) == 1  # the verification called no Run
    assert len(checks) == 3  # check, recheck, then the verification's Check
    (first, *_), (recheck, *_), (verifier, args, kwargs, seen) = checks
    assert recheck is first and verifier is not first  # a fresh instance
    assert type(verifier) is Settles
    assert args == ("a", 1) and kwargs == {"k": "v"}
    assert seen is storage and seen["settled"] is True


# -- 20. defaults: dojob history -n 20, the report's last ten runs, dojob.aio's shutdown_timeout of 1 s ----------


class Steady(dojob.Job):
    """Always converged: a run of it is quick to record."""

    def Check(self, *args, **kwargs):
        pass

    def Run(self, *args, **kwargs):
        pass


def test_dojob_history_lists_20_runs_by_default(tmp_path):
    readme_says("``-n N`` how many runs (default 20)")
    history = str(tmp_path / "h.sqlite3")
    for _ in range(21):
        dojob.run(Steady, history=history)
    shown = cli("history", "--history", history, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    runs = [int(m.group(1)) for m in re.finditer(r"^run (\d+) ", shown.stdout, re.M)]
    assert runs == list(range(2, 22)), shown.stdout  # the last 20, oldest first
    more = cli("history", "--history", history, "-n", "21", cwd=tmp_path)
    assert [int(m.group(1)) for m in re.finditer(r"^run (\d+) ", more.stdout, re.M)] == list(range(1, 22))


def test_the_reports_history_strip_shows_the_last_ten_runs(tmp_path):
    readme_says("then a strip per job of its last ten runs, one cell coloured by status per run")
    from dojob.timeline import Timeline

    history = str(tmp_path / "h.sqlite3")
    for _ in range(10):
        dojob.run(Steady, history=history)
    timeline = Timeline()
    report = dojob.run(Steady, history=history, observers=[timeline])
    page = report.to_html(timeline)
    strip = re.search(r'<table class="strip" id="strip">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r"<th>#(\d+)</th>", strip) == [str(n) for n in range(2, 12)]
    (row,) = re.findall(r"<tr><th>Steady</th>(.*?)</tr>", strip)
    assert row.count('<td title="ok"') == 10 and row.count("<td") == 10


@pytest.mark.parametrize("kind", ["Scheduler", "PureScheduler"])
def test_an_aio_schedulers_shutdown_waits_1_second_by_default(kind):
    readme_says("within the scheduler's ``shutdown_timeout`` (1 s by default; one still running then is cancelled)")
    import dojob.aio
    from dojob.aio import Job

    Scheduler = getattr(dojob.aio, kind)

    finished: list[str] = []

    async def work():
        return 1

    async def slow_shutdown():
        await asyncio.sleep(3)
        finished.append("shutdown")

    async def shutdown():
        finished.append("quick")

    scheduler = Scheduler(Job(work(), coshutdown=shutdown(), label="quick"))
    assert scheduler.run() is True and finished == ["quick"]  # a shutdown that returns is awaited
    scheduler = Scheduler(Job(work(), coshutdown=slow_shutdown(), label="work"))
    started = time.monotonic()
    assert scheduler.run() is True
    elapsed = time.monotonic() - started
    assert finished == ["quick"]  # the slow one was cancelled when the second had passed
    assert 0.95 <= elapsed < 2.9, elapsed


# -- 21. the timeline's colours, and the thread in each bar's tooltip --------------------------------------------

RETRIED = """\
    import dojob

    class Flaky(dojob.Job):
        TRIES = 3
        RETRY_DELAY = 0.01
        def Check(self, *args, **kwargs):
            if self.global_storage.get("runs", 0) < 2:
                raise RuntimeError("not yet")
        def Run(self, *args, **kwargs):
            self.global_storage["runs"] = self.global_storage.get("runs", 0) + 1
        def Cleanup(self):
            pass
"""


def test_the_timeline_colours_each_phase_and_names_the_thread_it_ran_on(tmp_path):
    readme_says("Each phase of each try is a bar (check blue, run orange, recheck green, cleanup brown)")
    readme_says("Hovering a bar shows its times, its error and, for a try's phases, the thread it ran on")
    write(tmp_path / "retried.py", RETRIED)
    out = cli("run", "retried.py:Flaky", "-j", "2", "--report", "r.html", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    page = (tmp_path / "r.html").read_text()
    bars = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*><title>Flaky (try \d+ )?(\w+):([^<]*)</title>', page)
    colours = {phase: fill for fill, _, phase, _ in bars}
    assert colours == {"check": "#4e79a7", "run": "#f28e2b", "recheck": "#59a14f", "cleanup": "#9c755f"}, bars
    tries = [(t.strip(), phase) for _, t, phase, _ in bars if t]
    assert tries == [(f"try {n}", p) for n in (1, 2) for p in ("check", "run", "recheck")], tries
    for _, t, phase, text in bars:
        if t:  # the tries' phases, run on the pool's thread
            assert text.rstrip().endswith("on dojob-0"), (phase, text)
    failed = [text for _, t, phase, text in bars if t == "try 1 " and phase == "check"]
    assert "RuntimeError: not yet" in failed[0]


# -- 24. the loop's drift seam takes any callable -----------------------------------------------------------------


def test_the_loop_takes_any_drift_callable_and_its_findings_reach_the_recap(tmp_path, monkeypatch):
    readme_says("``Loop(drift=...)`` takes any callable ``(report, run_number) -> LoopFindings(drifted, flapping)``")
    import argparse
    import io

    from dojob.reconcile import Loop, LoopFindings

    calls: list[tuple[bool, int]] = []

    def detector(report, run_number):
        calls.append((report.success, run_number))
        if run_number == 2:
            return LoopFindings(drifted=(("Steady", "run 1"),), flapping=("Steady",))
        return LoopFindings()

    ns = argparse.Namespace(
        every=0.05, jitter=None, max_runs=2, progress=False, report=None, verbose=False, debug=False, targets=["x"]
    )
    errors: list[str] = []
    loop = Loop(ns, [Steady], {}, err=lambda message, exc=None: errors.append(message), drift=detector)
    loop.out = io.StringIO()
    assert loop.run() == 0
    assert calls == [(True, 1), (True, 2)] and errors == []
    lines = loop.out.getvalue().splitlines()
    assert lines[0].startswith("run 1 at ") and lines[1].startswith("run 2 at "), lines
    assert lines[2:] == ["    drifted: Steady (converged in run 1)", "    flapping: Steady"], lines
