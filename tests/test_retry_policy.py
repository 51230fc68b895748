"""Retry policies: RETRY_BACKOFF, RETRY_MAX_DELAY, RETRY_JITTER, RETRY_ON, RETRY_FROM (issue 15)."""

from __future__ import annotations

import random

import pytest

import dojob
from dojob import FakeClock, Status
from dojob.events import TryEnded, TryStarted
from dojob.plan import Planner
from dojob.retry import RetryPolicy

DRIVERS = [
    pytest.param({}, id="serial"),
    pytest.param({"workers": 3}, id="threads"),
    pytest.param({"asynchronous": True}, id="async"),
]


class Flaky(Exception):
    pass


def failing(name, exc=Flaky, asynchronous=False, seconds=0.0, clock=None, **attrs):
    """A job whose Check always fails with ``exc``; Run takes ``seconds`` on the fake clock."""
    if asynchronous:

        async def check(self, *a, **k):
            raise exc(f"{name} failed")

        async def run(self, *a, **k):
            if seconds:
                clock.advance(seconds)
    else:

        def check(self, *a, **k):
            raise exc(f"{name} failed")

        def run(self, *a, **k):
            if seconds:
                clock.advance(seconds)

    return type(name, (dojob.Job,), {"Check": check, "Run": run, **attrs})


def starts(events, job):
    return [e.time for e in events if isinstance(e, TryStarted) and e.job == job]


def converge(root, options, **kw):
    options = dict(options)
    options.pop("asynchronous", None)
    events = []
    report = dojob.run(root, observers=[events.append], clock=kw.pop("clock", None) or FakeClock(), **options, **kw)
    return report, events


@pytest.mark.parametrize("options", DRIVERS)
def test_backoff_multiplies_the_delay_and_the_cap_bounds_it(options):
    a = failing("Backoff", asynchronous="asynchronous" in options, TRIES=5, RETRY_DELAY=1, RETRY_BACKOFF=2)
    report, events = converge(a, options)
    assert report["Backoff"].tries == 5 and report["Backoff"].status is Status.FAILED
    t = starts(events, "Backoff")
    assert [round(y - x, 6) for x, y in zip(t, t[1:], strict=False)] == [1, 2, 4, 8]
    capped = failing("Capped", asynchronous="asynchronous" in options, TRIES=5, RETRY_DELAY=1, RETRY_BACKOFF=2,
                     RETRY_MAX_DELAY=3)  # fmt: skip
    _, events = converge(capped, options)
    t = starts(events, "Capped")
    assert [round(y - x, 6) for x, y in zip(t, t[1:], strict=False)] == [1, 2, 3, 3]


@pytest.mark.parametrize("options", DRIVERS)
def test_jitter_is_bounded_and_repeatable_with_a_seed(options):
    def delays(seed):
        job = failing("J", asynchronous="asynchronous" in options, TRIES=6, RETRY_DELAY=2, RETRY_JITTER=0.5)
        _, events = converge(job, options, retry_seed=seed)
        t = starts(events, "J")
        return [y - x for x, y in zip(t, t[1:], strict=False)]

    first = delays(7)
    assert len(first) == 5 and all(2 <= d <= 3 for d in first)
    assert delays(7) == first
    assert delays(8) != first
    expected = [2 + 2 * 0.5 * r for r in _randoms(7, 5)]
    assert first == pytest.approx(expected)


def _randoms(seed, n):
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


@pytest.mark.parametrize("options", [*DRIVERS, pytest.param({"workers": 2, "executor": "processes"}, id="processes")])
def test_retry_on_fails_other_exceptions_at_once_with_the_reason(options):
    asynchronous = "asynchronous" in options
    other = failing("Other", ValueError, asynchronous, TRIES=4, RETRY_DELAY=0, RETRY_ON=(ConnectionError, Flaky))
    listed = failing("Listed", ConnectionResetError, asynchronous, TRIES=4, RETRY_DELAY=0, RETRY_ON=ConnectionError)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (other, listed)})
    report, events = converge(root, options)
    assert report["Other"].tries == 1 and report["Other"].status is Status.FAILED
    assert report["Listed"].tries == 4  # a subclass of a listed type is retried
    reason = "not retried: ValueError is not in RETRY_ON (ConnectionError, Flaky)"
    assert reason in report["Other"].exception.__notes__
    assert f"FAILED  Other (1 try): ValueError: Other failed; {reason}" in report.summary()
    ended = [e for e in events if isinstance(e, TryEnded) and e.job == "Other"]
    assert [e.retry_at for e in ended] == [None]


@pytest.mark.parametrize("options", DRIVERS)
def test_regression_retry_from_end_waits_after_a_slow_try(options):
    clock = FakeClock()
    asynchronous = "asynchronous" in options
    slow_start = failing("FromStart", Flaky, asynchronous, 5.0, clock, TRIES=2, RETRY_DELAY=2)
    _, events = converge(slow_start, options, clock=clock)
    t = starts(events, "FromStart")
    ends = [e.time for e in events if isinstance(e, TryEnded)]
    assert t[1] == pytest.approx(ends[0])  # DoJobber's rule: the 5 s try already used up the 2 s: back-to-back
    clock = FakeClock()
    slow_end = failing("FromEnd", Flaky, asynchronous, 5.0, clock, TRIES=2, RETRY_DELAY=2, RETRY_FROM="end")
    _, events = converge(slow_end, options, clock=clock)
    t = starts(events, "FromEnd")
    ends = [e.time for e in events if isinstance(e, TryEnded)]
    assert t[1] == pytest.approx(ends[0] + 2)


