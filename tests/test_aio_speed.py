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
