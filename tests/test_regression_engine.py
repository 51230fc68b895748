"""Regression tests of issue 10: the engine keeps its promises when interrupted.

Each test names the defect it pins; each failed on the engine before the rewrite
(one step rule, one driver loop per driver with one stop path).
"""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import Recorder, make_job
from interrupting import launch

import dojob
from dojob import FakeClock, Status
from dojob.attempt import PhaseTimeout
from dojob.events import CleanupStarted, JobFinished, LocksReleased, PhaseAbandoned, RunFinished


class InterruptingClock(FakeClock):
    """A fake clock whose ``n``-th reading raises ``KeyboardInterrupt`` (a Ctrl-C landing there)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        if self.reads == self.n:
            raise KeyboardInterrupt(f"at clock read {self.n}")
        return super().now()


def _cleaned_graph(log: list, n: int = 4) -> type:
    jobs = [make_job(f"J{i}", Cleanup=lambda self, i=i: log.append(f"J{i}")) for i in range(n)]
    return make_job("Root", jobs)


def test_regression_ctrl_c_between_hand_out_and_outcome_never_crashes_the_run():
    """Defect 1: a Ctrl-C between next_actions() and complete() gave RuntimeError: finish() called while..."""
    for n in range(1, 40):
        log: list = []
        clock = InterruptingClock(n)
        try:
            report = dojob.run(_cleaned_graph(log), clock=clock, observers=[Recorder()])
        except KeyboardInterrupt as exc:
            report = exc.report  # the run stopped (or had converged already), cleaned up and reported
            assert report.stopped == "interrupted" or report.success
        checked = {name for name, job in report.jobs.items() if job.tries and name != "Root"}
        assert sorted(log) == sorted(checked), n  # the Cleanup of every instance whose Check ran, once
        assert all(job.status is not Status.PENDING for job in report.jobs.values())


def test_regression_ctrl_c_in_an_observer_during_cleanups_ends_no_other_cleanup():
    """Defect 2: a Ctrl-C landing in an observer while Cleanups ran skipped every Cleanup left."""
    log: list = []
    seen = []

    def observer(event):
        if isinstance(event, CleanupStarted) and not seen:
            seen.append(event.job)
            raise KeyboardInterrupt("in the --events writer")

    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(_cleaned_graph(log, 30), observers=[observer])
    assert len(log) == 30 and len(set(log)) == 30
    assert info.value.report.success  # the run itself had converged; its report is not lost


def test_regression_ctrl_c_in_an_observer_at_run_finished_keeps_the_report():
    """Defect 2: at RunFinished, the interrupt also lost the report."""
    log: list = []

    def observer(event):
        if isinstance(event, RunFinished):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(_cleaned_graph(log), observers=[observer])
    assert info.value.report.success and len(log) == 4


def _stopper(self, *a, **k):
    time.sleep(0.05)
    raise KeyboardInterrupt


def test_regression_job_timeout_is_enforced_while_draining_after_ctrl_c():
    """Defect 3: after a Ctrl-C, TIMEOUT was no longer enforced and an overrun was recorded ok."""
    slow = make_job("Slow", check=lambda self, *a, **k: time.sleep(1.5), TIMEOUT=0.3, TRIES=1)
    stops = make_job("Stops", check=_stopper)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(make_job("Root", [slow, stops]), workers=2)
    assert time.monotonic() - started < 1.2
    report = info.value.report
    assert report["Slow"].status is Status.FAILED and isinstance(report["Slow"].exception, PhaseTimeout)


def test_regression_run_timeout_is_enforced_while_draining_after_ctrl_c():
    """Defect 3: after a Ctrl-C the run's own timeout no longer bounded the drain."""
    slow = make_job("Slow", check=lambda self, *a, **k: time.sleep(2))
    stops = make_job("Stops", check=_stopper)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(make_job("Root", [slow, stops]), workers=2, timeout=0.4)
    assert time.monotonic() - started < 1.5
    assert info.value.report["Slow"].status is Status.INTERRUPTED


def test_regression_a_late_phase_is_never_recorded_ok():
    """Defect 3: a phase that returned after its TIMEOUT, before the driver looked, counted as ok."""
    from dojob.executors import TryHandle

    handle = TryHandle(time.monotonic, 0.05)
    handle.begin(dojob.events.Phase.CHECK)
    time.sleep(0.1)
    assert handle.end() == "late"


def test_regression_an_awaitable_returned_by_an_async_phase_keeps_its_timeout():
    """Defect 4: the awaitable an async phase returned was awaited with no bound."""

    async def check(self, *a, **k):
        return asyncio.sleep(5)

    job = make_job("Returns", check=check, TIMEOUT=0.2, TRIES=1)
    started = time.monotonic()
    report = dojob.run(job)
    assert time.monotonic() - started < 2
    assert report["Returns"].status is Status.FAILED
    assert isinstance(report["Returns"].exception, PhaseTimeout)


