"""A real Dask cluster (2 worker processes on 127.0.0.1, default configuration): deaths, hangs, stoppers, the CLI.

The cluster keeps ``distributed.scheduler.allowed-failures`` at its default (3):
dojob, not the scheduler, decides whether a try whose worker died is retried.
Workers killed by a test are restarted by their nanny; each test waits for both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import remote_jobs
from remote_jobs import job, lines

import dojob
from dojob.remote import WorkerLost

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
    cluster, client = cluster
    client.wait_for_workers(2, timeout=60)
    return client


def test_regression_a_dead_dask_worker_costs_one_try_never_a_rerun(client, tmp_path):
    """TRIES=1 and its worker dies: its Check ran once, the try failed; the cluster did not run it again."""
    dies = job("Dies", "die")
    report = dojob.run(dies, executor=client, workers=2, kwargs={"dir": str(tmp_path)})
    assert len(lines(tmp_path, "Dies")) == 1
    exc = report["Dies"].exception
    assert report["Dies"].status is dojob.Status.FAILED and report["Dies"].tries == 1
    assert isinstance(exc, WorkerLost) and "does not run it again" in str(exc)
    assert type(exc.__cause__).__name__ == "KilledWorker"
    assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 3


def test_dojob_alone_retries_a_try_whose_dask_worker_died(client, tmp_path):
    dies = job("DiesOnce", "die-once", TRIES=2, RETRY_DELAY=0)
    report = dojob.run(dies, executor=client, workers=1, kwargs={"dir": str(tmp_path)})
    assert report.success and report["DiesOnce"].tries == 2
    assert len(lines(tmp_path, "DiesOnce")) == 2  # one execution per try, none added by the cluster


def test_sigkill_of_a_dask_worker_mid_try_fails_only_its_try(client, tmp_path):
    group = ("Killer", "Victim")
    killer = job("Killer", "kill", group=group, VICTIM="Victim", LINGER=0.5)
    victim = job("Victim", "wait", group=group, LINGER=30)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (killer, victim)})
    report = dojob.run(root, executor=client, workers=2, kwargs={"dir": str(tmp_path)})
    assert report["Killer"].ok and report["Killer"].result != report["Victim"].tries
    assert isinstance(report["Victim"].exception, WorkerLost) and report["Victim"].tries == 1
    assert [len(lines(tmp_path, name)) for name in group] == [1, 1]


def test_regression_run_timeout_ends_a_dask_run_with_a_hung_try(client, tmp_path):
    hangs = job("Hangs", "hang")
    quick = job("Quick")
    root = type("Root", (dojob.DummyJob,), {"DEPS": (hangs, quick)})
    start = time.monotonic()
    try:
        report = dojob.run(root, executor=client, workers=2, timeout=1, kwargs={"dir": str(tmp_path)})
        elapsed = time.monotonic() - start
    finally:
        (tmp_path / "release").touch()  # the hung task runs on in its worker thread: let it end
    assert elapsed < 2 * 1 + 6
    assert report.stopped == "timeout" and report["Quick"].ok
    assert report["Hangs"].status is dojob.Status.NOT_RUN and "timed out" in str(report["Hangs"].exception)


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit])
def test_regression_a_stopper_on_a_dask_worker_still_gets_its_cleanup(client, stopper, tmp_path):
    stops = job("Stops", stopper.__name__, Cleanup=remote_jobs.note_cleanup)
    with pytest.raises(stopper):
        dojob.run(stops, executor=client, workers=1, kwargs={"dir": str(tmp_path)})
    assert lines(tmp_path, "Stops", "cleanup") == lines(tmp_path, "Stops") != [os.getpid()]


CLI_JOBS = '''
import os

import dojob
import neighbour

HERE = os.path.dirname(os.path.abspath(__file__))


class Leaf(dojob.Job):
    def Check(self, *args, **kwargs):
        if not os.path.exists(os.path.join(HERE, "leaf")):
            raise LookupError("leaf not made yet")
        return neighbour.where(type(self))

    def Run(self, *args, **kwargs):
        neighbour.make(os.path.join(HERE, "leaf"))


class Root(dojob.Job):
    DEPS = (Leaf,)

    def Check(self, *args, **kwargs):
        return neighbour.where(type(self))

    def Run(self, *args, **kwargs):
        pass
'''

NEIGHBOUR = '''
import os
import sys


def make(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def where(cls):
    return f"{os.getpid()} {cls.__module__ in sys.modules}"
'''


def cli_target(folder) -> str:
    (folder / "jobs.py").write_text(textwrap.dedent(CLI_JOBS))
    (folder / "neighbour.py").write_text(textwrap.dedent(NEIGHBOUR))
    return str(folder / "jobs.py")


def run_cli(*argv: str, start_method: str | None = None, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``dojob ARGV`` in a fresh interpreter (with multiprocessing's default start method set first)."""
    prelude = f"import multiprocessing; multiprocessing.set_start_method({start_method!r}); " if start_method else ""
    code = prelude + "import sys; from dojob.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


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
