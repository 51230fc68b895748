"""The shortcuts that make ``dojob.aio`` fast keep asynciojobs' behaviour.

A run's shutdown awaits only the ``co_shutdown()`` methods that can do something:
the inherited no-op and a ``Job`` without ``coshutdown`` are skipped (a task each
was a fifth of a 10 000-job run); every other one is awaited as before.
"""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from dojob import aio
from dojob.aio.jobs import _shuts_down


async def _nothing() -> None:
    return None


def test_only_the_shutdowns_that_can_do_something_are_awaited() -> None:
    log: list[str] = []

    async def record(name: str) -> str:
        log.append(name)
        return name

    class Own(aio.AbstractJob):
        async def co_run(self) -> None:
            return None

        async def co_shutdown(self) -> None:
            log.append("own")

    class Silent(aio.AbstractJob):  # inherits the no-op co_shutdown
        async def co_run(self) -> None:
            return None

    class SubJob(aio.Job):
        async def co_shutdown(self) -> None:
            log.append("subjob")

    plain = aio.Job(_nothing())
    with_shutdown = aio.Job(_nothing(), coshutdown=record("coshutdown"))
    jobs = [plain, with_shutdown, Own(), Silent(), SubJob(_nothing())]
    assert [_shuts_down(j) for j in jobs] == [False, True, True, False, True]
    s = aio.Scheduler(*jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coroutine left un-awaited
        assert s.run() is True
        gc.collect()
    assert sorted(log) == ["coshutdown", "own", "subjob"]
    assert s.shutdown() is None  # once per run


def test_a_late_shutdown_is_still_reported_among_all_the_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    class Slow(aio.AbstractJob):
        async def co_run(self) -> None:
            return None

        async def co_shutdown(self) -> None:
            await asyncio.sleep(30)

    s = aio.Scheduler(Slow(), aio.Job(_nothing()), aio.Job(_nothing()), shutdown_timeout=0.2, verbose=True)
    assert s.run() is True
    assert "1/3 co_shutdown() methods have not returned within timeout" in capsys.readouterr().out


def test_shutdown_of_jobs_with_nothing_to_shut_down_is_true() -> None:
    s = aio.Scheduler(*(aio.Job(_nothing()) for _ in range(50)))
    assert s.run() is True and s.report is not None and len(s.report) == 50


# -- the direct path for unwatched awaitable tries -------------------------------------------------
# Without observers, a try of an aio job runs in one frame (dojob.async_driver._awaited) instead of
# the try protocol's steps; with an observer (verbose) it takes the general path. Both must agree.


def _behaviours() -> list[aio.Job]:
    """Jobs that end in every way a try can: value, awaitable returned, raised, self-cancelled, retried."""
    calls = {"flaky": 0}

    async def value() -> int:
        return 5

    async def seven() -> int:
        return 7

    async def returns_awaitable() -> object:
        return seven()

    async def raises() -> None:
        raise ValueError("bad ü\n\x00")

    async def cancels_itself() -> None:
        raise asyncio.CancelledError("by itself")

    async def generator_exit() -> None:
        raise GeneratorExit("odd")

    async def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise OSError("first try")
        return "second"

    async def forever() -> None:
        await asyncio.sleep(30)

    jobs = [
        aio.Job(value(), label="value", critical=False),
        aio.Job(returns_awaitable(), label="awaitable", critical=False),
        aio.Job(raises(), label="raises", critical=False),
        aio.Job(cancels_itself(), label="cancels_itself", critical=False),
        aio.Job(generator_exit(), label="generator_exit", critical=False),
        aio.Job(flaky, tries=2, label="flaky", critical=False),
        aio.Job(forever(), label="forever", forever=True, critical=False),
    ]
    jobs.append(aio.Job(value(), label="after", required=jobs[2], critical=False))
    return jobs


def _outcome(verbose: bool) -> tuple[bool, list[tuple]]:
    jobs = _behaviours()
    s = aio.Scheduler(*jobs, verbose=verbose, critical=False)
    ok = s.run()
    rows = [
        (r.name, r.status, r.tries, type(r.exception).__name__, str(r.exception), r.result, r.cause is r.exception)
        for r in s.report
    ]
    states = [(j.label, j.is_done(), j._result, type(j._exception).__name__) for j in jobs]
    return ok, rows + states


def test_the_direct_path_ends_tries_as_the_try_protocol_does(capsys: pytest.CaptureFixture[str]) -> None:
    general = _outcome(verbose=True)
    capsys.readouterr()
    direct = _outcome(verbose=False)
    assert direct == general
    ok, rows = direct
    by_label = {row[0].split(" ", 1)[1]: row for row in rows[:8]}
    assert ok is True
    assert by_label["value"][5] == 5 and by_label["awaitable"][5] == 7
    assert by_label["raises"][3] == "ValueError" and by_label["cancels_itself"][3] == "CancelledError"
    assert by_label["generator_exit"][3] == "GeneratorExit"
    assert by_label["flaky"][2] == 2 and by_label["flaky"][5] == "second"


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit])
def test_a_stopper_raised_by_a_job_stops_the_run_on_both_paths(
    verbose: bool, stopper: type[BaseException], capsys: pytest.CaptureFixture[str]
) -> None:
    async def stop() -> None:
        raise stopper("stop")

    async def later() -> None:
        return None

    first = aio.Job(stop(), label="stop")
    second = aio.Job(later(), label="later", required=first)
    s = aio.Scheduler(first, second, verbose=verbose)
    with pytest.raises(stopper):
        s.run()
    assert not second.is_done() and not first.is_done()


