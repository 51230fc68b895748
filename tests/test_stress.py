"""Stress: 10 000-job graphs with random failures, 16 workers, run again and again.

Each run must match the oracle and keep the invariants (DEPS order, TRIES,
round-robin, Cleanups once each, LIFO), and leave nothing behind: no thread,
no asyncio task, no file descriptor, no "coroutine was never awaited" warning.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sys
import threading
import time
import warnings
import weakref

import pytest
from conftest import Recorder, make_job
from jobmodel import (
    FAULTS,
    PHASES,
    JobPlan,
    Log,
    build_jobs,
    check_log,
    check_report,
    check_round_robin_fast,
    expected,
    expected_cleanup_failures,
    roots_of,
)

import dojob
from dojob.runner import arun_graph

JOBS = 10_000
WORKERS = 16
#: 4 random graphs x 5 runs = 20 runs of 10 000 jobs on 16 workers; the last graph's jobs are
#: coroutines (the async driver), the others run on threads. The first run of each graph also
#: records every event to check round-robin (observers make a run ~2x slower: every failing
#: phase's traceback is formatted for them).
GRAPHS = 4
RUNS_PER_GRAPH = 5


def random_plans(n: int, seed: int) -> list[JobPlan]:
    """A random DAG of ``n`` jobs in groups of 100 (DEPS among the previous 30 of the group, so a
    failure blocks part of a group, not half the graph); ~1% of jobs faulty, ~0.3% never converging."""
    rng = random.Random(seed)
    plans = []
    for i in range(n):
        window = range(max(i - i % 100, i - 30), i)
        deps = tuple(rng.sample(window, min(len(window), rng.choice((0, 1, 1, 2, 3)))))
        tries = rng.choice((1, 2, 3))
        faults = {}
        if rng.random() < 0.01:
            faults[(rng.randint(1, tries), rng.choice(PHASES))] = rng.choice(sorted(FAULTS))
        roll = rng.random()
        succeed_at = None if roll < 0.003 else (rng.randint(1, tries) if roll < 0.2 else 1)
        plans.append(
            JobPlan(
                name=f"S{i}",
                deps=deps,
                kind="runonly" if rng.random() < 0.1 else "job",
                tries=tries,
                delay=0,
                succeed_at=succeed_at,
                at_once=rng.random() < 0.7,
                faults=tuple(sorted(faults.items())),
            )
        )
    return plans


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _new_threads(before: set[threading.Thread], seconds: float = 2.0) -> list[str]:
    """Threads started since ``before`` that are still alive once the run's threads had time to end
    (a daemon phase thread may need a moment after handing its result over)."""
    deadline = time.monotonic() + seconds
    while True:
        new = [t.name for t in threading.enumerate() if t not in before]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.005)


def _left_behind(threads: set[threading.Thread], fds: set[str]) -> tuple[list[str], set[str]]:
    """What a run left behind: new threads still alive, and new descriptors still open.

    Compared with what existed before the run, not with counts: threads of earlier tests
    may end meanwhile.
    """
    new_threads = _new_threads(threads)
    return new_threads, _fds() - fds


async def _arun_checking_tasks(graph, **options):
    """Run on this loop; afterwards no task but this one may be left."""
    try:
        return await arun_graph(graph, **options)
    finally:
        assert asyncio.all_tasks() == {asyncio.current_task()}


_built: dict[int, tuple[list[JobPlan], Log, dojob.JobGraph]] = {}


def _graph(seed: int) -> tuple[list[JobPlan], Log, dojob.JobGraph]:
    """The plans, log and graph of random graph ``seed``, built once for its five runs."""
    if seed not in _built:
        _built.clear()  # runs are ordered by graph: free the previous one
        plans = random_plans(JOBS, seed=seed)
        log = Log(None)
        classes = build_jobs(plans, log, use_async=seed == GRAPHS - 1)
        _built[seed] = plans, log, dojob.build_graph(*roots_of(plans, classes), default_retry_delay=0)
    return _built[seed]


@pytest.mark.parametrize("seed, repeat", [(g, r) for g in range(GRAPHS) for r in range(RUNS_PER_GRAPH)])
def test_ten_thousand_jobs_sixteen_workers_random_failures(seed, repeat):
    plans, log, graph = _graph(seed)
    use_async = seed == GRAPHS - 1
    log.reset()
    recorder = Recorder()
    observers = [recorder] if repeat == 0 else []
    threads, fds = set(threading.enumerate()), _fds()
    failures: list = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if use_async:
                report = asyncio.run(_arun_checking_tasks(graph, workers=WORKERS, observers=observers))
            else:
                report = dojob.runner.run_graph(graph, workers=WORKERS, observers=observers)
        except dojob.CleanupError as exc:
            report, failures = exc.report, exc.failures
        gc.collect()  # a coroutine never awaited would warn when collected
    assert _left_behind(threads, fds) == ([], set())
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []

    check_report(plans, report)
    check_log(plans, log, strict_lifo=use_async)
    if observers:
        check_round_robin_fast(plans, recorder.events)
    want = expected_cleanup_failures(plans, expected(plans))
    assert sorted(name for name, _ in failures) == sorted(want.elements())
    counts = report.counts()
    assert counts["failed"] and counts["blocked"] and counts["changed"] and counts["ok"] > JOBS // 2


def test_ten_thousand_serial_jobs_leave_nothing_behind():
    plans = random_plans(JOBS, seed=99)
    log = Log(None)
    classes = build_jobs(plans, log)
    threads, fds = set(threading.enumerate()), _fds()
    try:
        report = dojob.run(*roots_of(plans, classes), default_retry_delay=0)
    except dojob.CleanupError as exc:
        report = exc.report
    assert _left_behind(threads, fds) == ([], set())
    check_report(plans, report)
    check_log(plans, log, strict_lifo=True)


def test_regression_build_graph_kept_every_job_function_alive():
    """graph.py memoised iscoroutinefunction per function in a module-level dict, forever: each
    graph of dynamically made jobs leaked its functions and all their closures held."""

    def make():
        payload = bytearray(1_000_000)

        def check(self, *a, **k):
            return len(payload)

        return make_job("Leaky", check=check)

    job = make()
    probe = weakref.ref(job.Check)
    dojob.run(job)
    del job
    gc.collect()
    assert probe() is None


# -- shared state under workers > 1 ---------------------------------------------------------------

COUNTERS = 16
INCREMENTS = 5


def _increment_unsafely(storage) -> None:
    value = storage.get("count", 0)
    time.sleep(0.001)  # another try reads the same value meanwhile
    storage["count"] = value + 1


def _increment_under_the_lock(storage) -> None:
    with storage.lock:
        _increment_unsafely(storage)


def _increment_atomically(storage) -> None:
    def plus_one(value):
        time.sleep(0.001)
        return value + 1

    storage.update_atomic("count", plus_one, 0)


def _count(increment, **options) -> int:
    def check(self, *a, **k):
        for _ in range(INCREMENTS):
            increment(self.global_storage)

    storage = dojob.SharedStorage()
    jobs = [make_job(f"Count{i}", check=check) for i in range(COUNTERS)]
    dojob.run(make_job("Root", jobs), workers=8, global_storage=storage, **options)
    return storage["count"]


def test_read_modify_write_on_a_plain_dict_loses_updates_under_threads():
    """Why the lock exists: this is what happens without it."""
    assert _count(_increment_unsafely) < COUNTERS * INCREMENTS


@pytest.mark.parametrize("increment", [_increment_under_the_lock, _increment_atomically])
def test_the_storage_lock_and_update_atomic_lose_no_update(increment):
    assert _count(increment) == COUNTERS * INCREMENTS


def test_global_storage_is_a_shared_storage_for_every_driver():
    seen = []

    def check(self, *a, **k):
        seen.append(type(self.global_storage))

    async def acheck(self, *a, **k):
        seen.append(type(self.global_storage))

    async def anoop(self, *a, **k):
        pass

    dojob.run(make_job("A", check=check), workers=1)
    dojob.run(make_job("A", check=check), workers=4)
    dojob.run(make_job("A", check=acheck, run=anoop))
    assert seen == [dojob.SharedStorage] * 3


def test_shared_storage_is_a_dict_that_pickles_and_copies_with_a_fresh_lock():
    import copy
    import pickle

    storage = dojob.SharedStorage(a=1)
    storage["self"] = storage
    assert isinstance(storage, dict) and storage["a"] == 1
    for clone in (pickle.loads(pickle.dumps(storage)), copy.deepcopy(storage)):
        assert type(clone) is dojob.SharedStorage and clone["a"] == 1 and clone["self"] is clone
        assert clone.lock is not storage.lock
        with clone.lock:  # re-entrant
            assert clone.update_atomic("n", lambda v: v + 1, 41) == 42
    assert copy.copy(storage).lock is not storage.lock


def test_global_storage_keeps_its_lock_in_process_workers():
    def check(self, *a, **k):
        with self.global_storage.lock:
            self.global_storage.update_atomic("count", lambda n: n + 1, 0)

    storage = dojob.SharedStorage()
    jobs = [make_job(f"P{i}", check=check) for i in range(4)]
    report = dojob.run(*jobs, executor="processes", workers=2, global_storage=storage)
    assert report.success and storage["count"] >= 1  # merged back: the last try to end wins the key


def test_a_100000_job_chain_builds_and_runs_serially_without_recursion():
    # README, Architecture: "no recursion (a 100 000-job chain builds and runs)"
    def nothing(self, *args, **kwargs):
        pass

    chain: list[type] = []
    for i in range(100_000):
        chain.append(type(f"Link{i}", (dojob.Job,), {"DEPS": chain[-1:], "Check": nothing, "Run": nothing}))
    started: list[str] = []

    def first_and_last(event):
        if isinstance(event, dojob.events.TryStarted):
            if started:
                started[1:] = [event.job]
            else:
                started.append(event.job)

    assert sys.getrecursionlimit() < 100_000  # a recursive walk of this chain could not finish
    report = dojob.run(chain[-1], observers=[first_and_last])
    assert report.success and len(report.jobs) == 100_000
    assert all(job.status is dojob.Status.OK and job.tries == 1 for job in report.jobs.values())
    assert started == ["Link0", "Link99999"]  # the leaf first, the root last
