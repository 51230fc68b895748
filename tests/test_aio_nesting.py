"""dojob.aio and class-based dojob graphs nested both ways, under one planner.

* aio jobs and Schedulers in the ``DEPS`` of class-based jobs (``dojob.run``);
* ``dojob.aio.Converge`` running a class-based graph as an aio job;
* aio retries interleaved round-robin with class-job retries;
* run timeouts bounding nested schedulers and nested graphs, both ways.

The project runs tests with RuntimeWarning as an error, so any coroutine left
un-awaited by these runs fails the test that leaked it.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import Recorder

import dojob
from dojob import aio


class Boom(Exception):
    pass


async def sleeper(delay: float, result: object = None, log: list | None = None, name: str = "") -> object:
    if log is not None:
        log.append(("start", name))
    await asyncio.sleep(delay)
    if log is not None:
        log.append(("end", name))
    return result


async def raiser(delay: float, message: str = "boom") -> None:
    await asyncio.sleep(delay)
    raise Boom(message)


async def cancellable(delay: float, flags: dict, name: str) -> str:
    try:
        await asyncio.sleep(delay)
    except asyncio.CancelledError:
        flags[name] = "cancelled"
        raise
    flags[name] = "completed"
    return name


def flaky_factory(name: str, failures: int, log: list, result: object):
    """A function returning a fresh coroutine per call; the first ``failures`` calls' coroutines raise."""
    calls = []

    def factory():
        calls.append(name)
        attempt = len(calls)

        async def one_try():
            log.append((name, attempt))
            await asyncio.sleep(0.001)
            if attempt <= failures:
                raise Boom(f"{name} try {attempt}")
            return result

        return one_try()

    return factory, calls


# ---------------------------------------------------------------------------
# aio jobs and schedulers inside class-based graphs
# ---------------------------------------------------------------------------
def test_aio_job_in_deps_of_a_class_job():
    seen = []

    class Build(dojob.Job):
        DEPS = (aio.Job(sleeper(0.01, 42), label="fetch"),)

        def Check(self):
            seen.append("check")

        def Run(self):
            seen.append("run")

    report = dojob.run(Build, default_tries=1)
    assert report.success
    assert report["fetch"].result == 42
    assert report["fetch"].status is dojob.Status.CHANGED
    assert [name for name in report.jobs] == ["fetch", "Build"]
    assert seen == ["check"]


def test_scheduler_in_deps_of_a_class_job():
    log = []
    inner = aio.Scheduler(
        aio.Sequence(
            aio.Job(sleeper(0.02, "a", log, "a"), label="a"),
            aio.Job(sleeper(0.02, "b", log, "b"), label="b"),
        ),
        aio.Job(sleeper(0.01, "c", log, "c"), label="c"),
        label="inner",
    )

    class Deploy(dojob.RunonlyJob):
        DEPS = [inner]

        def Run(self):
            log.append(("run", "Deploy"))
            return "deployed"

    report = dojob.run(Deploy)
    assert report.success
    assert report["inner"].result is True
    assert report["Deploy"].result == "deployed"
    # the scheduler ran completely before its dependent
    assert log.index(("end", "b")) < log.index(("run", "Deploy"))
    assert inner.why() == "FINE" and inner.report.success


def test_failing_aio_job_in_deps_is_critical_by_default():
    class Root(dojob.Job):
        DEPS = (aio.Job(raiser(0.01, "nope"), label="bad"),)

        def Check(self):
            pass

        def Run(self):
            pass

    report = dojob.run(Root, default_tries=1)
    assert not report.success
    assert report.stopped == "critical" and report.stopped_job == "bad"
    assert isinstance(report["bad"].exception, Boom)
    assert report["Root"].status is dojob.Status.BLOCKED


def test_non_critical_aio_job_in_deps_blocks_its_dependents():
    class Other(dojob.Job):
        def Check(self):
            pass

        def Run(self):
            pass

    class Root(dojob.Job):
        DEPS = (aio.Job(raiser(0.01), critical=False, label="bad"), Other)

        def Check(self):
            pass

        def Run(self):
            pass

    report = dojob.run(Root, default_tries=1)
    assert report.stopped is None
    assert report["Other"].status.ok
    assert report["Root"].status is dojob.Status.BLOCKED and report["Root"].blocked_by == "bad"