def test_round_robin_is_kept_with_policies():
    jobs = [failing(f"R{i}", TRIES=3, RETRY_DELAY=0, RETRY_BACKOFF=3, RETRY_ON=Flaky) for i in range(3)]
    root = type("Root", (dojob.DummyJob,), {"DEPS": tuple(jobs)})
    _, events = converge(root, {})
    order = [(e.job, e.try_number) for e in events if isinstance(e, TryStarted)]
    assert order == [(f"R{i}", k) for k in (1, 2, 3) for i in range(3)]


def test_defaults_stay_dojobbers():
    plain = failing("Plain")
    explicit = failing("Explicit", RETRY_BACKOFF=1, RETRY_JITTER=0, RETRY_FROM="start", RETRY_MAX_DELAY=None)
    graph = dojob.build_graph(type("Root", (dojob.DummyJob,), {"DEPS": (plain, explicit)}))
    assert graph["Plain"].retry is None and graph["Explicit"].retry is None  # the planner's fast path
    _, events = converge(plain, {})
    t = starts(events, "Plain")
    assert [y - x for x, y in zip(t, t[1:], strict=False)] == [1, 1]


@pytest.mark.parametrize(
    "attrs, attribute",
    [
        ({"RETRY_BACKOFF": 0.5}, "RETRY_BACKOFF"),
        ({"RETRY_BACKOFF": True}, "RETRY_BACKOFF"),
        ({"RETRY_BACKOFF": float("inf")}, "RETRY_BACKOFF"),
        ({"RETRY_MAX_DELAY": -1}, "RETRY_MAX_DELAY"),
        ({"RETRY_JITTER": 1.5}, "RETRY_JITTER"),
        ({"RETRY_JITTER": "0.1"}, "RETRY_JITTER"),
        ({"RETRY_ON": "ValueError"}, "RETRY_ON"),
        ({"RETRY_ON": (ValueError, 3)}, "RETRY_ON"),
        ({"RETRY_FROM": "middle"}, "RETRY_FROM"),
    ],
)
def test_bad_policies_are_refused_before_anything_runs_naming_the_job(attrs, attribute):
    ran = []
    bad = type("Bad", (dojob.Job,), {"Check": lambda s, *a, **k: ran.append(1), "Run": lambda s: None, **attrs})
    with pytest.raises(dojob.JobAttributeError) as info:
        dojob.run(type("Root", (dojob.DummyJob,), {"DEPS": (bad,)}))
    assert (info.value.job, info.value.attribute) == ("Bad", attribute)
    assert str(info.value).startswith(f"job 'Bad': {attribute} must be")
    assert ran == []


def test_policy_delay_rule():
    policy = RetryPolicy(backoff=2, max_delay=10, jitter=0.1)
    rng = random.Random(1)
    r = random.Random(1).random()
    assert policy.delay(1, 1, rng) == pytest.approx(1 + 0.1 * r)
    assert RetryPolicy(backoff=2, max_delay=10, jitter=0.5).delay(1, 9, random.Random(2)) == 10  # capped after jitter
    assert RetryPolicy().delay(3, 7, rng) == 3


def test_planner_cost_stays_linear_with_policies():
    """Many failing jobs with a policy: each retry is heap work only (no per-job scans)."""
    import time

    jobs = [failing(f"P{i}", TRIES=2, RETRY_DELAY=0, RETRY_BACKOFF=2) for i in range(2000)]
    graph = dojob.build_graph(type("Root", (dojob.DummyJob,), {"DEPS": tuple(jobs)}))

    def drive(n_jobs):
        sub = dojob.select(graph, only=[f"P{i}" for i in range(n_jobs)]) if n_jobs < 2000 else graph
        planner = Planner(sub, max_running=1)
        t0 = time.perf_counter()
        now = 0.0
        while planner.is_active():
            for index in planner.next_actions(now):
                planner.complete(index, False, now, exception=Flaky())
            now += 1
        return time.perf_counter() - t0

    small, big = drive(200), drive(2000)
    assert big < small * 30  # ~10x for 10x the jobs; quadratic would be ~100x


def test_regression_aio_jobs_still_retry():
    """``dojob.aio`` builds its specs field by field: a spec without the policy field broke its retries."""
    from dojob.aio import Job, Scheduler

    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")

    assert Scheduler(Job(flaky, tries=3, retry_delay=0, label="flaky")).run()
    assert len(calls) == 3


def test_retry_on_judges_the_jobs_own_failures_only():
    from dojob.remote import WorkerLost

    policy = RetryPolicy(on=(ConnectionError,))
    assert policy.refuses(WorkerLost("J: the worker running it was lost")) is None  # dojob's own report
    assert policy.refuses(ConnectionResetError()) is None
    assert policy.refuses(KeyError("x")) == "not retried: KeyError is not in RETRY_ON (ConnectionError)"
