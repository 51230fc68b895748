"""Tries in other processes: process pools and a real Dask cluster (issue 4).

Job classes here are made with ``type()`` inside functions, so they travel by
value (cloudpickle); global_storage changes come back and dependents see them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import time
import warnings

import pytest

import dojob
from dojob.attempt import PhaseTimeout
from dojob.events import Phase, PhaseAbandoned, PhaseStarted
from dojob.remote import RemoteError, WorkerLost


def layered_graph(n: int = 200, width: int = 20, fail: frozenset[int] = frozenset()) -> type:
    """Each job stores 1 + the sum of what its two dependencies stored; some never converge."""

    def check(self, *args, **kwargs):
        name = type(self).__name__
        if name not in self.global_storage:
            raise LookupError(f"{name} not stored yet")
        return self.global_storage[name]

    def run(self, *args, **kwargs):
        cls = type(self)
        if cls.FAIL:
            raise RuntimeError(f"{cls.__name__} cannot converge")
        self.global_storage[cls.__name__] = 1 + sum(self.global_storage[d] for d in cls.DEP_NAMES)

    layers: list[list[type]] = []
    for i in range(n):
        layer, pos = divmod(i, width)
        deps = () if not layer else (layers[layer - 1][pos], layers[layer - 1][(pos + 1) % width])
        body = {"DEPS": deps, "DEP_NAMES": tuple(d.__name__ for d in deps), "FAIL": i in fail}
        body.update(Check=check, Run=run, TRIES=2, RETRY_DELAY=0)
        if pos == 0:
            layers.append([])
        layers[layer].append(type(f"J{i}", (dojob.Job,), body))
    return type("Root", (dojob.DummyJob,), {"DEPS": tuple(layers[-1])})


def converge(root: type, **options) -> tuple[dojob.Report, dict]:
    storage: dict = {"seed": 1}
    return dojob.run(root, global_storage=storage, **options), storage


@pytest.mark.parametrize("fail", [frozenset(), frozenset({3, 57})])
def test_process_pool_matches_a_serial_run(fail):
    root = layered_graph(fail=fail)
    serial, serial_storage = converge(root)
    remote, remote_storage = converge(root, executor="processes", workers=2)
    assert remote.statuses() == serial.statuses()
    assert {j.name: j.tries for j in remote} == {j.name: j.tries for j in serial}
    assert remote_storage == serial_storage
    if not fail:
        assert len(serial_storage) == 201 and serial_storage["J199"] > 1000
    else:
        assert remote["J3"].status is dojob.Status.FAILED and remote["J23"].status is dojob.Status.BLOCKED
        assert str(remote["J3"].exception) == "J3 not stored yet"  # the recheck decides


def test_tries_run_in_worker_processes_and_the_trace_says_where(recorder):
    root = layered_graph(n=40)
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        report = dojob.run(root, executor=pool, workers=2, observers=[recorder])
    assert report.success
    workers = {e.worker for e in recorder.of(PhaseStarted)}
    assert workers and all(":" in w and not w.endswith(f":{os.getpid()}") for w in workers)
    assert {job.worker for job in report if job.tries} <= workers  # the report says where, too


def test_exceptions_and_tracebacks_come_back_intact():
    class Oops(Exception):
        pass

    def check(self, *a, **k):
        raise Oops("deep inside the worker")

    job = type("Fails", (dojob.Job,), {"Check": check, "Run": lambda self, *a, **k: None, "TRIES": 1})
    report = dojob.run(job, executor="processes", workers=1)
    exc = report["Fails"].exception
    assert type(exc).__name__ == "Oops" and str(exc) == "deep inside the worker"
    notes = "\n".join(getattr(exc, "__notes__", []))
    assert "in worker" in notes and "in check" in notes and "Oops: deep inside the worker" in notes


def test_an_unpicklable_result_fails_the_try_without_breaking_the_run():
    import threading

    job = type("Locky", (dojob.Job,), {"Check": lambda self, *a, **k: threading.Lock(), "Run": lambda s, *a, **k: 0})
    ok = type("Fine", (dojob.Job,), {"Check": lambda self, *a, **k: 7, "Run": lambda s, *a, **k: 0})
    root = type("Root", (dojob.DummyJob,), {"DEPS": (job, ok)})
    report = dojob.run(root, executor="processes", workers=2, default_tries=1)
    assert isinstance(report["Locky"].exception, RemoteError)
    assert report["Fine"].result == 7


def test_a_dying_worker_fails_its_try_and_the_run_goes_on():
    def die(self, *a, **k):
        os._exit(3)

    dies = type("Dies", (dojob.Job,), {"Check": die, "Run": lambda s, *a, **k: 0, "TRIES": 2, "RETRY_DELAY": 0})

    def one(self, *a, **k):
        return 1

    others = [type(f"Other{i}", (dojob.Job,), {"Check": one, "Run": one}) for i in range(4)]
    after = type("After", (dojob.Job,), {"DEPS": tuple(others), "Check": one, "Run": one})
    root = type("Root", (dojob.DummyJob,), {"DEPS": (dies, after)})
    report = dojob.run(root, executor="processes", workers=2)
    assert report["Dies"].status is dojob.Status.FAILED and report["Dies"].tries == 2
    assert isinstance(report["Dies"].exception, WorkerLost)
    assert report["After"].ok  # the broken pool was replaced: the other jobs still ran
    assert report["Root"].status is dojob.Status.BLOCKED


def test_cleanups_run_in_the_worker_and_their_failures_are_raised():
    def cleanup(self):
        raise RuntimeError(f"{type(self).__name__} cleanup broke in {os.getpid()}")

    job = type("C", (dojob.Job,), {"Check": lambda s, *a, **k: 1, "Run": lambda s, *a, **k: 0, "Cleanup": cleanup})
    with pytest.raises(dojob.CleanupError) as info:
        dojob.run(job, executor="processes", workers=1)
    ((name, exc),) = info.value.failures
    assert name == "C" and str(os.getpid()) not in str(exc) and info.value.report.success


def test_a_thread_pool_executor_runs_tries_in_this_process():
    seen = []
    job = type("T", (dojob.Job,), {"Check": lambda s, *a, **k: seen.append(os.getpid()), "Run": lambda s, *a, **k: 0})
    with cf.ThreadPoolExecutor(2) as pool:
        assert dojob.run(job, executor=pool, workers=2).success
    assert seen == [os.getpid()]


def test_bad_executor():
    with pytest.raises(dojob.OptionError, match="executor"):
        dojob.run(type("A", (dojob.DummyJob,), {}), executor=42)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed", reason="the dask extra is installed by .ci/install")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_dask_cluster_matches_a_serial_run(dask_cluster):
    cluster, client = dask_cluster
    root = layered_graph(fail=frozenset({11}))
    serial, serial_storage = converge(root)
    remote, remote_storage = converge(root, executor=client, workers=4)
    assert remote.statuses() == serial.statuses() and remote_storage == serial_storage
    by_address, storage = converge(layered_graph(n=60), executor="dask://" + cluster.scheduler_address.split("://")[1])
    assert by_address.success and storage["J59"] > 1


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # distributed's own socket, left by the killed worker
def test_a_dying_dask_worker_fails_its_try_and_the_run_goes_on():
    distributed = pytest.importorskip("distributed", reason="the dask extra is installed by .ci/install")
    import dask

    def die(self, *a, **k):
        os._exit(3)

    def one(self, *a, **k):
        return 1

    dies = type("Dies", (dojob.Job,), {"Check": die, "Run": one, "TRIES": 1})
    fine = type("Fine", (dojob.Job,), {"Check": one, "Run": one})
    root = type("Root", (dojob.DummyJob,), {"DEPS": (dies, fine)})
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            report = dojob.run(root, executor=client, workers=2)
    assert isinstance(report["Dies"].exception, WorkerLost) and "Dies" in str(report["Dies"].exception)
    assert report["Fine"].ok and report["Root"].status is dojob.Status.BLOCKED


@pytest.mark.parametrize("where", ["processes", "dask"])
def test_timeout_is_enforced_inside_worker_processes(where, recorder, request):
    """TIMEOUT bounds each phase there too: an overrun fails the try at once, its thread abandoned."""

    def hang(self, *a, **k):
        time.sleep(20)

    def one(self, *a, **k):
        return 1

    def stored(self, *a, **k):
        if "Quick" not in self.global_storage:
            raise LookupError("not yet")

    def store(self, *a, **k):
        self.global_storage["Quick"] = 1

    hangs = type("Hangs", (dojob.Job,), {"Check": hang, "Run": one, "TIMEOUT": 0.5, "TRIES": 2, "RETRY_DELAY": 0})
    quick = type("Quick", (dojob.Job,), {"Check": stored, "Run": store, "TIMEOUT": 5})
    after = type("After", (dojob.Job,), {"DEPS": (hangs,), "Check": one, "Run": one})
    root = type("Root", (dojob.DummyJob,), {"DEPS": (after, quick)})
    executor = "processes" if where == "processes" else request.getfixturevalue("dask_cluster")[1]
    start = time.monotonic()
    report, storage = converge(root, executor=executor, workers=2, observers=[recorder])
    assert time.monotonic() - start < 10  # two tries of 0.5 s each, not 2 x 20 s
    exc = report["Hangs"].exception
    assert report["Hangs"].status is dojob.Status.FAILED and report["Hangs"].tries == 2
    assert isinstance(exc, PhaseTimeout) and (exc.job, exc.phase, exc.timeout) == ("Hangs", Phase.CHECK, 0.5)
    assert "TIMEOUT=0.5s" in str(exc) and "abandoned" in str(exc)
    assert report["After"].status is dojob.Status.BLOCKED
    assert report["Quick"].status is dojob.Status.CHANGED and storage["Quick"] == 1  # phases on threads still store
    assert [e.try_number for e in recorder.of(PhaseAbandoned) if e.job == "Hangs"] == [1, 2]
    assert [e.phase for e in recorder.of(PhaseStarted) if e.job == "Hangs"] == [Phase.CHECK, Phase.CHECK]  # no Run


def test_bounded_phases_follow_the_rules_of_execute():
    """On threads too: a stopper from a phase propagates; a sync phase returning an awaitable fails it."""
    from dojob.attempt import TryContext, attempt, execute_bounded
    from dojob.clock import SystemClock

    def interrupt(self, *a, **k):
        raise KeyboardInterrupt

    def awaitable(self, *a, **k):
        return asyncio.sleep(0)

    def one(self, *a, **k):
        return 1

    wait = SystemClock().get
    stops = type("Stops", (dojob.Job,), {"Check": interrupt, "Run": one, "TIMEOUT": 5})
    with pytest.raises(KeyboardInterrupt):
        execute_bounded(attempt(dojob.build_graph(stops)["Stops"], 1, TryContext()), 5, "Stops", wait=wait)
    awaits = type("Awaits", (dojob.Job,), {"Check": awaitable, "Run": one, "TIMEOUT": 5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        out = execute_bounded(attempt(dojob.build_graph(awaits)["Awaits"], 1, TryContext()), 5, "Awaits", wait=wait)
    assert not out.ok and isinstance(out.exception, TypeError) and "returned an awaitable" in str(out.exception)


def test_an_executor_for_a_graph_with_async_jobs_is_refused_before_anything_runs():
    calls = []

    async def check(self, *a, **k):
        calls.append("check")

    job = type("Coro", (dojob.Job,), {"Check": check, "Run": check})
    with pytest.raises(dojob.OptionError, match="executor=.*async jobs") as info:
        dojob.run(job, executor="processes", workers=2)
    assert info.value.value == "processes" and calls == []
    assert dojob.run(job, executor="threads").success and calls == ["check"]
