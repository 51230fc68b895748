"""Run semantics through ``dojob.run``: phases, statuses, retries, storage, cleanup, interrupts."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import threading
import time

import pytest
from conftest import flaky, make_job

import dojob
from dojob import FakeClock, Status
from dojob.attempt import NoActError


def test_passing_check_means_done_without_run():
    ran = []
    job = make_job("A", check=lambda self, *a, **k: "value", run=lambda self, *a, **k: ran.append(1))
    report = dojob.run(job)
    assert report.success and ran == []
    assert report["A"].status is Status.OK and report["A"].result == "value" and report["A"].tries == 1


def test_failed_check_runs_then_recheck_decides_and_run_outcome_is_ignored():
    state = {"done": False}

    def check(self, *a, **k):
        if not state["done"]:
            raise LookupError("missing")
        return "converged"

    def run(self, *a, **k):
        state["done"] = True
        raise RuntimeError("Run's own failure is ignored")

    report = dojob.run(make_job("A", check=check, run=run))
    job = report["A"]
    assert (job.status, job.ok, job.result, job.tries) == (Status.CHANGED, True, "converged", 1)


def test_job_failing_every_try_keeps_the_last_exception():
    report = dojob.run(flaky("A", None, TRIES=3, RETRY_DELAY=0), clock=FakeClock())
    job = report["A"]
    assert (job.status, job.ok, job.tries) == (Status.FAILED, False, 3)
    assert str(job.exception) == "A not ready (6)"  # 3 tries x (check + recheck)
    assert not report.success and not report.partial_success


def test_dependents_of_a_failure_are_none_and_never_tried():
    tried = []
    bad = flaky("Bad", None, TRIES=1)
    mid = make_job("Mid", [bad], check=lambda self, *a, **k: tried.append("Mid"))
    ok = make_job("Ok")
    root = make_job("Root", [mid, ok])
    report = dojob.run(root)
    assert report.statuses() == {"Bad": False, "Mid": None, "Ok": True, "Root": None}
    assert tried == []
    assert report["Mid"].status is Status.BLOCKED and report["Mid"].blocked_by == "Bad"
    assert report["Root"].blocked_by == "Bad" and report["Mid"].tries == 0
    assert report.partial_success


def test_init_that_raises_is_a_failed_try(recorder):
    class Broken(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def __init__(self):
            raise OSError("cannot create")

        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

    report = dojob.run(Broken, observers=[recorder])
    assert report["Broken"].status is Status.FAILED and report["Broken"].tries == 2
    assert isinstance(report["Broken"].exception, OSError)
    assert recorder.phases() == ["Broken.init:fail", "Broken.init:fail"]


def test_other_base_exceptions_fail_the_phase_instead_of_escaping():
    class Odd(BaseException):
        pass

    def check(self, *a, **k):
        raise Odd("odd")

    report = dojob.run(make_job("A", check=check, TRIES=1))
    assert isinstance(report["A"].exception, Odd)


def test_arguments_reach_check_and_run():
    seen = []

    def check(self, *args, **kwargs):
        seen.append(("check", args, kwargs))
        if len(seen) == 1:
            raise ValueError

    def run(self, *args, **kwargs):
        seen.append(("run", args, kwargs))

    dojob.run(make_job("A", check=check, run=run), args=(1, 2), kwargs={"movie": "Alien"})
    assert seen == [(p, (1, 2), {"movie": "Alien"}) for p in ("check", "run", "check")]


def test_storage_is_per_try_and_global_storage_per_run():
    seen = []

    class A(dojob.Job):
        TRIES = 2
        RETRY_DELAY = 0

        def Check(self, *a, **k):
            self.storage.setdefault("ids", []).append(id(self))
            seen.append(("check", copy.deepcopy(self.storage), self._check_phase))
            self.global_storage["count"] = self.global_storage.get("count", 0) + 1
            if self.global_storage["count"] < 4:
                raise ValueError("again")

        def Run(self, *a, **k):
            self.storage["ran"] = True

    class B(dojob.Job):
        DEPS = (A,)

        def Check(self, *a, **k):
            return self.global_storage["count"]

        def Run(self, *a, **k):
            pass

    report = dojob.run(B)
    assert report["B"].result == 4
    # within a try Check, Run and recheck share storage; the next try starts empty
    first, recheck, second = seen[0][1], seen[1][1], seen[2][1]
    assert len(first["ids"]) == 1 and recheck["ran"] is True and len(recheck["ids"]) == 2
    assert "ran" not in second and len(second["ids"]) == 1
    assert [s[2] for s in seen] == ["check", "recheck", "check", "recheck"]
    assert dojob.run(B).success  # a fresh global_storage: counting starts again


def test_no_act_runs_only_first_checks():
    log = []
    a = flaky("A", 2, log=log, TRIES=5, RETRY_DELAY=0)
    b = flaky("B", 1, log=log)
    c = make_job("C", [a])

    class Ro(dojob.RunonlyJob):
        def Run(self, *args, **kwargs):
            log.append(("Ro", "run"))

    report = dojob.run(make_job("Root", [c, b, Ro]), no_act=True)
    assert log == [("A", "check"), ("B", "check")]
    assert report.statuses() == {"A": False, "C": None, "B": True, "Ro": False, "Root": None}
    assert report["A"].tries == 1
    assert isinstance(report["Ro"].exception, NoActError)


def test_dummy_and_runonly_jobs():
    class Ro(dojob.RunonlyJob):
        def Run(self, *args, **kwargs):
            return 42

    class Bad(dojob.RunonlyJob):
        TRIES = 1

        def Run(self, *args, **kwargs):
            raise RuntimeError("rm failed")

    class Group(dojob.DummyJob):
        DEPS = (Ro,)

    report = dojob.run(make_job("Root", [Group, Bad]))
    assert report["Ro"].result == 42 and report["Ro"].status is Status.CHANGED
    assert report["Group"].status is Status.OK
    assert str(report["Bad"].exception) == "rm failed" and report["Bad"].status is Status.FAILED


def test_retries_interleave_round_robin(recorder):
    log = []
    pizza = flaky("Pizza", 5, log=log, TRIES=5, RETRY_DELAY=1)  # passes on its 3rd try's check
    bowl = flaky("Bowl", 7, log=log, TRIES=5, RETRY_DELAY=1)  # 4th try
    popcorn = flaky("Popcorn", 3, [bowl], log=log, TRIES=5, RETRY_DELAY=1)
    tv = flaky("TV", None, log=log, TRIES=3, RETRY_DELAY=1)
    root = make_job("Root", [tv, popcorn, pizza])
    report = dojob.run(root, observers=[recorder], clock=FakeClock())
    starts = recorder.try_starts()
    # every job's k-th try starts before any job's (k+1)-th, among jobs ready at the time
    assert starts[:3] == [("TV", 1), ("Bowl", 1), ("Pizza", 1)]
    assert starts[3:6] == [("TV", 2), ("Bowl", 2), ("Pizza", 2)]
    assert starts[6:9] == [("TV", 3), ("Bowl", 3), ("Pizza", 3)]
    assert starts[9:] == [("Bowl", 4), ("Popcorn", 1), ("Popcorn", 2)]
    assert report.statuses() == {"TV": False, "Bowl": True, "Popcorn": True, "Pizza": True, "Root": None}


def test_retry_delay_counts_from_previous_start_and_never_blocks_other_jobs():
    clock = FakeClock()
    starts: dict[str, list[float]] = {}

    def check_for(name, fail):
        def check(self, *a, **k):
            starts.setdefault(name, []).append(clock.now())
            clock.advance(0.5)  # each phase takes half a second
            if fail:
                raise RuntimeError(name)

        return check

    slow = make_job("Slow", check=check_for("Slow", True), TRIES=3, RETRY_DELAY=10)
    b1 = make_job("B1", check=check_for("B1", False))
    b2 = make_job("B2", [b1], check=check_for("B2", False))
    dojob.run(make_job("Root", [slow, b2]), clock=clock)
    # Slow's check+recheck take 1 s; B1 and B2 start right away, not after 10 s
    assert starts["B1"] == [1.0] and starts["B2"] == [1.5]
    assert [starts["Slow"][i] for i in (0, 2, 4)] == [0.0, 10.0, 20.0]


def test_waiting_for_a_retry_overlaps_other_work_in_real_time():
    a = make_job("A", check=lambda self, *a, **k: 1 / 0, TRIES=3, RETRY_DELAY=0.3)

    def sleepy(self, *a, **k):
        time.sleep(0.2)

    b1 = make_job("B1", check=sleepy)
    b2 = make_job("B2", [b1], check=sleepy)
    b3 = make_job("B3", [b2], check=sleepy)
    start = time.monotonic()
    dojob.run(make_job("Root", [a, b3]))
    elapsed = time.monotonic() - start
    # A's two delays (0.6 s) overlap the B chain (0.6 s); sleeping inline would take ~1.2 s
    assert 0.55 <= elapsed < 1.0


def _mixed_graph():
    jobs = []
    for i in range(30):
        deps = [jobs[j] for j in range(max(0, i - 3), i) if (i + j) % 3]
        passes_on = None if i % 11 == 7 else (1 + i % 4)
        jobs.append(flaky(f"J{i}", passes_on, deps, TRIES=3, RETRY_DELAY=0))
    return make_job("Root", jobs)


def test_same_outcome_for_one_and_eight_workers():
    root = _mixed_graph()
    serial = dojob.run(root)
    parallel = dojob.run(root, workers=8)
    assert serial.statuses() == parallel.statuses()
    assert {j.name: j.tries for j in serial} == {j.name: j.tries for j in parallel}
    assert {False, True, None} <= set(serial.statuses().values())


def test_workers_run_independent_branches_at_once():
    active, peak = [0], [0]
    lock = threading.Lock()

    def check(self, *a, **k):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1

    jobs = [make_job(f"J{i}", check=check) for i in range(8)]
    start = time.monotonic()
    report = dojob.run(make_job("Root", jobs), workers=8)
    elapsed = time.monotonic() - start
    assert report.success and peak[0] == 8
    assert elapsed < 0.8  # serially it would take 1.6 s


def test_working_directory_is_restored_before_each_phase_when_serial(tmp_path):
    here = os.getcwd()
    seen = []

    def check(self, *a, **k):
        seen.append(os.getcwd())
        os.chdir(tmp_path)
        if len(seen) == 1:
            raise ValueError

    def run(self, *a, **k):
        seen.append(os.getcwd())
        os.chdir(tmp_path)

    b = make_job("B", check=check, run=run)
    c = make_job("C", [b], check=lambda self, *a, **k: seen.append(os.getcwd()))
    try:
        dojob.run(c)
    finally:
        os.chdir(here)
    assert seen == [here] * 4


def test_async_methods_run_on_an_event_loop():
    order = []

    class A(dojob.Job):
        async def Check(self, *a, **k):
            await asyncio.sleep(0.01)
            order.append("A")
            return "async result"

        async def Run(self, *a, **k):
            pass

    class B(dojob.Job):
        DEPS = (A,)

        def Check(self, *a, **k):  # a plain method in an async graph runs in a thread
            order.append(("B", threading.current_thread() is threading.main_thread()))

        def Run(self, *a, **k):
            pass

    report = dojob.run(B)
    assert report.success and report["A"].result == "async result"
    assert order == ["A", ("B", False)]


def test_async_jobs_run_up_to_workers_at_once():
    class Slow(dojob.Job):
        async def Check(self, *a, **k):
            await asyncio.sleep(0.2)

        async def Run(self, *a, **k):
            pass

    jobs = [type(f"S{i}", (Slow,), {}) for i in range(6)]
    start = time.monotonic()
    assert dojob.run(make_job("Root", jobs), workers=3).success
    elapsed = time.monotonic() - start
    assert 0.38 < elapsed < 0.9  # two waves of 0.2 s, not six


def test_run_refuses_async_graphs_inside_a_running_loop_but_arun_works():
    class A(dojob.Job):
        async def Check(self, *a, **k):
            return 1

        async def Run(self, *a, **k):
            pass

    async def main():
        with pytest.raises(dojob.DojobError, match="await dojob.arun"):
            dojob.run(A)
        return await dojob.arun(A)

    assert asyncio.run(main())["A"].result == 1


# -- cleanup ----------------------------------------------------------------


def _cleanup_job(name, log, deps=(), fail_cleanup=False, **attrs):
    def cleanup(self):
        log.append((name, self.storage.get("try")))
        if fail_cleanup:
            raise RuntimeError(f"{name} cleanup broke")

    def check(self, *a, **k):
        n = self.global_storage[name] = self.global_storage.get(name, 0) + 1
        self.storage["try"] = n
        if n < attrs.pop("_passes_on", 1):
            raise ValueError

    passes_on = attrs.pop("passes_on", 1)

    def check2(self, *a, **k):
        n = self.global_storage[name] = self.global_storage.get(name, 0) + 1
        self.storage["try"] = (n + 1) // 2
        if n < passes_on:
            raise ValueError

    return make_job(name, deps, check=check2, Cleanup=cleanup, **attrs)


def test_cleanup_every_instance_lifo():
    log = []
    a = _cleanup_job("A", log, passes_on=4, TRIES=3, RETRY_DELAY=0)  # passes on its 2nd try's check
    b = _cleanup_job("B", log, [a])
    c = make_job("C", [b])  # no Cleanup
    dojob.run(c)
    # instances in the order their Check was called: A#1, A#2, B#1 -> cleaned newest first
    assert log == [("B", 1), ("A", 2), ("A", 1)]


def test_cleanup_false_defers_to_report_cleanup_once():
    log = []
    a = _cleanup_job("A", log)
    report = dojob.run(a, cleanup=False)
    assert log == []
    report.cleanup()
    report.cleanup()
    assert log == [("A", 1)]


def test_all_cleanups_run_and_failures_are_raised_together():
    log = []
    a = _cleanup_job("A", log, fail_cleanup=True)
    b = _cleanup_job("B", log, [a])
    c = _cleanup_job("C", log, [b], fail_cleanup=True)
    with pytest.raises(dojob.CleanupError) as info:
        dojob.run(c)
    assert log == [("C", 1), ("B", 1), ("A", 1)]
    assert [name for name, _ in info.value.failures] == ["C", "A"]
    assert "C: RuntimeError: C cleanup broke" in str(info.value)
    assert info.value.report.success


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("workers", [1, 4])
def test_interrupt_stops_the_run_cleans_up_and_propagates(stopper, workers):
    log = []
    first = _cleanup_job("First", log)

    def interrupt(self, *a, **k):
        raise stopper()

    boom = make_job("Boom", [first], check=interrupt, Cleanup=lambda self: log.append(("Boom", 1)))
    after = make_job("After", [boom], check=lambda self, *a, **k: log.append("After ran"))
    with pytest.raises(stopper):
        dojob.run(make_job("Root", [after]), workers=workers)
    assert log == [("Boom", 1), ("First", 1)]


def test_interrupt_during_an_async_run_cleans_up_and_propagates():
    log = []

    class A(dojob.Job):
        async def Check(self, *a, **k):
            raise KeyboardInterrupt

        async def Run(self, *a, **k):
            pass

        async def Cleanup(self):
            log.append("A cleaned")

    with pytest.raises(KeyboardInterrupt):
        dojob.run(A)
    assert log == ["A cleaned"]


# -- report ----------------------------------------------------------------


def test_report_is_immutable_and_complete():
    report = dojob.run(make_job("Root", [flaky("A", 3, TRIES=2, RETRY_DELAY=0)]), clock=FakeClock())
    with pytest.raises(AttributeError):
        report.success = False
    with pytest.raises(TypeError):
        report.jobs["A"] = None
    a = report["A"]
    assert a.started == 0.0 and a.ended == 0.0 and a.elapsed == 0.0
    assert a.status is Status.OK and a.tries == 2 and a.result == "A-result"
    assert isinstance(a.exception, RuntimeError)  # the last failure is kept
    assert report.counts()["ok"] == 2 and report.counts()["failed"] == 0
    assert list(report.jobs) == ["A", "Root"] and len(report) == 2
    assert "success=True" in repr(report)


def test_report_timings_are_real_seconds():
    report = dojob.run(make_job("A", check=lambda self, *a, **k: time.sleep(0.1)))
    assert 0.09 < report["A"].elapsed < 0.5 and report.elapsed >= report["A"].elapsed


def test_bad_workers_option():
    with pytest.raises(dojob.OptionError, match="workers"):
        dojob.run(make_job("A"), workers=0)


# -- traces, logging, observers ------------------------------------------


def test_verbose_trace_is_dojobbers(capsys):
    state = {"n": 0}

    def check(self, *a, **k):
        state["n"] += 1
        if state["n"] == 1:
            raise ValueError("not yet")

    def failing(self, *a, **k):
        raise RuntimeError('Remote batteries are "dead".')

    a = make_job("A", check=check)
    tv = make_job("TV", check=failing, run=lambda self, *a, **k: 1 / 0, TRIES=1)
    dojob.run(make_job("Root", [a, tv]), verbose=True)
    assert capsys.readouterr().err.splitlines() == [
        "A.check: fail",
        "A.run: pass",
        "A.recheck: pass",
        "TV.check: fail",
        "TV.run: fail",
        'TV.recheck: fail "Remote batteries are "dead"."',
    ]


def test_debug_trace_adds_tracebacks_and_cleanup_lines(capsys):
    def failing(self, *a, **k):
        raise RuntimeError("no")

    a = make_job("A", check=failing, TRIES=1, Cleanup=lambda self: None)
    dojob.run(a, debug=True)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "A.check: fail"
    assert lines[1] == "  Error was:"
    assert lines[2] == "  Traceback (most recent call last):"
    assert "  RuntimeError: no" in lines
    assert lines[-2:] == ["A.cleanup running", "A.cleanup: pass"]


def test_silent_unless_asked(capsys):
    dojob.run(make_job("Root", [flaky("A", None, TRIES=1)]))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_trace_escapes_control_characters(capsys):
    def failing(self, *a, **k):
        raise ValueError("line1\nline2 \x1b[31mred")

    dojob.run(make_job("A", check=failing, TRIES=1), verbose=True)
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == 'A.recheck: fail "line1\\x0aline2 \\x1b[31mred"'


def test_an_observer_that_raises_is_dropped_and_logged(caplog, recorder):
    calls = []

    def bad(event):
        calls.append(event)
        raise RuntimeError("observer bug")

    with caplog.at_level(logging.ERROR, logger="dojob"):
        report = dojob.run(make_job("Root", [make_job("A")]), observers=[bad, recorder])
    assert report.success and len(calls) == 1
    assert len(recorder.events) > 5
    assert "observer" in caplog.text and "dropped" in caplog.text


def test_developer_logging_goes_to_the_dojob_logger_without_handlers(caplog):
    with caplog.at_level(logging.DEBUG, logger="dojob"):
        dojob.run(make_job("A"))
    assert any("PhaseEnded" in r.getMessage() for r in caplog.records if r.name == "dojob")
    assert logging.getLogger("dojob").handlers == []


def test_events_arrive_in_order_for_a_serial_run(recorder):
    dojob.run(make_job("Root", [flaky("A", 2, TRIES=2)]), observers=[recorder])
    kinds = [type(e).__name__ for e in recorder.events]
    assert kinds == [
        "RunStarted",
        "TryStarted", "PhaseStarted", "PhaseEnded", "PhaseStarted", "PhaseEnded",
        "PhaseStarted", "PhaseEnded", "TryEnded", "JobFinished",
        "TryStarted", "PhaseStarted", "PhaseEnded", "TryEnded", "JobFinished",
        "RunFinished",
    ]  # fmt: skip
    assert recorder.events[-1].success is True


def test_plan_checks_every_job_even_downstream_of_a_change():
    log = []
    a = flaky("A", None, log=log, TRIES=3)  # would run
    b = flaky("B", 1, [a], log=log)  # passes now, but A upstream will change
    c = flaky("C", None, [b], log=log)
    d = flaky("D", 1, log=log)

    class Ro(dojob.RunonlyJob):
        def Run(self, *a, **k):
            log.append("Ro ran")

    report = dojob.run(make_job("Root", [c, d, Ro]), plan=True)
    assert sorted(log) == sorted([("A", "check"), ("B", "check"), ("C", "check"), ("D", "check")])
    plans = {j.name: j.plan for j in report}
    assert plans == {
        "A": "would_run",
        "B": "ok_upstream_changes",
        "C": "would_run_upstream_changes",
        "D": "ok",
        "Ro": "would_run",
        "Root": "ok_upstream_changes",
    }
    assert report["A"].tries == 1 and not report.success
    assert dojob.run(d, plan=True).success
    assert dojob.run(d)["D"].plan is None


def test_a_run_leaves_the_collector_as_it_found_it_even_when_the_graph_is_invalid():
    """The heap is frozen only while a run lasts: not after it, and not after a build that failed."""
    import gc

    a = make_job("LoopA")
    b = make_job("LoopB", [a])
    a.DEPS = [b]
    frozen_before = gc.get_freeze_count()
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before
    with pytest.raises(dojob.CycleError):
        dojob.run(b)
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before
    seen = []
    ok = make_job("Frozen", check=lambda self, *a, **k: seen.append(gc.get_freeze_count() > 0))
    assert dojob.run(ok).success and seen == [True]
    assert gc.isenabled() and gc.get_freeze_count() == frozen_before


def test_a_run_inside_a_run_does_not_count_the_frozen_heap(monkeypatch):
    """``gc.get_freeze_count()`` walks every frozen object: asked by each nested run (a nested
    asynciojobs scheduler, a run or a DoJobber inside a job), it cost 11 ms per nested start in CI's
    test process, enough to fail asynciojobs' own 0.05 s timings. Only the outermost run asks."""
    import gc

    from dojob.aio import Job as AioJob
    from dojob.aio import Scheduler, Sequence
    from dojob.compat import DoJobber

    asked = []
    counting = gc.get_freeze_count
    monkeypatch.setattr(gc, "get_freeze_count", lambda: asked.append(1) or counting())

    async def nothing():
        return None

    subs = [Scheduler(Sequence(AioJob(nothing()), AioJob(nothing()))) for _ in range(3)]
    assert Scheduler(Sequence(*subs)).run() is True
    assert len(asked) == 1

    inner = make_job("InnerLeaf")
    dojobber_root = make_job("InnerDoJobber")
    nested = []

    def runs_inside(self, *args, **kwargs):
        nested.append(dojob.run(inner).success)
        dojobber = DoJobber()
        dojobber.configure(dojobber_root)
        dojobber.checknrun()
        nested.append(dojobber.success())

    del asked[:]
    assert dojob.run(make_job("Outer", check=runs_inside)).success
    assert nested == [True, True] and len(asked) == 1
    assert gc.isenabled() and counting() == 0


