"""The pure planner, driven by hand with explicit times (no clock, no threads)."""

from __future__ import annotations

import pytest
from conftest import Recorder, make_job

from dojob import Status, build_graph
from dojob.events import JobBlocked, RunStopping
from dojob.plan import Planner


def names(planner, indices):
    return [planner.specs[i].name for i in indices]


def test_serial_order_is_post_order_when_everything_passes():
    a, b = make_job("A"), make_job("B")
    c = make_job("C", [a, b])
    root = make_job("Root", [c, make_job("D", [b])])
    p = Planner(build_graph(root))
    order = []
    while p.is_active():
        (i,) = p.next_actions(0.0)
        order.append(p.specs[i].name)
        p.complete(i, True, 0.0)
    assert order == ["A", "B", "C", "D", "Root"]


def test_ready_jobs_limited_by_max_running():
    jobs = [make_job(f"J{i}") for i in range(5)]
    p = Planner(build_graph(make_job("Root", jobs)), max_running=3)
    first = p.next_actions(0.0)
    assert names(p, first) == ["J0", "J1", "J2"]
    assert p.next_actions(0.0) == []
    p.complete(first[1], True, 0.1)
    assert names(p, p.next_actions(0.1)) == ["J3"]


def test_round_robin_kth_try_before_any_k_plus_1th():
    a = make_job("A", TRIES=3, RETRY_DELAY=0)
    b = make_job("B", TRIES=3, RETRY_DELAY=0)
    c = make_job("C", TRIES=3, RETRY_DELAY=0)
    p = Planner(build_graph(make_job("Root", [a, b, c])))
    starts = []
    while p.is_active():
        (i,) = p.next_actions(0.0)
        starts.append((p.specs[i].name, p.tries[i]))
        p.complete(i, p.specs[i].name == "Root", 0.0)
    assert starts == [("A", 1), ("B", 1), ("C", 1), ("A", 2), ("B", 2), ("C", 2), ("A", 3), ("B", 3), ("C", 3)]
    assert p.status[:3] == [Status.FAILED] * 3


def test_retry_waits_retry_delay_from_previous_start_without_blocking_others():
    a = make_job("A", TRIES=2, RETRY_DELAY=10)
    b = make_job("B")
    p = Planner(build_graph(make_job("Root", [a, b])))
    (i,) = p.next_actions(0.0)
    assert p.specs[i].name == "A"
    p.complete(i, False, 1.0, exception=ValueError("x"))
    assert p.next_wakeup() == 10.0  # start + delay, not end + delay
    (j,) = p.next_actions(1.0)
    assert p.specs[j].name == "B"  # B is not held up by A's delay
    p.complete(j, True, 1.5)
    assert p.next_actions(9.99) == []
    (k,) = p.next_actions(10.0)
    assert (p.specs[k].name, p.tries[k]) == ("A", 2)


def test_new_first_tries_go_before_retries():
    a = make_job("A", TRIES=2, RETRY_DELAY=0)
    b = make_job("B", TRIES=2, RETRY_DELAY=0)
    c = make_job("C", [a])
    p = Planner(build_graph(make_job("Root", [c, b])))
    (i,) = p.next_actions(0)
    p.complete(i, False, 0)  # A fails its 1st try
    (i,) = p.next_actions(0)
    p.complete(i, False, 0)  # B fails its 1st try
    (i,) = p.next_actions(0)
    assert (p.specs[i].name, p.tries[i]) == ("A", 2)
    p.complete(i, True, 0)  # A passes: C becomes ready with 0 tries used
    (i,) = p.next_actions(0)
    assert (p.specs[i].name, p.tries[i]) == ("C", 1)


def test_priority_orders_same_round_jobs_but_not_above_round_robin():
    low = make_job("Low", PRIORITY=5)
    high = make_job("High", PRIORITY=-1)
    p = Planner(build_graph(make_job("Root", [low, high])))
    assert names(p, p.next_actions(0)) == ["High"]