def test_critical_scheduler_failing_in_deps_stops_the_class_run():
    inner = aio.Scheduler(aio.Job(raiser(0.01, "deep"), label="deep"), label="inner")

    class Root(dojob.Job):
        DEPS = (inner,)

        def Check(self):
            pass

        def Run(self):
            pass

    report = dojob.run(Root)
    assert report.stopped == "critical" and report.stopped_job == "inner"
    # the inner critical job's own exception bubbled up through the scheduler
    exc = report["inner"].exception
    assert isinstance(exc, Boom) and str(exc) == "deep"
    assert inner.failed_critical()


def test_aio_job_in_deps_with_arun_inside_a_running_loop():
    class Root(dojob.Job):
        DEPS = (aio.Job(lambda: sleeper(0.01, "x"), label="x"),)

        def Check(self):
            pass

        def Run(self):
            pass

    async def main():
        return await dojob.arun(Root)

    report = asyncio.run(main())
    assert report.success and report["x"].result == "x"


# ---------------------------------------------------------------------------
# Converge: a class-based graph as an aio job
# ---------------------------------------------------------------------------
def make_graph(state: dict, *, broken: bool = False):
    class Package(dojob.Job):
        def Check(self):
            if not state.get("package"):
                raise RuntimeError("package missing")

        def Run(self):
            if broken:
                raise RuntimeError("mirror down")
            state["package"] = True

    class Config(dojob.Job):
        DEPS = (Package,)

        async def Check(self):
            await asyncio.sleep(0.001)
            if not state.get("config"):
                raise RuntimeError("config missing")

        async def Run(self):
            state["config"] = True

    return Package, Config


def test_converge_inside_a_scheduler():
    state: dict = {}
    log = []
    _, Config = make_graph(state)
    prepare = aio.Job(sleeper(0.01, "prepared", log, "prepare"), label="prepare")
    converge = aio.Converge(Config, required=prepare, workers=2, default_retry_delay=0)
    after = aio.Job(lambda: sleeper(0.01, dict(state)), label="after", required=converge)
    s = aio.Scheduler(prepare, converge, after)
    assert s.run() is True
    report = converge.result()
    assert isinstance(report, dojob.Report) and report.success
    assert report["Package"].status is dojob.Status.CHANGED
    assert after.result() == {"package": True, "config": True}
    assert converge.repr_main() == "<Converge `Converge[Config]`>"
    # converging again changes nothing
    again = aio.Converge(Config)
    assert aio.Scheduler(again).run() is True
    assert all(job.status is dojob.Status.OK for job in again.result())


def test_converge_failure_names_the_failed_jobs():
    state: dict = {}
    _, Config = make_graph(state, broken=True)
    converge = aio.Converge(Config, default_tries=1, critical=False, label="site")
    after = aio.Job(sleeper(0.01, "after"), label="after", required=converge)
    s = aio.Scheduler(converge, after)
    assert s.run() is True  # a non-critical job failed: dependents still run
    exc = converge.raised_exception()
    assert isinstance(exc, aio.ConvergeError)
    assert exc.failed == ["Package"] and exc.blocked == ["Config"]
    assert "Package" in str(exc) and "Config" in str(exc)
    assert not exc.report.success
    assert after.result() == "after"


def test_converge_is_critical_by_default():
    _, Config = make_graph({}, broken=True)
    s = aio.Scheduler(aio.Converge(Config, default_tries=1), aio.Job(sleeper(1), critical=False))
    begin = time.perf_counter()
    with pytest.raises(aio.ConvergeError, match="Package"):
        s.run()
    assert time.perf_counter() - begin < 0.5
    assert s.failed_critical()


