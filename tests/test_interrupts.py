"""The deterministic interrupt matrix: a Ctrl-C landing at every engine event and every clock reading.

For each driver (serial, threads, async) the same small graph (a retry, a
failure that blocks, Cleanups) is run once to count its events and clock
readings; then once per event and once per reading with a ``KeyboardInterrupt``
raised exactly there. Whatever the moment: no crash (the run returns its
report, or raises the interrupt with the report attached), the Cleanup of every
instance whose Check ran is called exactly once (and no other), the recap
renders, and the statuses agree with each other and with the event log.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from conftest import make_job

import dojob
from dojob import FakeClock, Status, build_graph
from dojob.events import JobBlocked, JobFinished, RunFinished
from dojob.runner import arun_graph, run_graph

DRIVERS = ["serial", "threads", "async"]

#: Counted by the matrix, for README's reliability table (see test_matrix_size).
MATRIX_RUNS: dict[str, int] = {}


def _graph(log: list) -> type:
    """Root <- A, B (fails once, then converges through Run), D <- C (fails both tries): every one has a Cleanup."""
    ids = itertools.count()

    def init(self):
        self.uid = next(ids)

    def checker(name, fails):
        def check(self, *a, **k):
            log.append(("check", name, self.uid))
            count = self.global_storage.setdefault(("n", name), [0])
            count[0] += 1
            if count[0] <= fails:
                raise RuntimeError(f"{name} not yet")

        return check

    def cleanup(self):
        log.append(("cleanup", type(self).__name__, self.uid))

    def job(name, deps=(), fails=0, **attrs):
        return make_job(name, deps, check=checker(name, fails), __init__=init, Cleanup=cleanup, **attrs)

    a = job("A")
    b = job("B", fails=1, TRIES=2, RETRY_DELAY=1)
    c = job("C", fails=99, TRIES=2, RETRY_DELAY=0)
    d = job("D", [c])
    return make_job("Root", [a, b, d])


class Injector:
    """An observer and a clock that raise ``KeyboardInterrupt`` at the n-th event or reading."""

    def __init__(self, at_event: int = 0, at_read: int = 0) -> None:
        self.at_event, self.at_read = at_event, at_read
        self.events: list = []
        self.reads = 0
        self.clock = _Clock(self)

    def __call__(self, event) -> None:
        self.events.append(event)
        if len(self.events) == self.at_event:
            raise KeyboardInterrupt(f"at event {self.at_event}")


class _Clock(FakeClock):
    def __init__(self, injector: Injector) -> None:
        super().__init__()
        self.injector = injector

    def now(self) -> float:
        self.injector.reads += 1
        if self.injector.reads == self.injector.at_read:
            raise KeyboardInterrupt(f"at clock read {self.injector.at_read}")
        return super().now()


def _run(driver: str, injector: Injector, log: list):
    graph = build_graph(_graph(log), default_retry_delay=0)
    options = {"observers": [injector], "clock": injector.clock}
    try:
        if driver == "async":
            return asyncio.run(arun_graph(graph, **options)), None
        return run_graph(graph, workers=2 if driver == "threads" else 1, **options), None
    except KeyboardInterrupt as exc:
        return getattr(exc, "report", None), exc


def _check(report, raised, log, injector, where) -> None:
    assert report is not None, f"{where}: {raised!r} escaped without a report"
    checked = {(name, uid) for kind, name, uid in log if kind == "check"}
    cleaned = [(name, uid) for kind, name, uid in log if kind == "cleanup"]
    assert sorted(cleaned) == sorted(checked), where  # every checked instance cleaned up, exactly once
    assert report.summary()  # the recap renders
    statuses = {name: job.status for name, job in report.jobs.items()}
    assert Status.PENDING not in statuses.values(), where
    if report.stopped is None:
        assert Status.INTERRUPTED not in statuses.values() and Status.NOT_RUN not in statuses.values(), where
        assert statuses == {"A": Status.OK, "B": Status.CHANGED, "C": Status.FAILED, "D": Status.BLOCKED,
                            "Root": Status.BLOCKED}, where  # fmt: skip
    else:
        assert raised is not None and report.stopped == "interrupted" and not report.success, where
        assert Status.NOT_RUN not in statuses.values(), where  # the stop is why they never started
    for job in report.jobs.values():  # never started: it waited for a cut job, or for nothing (the stop)
        if job.status is Status.INTERRUPTED and not job.tries and job.blocked_by is not None:
            assert statuses[job.blocked_by] is Status.INTERRUPTED, where
    seen = [e for e in injector.events if isinstance(e, (JobFinished, JobBlocked))]
    assert sorted(e.job for e in seen) == sorted(statuses), where  # one ending per job in the event log
    for event in seen:  # the event log agrees with the report
        expected = Status.BLOCKED if isinstance(event, JobBlocked) else event.status
        assert statuses[event.job] is expected, (where, event)
    finished = [e for e in injector.events if isinstance(e, RunFinished)]
    assert len(finished) == 1 and finished[0].stopped == report.stopped, where


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_ctrl_c_at_every_engine_event(driver):
    log: list = []
    probe = Injector()
    report, raised = _run(driver, probe, log)
    assert raised is None and not report.success
    total = len(probe.events)
    assert total > 40
    for n in range(1, total + 1):
        log = []
        injector = Injector(at_event=n)
        report, raised = _run(driver, injector, log)
        _check(report, raised, log, injector, f"{driver} event {n}: {type(injector.events[n - 1]).__name__}")
    MATRIX_RUNS[f"events-{driver}"] = total


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_ctrl_c_at_every_clock_reading(driver):
    log: list = []
    probe = Injector()
    _run(driver, probe, log)
    total = probe.reads
    assert total > 30
    for n in range(1, total + 1):
        log = []
        injector = Injector(at_read=n)
        report, raised = _run(driver, injector, log)
        _check(report, raised, log, injector, f"{driver} clock read {n}")
    MATRIX_RUNS[f"reads-{driver}"] = total


def test_a_stop_is_raised_after_the_cleanups_not_instead_of_them():
    """The interrupt propagates after every Cleanup ran, with the report."""
    log: list = []
    injector = Injector(at_event=3)
    report, raised = _run("serial", injector, log)
    assert isinstance(raised, KeyboardInterrupt) and raised.report is report
    assert [kind for kind, *_ in log][-1] == "cleanup"
    assert dojob.Status.INTERRUPTED in {j.status for j in report.jobs.values()} or report.stopped == "interrupted"
