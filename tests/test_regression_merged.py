"""Regression tests for defects found where the features of several branches meet (adversarial review)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dojob


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd``, history off, stdout and stderr captured."""
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    base["DOJOB_HISTORY"] = "off"
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


SLOW_CHECKS = """\
    import time
    import dojob

    class A(dojob.Job):
        def Check(self, *args, **kwargs):
            time.sleep(1.0)
            raise RuntimeError("would run")
        def Run(self, *args, **kwargs):
            pass

    class B(A):
        pass

    class Root(dojob.DummyJob):
        DEPS = (A, B)
"""


def test_regression_a_check_cut_short_does_not_call_unchecked_jobs_ok(tmp_path):
    """A plan stopped by its timeout said "ok" for the job whose Check it cut off, and for Root."""
    write(tmp_path / "slow.py", SLOW_CHECKS)
    out = cli("check", "slow.py:Root", "--timeout", "0.3", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert out.returncode == 1, out
    assert lines[0].startswith("INTERRUPTED  A during try 1 (RunTimeout"), lines
    assert lines[-1].startswith("not converged in ") and " 0 ok," in lines[-1], lines
    assert not any(line.split()[1:2] == ["ok"] for line in lines), lines


def test_regression_an_event_log_that_fails_after_the_run_keeps_the_recap_and_the_other_files(tmp_path):
    """A full disk under --events lost the recap and the JUnit file after the jobs ran, and exited 2."""
    write(
        tmp_path / "one.py",
        """\
        import dojob

        class One(dojob.Job):
            def Check(self, *args, **kwargs):
                if not self.global_storage.get("done"):
                    raise RuntimeError("not yet")
            def Run(self, *args, **kwargs):
                self.global_storage["done"] = True
    """,
    )
    out = cli("run", "one.py:One", "--events", "/dev/full", "--junit", "j.xml", cwd=tmp_path)
    assert out.returncode == 1, out  # converged, but a requested file could not be written
    assert "changed: One" in out.stdout and "converged in " in out.stdout
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
    assert "/dev/full" in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_regression_an_empty_tags_option_selects_nothing_instead_of_everything(tmp_path):
    """`--tags "$TAG"` with an empty variable converged the whole graph."""
    write(tmp_path / "one.py", "import dojob\n\nclass One(dojob.Job):\n    def Check(self, *a, **k):\n        pass\n")
    for value in ("", ",", " , "):
        out = cli("run", "one.py:One", "--tags", value, cwd=tmp_path)
        assert out.returncode == 2 and "names no tag" in out.stderr, (value, out)


def test_regression_a_jobs_sys_exit_is_not_reported_as_a_ctrl_c(tmp_path):
    write(
        tmp_path / "bye.py",
        """\
        import sys
        import dojob

        class Bye(dojob.Job):
            def Check(self, *args, **kwargs):
                raise RuntimeError("not yet")
            def Run(self, *args, **kwargs):
                sys.exit(7)
    """,
    )
    out = cli("run", "bye.py:Bye", cwd=tmp_path)
    assert out.returncode == 7
    assert "run stopped: a job called sys.exit()" in out.stdout and "Ctrl-C" not in out.stdout + out.stderr


def test_regression_a_terminal_that_cannot_show_a_character_still_gets_the_recap(tmp_path):
    write(
        tmp_path / "snow.py",
        """\
        import dojob

        class Snow(dojob.Job):
            TRIES = 1
            def Check(self, *args, **kwargs):
                raise RuntimeError("no \\u2603 today")
            def Run(self, *args, **kwargs):
                pass
    """,
    )
    out = cli("run", "snow.py:Snow", cwd=tmp_path, env={"PYTHONIOENCODING": "latin-1"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    assert "no \\u2603 today" in out.stdout and "not converged in " in out.stdout


def test_regression_a_plan_stopped_by_a_signal_marks_the_cut_job_not_checked():
    """From Python: a plan whose Check was cut short said plan == "ok" for it."""
    import signal
    import threading

    class Cut(dojob.Job):
        def Check(self, *args, **kwargs):
            threading.Timer(0.05, signal.raise_signal, (signal.SIGINT,)).start()
            import time

            time.sleep(2)

    try:
        dojob.run(Cut, plan=True, handle_signals=True)
    except KeyboardInterrupt as exc:
        report = exc.report  # type: ignore[attr-defined]
    else:  # pragma: no cover - the signal must stop the plan
        raise AssertionError("the plan was not stopped")
    assert report["Cut"].status is dojob.Status.INTERRUPTED and report["Cut"].plan is None


def test_regression_a_reload_takes_a_bound_job_target_as_the_first_load_does(tmp_path):
    """`dojob run file.py:Root --every` reloaded on SIGHUP through its own copy of the target lookup,
    which refused a bound job that the first load accepted."""
    from dojob.bind import BoundJob
    from dojob.reimport import reimport_targets
    from dojob.target import load_target

    write(
        tmp_path / "site.py",
        """\
        import dojob

        class Greet(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

        Root = Greet.bind(NAME="world")
    """,
    )
    target = f"{tmp_path / 'site.py'}:Root"
    assert type(load_target(target)) is BoundJob
    (reloaded,) = reimport_targets([target])
    assert type(reloaded) is BoundJob and reloaded.__name__ == "Greet[NAME='world']"


def test_regression_a_check_never_calls_a_runonly_job_drifted(tmp_path):
    """A RunonlyJob runs every time by design; `dojob check` listed it as drifted after two runs."""
    write(
        tmp_path / "ro.py",
        """\
        import dojob

        class Lights(dojob.RunonlyJob):
            def Run(self, *args, **kwargs):
                pass

        class Root(dojob.DummyJob):
            DEPS = (Lights,)
    """,
    )
    history = ("--history", str(tmp_path / "h.sqlite3"))
    for _ in range(2):
        assert cli("run", "ro.py:Root", *history, cwd=tmp_path).returncode == 0
    plan = cli("check", "ro.py:Root", *history, cwd=tmp_path)
    assert "Lights  would run" in plan.stdout and "drifted" not in plan.stdout, plan.stdout


SLOW_IMPORT = """\
    import pathlib, time
    import dojob

    pathlib.Path("importing").write_text("now")
    time.sleep(30)

    class Root(dojob.Job):
        def Check(self, *args, **kwargs):
            pass
"""


def _stopped_while_importing(tmp_path: Path, signum: int) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """``dojob run`` of a target whose import takes 30 s, signalled while it imports; its result and event log."""
    import json
    import time

    write(tmp_path / "slow.py", SLOW_IMPORT)
    for name in ("run.html", "junit.xml", "graph.dot"):
        (tmp_path / name).write_text("an earlier run's file, all green")
    (tmp_path / "e.jsonl").write_text('{"event": "RunFinished", "success": true}\n')
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"
    outputs = ["--report", "run.html", "--junit", "junit.xml", "--graph", "graph.dot", "--events", "e.jsonl"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", "slow.py:Root", *outputs],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (tmp_path / "importing").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), events


def test_regression_sigterm_before_the_run_says_so_and_leaves_no_earlier_runs_files(tmp_path):
    result, events = _stopped_while_importing(tmp_path, 15)
    assert result.returncode == 143
    assert result.stderr.strip().splitlines()[-1] == "dojob: terminated (SIGTERM) before the run started: nothing ran"
    (event,) = events  # the earlier run's line is gone, one line says why this one did nothing
    assert {k: event[k] for k in ("event", "stage", "error_type", "error")} == {
        "event": "RunFailed", "stage": "stopped", "error_type": "Terminated",
        "error": "terminated (SIGTERM) before the run started: nothing ran",
    }  # fmt: skip
    for name in ("run.html", "junit.xml", "graph.dot"):  # an earlier run's green files would pass as this one's
        assert not (tmp_path / name).exists(), name


def test_regression_ctrl_c_before_the_run_says_so_in_the_event_log(tmp_path):
    result, events = _stopped_while_importing(tmp_path, 2)
    assert result.returncode == 130
    assert result.stderr.strip().splitlines()[-1] == "dojob: interrupted before the run started: nothing ran"
    assert [(e["event"], e["stage"], e["error_type"]) for e in events] == [
        ("RunFailed", "stopped", "KeyboardInterrupt")
    ]
    assert not (tmp_path / "junit.xml").exists()


def test_regression_a_graph_error_leaves_no_earlier_runs_junit(tmp_path):
    write(tmp_path / "bad.py", "import dojob\n\nclass Root(dojob.Job):\n    DEPS = ('not a job',)\n")
    (tmp_path / "junit.xml").write_text("an earlier run's file, all green")
    out = cli("run", "bad.py:Root", "--junit", "junit.xml", cwd=tmp_path)
    assert out.returncode == 2 and "graph error" in out.stderr
    assert not (tmp_path / "junit.xml").exists()


def test_regression_ctrl_c_while_the_command_starts_is_no_traceback(tmp_path):
    """A real SIGINT landing while the command builds its parser (before dojob.cli handles signals)."""
    code = textwrap.dedent(
        """\
        import os, signal, sys
        import dojob.cli

        real = dojob.cli.build_parser

        def build_parser():
            os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: KeyboardInterrupt here
            return real()

        dojob.cli.build_parser = build_parser
        sys.argv = ["dojob", "run", "nothing.py:Root"]
        from dojob.__main__ import main

        sys.exit(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 130
    assert out.stderr == "dojob: interrupted before the run started: nothing ran\n"


def test_regression_an_output_naming_an_input_is_refused_before_anything_is_touched(tmp_path):
    source = "import dojob\n\nclass A(dojob.Job):\n    def Check(self, *a, **k):\n        pass\n"
    write(tmp_path / "jobs.py", source)
    history = tmp_path / "h.sqlite3"
    assert cli("run", "jobs.py:A", "--history", str(history), cwd=tmp_path).returncode == 0
    kept = history.read_bytes()
    cases = [
        (("--report", "jobs.py"), "--report 'jobs.py' is the target file of 'jobs.py:A'"),
        (("--events", "./jobs.py"), "--events './jobs.py' is the target file of 'jobs.py:A'"),
        (("--graph", "jobs.py"), None),  # refused too, for its format (.py draws nothing)
        (("--lock", "jobs.py"), "--lock 'jobs.py' is the target file of 'jobs.py:A'"),
        (("--junit", str(history), "--history", str(history)), f"--junit {str(history)!r} is the --history database"),
        (("--report", str(history) + "-wal", "--history", str(history)), "is the --history database"),
    ]
    for options, message in cases:
        out = cli("run", "jobs.py:A", *options, cwd=tmp_path, env={"DOJOB_HISTORY": str(history)})
        assert out.returncode == 2, (options, out.stderr)
        if message:
            assert message in out.stderr and "dojob would overwrite it" in out.stderr, out.stderr
        assert (tmp_path / "jobs.py").read_text() == source, options
        assert history.read_bytes() == kept, options


def test_regression_a_signal_while_outputs_are_prepared_rewrites_the_event_log(tmp_path):
    """SIGTERM landing in the preparation before the run (preloading the output modules): the event log says so."""
    write(tmp_path / "t.py", "import dojob\n\nclass Root(dojob.Job):\n    def Check(self, *a, **k):\n        pass\n")
    (tmp_path / "e.jsonl").write_text('{"event": "RunFinished", "success": true}\n')  # an earlier run's
    (tmp_path / "r.html").write_text("an earlier run's report")
    code = textwrap.dedent(
        """\
        import os, signal, sys
        import dojob.cli

        real = dojob.cli.preload

        def preload(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)  # the command's handler: Terminated here
            return real(*args, **kwargs)

        dojob.cli.preload = preload
        sys.exit(dojob.cli.main(["run", "t.py:Root", "--events", "e.jsonl", "--report", "r.html"]))
        """
    )
    env = {**os.environ, "DOJOB_HISTORY": "off"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 143, out.stderr
    assert out.stderr.splitlines()[-1] == "dojob: terminated (SIGTERM) before the run started: nothing ran"
    import json

    (event,) = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert (event["event"], event["stage"], event["error_type"]) == ("RunFailed", "stopped", "Terminated")
    assert not (tmp_path / "r.html").exists()


def test_regression_sigterm_while_waiting_for_the_lock_exits_143_and_leaves_the_holders_files(tmp_path):
    import signal
    import time

    from dojob.runlock import RunLock

    write(tmp_path / "w.py", "import dojob\n\nclass A(dojob.Job):\n    def Check(self, *a, **k):\n        pass\n")
    (tmp_path / "r.html").write_text("the running command's report")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"
    with RunLock(str(tmp_path / "L.lock"), note="w.py:A"):  # another run holds it
        proc = subprocess.Popen(
            [sys.executable, "-m", "dojob", "run", "w.py:A", "--lock", "L.lock", "--lock-wait",
             "--events", "e.jsonl", "--report", "r.html"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        err = b""
        while b"waiting for the lock" not in err:  # stderr's first line says it waits
            assert time.monotonic() < deadline and proc.poll() is None
            err += proc.stderr.buffer.read1(200)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert rest.splitlines()[-1] == "dojob: terminated (SIGTERM) before the run started: nothing ran"
    assert (tmp_path / "r.html").read_text() == "the running command's report"  # the holder's, not touched
    assert not (tmp_path / "e.jsonl").exists()


class _AsyncSlowRun(dojob.Job):
    TIMEOUT = 0.2
    TRIES = 1

    async def Check(self, *args, **kwargs):
        raise RuntimeError("not done")

    async def Run(self, *args, **kwargs):
        import asyncio

        await asyncio.sleep(1.0)


class _SlowRun(dojob.Job):
    TIMEOUT = 0.2
    TRIES = 1

    def Check(self, *args, **kwargs):
        raise RuntimeError("not done")

    def Run(self, *args, **kwargs):
        import time

        time.sleep(1.0)


def test_regression_an_async_timeout_is_not_a_programming_error_in_init():
    from dojob.diagnose import programming_error
    from dojob.junit import to_junit

    report = dojob.run(_AsyncSlowRun, workers=2)
    job = report["_AsyncSlowRun"]
    assert programming_error(job) is None
    assert report.summary().splitlines()[0] == (
        "FAILED  _AsyncSlowRun (1 try): PhaseTimeout: _AsyncSlowRun.run took longer than TIMEOUT=0.2s"
    )
    assert b"<failure" in to_junit(report) and b"<error" not in to_junit(report)


def test_regression_a_run_cut_at_its_timeout_in_a_worker_process_invents_no_recheck():
    report = dojob.run(_SlowRun, executor="processes", workers=2)
    first = report.summary().splitlines()[0]
    assert first.startswith("FAILED  _SlowRun (1 try): PhaseTimeout: _SlowRun.run took longer than TIMEOUT=0.2s")
    assert "recheck" not in first and report["_SlowRun"].cause is None


def test_regression_a_stopping_run_starts_no_run_phase_on_a_thread():
    """A CRITICAL failure stops the run while another try's Check still runs on a thread: its Run never starts."""
    import threading
    import time

    calls: list[str] = []
    checking = threading.Event()

    class Deploy(dojob.Job):
        def Check(self, *args, **kwargs):
            checking.set()
            time.sleep(0.3)
            raise RuntimeError("not deployed")

        def Run(self, *args, **kwargs):
            calls.append("Run")

    class Critical(dojob.Job):
        CRITICAL = True
        TRIES = 1

        def Check(self, *args, **kwargs):
            checking.wait(5)
            raise RuntimeError("broken")

        def Run(self, *args, **kwargs):
            raise RuntimeError("still broken")

    Root = type("Root", (dojob.DummyJob,), {"DEPS": (Deploy, Critical)})
    report = dojob.run(Root, workers=2)
    assert calls == []  # the change was not made after the run stopped
    assert report["Deploy"].status is dojob.Status.INTERRUPTED and report["Deploy"].tries == 1
    assert type(report["Deploy"].exception).__name__ == "StoppedBeforeRun"
    assert report["Critical"].status is dojob.Status.FAILED


def test_regression_ctrl_c_during_a_check_on_a_thread_starts_no_run(tmp_path):
    import signal
    import time

    write(
        tmp_path / "ra.py",
        """\
        import os, time, dojob

        class Deploy(dojob.Job):
            def Check(self, *args, **kwargs):
                open("CHECKING", "w").close()
                time.sleep(1.0)
                raise RuntimeError("not deployed")

            def Run(self, *args, **kwargs):
                open("RUN_WAS_CALLED", "w").close()
        """,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", "ra.py:Deploy", "-j", "2", "--events", "e.jsonl"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (tmp_path / "CHECKING").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert not (tmp_path / "RUN_WAS_CALLED").exists()
    assert out.splitlines()[0].startswith("INTERRUPTED  Deploy during try 1 (StoppedBeforeRun: ")
    assert '"phase": "run"' not in (tmp_path / "e.jsonl").read_text()


@pytest.mark.parametrize("driver", ["run", "arun"])
def test_regression_ctrl_c_while_the_history_is_written_keeps_report_and_record(tmp_path, monkeypatch, driver):
    """dojob.run / dojob.arun(handle_signals=True, history=...): a real SIGINT landing in the history write."""
    import signal

    from dojob.history import open_store
    from dojob.history.store import Store

    real = Store.write

    def write(self, *args, **kwargs):  # the signal lands while the record is written, then the write goes on
        os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "write", write)

    class Change(dojob.Job):
        def Check(self, *args, **kwargs):
            if not self.global_storage.get("done"):
                raise RuntimeError("not yet")

        def Run(self, *args, **kwargs):
            self.global_storage["done"] = True

    db = tmp_path / "h.sqlite3"
    try:
        if driver == "run":
            dojob.run(Change, handle_signals=True, history=str(db))
        else:
            import asyncio

            asyncio.run(dojob.arun(Change, handle_signals=True, history=str(db)))
    except KeyboardInterrupt as exc:
        report = exc.report
    else:
        raise AssertionError("the Ctrl-C was lost")
    assert report.success and report["Change"].status is dojob.Status.CHANGED
    monkeypatch.setattr(Store, "write", real)
    store = open_store(str(db))
    try:
        (run,) = store.runs(limit=5)
    finally:
        store.close()
    assert run["counts"]["changed"] == 1


def test_regression_the_recap_names_every_interrupted_job():
    class Stops(dojob.Job):
        def Check(self, *args, **kwargs):
            raise KeyboardInterrupt  # a Ctrl-C in the first job's Check, serially

    class Ready(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

    Other = type("Other", (Ready,), {})
    Root = type("Root", (dojob.DummyJob,), {"DEPS": (Stops, Ready, Other)})
    try:
        dojob.run(Root)
    except KeyboardInterrupt as exc:
        report = exc.report
    lines = report.summary().splitlines()
    assert lines[:4] == [
        "INTERRUPTED  Stops during try 1 (KeyboardInterrupt)",
        "             not started: Root",
        "run stopped: interrupted (Ctrl-C)",
        "not started: Ready, Other",
    ], lines
    assert lines[-1].endswith("0 failed, 0 blocked, 4 interrupted")


def test_regression_a_job_waiting_for_its_retry_when_stopped_is_not_said_to_be_mid_try():
    class Flaky(dojob.Job):
        TRIES = 3
        RETRY_DELAY = 30

        def Check(self, *args, **kwargs):
            raise RuntimeError("service not up yet")

        def Run(self, *args, **kwargs):
            pass

    report = dojob.run(Flaky, timeout=0.3)
    assert report.summary().splitlines()[0] == "INTERRUPTED  Flaky after try 1 (RuntimeError: service not up yet)"
