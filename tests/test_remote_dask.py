"""A real Dask cluster (2 worker processes on 127.0.0.1, default configuration): deaths, hangs, stoppers, the CLI.

The cluster keeps ``distributed.scheduler.allowed-failures`` at its default (3):
dojob, not the scheduler, decides whether a try whose worker died is retried.
Workers killed by a test are restarted by their nanny; each test waits for both.
"""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest
import remote_jobs
from remote_jobs import cli_target, job, lines, run_cli

import dojob
from dojob.remote import ShippingError, WorkerLost

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")  # sockets of killed workers


@pytest.fixture(scope="module")
def cluster():
    import dask
    import distributed

    assert dask.config.get("distributed.scheduler.allowed-failures") == 3  # the default, untouched
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield cluster, client


@pytest.fixture
def client(cluster):
    """The cluster's client, once both workers are up (a test may have killed one). Runs get a timeout
    of 30 s in these tests only so that a run the cluster leaves hanging fails instead of blocking."""
    cluster, client = cluster
    client.wait_for_workers(2, timeout=60)
    return client


def test_regression_a_dead_dask_worker_costs_one_try_never_a_rerun(client, tmp_path):
    """TRIES=1 and its worker dies: its Check ran once, the try failed; the cluster did not run it again."""
    dies = job("Dies", "die")
    report = dojob.run(dies, executor=client, workers=2, timeout=30, kwargs={"dir": str(tmp_path)})
    assert len(lines(tmp_path, "Dies")) == 1
    exc = report["Dies"].exception
    assert report["Dies"].status is dojob.Status.FAILED and report["Dies"].tries == 1
    assert isinstance(exc, WorkerLost) and "does not run it again" in str(exc)
    assert type(exc.__cause__).__name__ == "KilledWorker"
    assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 3


def test_a_client_s_own_executor_is_wrapped_too(client, tmp_path):
    """``executor=client.get_executor()`` gets the same one-run-per-try guarantee as the client."""
    from dojob.remote import resolve_executor
    from dojob.remote_dask import DaskExecutor

    wrapped, remote, close = resolve_executor(client.get_executor(), 1)
    close()
    assert isinstance(wrapped, DaskExecutor) and wrapped.client is client and remote
    report = dojob.run(job("Plain"), executor=client.get_executor(), timeout=30, kwargs={"dir": str(tmp_path)})
    assert report.success and report["Plain"].result in client.run(os.getpid).values()


def test_dojob_alone_retries_a_try_whose_dask_worker_died(client, tmp_path):
    dies = job("DiesOnce", "die-once", TRIES=2, RETRY_DELAY=0)
    report = dojob.run(dies, executor=client, workers=1, timeout=30, kwargs={"dir": str(tmp_path)})
    assert report.success and report["DiesOnce"].tries == 2
    assert len(lines(tmp_path, "DiesOnce")) == 2  # one execution per try, none added by the cluster


def test_sigkill_of_a_dask_worker_mid_try_fails_only_its_try(client, tmp_path):
    group = ("Killer", "Victim")
    killer = job("Killer", "kill", group=group, VICTIM="Victim", LINGER=0.5)
    victim = job("Victim", "wait", group=group, LINGER=30)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (killer, victim)})
    report = dojob.run(root, executor=client, workers=2, timeout=30, kwargs={"dir": str(tmp_path)})
    assert report["Killer"].ok and report["Killer"].result != report["Victim"].tries
    assert isinstance(report["Victim"].exception, WorkerLost) and report["Victim"].tries == 1
    assert [len(lines(tmp_path, name)) for name in group] == [1, 1]


def test_regression_run_timeout_ends_a_dask_run_with_a_hung_try(client, tmp_path):
    """Two tries hang on the two workers, a third waits for a thread: the timeout ends the run, cancels the third."""
    hangs = [job(f"Hangs{i}", "hang") for i in range(3)]
    root = type("Root", (dojob.DummyJob,), {"DEPS": tuple(hangs)})
    start = time.monotonic()
    try:
        report = dojob.run(root, executor=client, workers=3, timeout=2, kwargs={"dir": str(tmp_path)})
        elapsed = time.monotonic() - start
    finally:
        (tmp_path / "release").touch()  # the hung tasks run on in their worker threads: let them end
    assert elapsed < 2 * 2 + 6
    assert report.stopped == "timeout"
    assert all(report[h.__name__].status is dojob.Status.INTERRUPTED for h in hangs)
    assert "timed out" in str(report["Hangs0"].exception)
    started = [h.__name__ for h in hangs if lines(tmp_path, h.__name__)]
    assert len(started) == 2
    time.sleep(1.5)  # the released threads are free again: the cancelled try must not start now
    assert [h.__name__ for h in hangs if lines(tmp_path, h.__name__)] == started


def test_a_class_the_workers_cannot_import_fails_its_try_with_a_shipping_error(client, tmp_path):
    """Importable here (its folder was put on sys.path after the workers started), not there: said so."""
    (tmp_path / "late_module.py").write_text(
        "import dojob\n\n\nclass Late(dojob.Job):\n    def Check(self):\n        pass\n\n    Run = Check\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import late_module

        assert dojob.shipping.how(late_module.Late) == "reference"
        report = dojob.run(late_module.Late, executor=client)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_module", None)
    exc = report["Late"].exception
    assert isinstance(exc, ShippingError) and not isinstance(exc, WorkerLost)
    assert exc.job == "Late" and "No module named 'late_module'" in str(exc)
    assert exc.worker in {
        f"{host}:{pid}" for host, pid in client.run(lambda: (socket.gethostname(), os.getpid())).values()
    }


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit])
def test_regression_a_stopper_on_a_dask_worker_still_gets_its_cleanup(client, stopper, tmp_path):
    stops = job("Stops", stopper.__name__, Cleanup=remote_jobs.note_cleanup)
    with pytest.raises(stopper):  # (the timeout only bounds the test should the stopper never come back)
        dojob.run(stops, executor=client, workers=1, timeout=30, kwargs={"dir": str(tmp_path)})
    assert lines(tmp_path, "Stops", "cleanup") == lines(tmp_path, "Stops") != [os.getpid()]


def test_regression_a_cli_file_target_runs_on_dask(cluster, tmp_path):
    cluster, client = cluster
    client.wait_for_workers(2, timeout=60)
    address = "dask://" + cluster.scheduler_address.split("://")[1]
    target = cli_target(tmp_path)
    done = run_cli("run", f"{target}:Root", "--executor", address, "-v", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Leaf.recheck: pass" in done.stderr and "Root.check: pass" in done.stderr
    worker = int((tmp_path / "leaf").read_text())
    assert worker in {p for p in client.run(os.getpid).values()}  # made in a Dask worker