def test_runs_in_a_loop_leave_the_applications_cyclic_garbage_collectable():
    """A service looping over small runs: each run's freeze used to move the garbage made since the
    last collection to the oldest generation uncounted, so it was never collected (a daemon running
    ``--every`` with a failing job grew without bound). Now the young generations are collected first."""
    import gc

    class Cyclic:
        def __init__(self):
            self.me = self

    job = make_job("LoopedLeaf")
    failing = make_job("LoopedFailing", check=lambda self, *a, **k: 1 / 0, run=lambda self, *a, **k: None)
    assert dojob.run(job).success
    for _ in range(300):
        for _ in range(20):
            Cyclic()
        assert dojob.run(job).success
        assert not dojob.run(failing, default_tries=1).success
    alive = sum(1 for obj in gc.get_objects() if type(obj) is Cyclic)
    assert alive <= 20, f"{alive} cyclic objects left uncollected after 300 runs"


def test_a_heap_frozen_by_the_application_is_counted_once_per_process(monkeypatch):
    """Counting frozen objects walks them all (25 ms at 2 M objects): once a run found the application's
    freeze, later runs leave the collector alone without asking again, and never unfreeze it."""
    import gc

    import dojob.runner

    asked = []
    counting = gc.get_freeze_count
    monkeypatch.setattr(gc, "get_freeze_count", lambda: asked.append(1) or counting())
    gc.freeze()
    try:
        frozen = counting()
        for name in ("AppFrozenA", "AppFrozenB", "AppFrozenC"):
            assert dojob.run(make_job(name)).success
            assert counting() == frozen and gc.isenabled()
        assert len(asked) == 1
    finally:
        gc.unfreeze()
        monkeypatch.setattr(dojob.runner, "_application_freezes", False)  # a new process would know no better
