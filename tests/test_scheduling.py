"""Scheduling rules (issue 4): critical stops, timeouts, resource locks, priority.

Each rule lives in the planner, so each is checked under the sync and the async driver.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import Recorder, flaky, make_job
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dojob
from dojob import FakeClock, Status
from dojob.attempt import PhaseTimeout
from dojob.events import LockWait, PhaseAbandoned


def sleeper(seconds, log=None, name=None):
    def check(self, *a, **k):
        if log is not None:
            log.append(("start", name or type(self).__name__))
        time.sleep(seconds)
        if log is not None:
            log.append(("end", name or type(self).__name__))

    return check


def asleeper(seconds, log=None):
    async def check(self, *a, **k):
        try:
            await asyncio.sleep(seconds)
        finally:
            if log is not None:
                log.append(type(self).__name__)

    return check


async def _arun_noop(self, *a, **k):
    return None


# -- CRITICAL --------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 3])
def test_critical_failure_stops_the_run_and_cleans_up(workers):
    log = []
    crit = flaky("Crit", None, TRIES=1, CRITICAL=True, Cleanup=lambda self: log.append("Crit"))
    after = make_job("After", [crit])
    later = [make_job(f"Later{i}", check=lambda self, *a, **k: log.append("later ran")) for i in range(5)]
    root = make_job("Root", [crit, after, *later])
    report = dojob.run(root, workers=workers)
    assert report.stopped == "critical" and report.stopped_job == "Crit" and not report.success
    assert report["Crit"].status is Status.FAILED and report["Crit"].tries == 1
    assert report["After"].status is Status.BLOCKED
    assert report["Root"].status is Status.BLOCKED
    # serially nothing else starts; with 3 workers at most the jobs already running finish
    ran = log.count("later ran")
    assert ran == 0 if workers == 1 else ran <= 2
    assert log[-1] == "Crit" and log.count("Crit") == 1  # its instance was cleaned up
    assert {report[f"Later{i}"].status for i in range(5)} <= {Status.OK, Status.INTERRUPTED}  # never started


def test_critical_failure_lets_running_sync_tries_finish():
    crit = make_job("Crit", check=sleeper(0.05), run=lambda self, *a, **k: 1 / 0, TRIES=1, CRITICAL=True)
    crit.Check = lambda self, *a, **k: (time.sleep(0.05), 1 / 0)
    slow = make_job("Slow", check=sleeper(0.3))
    report = dojob.run(make_job("Root", [slow, crit]), workers=2)
    assert report.stopped == "critical"
    assert report["Slow"].status is Status.OK  # it was running: it finished


def test_critical_failure_cancels_running_async_tries():
    cancelled = []

    async def boom(self, *a, **k):
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    crit = make_job("Crit", check=boom, run=_arun_noop, TRIES=1, CRITICAL=True)
    slow = make_job("Slow", check=asleeper(5, cancelled), run=_arun_noop)
    start = time.monotonic()
    report = dojob.run(make_job("Root", [slow, crit]), workers=2)
    assert time.monotonic() - start < 2
    assert report.stopped == "critical" and report.stopped_job == "Crit"
    assert cancelled == ["Slow"] and report["Slow"].status is Status.INTERRUPTED


def test_non_critical_failures_keep_going():
    report = dojob.run(make_job("Root", [flaky("Bad", None, TRIES=1), make_job("Good")]))
    assert report.stopped is None and report["Good"].ok


def test_critical_must_be_a_bool():
    with pytest.raises(dojob.JobAttributeError, match="CRITICAL"):
        dojob.build_graph(make_job("A", CRITICAL="yes"))


# -- TIMEOUT per phase -----------------------------------------------------


def test_sync_phase_overrun_fails_the_try_at_once_and_is_abandoned(capsys):
    started = threading.Event()

    def hang(self, *a, **k):
        started.set()
        time.sleep(1.5)

    slow = make_job("Slow", check=hang, TIMEOUT=0.2, TRIES=2, RETRY_DELAY=0)
    after = make_job("After", [slow])
    other = make_job("Other", check=sleeper(0.05))
    rec = Recorder()
    start = time.monotonic()
    report = dojob.run(make_job("Root", [slow, after, other]), observers=[rec], verbose=True)
    elapsed = time.monotonic() - start
    assert started.is_set()
    assert elapsed < 1.2  # two 0.2 s overruns and Other; nobody waited for the 1.5 s sleeps
    job = report["Slow"]
    assert job.status is Status.FAILED and job.tries == 2 and isinstance(job.exception, PhaseTimeout)
    assert isinstance(job.exception, TimeoutError) and "TIMEOUT=0.2s" in str(job.exception)
    assert report["After"].status is Status.BLOCKED and report["Other"].ok
    assert "recheck" not in " ".join(rec.phases())  # an overrun ends the try: no run, no recheck
    assert [e.job for e in rec.of(PhaseAbandoned)] == ["Slow", "Slow"]
    assert "Slow.check: abandoned" in capsys.readouterr().err


def test_abandoned_thread_does_not_hold_a_worker():
    hang = make_job("Hang", check=sleeper(1.0), TIMEOUT=0.1, TRIES=1)
    quick = [make_job(f"Q{i}", [hang] if False else [], check=sleeper(0.1)) for i in range(3)]
    start = time.monotonic()
    report = dojob.run(make_job("Root", [hang, *quick]), workers=1)
    # serially: 0.1 s until Hang is abandoned, then 3 x 0.1 s: the stuck thread holds no slot
    assert time.monotonic() - start < 0.8
    assert all(report[f"Q{i}"].ok for i in range(3))


def test_async_phase_overrun_is_cancelled():
    log = []
    slow = make_job("Slow", check=asleeper(5, log), run=_arun_noop, TIMEOUT=0.1, TRIES=1)
    start = time.monotonic()
    report = dojob.run(slow)
    assert time.monotonic() - start < 1
    assert log == ["Slow"]  # the coroutine was cancelled (its finally ran)
    assert isinstance(report["Slow"].exception, PhaseTimeout)


def test_a_timeout_error_raised_by_the_job_itself_is_not_an_overrun():
    calls = []

    async def check(self, *a, **k):
        calls.append("check")
        raise TimeoutError("the remote API timed out")

    async def run(self, *a, **k):
        calls.append("run")

    report = dojob.run(make_job("A", check=check, run=run, TIMEOUT=5, TRIES=1))
    assert calls == ["check", "run", "check"]
    assert type(report["A"].exception) is TimeoutError


@pytest.mark.parametrize("value", [0, -1, "5", True, float("inf")])
def test_bad_timeout(value):
    with pytest.raises(dojob.JobAttributeError, match="TIMEOUT"):
        dojob.build_graph(make_job("A", TIMEOUT=value))


# -- the run's timeout ------------------------------------------------------


def test_run_timeout_starts_nothing_new_and_cleans_up():
    log = []
    chain = None
    for i in range(8):
        chain = make_job(f"C{i}", [chain] if chain else [], check=sleeper(0.15), Cleanup=lambda self: log.append(1))
    start = time.monotonic()
    report = dojob.run(chain, timeout=0.4)
    elapsed = time.monotonic() - start
    assert report.stopped == "timeout" and not report.success
    assert elapsed < 0.9
    done = [j.name for j in report if j.status is Status.OK]
    assert 1 <= len(done) <= 3
    assert report["C7"].status is Status.INTERRUPTED  # downstream of the try the timeout cut short
    assert len(log) == sum(1 for j in report if j.tries)  # every started instance cleaned up


def test_run_timeout_abandons_a_hanging_sync_try():
    report_start = time.monotonic()
    report = dojob.run(make_job("Root", [make_job("Hang", check=sleeper(2))]), timeout=0.2)
    assert time.monotonic() - report_start < 1.0
    assert report.stopped == "timeout" and report["Hang"].status is Status.INTERRUPTED


def test_run_timeout_cancels_async_tries():
    log = []
    slow = make_job("Slow", check=asleeper(5, log), run=_arun_noop)
    start = time.monotonic()
    report = dojob.run(slow, timeout=0.2)
    assert time.monotonic() - start < 1
    assert report.stopped == "timeout" and log == ["Slow"]


def test_bad_run_timeout():
    with pytest.raises(dojob.OptionError, match="timeout"):
        dojob.run(make_job("A"), timeout=-1)


# -- locks -----------------------------------------------------------------

RESOURCES = ("db", "cache", "disk")
lock_sets = st.lists(st.sampled_from(RESOURCES), max_size=2, unique=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(st.tuples(lock_sets, lock_sets, st.integers(0, 15)), min_size=2, max_size=10),
    workers=st.integers(2, 6),
    use_async=st.booleans(),
)
def test_conflicting_lock_holders_never_overlap(jobs, workers, use_async):
    spans = {}
    lock = threading.Lock()
    classes = []
    for i, (claims, uses, millis) in enumerate(jobs):
        name = f"L{i}"

        def record(start, name=name):
            with lock:
                spans[name] = (start, time.monotonic())

        if use_async:

            async def check(self, *a, millis=millis, record=record, **k):
                start = time.monotonic()
                await asyncio.sleep(millis / 1000)
                record(start)

            run = _arun_noop
        else:

            def check(self, *a, millis=millis, record=record, **k):
                start = time.monotonic()
                time.sleep(millis / 1000)
                record(start)

            run = None
        classes.append(make_job(name, check=check, run=run, CLAIMS=tuple(claims), USES=tuple(uses)))
    report = dojob.run(make_job("Root", classes), workers=workers)
    assert report.success  # no deadlock, whatever the order of names
    specs = {c.__name__: c for c in classes}
    names = sorted(spans)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ca, cb = specs[a], specs[b]
            conflict = (set(ca.CLAIMS) & (set(cb.CLAIMS) | set(cb.USES))) or (set(cb.CLAIMS) & set(ca.USES))
            if conflict:
                (s1, e1), (s2, e2) = spans[a], spans[b]
                assert e1 <= s2 or e2 <= s1, f"{a} and {b} overlapped on {conflict}"


def test_shared_users_run_together_and_lock_waits_are_traced(capsys):
    rec = Recorder()
    users = [make_job(f"U{i}", check=sleeper(0.2), USES=("db",)) for i in range(3)]
    owner = make_job("Owner", check=sleeper(0.05), CLAIMS=("db",))
    start = time.monotonic()
    report = dojob.run(make_job("Root", [*users, owner]), workers=4, observers=[rec], debug=True)
    elapsed = time.monotonic() - start
    assert report.success
    assert 0.24 < elapsed < 0.6  # the users share the lock (0.2 s together), then the owner runs alone
    assert [e.job for e in rec.of(LockWait)] == ["Owner"]
    assert "Owner waits for lock(s): db" in capsys.readouterr().err


def test_a_claimer_is_not_starved_by_a_stream_of_users():
    order = []

    def use(self, *a, **k):
        order.append(type(self).__name__)
        time.sleep(0.02)

    users = [make_job(f"U{i}", check=use, USES=("db",)) for i in range(8)]
    owner = make_job("Owner", check=lambda self, *a, **k: order.append("Owner"), CLAIMS=("db",), PRIORITY=-1)
    dojob.run(make_job("Root", [*users, owner]), workers=2)
    assert order.index("Owner") <= 2  # it goes first (priority) or right after the users already running


def test_bad_resources():
    with pytest.raises(dojob.JobAttributeError, match="CLAIMS"):
        dojob.build_graph(make_job("A", CLAIMS="db"))
    with pytest.raises(dojob.JobAttributeError, match="USES"):
        dojob.build_graph(make_job("A", USES=(1,)))


# -- PRIORITY ----------------------------------------------------------------


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_priority_orders_jobs_ready_at_the_same_moment(driver, recorder):
    jobs = []
    for name, priority in [("Low", 5), ("Default", 0), ("High", -3), ("AlsoLow", 5)]:
        if driver == "async":
            jobs.append(make_job(name, check=_arun_noop, run=_arun_noop, PRIORITY=priority))
        else:
            jobs.append(make_job(name, PRIORITY=priority))
    dojob.run(make_job("Root", jobs), observers=[recorder])
    assert [job for job, _ in recorder.try_starts()] == ["High", "Default", "Low", "AlsoLow", "Root"]


def test_round_robin_stays_above_priority(recorder):
    urgent = flaky("Urgent", 3, TRIES=3, RETRY_DELAY=0, PRIORITY=-10)
    relaxed = [make_job(f"R{i}", PRIORITY=10) for i in range(2)]
    dojob.run(make_job("Root", [urgent, *relaxed]), observers=[recorder], clock=FakeClock())
    # Urgent's second try waits until every ready job had its first one
    assert recorder.try_starts()[:4] == [("Urgent", 1), ("R0", 1), ("R1", 1), ("Urgent", 2)]


def test_the_report_shows_lock_waits_workers_timeouts_and_aborts():
    users = [make_job(f"U{i}", check=sleeper(0.1), USES=("db",)) for i in range(2)]
    owner = make_job("Owner", check=sleeper(0.01), CLAIMS=("db",))
    slow = make_job("Slow", check=sleeper(1), TIMEOUT=0.05, TRIES=1)
    report = dojob.run(make_job("Root", [*users, owner, slow]), workers=3)
    assert report["Owner"].lock_waits == 1 and report["U0"].lock_waits is None
    assert {report[n].worker for n in ("U0", "U1", "Owner")} <= {"dojob-0", "dojob-1", "dojob-2", "dojob-3"}
    assert isinstance(report["Slow"].exception, PhaseTimeout)
    serial = dojob.run(make_job("Root", [flaky("C", None, TRIES=1, CRITICAL=True)]))
    assert (serial.stopped, serial.stopped_job, serial["C"].worker) == ("critical", "C", None)