def test_failure_blocks_every_descendant_once():
    rec = Recorder()
    a = make_job("A", TRIES=1)
    b = make_job("B", [a])
    c = make_job("C", [a, b])
    d = make_job("D")
    root = make_job("Root", [c, d])
    p = Planner(build_graph(root), emit=rec)
    (i,) = p.next_actions(0)
    p.complete(i, False, 0, exception=RuntimeError("boom"))
    blocked = rec.of(JobBlocked)
    assert sorted(e.job for e in blocked) == ["B", "C", "Root"]
    assert {e.blocked_by for e in blocked} == {"A"}
    (i,) = p.next_actions(0)
    assert p.specs[i].name == "D"
    p.complete(i, True, 0)
    assert not p.is_active()
    p.finish(0)
    assert [s.ok for s in p.status] == [False, None, None, True, None]


def test_no_act_gives_one_try():
    a = make_job("A", TRIES=5, RETRY_DELAY=0)
    p = Planner(build_graph(a), no_act=True)
    (i,) = p.next_actions(0)
    p.complete(i, False, 0)
    assert not p.is_active() and p.status[i] is Status.FAILED


def test_stop_starts_nothing_new_and_finish_marks_the_rest():
    rec = Recorder()
    jobs = [make_job(f"J{i}", TRIES=2, RETRY_DELAY=5) for i in range(3)]
    p = Planner(build_graph(make_job("Root", jobs)), max_running=2, emit=rec)
    first = p.next_actions(0)
    p.complete(first[0], False, 0)  # J0 waits for a retry
    p.stop("timeout", 1.0)
    assert p.next_actions(100) == []
    assert p.is_active()  # J1 still runs
    p.complete(first[1], False, 1.5)  # no retry once stopped: it had tries left, so it is interrupted
    assert not p.is_active()
    p.finish(2.0)
    # J0 waited for a retry, J1 had a try left: interrupted, never failed; Root waited for them;
    # J2 never started because of the stop: interrupted too, waiting for nothing
    assert p.status == [Status.INTERRUPTED, Status.INTERRUPTED, Status.INTERRUPTED, Status.INTERRUPTED]
    assert p.blocked_by[2] is None and p.blocked_by[3] == "J0"
    assert rec.of(RunStopping)[0].reason == "timeout" and rec.of(RunStopping)[0].running == 1


def test_critical_failure_stops_the_run():
    crit = make_job("Crit", TRIES=1, CRITICAL=True)
    other = make_job("Other")
    p = Planner(build_graph(make_job("Root", [crit, other])))
    (i,) = p.next_actions(0)
    p.complete(i, False, 0)
    assert (p.stopped, p.stopped_job) == ("critical", "Crit")
    assert not p.is_active()


def test_finish_accounts_for_a_try_a_driver_lost_and_complete_refuses_one_not_running():
    p = Planner(build_graph(make_job("A")))
    (i,) = p.next_actions(0)
    p.finish(0)  # a try handed out and never completed: interrupted, not a crash
    assert p.status == [Status.INTERRUPTED] and p.stopped == "interrupted" and not p.in_flight
    with pytest.raises(RuntimeError, match="has no try running"):
        p.complete(i, True, 1)


def test_max_running_must_be_positive():
    with pytest.raises(ValueError):
        Planner(build_graph(make_job("A")), max_running=0)


def _forever(name, index):
    from dojob.graph import JobSpec

    return JobSpec(name, index, object(), "awaitable", 1, 0.0, is_async=True, forever=True)


def test_forever_jobs_do_not_keep_a_run_alive_but_a_run_of_only_forever_jobs_lasts():
    from dojob.graph import JobGraph, JobSpec

    monitor = _forever("Monitor", 0)
    work = JobSpec("Work", 1, object(), "awaitable", 1, 0.0, is_async=True)
    p = Planner(JobGraph([monitor, work], [(), ()], ()), max_running=2)
    assert len(p.next_actions(0)) == 2
    p.complete(1, True, 1.0)  # the real work is done: the monitor should be cancelled
    assert p.cancel_running() and p.is_active()
    p.complete(0, False, 1.0, cancelled=True)
    assert not p.is_active()
    p.finish(1.0)
    assert p.succeeded()

    only = Planner(JobGraph([_forever("M1", 0), _forever("M2", 1)], [(), ()], ()), max_running=2, deadline=5.0)
    assert len(only.next_actions(0)) == 2
    assert not only.cancel_running()  # nothing else to wait for: they run until they end...
    only.complete(0, True, 1.0)
    assert only.is_active() and not only.cancel_running()
    assert only.next_actions(5.0) == [] and only.stopped == "timeout"  # ...or the deadline
    assert only.cancel_running()