def test_nesting_three_levels():
    """class graph -> aio Scheduler -> Converge -> class graph."""
    state: dict = {}
    _, Config = make_graph(state)
    inner = aio.Scheduler(aio.Converge(Config, label="converge config"), label="aio layer")

    class Site(dojob.Job):
        DEPS = (inner,)

        def Check(self):
            if not state.get("config"):
                raise RuntimeError("not configured")

        def Run(self):
            pass

    report = dojob.run(Site)
    assert report.success and report["Site"].status is dojob.Status.OK
    assert state == {"package": True, "config": True}


# ---------------------------------------------------------------------------
# retries: aio jobs are retried round-robin like class jobs
# ---------------------------------------------------------------------------
def test_aio_retries_round_robin_with_a_class_job():
    log = []
    factory, calls = flaky_factory("aio", 2, log, "A")

    class ClassFlaky(dojob.Job):
        TRIES = 3
        RETRY_DELAY = 0.01

        def Check(self):
            if self.global_storage.setdefault("checks", 0) < 4:  # check, recheck, check, recheck fail
                self.global_storage["checks"] += 1
                raise RuntimeError("not yet")

        def Run(self):
            log.append(("class", self.global_storage["checks"]))

    class Root(dojob.DummyJob):
        DEPS = (ClassFlaky, aio.Job(factory, tries=3, retry_delay=0.01, label="aio"))

    recorder = Recorder()
    report = dojob.run(Root, observers=[recorder])
    assert report.success
    assert report["aio"].result == "A" and report["aio"].tries == 3
    assert report["ClassFlaky"].tries == 3
    starts = [(job, n) for job, n in recorder.try_starts() if job != "Root"]
    # every job's k-th try before any job's (k+1)-th
    assert starts == [("ClassFlaky", 1), ("aio", 1), ("ClassFlaky", 2), ("aio", 2), ("ClassFlaky", 3), ("aio", 3)]
    assert len(calls) == 3


def test_aio_retries_in_a_scheduler_with_a_converge_job():
    log = []
    factory, calls = flaky_factory("aio", 1, log, "A")
    state: dict = {}
    _, Config = make_graph(state)
    retried = aio.Job(factory, tries=2, retry_delay=0.01, label="retried")
    s = aio.Scheduler(retried, aio.Converge(Config, required=retried))
    assert s.run() is True
    assert retried.result() == "A" and len(calls) == 2
    assert state == {"package": True, "config": True}


def test_job_from_a_coroutine_cannot_retry():
    coroutine = sleeper(0)
    with pytest.raises(ValueError, match="only run once"):
        aio.Job(coroutine, tries=2)
    # the coroutine was closed: no "never awaited" warning (warnings are errors here)
    assert coroutine.cr_frame is None


# ---------------------------------------------------------------------------
# timeouts bound everything nested, both ways
# ---------------------------------------------------------------------------
def test_scheduler_timeout_bounds_a_converge_job():
    flags: dict = {}

    class Slow(dojob.RunonlyJob):
        async def Run(self):
            await cancellable(2, flags, "slow")

        def Cleanup(self):
            flags["cleanup"] = True

    s = aio.Scheduler(aio.Converge(Slow, label="slow graph"), timeout=0.1, critical=False)
    begin = time.perf_counter()
    assert s.run() is False
    assert time.perf_counter() - begin < 0.5
    assert s.failed_time_out() == 0.1
    # the class job was cancelled and its Cleanup ran before run() returned
    assert flags == {"slow": "cancelled", "cleanup": True}


def test_class_run_timeout_bounds_a_nested_scheduler():
    flags: dict = {}
    inner = aio.Scheduler(
        aio.Sequence(
            aio.Job(cancellable(0.02, flags, "first"), label="first"),
            aio.Job(cancellable(2, flags, "second"), label="second"),
            aio.Job(cancellable(0.01, flags, "third"), label="third"),
        ),
        label="inner",
    )

    class Root(dojob.Job):
        DEPS = (inner,)

        def Check(self):
            pass

        def Run(self):
            pass

    begin = time.perf_counter()
    report = dojob.run(Root, timeout=0.15)
    assert time.perf_counter() - begin < 0.5
    assert report.stopped == "timeout"
    assert report["inner"].status is dojob.Status.INTERRUPTED  # cut short by the run timeout
    assert flags == {"first": "completed", "second": "cancelled"}
    # the nested scheduler's jobs reflect what happened; 'third' never started
    first, second, third = inner.topological_order()
    assert first.is_done() and second.is_running() and not second.is_done()
    assert third.is_idle() and not third.is_running()


