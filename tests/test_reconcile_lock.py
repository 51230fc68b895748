"""One run of a target at a time: the lock a loop and a one-shot ``dojob run`` take, held against real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reconciling import Proc, env_for, write

from dojob.runlock import EXIT_LOCKED, LockHeld, RunLock, default_lock_path, state_dir

JOB = """\
    import dojob

    class Root(dojob.Job):
        def Check(self, *args, **kwargs):
            with open("checks", "a") as fh:
                fh.write("check\\n")

        def Run(self, *args, **kwargs):
            pass
"""


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=env or env_for(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    write(tmp_path / "site.py", JOB)
    return tmp_path


def lock_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "state" / "dojob"
    return sorted(folder.glob("*.lock")) if folder.exists() else []


def test_the_default_lock_lives_in_the_state_directory_one_per_target(tmp_path, monkeypatch):
    env = {"XDG_STATE_HOME": str(tmp_path / "st")}
    assert state_dir(env) == str(tmp_path / "st" / "dojob")
    assert state_dir({"XDG_STATE_HOME": "relative/is/invalid"}).endswith("/.local/state/dojob")
    write(tmp_path / "a.py", JOB)
    monkeypatch.chdir(tmp_path)
    same = {default_lock_path(["a.py:Root"], env), default_lock_path(["./a.py:Root"], env)}
    same.add(default_lock_path([str(tmp_path / "a.py") + ":Root"], env))
    assert len(same) == 1  # one target, however it is spelled
    (path,) = same
    assert os.path.dirname(path) == str(tmp_path / "st" / "dojob")
    assert os.path.basename(path).startswith("a-Root-") and path.endswith(".lock")
    assert default_lock_path(["a.py:Other"], env) != path
    assert default_lock_path(["a.py:Root", "b.py:X"], env) == default_lock_path(["b.py:X", "a.py:Root"], env)
    hostile = default_lock_path(["../../etc/x\n\x1b[2J.py:Root"], env)
    assert os.path.dirname(hostile) == str(tmp_path / "st" / "dojob") and "\n" not in hostile and "\x1b" not in hostile


def test_a_one_shot_run_refuses_while_a_loop_holds_the_target(site):
    with Proc("run", "site.py:Root", "--every", "1h", cwd=site) as loop:
        loop.wait_for(r"^run 1 ")
        (lock,) = lock_files(site)
        held = json.loads(lock.read_text())
        assert held["pid"] == loop.pid and held["host"] == socket.gethostname()
        out = cli("run", "site.py:Root", cwd=site)
        assert out.returncode == EXIT_LOCKED == 75, out
        assert out.stdout == ""
        assert out.stderr.count("\n") == 1  # one line, naming the holder
        assert (
            f"another run holds the lock '{lock}': pid {loop.pid} on host {socket.gethostname()}, since " in out.stderr
        )
        assert "(--lock-wait waits for it)" in out.stderr
        second_loop = cli("run", "./site.py:Root", "--every", "1s", cwd=site)  # spelled differently, same target
        assert second_loop.returncode == 75 and f"pid {loop.pid}" in second_loop.stderr
        check = cli("check", "site.py:Root", cwd=site)  # a plan changes nothing: no lock needed
        assert check.returncode == 0, check
        loop.signal(signal.SIGTERM)
        assert loop.finish() == 143
    assert (site / "checks").read_text().count("check") == 2  # the loop's run and the check only
    assert lock_files(site) == []  # released: the file is gone


def test_lock_wait_waits_for_the_holder_then_runs(site):
    with Proc("run", "site.py:Root", "--every", "1h", cwd=site) as loop:
        loop.wait_for(r"^run 1 ")
        with Proc("run", "site.py:Root", "--lock-wait", cwd=site) as waiter:
            waiter.wait_for(rf"^dojob: waiting for the lock '.*', held by pid {loop.pid} on host ", stream="err")
            time.sleep(0.3)
            assert waiter.proc.poll() is None  # still waiting
            loop.signal(signal.SIGTERM)
            assert loop.finish() == 143
            assert waiter.finish() == 0, (waiter.out, waiter.err)
    assert waiter.out[-1].startswith("converged in")


def test_different_targets_do_not_block_each_other(site):
    write(site / "other.py", JOB)
    with Proc("run", "site.py:Root", "--every", "1h", cwd=site) as loop:
        loop.wait_for(r"^run 1 ")
        out = cli("run", "other.py:Root", cwd=site)
        assert out.returncode == 0, out
        loop.signal(signal.SIGTERM)
        loop.finish()


def test_an_explicit_lock_path_is_shared_by_any_targets_that_name_it(site):
    write(site / "other.py", JOB)
    lock = site / "shared.lock"
    with Proc("run", "site.py:Root", "--every", "1h", "--lock", str(lock), cwd=site) as loop:
        loop.wait_for(r"^run 1 ")
        assert json.loads(lock.read_text())["pid"] == loop.pid
        assert lock_files(site) == []  # not the default one
        out = cli("run", "other.py:Root", "--lock", "shared.lock", cwd=site)
        assert out.returncode == 75 and f"pid {loop.pid}" in out.stderr, out
        loop.signal(signal.SIGTERM)
        loop.finish()
    assert not lock.exists()
    bad = cli("run", "site.py:Root", "--lock", "no/such/dir/x.lock", cwd=site)
    assert bad.returncode == 2 and "cannot open the lock file 'no/such/dir/x.lock'" in bad.stderr


def test_the_lock_of_a_killed_loop_is_taken_over_and_said_so(site):
    with Proc("run", "site.py:Root", "--every", "1h", cwd=site) as loop:
        loop.wait_for(r"^run 1 ")
        loop.proc.kill()  # SIGKILL: no chance to release
        loop.finish()
    (lock,) = lock_files(site)
    assert json.loads(lock.read_text())["pid"] == loop.pid  # left behind
    out = cli("run", "site.py:Root", cwd=site)
    assert out.returncode == 0, out
    assert f"dojob: took over the lock '{lock}' from pid {loop.pid} on host " in out.stderr
    assert "(no longer running)" in out.stderr
    assert lock_files(site) == []


def test_a_lock_file_naming_another_host_is_not_taken_over(site):
    out = cli("run", "site.py:Root", "--every", "1h", "--lock", "x.lock", "--max-runs", "1", cwd=site)
    assert out.returncode == 0
    (site / "x.lock").write_text(json.dumps({"pid": 4242, "host": "elsewhere\x1b[31m", "started": "yesterday"}))
    for wait in ([], ["--lock-wait"]):  # waiting would be forever: refused either way
        out = cli("run", "site.py:Root", "--lock", "x.lock", *wait, cwd=site, timeout=20)
        assert out.returncode == 75, out
        assert "pid 4242 on host elsewhere?[31m, since yesterday" in out.stderr  # no escape reaches the terminal
        assert "this host cannot tell whether it still runs: remove 'x.lock' once it does not" in out.stderr
    (site / "x.lock").unlink()
    assert cli("run", "site.py:Root", "--lock", "x.lock", cwd=site).returncode == 0


def test_garbage_in_a_lock_file_nobody_holds_is_taken_over(site):
    (site / "x.lock").write_text("not json at all\n")
    out = cli("run", "site.py:Root", "--lock", "x.lock", cwd=site)
    assert out.returncode == 0, out
    assert "took over" not in out.stderr  # it named no one
    assert not (site / "x.lock").exists()


def test_run_lock_in_process_refuses_a_second_holder(tmp_path):
    path = str(tmp_path / "l.lock")
    first = RunLock(path, note="first")
    first.acquire()
    try:
        with pytest.raises(LockHeld) as held:
            RunLock(path).acquire()
        assert held.value.holder.pid == os.getpid()
        assert held.value.holder.host == socket.gethostname()
    finally:
        first.release()
    assert not os.path.exists(path)
    with RunLock(path) as again:  # free again
        assert again.held


def test_a_one_shot_run_without_a_usable_state_directory_runs_unlocked(site):
    blocker = site / "not-a-dir"
    blocker.write_text("")
    env = env_for(site, XDG_STATE_HOME=str(blocker))
    out = cli("run", "site.py:Root", cwd=site, env=env)
    assert out.returncode == 0, out  # as it always did
    loop = cli("run", "site.py:Root", "--every", "1s", "--max-runs", "1", cwd=site, env=env)
    assert loop.returncode == 2 and "cannot create the state directory" in loop.stderr
