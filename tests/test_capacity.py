"""Capacities: ``capacity={"api": 3}``: USES takes one unit, CLAIMS all of them (issue 15)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dojob
from dojob import Status
from dojob.events import LockWait
from dojob.plan import Planner


def spans_job(name, spans, lock, seconds, asynchronous=False, **attrs):
    """A job whose Check holds for ``seconds`` and records its (start, end)."""
    if asynchronous:

        async def check(self, *a, **k):
            start = time.monotonic()
            await asyncio.sleep(seconds)
            with lock:
                spans[name] = (start, time.monotonic())

        async def run(self, *a, **k):
            pass
    else:

        def check(self, *a, **k):
            start = time.monotonic()
            time.sleep(seconds)
            with lock:
                spans[name] = (start, time.monotonic())

        def run(self, *a, **k):
            pass

    return type(name, (dojob.Job,), {"Check": check, "Run": run, **attrs})


def peak_units(spans, classes, resource, capacity):
    """The most units of ``resource`` held at once according to the recorded spans."""
    marks = []
    for cls in classes:
        if cls.__name__ not in spans:
            continue
        units = capacity if resource in cls.CLAIMS else (1 if resource in cls.USES else 0)
        if units:
            start, end = spans[cls.__name__]
            marks += [(start, units), (end, -units)]
    marks.sort(key=lambda m: (m[0], m[1]))  # ends before starts at the same instant
    held = peak = 0
    for _, delta in marks:
        held += delta
        peak = max(peak, held)
    return peak


@pytest.mark.parametrize("asynchronous", [False, True], ids=["threads", "async"])
def test_at_most_capacity_users_at_once(asynchronous):
    spans: dict = {}
    lock = threading.Lock()
    users = [spans_job(f"U{i}", spans, lock, 0.05, asynchronous, USES=("api",)) for i in range(9)]
    root = type("Root", (dojob.DummyJob,), {"DEPS": tuple(users)})
    t0 = time.monotonic()
    report = dojob.run(root, workers=9, capacity={"api": 3})
    elapsed = time.monotonic() - t0
    assert report.success
    assert peak_units(spans, users, "api", 3) == 3
    assert elapsed >= 0.15  # three waves of three
    assert sum(1 for j in report if j.lock_waits) >= 6


def test_a_claim_takes_every_unit():
    spans: dict = {}
    lock = threading.Lock()
    users = [spans_job(f"U{i}", spans, lock, 0.03, USES=("api",)) for i in range(4)]
    owner = spans_job("Owner", spans, lock, 0.03, CLAIMS=("api",))
    classes = [*users, owner]
    report = dojob.run(type("Root", (dojob.DummyJob,), {"DEPS": tuple(classes)}), workers=5, capacity={"api": 2})
    assert report.success
    start, end = spans["Owner"]
    for user in users:
        s, e = spans[user.__name__]
        assert e <= start or s >= end, f"{user.__name__} overlapped the claim"
    assert peak_units(spans, classes, "api", 2) == 2


def test_processes_respect_capacity():
    storage: dict = {}

    report = dojob.run(
        type("Root", (dojob.DummyJob,), {"DEPS": tuple(_timed(f"P{i}") for i in range(6))}),
        workers=6, executor="processes", capacity={"api": 2}, global_storage=storage,
    )  # fmt: skip
    assert report.success
    classes = [type(f"P{i}", (), {"USES": ("api",), "CLAIMS": ()}) for i in range(6)]
    assert peak_units(storage, classes, "api", 2) == 2


def _timed(name):
    def check(self, *a, **k):
        if name not in self.global_storage:
            raise LookupError(name)

    def run(self, *a, **k):
        start = time.time()
        time.sleep(0.1)
        self.global_storage[name] = (start, time.time())

    return type(name, (dojob.Job,), {"Check": check, "Run": run, "USES": ("api",), "TRIES": 1})


def test_a_claimer_is_not_starved_by_users_of_a_capacity():
    order = []

    def use(self, *a, **k):
        order.append(type(self).__name__)
        time.sleep(0.02)

    users = [type(f"U{i}", (dojob.Job,), {"Check": use, "Run": use, "USES": ("api",)}) for i in range(10)]
    quick = type("Quick", (dojob.Job,), {"Check": lambda s, *a, **k: time.sleep(0.005), "Run": use})
    # Owner becomes ready while three users hold every unit and seven more wait: it must get
    # the units as soon as those three give them back, before any of the seven
    owner = type("Owner", (dojob.Job,), {"Check": lambda s, *a, **k: order.append("Owner"), "Run": use,
                                         "CLAIMS": ("api",), "PRIORITY": -1, "DEPS": (quick,)})  # fmt: skip
    events = []
    report = dojob.run(type("Root", (dojob.DummyJob,), {"DEPS": (*users, owner)}), workers=4, capacity={"api": 3},
                       observers=[events.append])  # fmt: skip
    assert report.success
    assert order[:3] == ["U0", "U1", "U2"] and order[3] == "Owner"
    assert "Owner" in [e.job for e in events if isinstance(e, LockWait)]


@pytest.mark.parametrize(
    "capacity, match",
    [
        ({"apu": 3}, "capacity= must be names of resources some job USES or CLAIMS, got 'apu'"),
        ({"api": 0}, r"capacity\['api'\]= must be an int >= 1"),
        ({"api": True}, r"capacity\['api'\]= must be an int >= 1"),
        ([("api", 3)], "capacity= must be a dict"),
    ],
)
def test_bad_capacities_are_refused_before_anything_runs(capacity, match):
    ran = []
    job = type("J", (dojob.Job,), {"Check": lambda s, *a, **k: ran.append(1), "Run": lambda s: None, "USES": ("api",)})
    with pytest.raises(dojob.OptionError, match=match):
        dojob.run(job, capacity=capacity)
    assert ran == []


# -- the one rule, as a property ---------------------------------------------------------

RESOURCES = ("api", "db")
units = st.lists(st.sampled_from(RESOURCES), max_size=2, unique=True)


@settings(max_examples=200, deadline=None)
@given(
    jobs=st.lists(st.tuples(units, units, st.integers(0, 3)), min_size=1, max_size=12),
    capacity=st.fixed_dictionaries({"api": st.integers(1, 4), "db": st.integers(1, 3)}),
    workers=st.integers(1, 6),
    order=st.randoms(use_true_random=False),
)
def test_planner_never_exceeds_a_capacity_and_finishes(jobs, capacity, workers, order):
    """Any mix of CLAIMS/USES, capacities and completion orders: within capacity, everyone runs."""
    classes = [
        type(f"J{i}", (dojob.Job,), {"Check": None, "Run": None, "CLAIMS": tuple(c), "USES": tuple(u), "DEPS": ()})
        for i, (c, u, _) in enumerate(jobs)
    ]
    for cls in classes:
        cls.Check = cls.Run = lambda self: None
    graph = dojob.build_graph(type("Root", (dojob.DummyJob,), {"DEPS": tuple(classes)}))
    planner = Planner(graph, max_running=workers, capacity=capacity)
    running: list[int] = []
    now = 0.0
    while planner.is_active():
        running += planner.next_actions(now)
        held = planner.units_held()
        for name, n in held.items():
            assert n <= capacity[name]
        assert running, "nothing runs yet the run is active: a deadlock"
        done = running.pop(order.randrange(len(running)))
        now += 1
        planner.complete(done, True, now)
    planner.finish(now)
    assert all(s is Status.OK for s in planner.status)
    assert planner.units_held() == {}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(st.tuples(units, units, st.integers(1, 8)), min_size=2, max_size=8),
    capacity=st.fixed_dictionaries({"api": st.integers(1, 3), "db": st.integers(1, 2)}),
    workers=st.integers(2, 6),
    asynchronous=st.booleans(),
)
def test_drivers_never_exceed_a_capacity(jobs, capacity, workers, asynchronous):
    spans: dict = {}
    lock = threading.Lock()
    classes = [
        spans_job(f"J{i}", spans, lock, millis / 1000, asynchronous, CLAIMS=tuple(c), USES=tuple(u))
        for i, (c, u, millis) in enumerate(jobs)
    ]
    used = {r for c, u, _ in jobs for r in (*c, *u)}
    report = dojob.run(type("Root", (dojob.DummyJob,), {"DEPS": tuple(classes)}), workers=workers,
                       capacity={k: v for k, v in capacity.items() if k in used} or None)  # fmt: skip
    assert report.success
    for resource in used:
        assert peak_units(spans, classes, resource, capacity[resource]) <= capacity[resource]


# -- the command line ------------------------------------------------------------------------


def cli(*argv, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(dojob.__file__).parent.parent)
    return subprocess.run([sys.executable, "-m", "dojob", *argv], capture_output=True, text=True, cwd=cwd, env=env)


def test_cli_capacity_and_list_columns(tmp_path):
    (tmp_path / "api.py").write_text(
        "import dojob, time\n"
        "class Call(dojob.Job):\n"
        "    USES = ('api',)\n"
        "    RETRY_BACKOFF = 2\n"
        "    RETRY_ON = (ConnectionError,)\n"
        "    TAGS = ('net', 'slow')\n"
        "    def Check(self, *a, **k):\n"
        "        time.sleep(0.01)\n"
        "    def Run(self, *a, **k):\n"
        "        pass\n"
        "class Reset(dojob.Job):\n"
        "    CLAIMS = ('api',)\n"
        "    def Check(self, *a, **k):\n"
        "        pass\n"
        "    def Run(self, *a, **k):\n"
        "        pass\n"
        "class All(dojob.DummyJob):\n"
        "    DEPS = tuple(Call.bind(N=i) for i in range(4)) + (Reset,)\n"
    )
    out = cli("run", "api.py:All", "-j", "4", "--capacity", "api=2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = cli("list", "api.py:All", "--capacity", "api=2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["JOB", "KIND", "TRIES", "RETRY_DELAY", "RETRY_POLICY", "TAGS", "RESOURCES", "DEPS"]
    assert lines[1].split() == ["Call[N=0]", "job", "3", "1", "x2,on=ConnectionError", "net,slow", "api:1/2", "-"]
    assert lines[5].split() == ["Reset", "job", "3", "1", "-", "-", "api:all/2", "-"]
    bad = cli("run", "api.py:All", "--capacity", "api=many", cwd=tmp_path)
    assert bad.returncode == 2 and "RESOURCE=UNITS" in bad.stderr
    typo = cli("run", "api.py:All", "--capacity", "apy=2", cwd=tmp_path)
    assert typo.returncode == 2 and "'apy'" in typo.stderr