def _sibling_cancelled(verbose: bool) -> tuple[bool, list[tuple[str, str, str]], float]:
    """A job that cancels, before they start, the tasks of the jobs started with it (adversarial)."""
    import time

    async def saboteur() -> str:
        me = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not me and "adrive" not in repr(task.get_coro()) and "co_run" not in repr(task.get_coro()):
                task.cancel()
        return "done"

    async def victim() -> str:
        return "victim ran"

    jobs = [aio.Job(saboteur(), label="saboteur", critical=False)]
    jobs += [aio.Job(victim(), label=f"victim{i}", critical=False) for i in range(3)]
    s = aio.Scheduler(*jobs, verbose=verbose, critical=False)
    t0 = time.monotonic()
    ok = s.run()
    rows = [(r.name, r.status.value, type(r.exception).__name__) for r in s.report]
    for job in jobs[1:]:
        job.corun.close()  # never run: cancelled before it started (else it warns when collected)
    return ok, rows, time.monotonic() - t0


# the general path leaves the steps coroutine of a task cancelled before it started un-awaited
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:coroutine 'arun_steps' was never awaited:RuntimeWarning")
def test_a_try_whose_task_is_cancelled_before_it_starts_is_still_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A direct try reports its own end; one whose coroutine never ran is found by the driver's look."""
    direct = _sibling_cancelled(verbose=False)
    general = _sibling_cancelled(verbose=True)
    assert direct[:2] == general[:2]
    ok, rows, elapsed = direct
    assert rows[0] == ("1 saboteur", "changed", "NoneType")
    assert [row[1:] for row in rows[1:]] == [("not_run", "CancelledError")] * 3
    assert elapsed < 10  # found within a look (1 s), not never
    gc.collect()  # (here, where the general path's warnings are expected)


def _cancels_itself(verbose: bool) -> list[tuple[str, str, str]]:
    async def cancel_me() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(1)

    async def fine() -> str:
        return "fine"

    first = aio.Job(cancel_me(), label="cancel_me", critical=False)
    second = aio.Job(fine(), label="fine", critical=False)
    s = aio.Scheduler(first, second, critical=False, verbose=verbose)
    assert s.run() is True
    return [(r.name, r.status.value, type(r.exception).__name__) for r in s.report]


def test_a_job_that_cancels_its_own_task_ends_cancelled_on_both_paths(capsys: pytest.CaptureFixture[str]) -> None:
    direct = _cancels_itself(verbose=False)
    assert direct == _cancels_itself(verbose=True)
    assert direct == [("1 cancel_me", "not_run", "CancelledError"), ("2 fine", "changed", "NoneType")]


def test_required_given_as_a_tuple_of_jobs_is_the_same_as_through_requires() -> None:
    a, b = aio.Job(_nothing(), label="a"), aio.Job(_nothing(), label="b")
    seq = aio.Sequence(aio.Job(_nothing(), label="s1"), aio.Job(_nothing(), label="s2"))
    fast = aio.Job(_nothing(), required=(b, a, b))
    slow = aio.Job(_nothing())
    slow.requires(b, a, b)
    assert list(fast.required) == list(slow.required) == [b, a]
    nested = aio.Job(_nothing(), required=(a, None, (b,)))
    of_sequence = aio.Job(_nothing(), required=(seq, a))
    assert list(nested.required) == [a, b] and list(of_sequence.required) == [seq.jobs[-1], a]
    nested.close()
    of_sequence.close()
    bad = _nothing()
    with pytest.raises(TypeError):
        aio.Job(bad, required=(a, "not a job"))
    bad.close()
    s = aio.Scheduler(a, b, fast, slow, *seq.jobs, critical=False)
    assert s.run() is True
    for job in s.jobs:
        job.close()
