"""The run's own process pool under every start method: deaths, hangs, stoppers (issue 11).

Each test runs real worker processes. The start method is set as the user's
program would (``multiprocessing.set_start_method``) or named in the executor
(``"processes:spawn"``). Processes coordinate through files (see remote_jobs).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import remote_jobs
from remote_jobs import HANG, job, lines

import dojob
from dojob.remote import WorkerLost

METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture(params=METHODS)
def start_method(request):
    """multiprocessing's default start method, for the length of a test."""
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    yield request.param
    multiprocessing.set_start_method(before, force=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_regression_one_dead_worker_fails_only_its_own_try(start_method, tmp_path):
    """Three tries in flight on three workers; one worker is SIGKILLed mid-try: only its try is lost."""
    group = ("Killer", "Victim", "Bystander")
    killer = job("Killer", "kill", group=group, VICTIM="Victim", LINGER=0.5)
    victim = job("Victim", "wait", group=group, LINGER=30)
    bystander = job("Bystander", "wait", group=group, LINGER=1)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (killer, victim, bystander)})
    report = dojob.run(root, executor="processes", workers=3, kwargs={"dir": str(tmp_path)})
    lost = report["Victim"].exception
    assert report["Victim"].status is dojob.Status.FAILED and report["Victim"].tries == 1
    assert isinstance(lost, WorkerLost) and type(lost.__cause__).__name__ == "ProcessDied"
    assert "killed by SIGKILL" in str(lost) and "only this try is lost" in str(lost)
    assert report["Victim"].worker.endswith(f":{lines(tmp_path, 'Victim')[0]}")  # the report names the dead worker
    assert report["Killer"].ok and report["Bystander"].ok  # not charged for another try's death
    assert [len(lines(tmp_path, name)) for name in group] == [1, 1, 1]
    assert report["Root"].status is dojob.Status.BLOCKED


def test_the_standard_process_pool_passed_as_executor_keeps_its_own_behaviour(tmp_path):
    """(What README says of ProcessPoolExecutor: one death fails every try in flight.)"""
    group = ("Killer", "Victim", "Bystander")
    killer = job("Killer", "kill", group=group, VICTIM="Victim", LINGER=1)
    victim = job("Victim", "wait", group=group, LINGER=30)
    bystander = job("Bystander", "wait", group=group, LINGER=2)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (killer, victim, bystander)})
    with cf.ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        report = dojob.run(root, executor=pool, workers=3, kwargs={"dir": str(tmp_path)})
    assert all(isinstance(report[name].exception, WorkerLost) for name in group)
    assert all("BrokenProcessPool" in str(report[name].exception) for name in group)


def test_a_dead_worker_is_replaced_and_the_job_retried_by_dojob(tmp_path):
    """A job whose first try kills its worker: dojob retries it (TRIES=2) in a fresh process."""
    dies = job("DiesOnce", "die-once", TRIES=2, RETRY_DELAY=0)
    report = dojob.run(dies, executor="processes:spawn", workers=1, kwargs={"dir": str(tmp_path)})
    assert report.success and report["DiesOnce"].tries == 2
    first, second = lines(tmp_path, "DiesOnce")
    assert first != second and not alive(first)


def test_regression_run_timeout_ends_a_run_with_a_hung_try(start_method, tmp_path):
    """A try that hangs: the run's timeout T ends the run within its bound and kills the process."""
    hangs = job("Hangs", "hang")
    start = time.monotonic()
    report = dojob.run(hangs, executor="processes", workers=2, timeout=2, kwargs={"dir": str(tmp_path)})
    elapsed = time.monotonic() - start
    assert elapsed < 2 * 2 + 6  # T for the jobs, T for the Cleanups, a kill; generous for a loaded machine
    assert report.stopped == "timeout" and report["Hangs"].status is dojob.Status.INTERRUPTED
    assert "timed out" in str(report["Hangs"].exception)
    (pid,) = lines(tmp_path, "Hangs")
    assert not alive(pid)  # the pool the run created did not outlive it


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit])
def test_regression_a_stopper_in_a_worker_still_gets_its_cleanup(stopper, tmp_path):
    stops = job("Stops", stopper.__name__, Cleanup=remote_jobs.note_cleanup)
    with pytest.raises(stopper) as info:
        dojob.run(stops, executor="processes", workers=1, kwargs={"dir": str(tmp_path)})
    assert lines(tmp_path, "Stops", "cleanup") == lines(tmp_path, "Stops")  # once, in the try's own worker
    assert lines(tmp_path, "Stops") != [os.getpid()]
    report = info.value.report
    expected = "exited" if stopper is SystemExit else "interrupted"  # (a job's sys.exit() is no Ctrl-C)
    assert report.stopped == expected and report["Stops"].status is dojob.Status.INTERRUPTED  # as on threads


@pytest.mark.parametrize("method", METHODS)
def test_classes_travel_by_reference_or_by_value_under_every_start_method(method, tmp_path):
    """``Where`` is imported by the worker from its module; a ``type()`` class arrives by value."""
    made = job("Made")
    root = type("Root", (dojob.DummyJob,), {"DEPS": (remote_jobs.Where, made)})
    assert dojob.shipping.how(remote_jobs.Where) == "reference" and dojob.shipping.how(made) == "value"
    report = dojob.run(root, executor=f"processes:{method}", workers=2, kwargs={"dir": str(tmp_path)})
    assert report.success and report["Where"].result is True
    assert report["Made"].result != os.getpid() and report["Made"].result == lines(tmp_path, "Made")[0]


def test_pool_kills_only_what_is_busy_and_refuses_work_after():
    from dojob.remote_pool import ProcessDied, ProcessPool

    pool = ProcessPool(2, start_method="fork")
    idle = pool.submit(os.getpid).result()
    assert idle != os.getpid()
    os.kill(idle, signal.SIGKILL)  # an idle worker dies: the next call is not charged for it
    time.sleep(0.2)
    assert pool.submit(os.getpid).result() not in (idle, os.getpid())
    busy = pool.submit(time.sleep, 30)
    time.sleep(0.2)
    pids = pool.pids()
    start = time.monotonic()
    pool.terminate()
    assert time.monotonic() - start < 5
    assert isinstance(busy.exception(), ProcessDied) and not any(alive(p) for p in pids)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(os.getpid)


def test_bad_start_method_is_an_option_error():
    with pytest.raises(dojob.OptionError, match="processes:") as info:
        dojob.run(job("A"), executor="processes:threads")
    assert info.value.value == "processes:threads"


def test_ctrl_c_is_for_the_run_and_a_second_one_kills_the_busy_workers(tmp_path):
    """As in a terminal: SIGINT to the whole process group. Workers ignore it; the run waits, then abandons."""
    (tmp_path / "hang.py").write_text(textwrap.dedent(HANG))
    code = "import sys; from dojob.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "run", "hang.py:Hang", "--executor", "processes"]
    proc = subprocess.Popen(argv, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 30
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            assert time.monotonic() < end and proc.poll() is None
            time.sleep(0.05)
        worker = int((tmp_path / "pid").read_text())
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1)
        assert proc.poll() is None and alive(worker)  # the try runs on, the run waits for it
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert not alive(worker)