def test_outer_timeout_bounds_doubly_nested_schedulers():
    flags: dict = {}
    deepest = aio.Scheduler(aio.Job(cancellable(1, flags, "deepest"), label="deepest"), label="deepest")
    middle = aio.Scheduler(deepest, aio.Job(cancellable(1, flags, "middle"), label="middle"), label="middle")
    outer = aio.Scheduler(middle, timeout=0.1, critical=False)

    async def main():
        ok = await outer.co_run()
        at_return = dict(flags)
        await asyncio.sleep(0.2)
        return ok, at_return

    ok, at_return = asyncio.run(main())
    assert ok is False and outer.failed_time_out()
    assert at_return == {"deepest": "cancelled", "middle": "cancelled"} == flags


def test_inner_timeout_shorter_than_outer():
    flags: dict = {}
    inner = aio.Scheduler(aio.Job(cancellable(1, flags, "inner"), label="inner"), timeout=0.05, critical=False)
    after = aio.Job(sleeper(0.01, "after"), label="after", required=inner)
    outer = aio.Scheduler(inner, after, timeout=1)
    assert outer.run() is True
    assert inner.result() is False and inner.failed_time_out() == 0.05
    assert after.result() == "after" and flags == {"inner": "cancelled"}


# ---------------------------------------------------------------------------
# coroutines of jobs that never start are closed, nested ones included
# ---------------------------------------------------------------------------
def test_nested_jobs_that_never_start_leave_no_coroutine():
    inner_job = aio.Job(sleeper(0), label="inner job")
    inner = aio.Scheduler(inner_job, label="inner")
    outer = aio.Scheduler(
        aio.Sequence(aio.Job(raiser(0.01), label="boom"), inner),
        aio.Job(sleeper(1), forever=True, label="monitor", required=inner),
        critical=False,
    )
    assert outer.run() is False
    assert inner.is_idle() and inner_job.is_idle()
    assert inner_job.corun.cr_frame is None  # closed, never awaited


def test_forever_job_that_never_starts_is_closed():
    blocker = aio.Job(sleeper(0.01), label="regular")
    monitor = aio.Job(sleeper(10), forever=True, label="monitor", required=blocker)
    assert aio.Scheduler(blocker, monitor).run() is True
    # the regular job is done before the monitor could start: it never runs
    assert monitor.is_idle() and not monitor.is_running()
    assert monitor.corun.cr_frame is None


def test_regression_aio_job_in_deps_that_never_starts_is_closed_and_one_that_ran_knows_its_result():
    import gc

    async def never():
        return "unreachable"

    async def value():
        return 42

    unstarted = aio.Job(never(), label="never")
    ran = aio.Job(value(), label="ran")
    stop = type("Stop", (dojob.Job,), {"Check": lambda s, *a, **k: 1 / 0, "Run": lambda s, *a, **k: 0,
                                       "TRIES": 1, "CRITICAL": True})  # fmt: skip
    later = type("Later", (dojob.Job,), {"DEPS": (stop, unstarted), "Check": lambda s, *a, **k: 0,
                                         "Run": lambda s, *a, **k: 0})  # fmt: skip
    first = type("First", (dojob.Job,), {"DEPS": (ran,), "Check": lambda s, *a, **k: 0, "Run": lambda s, *a, **k: 0})
    report = dojob.run(type("Root", (dojob.DummyJob,), {"DEPS": (first, later)}))
    gc.collect()  # an un-awaited coroutine would warn here (RuntimeWarning is an error in this suite)
    assert report.stopped == "critical"
    assert ran.is_done() and ran.result() == 42 and report["ran"].result == 42
    assert not unstarted.is_done() and unstarted.corun.cr_frame is None
