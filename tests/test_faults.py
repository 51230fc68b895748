"""Fault injection: every phase raising every kind of exception, under every driver; signals,
observers that raise, Cleanups and jobs that never return.

(A dying process-pool worker is covered with the process executor, in test_executors.py.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from conftest import Recorder, make_job
from interrupting import interrupt, launch

import dojob
from dojob import Status
from dojob.attempt import CleanupTimeout, PhaseTimeout
from dojob.runner import arun_graph, run_graph

PHASES = ("init", "check", "run", "recheck", "cleanup")


class Oops(Exception):
    pass


class OddBaseError(BaseException):
    """Neither KeyboardInterrupt nor SystemExit: fails its phase like an Exception."""


#: name -> (exception to raise, does it stop the run?)
KINDS = {
    "RuntimeError": (RuntimeError, False),
    "Exception subclass": (Oops, False),
    "BaseException subclass": (OddBaseError, False),
    "GeneratorExit": (GeneratorExit, False),
    "StopIteration": (StopIteration, False),
    "CancelledError": (asyncio.CancelledError, False),
    "KeyboardInterrupt": (KeyboardInterrupt, True),
    "SystemExit": (SystemExit, True),
}

#: serial and threads: the sync driver; async: coroutine methods; async-threads: the async
#: driver running plain methods on threads.
DRIVERS = ("serial", "threads", "async", "async-threads")


def _chain(phase: str, kind: type[BaseException], driver: str, log: list) -> type:
    """First -> Target -> After; Target raises ``kind`` in ``phase`` on its first try.

    Without the fault Target converges through Run (check fails, run, recheck passes).
    Every job logs its phases and has a Cleanup.
    """
    use_async = driver == "async"

    def methods(name: str, target: bool) -> dict:
        state = {"checks": 0}

        def hit(which: str) -> None:
            log.append((name, which))
            if target and which == phase:
                raise kind(f"{name} {which} injected")

        def check(self, *a, **k):
            hit("check" if self._check_phase == "check" else "recheck")
            state["checks"] += 1
            if target and self._check_phase == "check":
                raise LookupError(f"{name} not converged yet")

        def run(self, *a, **k):
            hit("run")

        def cleanup(self):
            hit("cleanup")

        def init(self):
            hit("init")

        body = {"__init__": init, "TRIES": 1}
        if use_async:

            async def acheck(self, *a, **k):
                return check(self)

            async def arun(self, *a, **k):
                return run(self)

            async def acleanup(self):
                return cleanup(self)

            body.update(Check=acheck, Run=arun, Cleanup=acleanup)
        else:
            body.update(Check=check, Run=run, Cleanup=cleanup)
        return body

    first = type("First", (dojob.Job,), methods("First", False))
    target = type("Target", (dojob.Job,), {**methods("Target", True), "DEPS": [first]})
    return type("After", (dojob.Job,), {**methods("After", False), "DEPS": [target]})


def _run(root: type, driver: str, **options):
    graph = dojob.build_graph(root)
    if driver.startswith("async"):
        return asyncio.run(arun_graph(graph, **options))
    return run_graph(graph, workers=4 if driver == "threads" else 1, **options)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("kind_name", list(KINDS))
@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_raising_every_kind_of_exception(phase, kind_name, driver):
    kind, stops = KINDS[kind_name]
    log: list = []
    root = _chain(phase, kind, driver, log)
    recorder = Recorder()
    raised = None
    try:
        report = _run(root, driver, observers=[recorder])
    except BaseException as exc:  # noqa: BLE001 - what escapes is the point
        raised = exc
        report = getattr(exc, "report", None)
    assert report is not None, f"{raised!r} escaped without a report"
    target = report["Target"]
    cleaned = [name for name, which in log if which == "cleanup"]
    created = [name for name, which in log if which == "init"]
    if phase == "init":
        created.remove("Target")  # its __init__ raised: there is no instance to clean up
    # every instance that was created is cleaned up, newest first, whatever happened
    assert cleaned == created[::-1]

    if stops and phase != "cleanup":
        assert isinstance(raised, kind), raised
        # a job's sys.exit() is no Ctrl-C: the run says which stop it was
        assert report.stopped == ("exited" if kind is SystemExit else "interrupted") and not report.success
        assert isinstance(target.exception, kind) and target.status is Status.INTERRUPTED  # a stop, not a failure
        assert report["After"].status is Status.INTERRUPTED and report["After"].tries == 0  # whatever the driver
        assert "After" not in created
        return
    if stops:  # in a Cleanup: the other Cleanups ran, then the stopper is raised with the report
        assert isinstance(raised, kind), raised
        assert report.success and report.stopped is None
        return
    if phase == "cleanup":
        assert isinstance(raised, dojob.CleanupError), raised
        [(name, exc)] = raised.failures
        assert name == "Target"
        if not (driver == "async" and kind is StopIteration):  # a coroutine cannot raise StopIteration
            assert isinstance(exc, kind)
        assert raised.report.success
        return
    assert raised is None, raised
    if phase in ("check", "run"):  # Run follows a failed Check whatever it raised; Run's outcome is ignored
        assert target.status is Status.CHANGED, target
        assert [w for n, w in log if n == "Target"][:4] == ["init", "check", "run", "recheck"]
        assert report.success
    else:  # init, recheck: the try failed and After is blocked
        assert target.status is Status.FAILED
        if not (driver == "async" and kind is StopIteration and phase != "init"):
            assert isinstance(target.exception, kind), target.exception
        assert report["After"].status is Status.BLOCKED and not report.success
    # the trace and the event log see the phase fail with what it raised
    name = "RuntimeError" if driver == "async" and kind is StopIteration and phase != "init" else kind.__name__
    failed = [(e.phase.value, e.error_type) for e in recorder.of(dojob.events.PhaseEnded) if not e.ok]
    assert (phase, name) in failed, failed


# -- regressions found by the matrix and the property tests ------------------------------


def test_regression_generator_exit_raised_by_a_phase_fails_it_in_a_serial_run():
    """A phase raising GeneratorExit was taken for the closing of the try's steps: the serial
    driver then lost the try and ``dojob.run`` died with 'finish() called while 1 tries still run'."""
    ran = []

    def check(self, *a, **k):
        if not ran:
            raise GeneratorExit("not yet")

    report = dojob.run(make_job("A", check=check, run=lambda self, *a, **k: ran.append(1), TRIES=1))
    assert report["A"].status is Status.CHANGED and ran == [1]


def test_regression_keyboard_interrupt_in_a_cleanup_skipped_the_other_cleanups():
    log = []

    def interrupt(self):
        log.append("B")
        raise KeyboardInterrupt

    a = make_job("A", Cleanup=lambda self: log.append("A"))
    b = make_job("B", [a], Cleanup=interrupt)
    c = make_job("C", [b], Cleanup=lambda self: log.append("C"))
    with pytest.raises(KeyboardInterrupt) as info:
        dojob.run(c)
    assert log == ["C", "B", "A"]
    assert info.value.report.success


def test_regression_cancelled_error_raised_by_an_async_job_fails_its_phase():
    """A coroutine raising CancelledError itself (nobody cancelled it) used to end its job 'not run'."""

    async def check(self, *a, **k):
        raise asyncio.CancelledError("the job's own")

    async def noop(self, *a, **k):
        pass

    report = dojob.run(make_job("A", check=check, run=noop, TRIES=2, RETRY_DELAY=0))
    assert report["A"].status is Status.FAILED and report["A"].tries == 2
    assert isinstance(report["A"].exception, asyncio.CancelledError)


def test_regression_an_observer_raising_a_base_exception_broke_the_run(caplog):
    """Only ``Exception`` was caught: a BaseException from an observer failed the jobs (threads)
    or killed the run with 'finish() called while 1 tries still run' (serial)."""

    def bad(event):
        if isinstance(event, dojob.events.PhaseEnded):
            raise OddBaseError("observer bug")

    for workers in (1, 4):
        recorder = Recorder()
        with caplog.at_level(logging.ERROR, logger="dojob"):
            report = dojob.run(
                make_job("Root", [make_job("A"), make_job("B")]), observers=[bad, recorder], workers=workers
            )
        assert report.success
        assert len(recorder.of(dojob.events.PhaseEnded)) == 3
    assert "dropped" in caplog.text


# -- observers that raise ------------------------------------------------------------------


class _FailsOnce:
    """An observer that raises on the n-th event it sees (from whatever thread emits it)."""

    def __init__(self, n: int, kind: type[BaseException] = RuntimeError) -> None:
        self.n = n
        self.kind = kind
        self.seen = 0

    def __call__(self, event) -> None:
        self.seen += 1
        if self.seen == self.n:
            raise self.kind("observer bug")


def _wide(use_async: bool = False) -> type:
    async def acheck(self, *a, **k):
        await asyncio.sleep(0)

    async def arun(self, *a, **k):
        pass

    extra = {"check": acheck, "run": arun} if use_async else {}
    leaves = [make_job(f"L{i}", Cleanup=lambda self: None, **extra) for i in range(20)]
    return make_job("Root", leaves, **extra)


@pytest.mark.parametrize("driver", ["serial", "threads", "async"])
@pytest.mark.parametrize("n", [1, 7, 40])
def test_an_observer_that_raises_mid_run_is_dropped_and_logged_under_every_driver(driver, n, caplog):
    root = _wide(driver == "async")
    good, bad = Recorder(), _FailsOnce(n)
    with caplog.at_level(logging.ERROR, logger="dojob"):
        report = dojob.run(root, observers=[bad, good], workers=4 if driver == "threads" else 1)
    assert report.success
    assert bad.seen == n  # dropped after it raised
    assert len(good.of(dojob.events.JobFinished)) == 21 and len(good.of(dojob.events.CleanupEnded)) == 20
    assert caplog.text.count("it is dropped") == 1


# -- a Cleanup that hangs, a job that never returns -------------------------------------------


def _hangs(seconds: float = 30):
    def hang(self, *a, **k):
        time.sleep(seconds)

    return hang


def _ahangs(seconds: float = 30):
    async def hang(self, *a, **k):
        await asyncio.sleep(seconds)

    return hang


async def _anoop(self, *a, **k):
    pass


@pytest.mark.parametrize("kind", ["sync", "async", "sync-in-async-graph"])
def test_a_hanging_cleanup_cannot_defeat_the_run_timeout(kind):
    """With ``timeout=T`` the Cleanups together get T seconds: a hanging one is abandoned (a thread)
    or cancelled (a coroutine), the later ones are not started, and all of that is reported."""
    log = []
    hang = _ahangs() if kind == "async" else _hangs()
    extra = {"check": _anoop, "run": _anoop} if kind == "async" else {}
    first = make_job("First", Cleanup=lambda self: log.append("First"))
    stuck = make_job("Stuck", [first], Cleanup=hang, **extra)
    last = make_job("Last", [stuck], Cleanup=lambda self: log.append("Last"))
    roots = [last]
    if kind == "sync-in-async-graph":
        roots.append(make_job("Async", check=_anoop, run=_anoop))
    recorder = Recorder()
    started = time.monotonic()
    with pytest.raises(dojob.CleanupError) as info:
        dojob.run(*roots, timeout=0.5, observers=[recorder])
    assert time.monotonic() - started < 3
    assert info.value.report.success  # the run itself converged in time
    assert log == ["Last"]  # newest first: Last, then Stuck hangs, First is never started
    failures = dict(info.value.failures)
    assert set(failures) == {"Stuck", "First"}
    assert all(isinstance(exc, CleanupTimeout) for exc in failures.values())
    assert "still running" in str(failures["Stuck"]) and "not started" in str(failures["First"])
    ended = {e.job: e for e in recorder.of(dojob.events.CleanupEnded)}
    assert not ended["Stuck"].ok and ended["Stuck"].error_type == "CleanupTimeout"


def test_without_a_run_timeout_cleanups_are_not_bounded():
    log = []

    def slow(self):
        time.sleep(0.3)
        log.append("slow done")

    dojob.run(make_job("A", Cleanup=slow))
    assert log == ["slow done"]


@pytest.mark.parametrize("driver", ["serial", "threads", "async", "sync-in-async-graph"])
def test_a_job_that_never_returns_is_abandoned_at_its_timeout(driver):
    hang = _ahangs() if driver == "async" else _hangs()
    extra = {"run": _anoop} if driver == "async" else {}
    stuck = make_job("Stuck", check=hang, TIMEOUT=0.2, TRIES=2, RETRY_DELAY=0, **extra)
    fine = make_job("Fine")
    roots = [make_job("Root", [stuck, fine])]
    if driver == "sync-in-async-graph":
        roots.append(make_job("Async", check=_anoop, run=_anoop))
    started = time.monotonic()
    report = dojob.run(*roots, workers=4 if driver == "threads" else 1)
    assert time.monotonic() - started < 3
    assert report["Stuck"].status is Status.FAILED and report["Stuck"].tries == 2
    assert isinstance(report["Stuck"].exception, PhaseTimeout)
    assert report["Fine"].status is Status.OK and report["Root"].status is Status.BLOCKED


@pytest.mark.parametrize("driver", ["serial", "threads", "async", "sync-in-async-graph"])
def test_a_job_that_never_returns_cannot_defeat_the_run_timeout(driver):
    hang = _ahangs() if driver == "async" else _hangs()
    extra = {"run": _anoop} if driver == "async" else {}
    log = []
    stuck = make_job("Stuck", check=hang, Cleanup=lambda self: log.append("Stuck"), **extra)
    roots = [make_job("Root", [stuck])]
    if driver == "sync-in-async-graph":
        roots.append(make_job("Async", check=_anoop, run=_anoop))
    started = time.monotonic()
    report = dojob.run(*roots, workers=4 if driver == "threads" else 1, timeout=0.3)
    assert time.monotonic() - started < 3
    assert report.stopped == "timeout" and report["Stuck"].status is Status.INTERRUPTED
    assert log == ["Stuck"]


def test_regression_a_hanging_sync_phase_in_an_async_graph_outlived_the_run_timeout():
    """asyncio.to_thread's executor is joined by asyncio.run: a sync phase abandoned at the run's
    deadline kept ``dojob.run`` (and the process) waiting until it returned."""
    slow = make_job("Slow", check=_hangs(5))
    started = time.monotonic()
    report = dojob.run(slow, make_job("Async", check=_anoop, run=_anoop), timeout=0.2)
    assert time.monotonic() - started < 2
    assert report.stopped == "timeout"


# -- signals and exits of the dojob command ---------------------------------------------------------
# test_cli.py covers Ctrl-C in a serial run; these cover threads, async jobs and a second Ctrl-C.


SLEEPY = """\
    import asyncio
    import os
    import time
    import dojob

    SECONDS = float(os.environ.get("SLEEP", "60"))

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
            time.sleep(SECONDS)

        def Run(self, *args, **kwargs):
            pass

    class AsyncSleeper(dojob.Job):
        DEPS = (Prepare,)

        async def Check(self, *args, **kwargs):
            open("started", "w").close()
            await asyncio.sleep(SECONDS)

        async def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (Sleeper,)

    class AsyncRoot(dojob.DummyJob):
        DEPS = (AsyncSleeper,)

    class SlowAsyncCleanup(dojob.Job):
        DEPS = (Prepare,)

        async def Check(self, *args, **kwargs):
            pass

        async def Run(self, *args, **kwargs):
            pass

        async def Cleanup(self):
            open("started", "w").close()
            await asyncio.sleep(SECONDS)

    class SlowSyncCleanup(dojob.Job):
        DEPS = (Prepare,)

        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def Cleanup(self):
            open("started", "w").close()
            time.sleep(SECONDS)

    class HangingCleanup(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def Cleanup(self):
            time.sleep(60)
"""


def test_ctrl_c_with_threads_lets_running_tries_finish_then_cleans_up(tmp_path):
    proc = launch(tmp_path, SLEEPY, "sleepy.py:Root", "-j", "4", "--events", "run.jsonl", env={"SLEEP": "1"})
    stdout, stderr, seconds = interrupt(proc, tmp_path / "started")
    assert proc.returncode == 130, (stdout, stderr)
    assert seconds >= 0.7  # the running try was waited for
    assert (tmp_path / "cleaned-up").exists() and "Traceback" not in stderr
    assert stderr.count("waiting for 1 running try to finish (a second Ctrl-C or SIGTERM abandons them)") == 1
    assert "run stopped: interrupted (Ctrl-C)" in stdout.splitlines()
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    finished = {e["job"]: e["status"] for e in events if e["event"] == "JobFinished"}
    assert finished == {"Prepare": "ok", "Sleeper": "ok", "Root": "interrupted"}  # Root never started
    verdict = [line for line in stdout.splitlines() if line.startswith("not converged in ")]
    assert verdict[0].endswith("2 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 1 interrupted")


def test_regression_a_second_ctrl_c_with_threads_crashed_instead_of_abandoning(tmp_path):
    """While the thread driver waited for running tries after a Ctrl-C, a second Ctrl-C escaped
    mid-wait: 'finish() called while 1 tries still run', no Cleanups, no recap."""
    proc = launch(tmp_path, SLEEPY, "sleepy.py:Root", "-j", "4")
    stdout, stderr, seconds = interrupt(proc, tmp_path / "started", times=2)
    assert proc.returncode == 130, (stdout, stderr)
    assert seconds < 10
    assert (tmp_path / "cleaned-up").exists() and "Traceback" not in stderr
    lines = stdout.splitlines()
    assert lines[0] == "INTERRUPTED  Sleeper during try 1 (KeyboardInterrupt)"
    assert "run stopped: interrupted (Ctrl-C)" in lines


def test_regression_ctrl_c_in_an_async_run_lost_the_recap(tmp_path):
    """asyncio.run turns Ctrl-C into a fresh KeyboardInterrupt: the report was lost, the command
    printed only 'dojob: interrupted'."""
    proc = launch(tmp_path, SLEEPY, "sleepy.py:AsyncRoot", "--report", "run.html")
    stdout, stderr, seconds = interrupt(proc, tmp_path / "started")
    assert proc.returncode == 130, (stdout, stderr)
    assert seconds < 10
    assert (tmp_path / "cleaned-up").exists() and "Traceback" not in stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("INTERRUPTED  AsyncSleeper during try 1")
    assert "run stopped: interrupted (Ctrl-C)" in lines
    verdict = [line for line in lines if line.startswith("not converged in ")]
    assert verdict[0].endswith("1 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 2 interrupted")
    assert "interrupted" in (tmp_path / "run.html").read_text()


def test_the_dojob_command_ends_despite_a_hanging_cleanup_under_timeout(tmp_path):
    proc = launch(tmp_path, SLEEPY, "sleepy.py:HangingCleanup", "--timeout", "0.5")
    started = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert time.monotonic() - started < 10
    assert proc.returncode == 1, (stdout, stderr)
    lines = stdout.splitlines()
    assert lines[0].startswith("converged in ")
    assert lines[1].startswith("cleanup failed: HangingCleanup: CleanupTimeout: still running when the Cleanups'")


@pytest.mark.parametrize("job", ["SlowAsyncCleanup", "SlowSyncCleanup"])
def test_ctrl_c_while_cleanups_run_ends_that_one_keeps_the_others_and_the_recap(tmp_path, job):
    """Regression (async): the cancellation skipped the other Cleanups and lost the recap."""
    proc = launch(tmp_path, SLEEPY, f"sleepy.py:{job}", "--events", "run.jsonl")
    stdout, stderr, seconds = interrupt(proc, tmp_path / "started")
    assert proc.returncode == 130, (stdout, stderr)
    assert seconds < 10 and "Traceback" not in stderr
    assert (tmp_path / "cleaned-up").exists()  # Prepare's Cleanup ran after the interrupted one
    lines = stdout.splitlines()
    assert lines[0].startswith("converged in ") and "2 ok, 0 changed (0 needed retries), 0 failed" in lines[0]
    assert lines[1] == f"cleanup interrupted: {job}"
    events = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    ended = {e["job"]: e["ok"] for e in events if e["event"] == "CleanupEnded"}
    assert ended == {job: False, "Prepare": True}