class Hostile(Exception):
    def __str__(self):
        raise ValueError("no str for you")

    def __repr__(self):
        raise ValueError("no repr either")


def test_regression_a_cleanup_raising_an_unprintable_exception_still_gives_cleanup_error():
    """Defect 5: building CleanupError from an exception whose __str__ raises crashed the run."""

    def cleanup(self):
        raise Hostile

    log: list = []
    root = make_job("Root", [make_job("A", Cleanup=cleanup), make_job("B", Cleanup=lambda self: log.append("B"))])
    with pytest.raises(dojob.CleanupError) as info:
        dojob.run(root, verbose=True, observers=[Recorder()])
    assert "A: Hostile: <unprintable>" in str(info.value)
    assert info.value.report.success and log == ["B"]


@pytest.mark.parametrize("workers", [1, 2])
def test_regression_huge_timeouts_do_not_overflow_a_wait(workers):
    """Defect 6: TIMEOUT=1e10 or timeout=1e10 passed validation, then OverflowError in a queue wait."""
    job = make_job("Huge", TIMEOUT=1e10)
    assert dojob.run(make_job("Root", [job]), workers=workers, timeout=1e10).success


def test_regression_cli_huge_timeout_prints_no_false_interrupted_notice(tmp_path):
    """Defect 6: `--timeout 1e10` crashed and the CLI printed a false "interrupted" notice."""
    (tmp_path / "jobs.py").write_text(
        "import dojob\nclass A(dojob.Job):\n    TIMEOUT = 1e10\n"
        "    def Check(self, *a, **k):\n        pass\n    def Run(self, *a, **k):\n        pass\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "dojob", "run", "jobs.py:A", "--timeout", "1e10", "-j", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "interrupted" not in out.stderr and out.stdout.startswith("converged")


def test_regression_an_abandoned_phase_keeps_its_claims_until_its_thread_ends():
    """Defect 7: a phase abandoned at its TIMEOUT released its CLAIMS while its thread ran on inside."""
    inside: list = []
    overlaps: list = []
    lock = threading.Lock()

    def critical_section(seconds):
        def check(self, *a, **k):
            with lock:
                if inside:
                    overlaps.append(type(self).__name__)
                inside.append(type(self).__name__)
            time.sleep(seconds)
            with lock:
                inside.remove(type(self).__name__)

        return check

    slow = make_job("Slow", check=critical_section(0.6), CLAIMS=("db",), TIMEOUT=0.15, TRIES=1)
    other = make_job("Other", check=critical_section(0.01), CLAIMS=("db",))
    rec = Recorder()
    report = dojob.run(make_job("Root", [slow, other], CRITICAL=False), workers=2, observers=[rec])
    assert overlaps == []
    assert report["Other"].status is Status.OK and report["Other"].started >= 0.5
    (abandoned,) = rec.of(PhaseAbandoned)
    assert abandoned.holding == ("db",)
    assert "still holding db" in str(report["Slow"].exception)
    (released,) = rec.of(LocksReleased)
    assert released.job == "Slow" and released.released == ("db",) and released.time >= 0.5
    trace = io.StringIO()
    dojob.observe.Trace(stream=trace)(abandoned)
    assert trace.getvalue() == f"Slow.check: abandoned (thread on {abandoned.worker} runs on, still holding db)\n"


def test_regression_an_observer_raising_ctrl_c_does_not_deprive_the_others():
    """Defect 2: the event on which an observer raised KeyboardInterrupt never reached the observers after it."""
    seen = Recorder()
    calls = []

    def first(event):
        calls.append(event)
        if len(calls) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(_cleaned_graph([]), observers=[first, seen])
    assert seen.events == calls  # every event reached the second observer, that one included
    assert info.value.report is not None


def test_regression_plan_and_no_act_call_no_cleanup_of_a_runonly_job():
    """Defect 8: `dojob check`, plan=True and no_act called a RunonlyJob's Cleanup though nothing of it ran."""
    log: list = []
    ro = make_job("Ro", base=dojob.RunonlyJob, Cleanup=lambda self: log.append("Ro"))
    job = make_job("J", Cleanup=lambda self: log.append("J"))
    root = make_job("Root", [ro, job])
    dojob.run(root, plan=True)
    dojob.run(root, no_act=True)
    assert log == ["J", "J"]


def test_regression_a_job_with_tries_left_when_the_run_stops_is_interrupted_not_failed():
    """Defect 9: a job waiting for its retry when the run stopped was FAILED, its dependents BLOCKED."""
    calls = []

    def flaky(self, *a, **k):
        calls.append(1)
        raise RuntimeError("not yet")

    retrying = make_job("Retrying", check=flaky, TRIES=3, RETRY_DELAY=5)
    after = make_job("After", [retrying])
    crit = make_job("Crit", check=flaky, TRIES=1, CRITICAL=True)
    rec = Recorder()
    report = dojob.run(make_job("Root", [after, crit]), clock=FakeClock(), observers=[rec])
    assert report.stopped == "critical"
    assert report["Retrying"].status is Status.INTERRUPTED and report["Retrying"].tries == 1
    assert report["After"].status is Status.INTERRUPTED and report["After"].blocked_by == "Retrying"
    assert report["Crit"].status is Status.FAILED  # it used all its tries: failed, and Root is blocked by it
    assert report["Root"].status is Status.BLOCKED and report["Root"].blocked_by == "Crit"
    finished = {e.job: e.status for e in rec.of(JobFinished)}
    assert finished == {"Retrying": Status.INTERRUPTED, "After": Status.INTERRUPTED, "Crit": Status.FAILED}
    summary = report.summary()
    assert "INTERRUPTED  Retrying after try 1 (RuntimeError: " in summary and "not started: After" in summary
    assert summary.splitlines()[-1].endswith("1 failed, 1 blocked, 2 interrupted")


def _interrupted_statuses(**options):
    prepare = make_job("Prepare")
    sleeper = make_job("Sleeper", [prepare], check=_stopper)
    after = make_job("After", [sleeper], base=dojob.DummyJob)
    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(make_job("Root", [after], base=dojob.DummyJob), **options)
    return info.value.report.statuses(), dict((n, j.status) for n, j in info.value.report.jobs.items())


def test_regression_statuses_after_ctrl_c_do_not_depend_on_the_worker_count():
    """Issue 12 item 5: after Ctrl-C the root was "blocked" with -j1 and "interrupted" with -j2."""
    one = _interrupted_statuses(workers=1)
    two = _interrupted_statuses(workers=2)
    assert one == two
    assert one[1] == {"Prepare": Status.CHANGED if False else Status.OK, "Sleeper": Status.INTERRUPTED,
                      "After": Status.INTERRUPTED, "Root": Status.INTERRUPTED}  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_regression_a_dummy_job_with_a_failing_check_fails_cleanly(workers):
    """Issue 13 item 2 (same class): a DummyJob subclass with a failing Check crashed finish()."""

    class D(dojob.DummyJob):
        def Check(self, *a, **k):
            raise RuntimeError("no")

    report = dojob.run(D, workers=workers, default_retry_delay=0)
    assert report["D"].status is Status.FAILED and report["D"].tries == 3
    assert isinstance(report["D"].exception, RuntimeError) and str(report["D"].exception) == "no"


SLEEPY = """\
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

    class Root(dojob.DummyJob):
        DEPS = (Sleeper,)
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_regression_sigterm_stops_dojob_run_like_ctrl_c(tmp_path, workers):
    """Defect 10: SIGTERM killed `dojob run` outright: no Cleanups, no recap, no report, a cut event log."""
    proc = launch(tmp_path, SLEEPY, "sleepy.py:Root", "-j", workers, "--events", "run.jsonl", "--report", "r.html")
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        if workers == "2":  # the first SIGTERM waits for the running try; a second abandons it
            time.sleep(0.3)
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, (stdout, stderr)
    assert (tmp_path / "cleaned-up").exists() and "Traceback" not in stderr
    assert "run stopped: terminated (SIGTERM)" in stdout
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "RunFinished"]
    assert len(finished) == 1 and finished[0]["stopped"] == "terminated"
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_regression_an_abandoned_thread_phase_of_an_async_run_keeps_its_claims():
    """Defect 7, async driver: a plain phase abandoned at its TIMEOUT released its CLAIMS at once."""
    inside: list = []
    overlaps: list = []

    def section(seconds):
        def check(self, *a, **k):
            if inside:
                overlaps.append(type(self).__name__)
            inside.append(1)
            time.sleep(seconds)
            inside.pop()

        return check

    async def arun_noop(self, *a, **k):
        return None

    slow = make_job("Slow", check=section(0.6), run=arun_noop, CLAIMS=("db",), TIMEOUT=0.15, TRIES=1)
    other = make_job("Other", check=section(0.01), run=arun_noop, CLAIMS=("db",))
    report = dojob.run(make_job("Root", [slow, other], CRITICAL=False), workers=2)
    assert overlaps == []
    assert report["Other"].status is Status.OK and report["Other"].started >= 0.5
    assert "still holding db" in str(report["Slow"].exception)
