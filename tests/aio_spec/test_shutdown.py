"""Implicit shutdown, as asynciojobs 0.21.3's code and own tests do it (its README says explicit).

Every ``co_run()`` that ends - success, critical failure, timeout - awaits every
job's ``co_shutdown()`` within ``shutdown_timeout`` and marks the scheduler shut
down, so a later ``shutdown()`` does nothing; a nested scheduler shuts down at the
end of its own run. Runs against both implementations (DOJOB_AIO_IMPL).
"""

import asyncio
import time

import pytest


def _counting(aio, log, name, *, run=0.0, shutdown=0.0, fail=False, **kwds):
    class Counting(aio.AbstractJob):
        async def co_run(self):
            log.append(("run", name))
            await asyncio.sleep(run)
            if fail:
                raise RuntimeError(f"{name} failed")
            return name

        async def co_shutdown(self):
            log.append(("shutdown", name, self.is_done()))
            await asyncio.sleep(shutdown)
            log.append(("shut", name))

    return Counting(label=name, **kwds)


def test_regression_a_successful_run_shuts_every_job_down_once(aio):
    log = []
    a = _counting(aio, log, "a")
    b = _counting(aio, log, "b", required=a)
    s = aio.Scheduler(a, b)
    assert s.run() is True
    assert log[:2] == [("run", "a"), ("run", "b")]  # the shutdown comes after the run (order of jobs: a set's)
    assert sorted(log[2:]) == [("shut", "a"), ("shut", "b"), ("shutdown", "a", True), ("shutdown", "b", True)]
    assert s.shutdown() is None  # already shut down: nothing is called again
    assert len(log) == 6


def test_regression_a_critical_failure_still_shuts_down(aio):
    log = []
    bad = _counting(aio, log, "bad", fail=True, critical=True)
    later = _counting(aio, log, "later", required=bad)
    s = aio.PureScheduler(bad, later)
    assert s.run() is False and s.failed_critical()
    assert ("shutdown", "bad", True) in log and ("shutdown", "later", False) in log
    assert ("run", "later") not in log
    assert s.shutdown() is None


def test_regression_a_timeout_shuts_down_within_shutdown_timeout(aio):
    log = []
    quick = _counting(aio, log, "quick", shutdown=0.05)
    slow_stop = _counting(aio, log, "slow_stop", shutdown=30)  # would hold the run for 30 s
    stuck = _counting(aio, log, "stuck", run=30)
    s = aio.PureScheduler(quick, slow_stop, stuck, timeout=0.5, shutdown_timeout=0.5)
    begin = time.monotonic()
    assert s.run() is False
    elapsed = time.monotonic() - begin
    assert s.failed_time_out()
    assert 0.9 <= elapsed < 15, elapsed  # the run's timeout, then at most shutdown_timeout (+ tidying)
    assert ("shut", "quick") in log and ("shut", "slow_stop") not in log
    assert {e[1] for e in log if e[0] == "shutdown"} == {"quick", "slow_stop", "stuck"}


def test_regression_nested_schedulers_shut_down_with_their_own_run(aio):
    log = []
    inner_job = _counting(aio, log, "inner")
    inner = aio.Scheduler(inner_job, label="INNER")
    after = _counting(aio, log, "after", required=inner)
    outer = aio.Scheduler(inner, after, label="OUTER")
    assert outer.run() is True
    # the inner job is shut down when INNER's run ends, before the outer run goes on
    assert log.index(("shut", "inner")) < log.index(("run", "after"))
    assert log.count(("shutdown", "inner", True)) == 1  # OUTER's shutdown skips INNER, already shut down
    assert ("shutdown", "after", True) in log


def test_regression_coshutdown_of_plain_jobs_is_awaited(aio):
    seen = []

    async def release(name):
        seen.append(name)

    async def work():
        return 1

    s = aio.Scheduler(aio.Job(work(), coshutdown=release("conn"), label="work"))
    assert s.run() is True
    assert seen == ["conn"]


@pytest.mark.dojob_only
def test_each_run_shuts_down_once_and_a_raising_coshutdown_says_false(aio):
    log = []

    class Again(aio.AbstractJob):
        async def co_run(self):
            return 1

        async def co_shutdown(self):
            log.append("shutdown")
            raise OSError("cannot release")

    s = aio.Scheduler(Again(label="again"))
    assert s.run() is True and log == ["shutdown"]
    assert s.run() is True and log == ["shutdown", "shutdown"]  # asynciojobs: the second run skips it
    s._did_shutdown = False  # as if never shut down: the explicit call reports the failure
    assert s.shutdown() is False


@pytest.mark.dojob_only
def test_converge_shuts_down_the_aio_jobs_in_its_graph_when_its_run_ends(aio):
    import dojob

    log = []
    conn = _counting(aio, log, "conn")

    class UsesConn(dojob.Job):
        DEPS = (conn,)

        def Check(self, *args, **kwargs):
            log.append(("check", "UsesConn"))

    after = _counting(aio, log, "after")
    converge = aio.Converge(UsesConn, label="converge")
    after.requires(converge)
    s = aio.Scheduler(converge, after)
    assert s.run() is True
    assert log.index(("shut", "conn")) < log.index(("run", "after"))  # at the end of Converge's own run
    assert log.count(("shutdown", "conn", True)) == 1  # the scheduler's shutdown does not repeat it
    assert ("shutdown", "after", True) in log
