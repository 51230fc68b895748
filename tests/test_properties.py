"""Property tests: random job graphs, random retries and random faults, checked against invariants.

Each example is a random DAG of up to 60 jobs (random DEPS, TRIES, RETRY_DELAY
on a fake clock; each job converging at a random try or never; exceptions
injected in any phase, ``__init__`` and Cleanup included). It runs under the
serial driver, 8 threads, and the async driver (coroutine jobs, and plain jobs on
its threads); every run must match the
oracle (:func:`jobmodel.expected`) and keep the invariants of
:mod:`jobmodel`, read from what the jobs recorded and from the planner's events.
"""

from __future__ import annotations

import asyncio

from conftest import Recorder, flaky, make_job
from hypothesis import given
from hypothesis import strategies as st
from jobmodel import (
    FAULTS,
    PHASES,
    JobPlan,
    Log,
    build_jobs,
    check_log,
    check_report,
    check_round_robin,
    check_round_robin_fast,
    expected,
    expected_cleanup_failures,
    roots_of,
)

import dojob
from dojob import FakeClock
from dojob.runner import arun_graph, run_graph

MAX_JOBS = 60


@st.composite
def job_plans(draw: st.DrawFn, max_jobs: int = MAX_JOBS) -> list[JobPlan]:
    n = draw(st.integers(1, max_jobs))
    plans = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 4), unique=True)) if i else []
        tries = draw(st.integers(1, 4))
        faults = draw(
            st.dictionaries(
                st.tuples(st.integers(1, tries), st.sampled_from(PHASES)),
                st.sampled_from(sorted(FAULTS)),
                max_size=3,
            )
        )
        plans.append(
            JobPlan(
                name=f"J{i}",
                deps=tuple(deps),
                kind=draw(st.sampled_from(["job", "job", "job", "runonly"])),
                tries=tries,
                delay=draw(st.sampled_from([0, 0, 0.5, 1, 2.5])),
                succeed_at=draw(st.one_of(st.none(), st.integers(1, 5))),
                at_once=draw(st.booleans()),
                faults=tuple(sorted(faults.items())),
            )
        )
    return plans


def _run(plans: list[JobPlan], driver: str) -> tuple[dojob.Report, Log, Recorder, list]:
    clock = FakeClock()
    log = Log(clock)
    classes = build_jobs(plans, log, use_async=driver == "async")
    graph = dojob.build_graph(*roots_of(plans, classes))
    recorder = Recorder()
    options = {"observers": [recorder], "clock": clock}
    failures: list = []
    try:
        if driver.startswith("async"):
            report = asyncio.run(arun_graph(graph, workers=8, **options))
        else:
            report = run_graph(graph, workers=8 if driver == "threads" else 1, **options)
    except dojob.CleanupError as exc:
        report, failures = exc.report, exc.failures
    return report, log, recorder, failures


def check_run(plans: list[JobPlan], driver: str) -> dojob.Report:
    report, log, recorder, failures = _run(plans, driver)
    check_report(plans, report)
    check_log(plans, log, strict_lifo=driver != "threads")
    check_round_robin(plans, recorder.events)
    check_round_robin_fast(plans, recorder.events)
    want = expected_cleanup_failures(plans, expected(plans))
    assert sorted(name for name, _ in failures) == sorted(want.elements())
    return report


@given(job_plans())
def test_random_graphs_keep_every_invariant_under_every_driver(plans):
    outcomes = []
    for driver in ("serial", "threads", "async", "async-threads"):
        report = check_run(plans, driver)
        outcomes.append({j.name: (j.status, j.tries, type(j.exception)) for j in report})
    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]


@given(job_plans(max_jobs=12))
def test_serial_and_async_drivers_emit_the_same_planner_events(plans):
    """With one worker both drivers make the same decisions at the same fake times."""
    kinds = ("TryStarted", "TryEnded", "JobFinished", "JobBlocked")

    def decisions(driver: str) -> list:
        clock = FakeClock()
        classes = build_jobs(plans, Log(clock), use_async=driver == "async")
        graph = dojob.build_graph(*roots_of(plans, classes))
        recorder = Recorder()
        try:
            if driver == "async":
                asyncio.run(arun_graph(graph, observers=[recorder], clock=clock))
            else:
                run_graph(graph, observers=[recorder], clock=clock)
        except dojob.CleanupError:
            pass
        return [e for e in recorder.events if type(e).__name__ in kinds]

    assert decisions("serial") == decisions("async")


def test_regression_a_retried_job_jumped_the_round_robin_queue():
    """A job back from its retry delay re-entered the ready heap keyed as if it had used no try,
    so it got its 2nd try before jobs ready at the same moment had their 1st (found by the
    round-robin property above; it had slipped into commit 9d4f5b5)."""
    recorder = Recorder()
    jobs = [flaky(name, 5, TRIES=3, RETRY_DELAY=0) for name in ("A", "B", "C")]  # pass on the 3rd try
    dojob.run(make_job("Root", jobs), observers=[recorder], clock=FakeClock())
    assert recorder.try_starts() == [(name, k) for k in (1, 2, 3) for name in "ABC"] + [("Root", 1)]
