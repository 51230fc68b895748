"""The history's defects found after it was built, each through the ``dojob`` command, and their siblings.

* two files with a ``Root`` class shared one history (the target was the root's name);
* a ``--skip`` run became the drift baseline of the jobs it skipped;
* a ``--verify`` stopped by Ctrl-C, SIGTERM or the timeout was recorded as verified;
* ``Job.changed_deps`` forgot a change made by a run that failed before the job that needed it.
"""

# ruff: noqa: F811  (the fixtures imported from history_support are used as arguments)
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from history_support import cli, home_env, location, postgres_server, wait_for  # noqa: F401

FAST = ["--retry-delay", "0.01", "--no-progress"]

# Two jobs whose world is a JSON file next to them; `undo.py KEY` takes a key back out of it.
JOBS = """\
    import json, os, threading, time
    import dojob

    LOCK = threading.Lock()
    STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state.json")

    def world():
        try:
            with open(STATE) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def put(key, value=True):
        with LOCK:
            w = world()
            w[key] = value
            with open(STATE + ".tmp", "w") as fh:
                json.dump(w, fh)
            os.replace(STATE + ".tmp", STATE)

    class A(dojob.Job):
        def Check(self, *a, **k):
            if not world().get("a"):
                raise RuntimeError("a is not set")
        def Run(self, *a, **k):
            put("a")

    class B(dojob.Job):
        def Check(self, *a, **k):
            if not world().get("b"):
                raise RuntimeError("b is not set")
        def Run(self, *a, **k):
            put("b")

    class Root(dojob.DummyJob):
        DEPS = [A, B]

    class Slow(dojob.Job):
        # passes at once in the run; the verification's Check says so, then takes its time
        def Check(self, *a, **k):
            n = self.global_storage["n"] = self.global_storage.get("n", 0) + 1
            if n >= 2:
                open(os.path.join(os.path.dirname(STATE), "verifying"), "w").close()
                time.sleep(float(os.environ.get("SLOW", "30")))

    class Verified(dojob.DummyJob):
        DEPS = [A, Slow]
"""


def _jobs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jobs.py"
    path.write_text(textwrap.dedent(JOBS), encoding="utf-8")
    return path


def _undo(jobs: Path, key: str) -> None:
    state = jobs.parent / "state.json"
    world = json.loads(state.read_text())
    del world[key]
    state.write_text(json.dumps(world))


def _run(jobs: Path, env: dict, history: str, *args: str, target: str = "Root") -> subprocess.CompletedProcess:
    return cli("run", f"{jobs}:{target}", *FAST, "--history", history, *args, cwd=jobs.parent, env=env)


def _last(history: str, env: dict, cwd: Path) -> dict:
    out = cli("history", "--history", history, "show", "last", "--json", cwd=cwd, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# -- a: the target is the file (resolved) and its root, not the root's name ------------------


def test_regression_two_files_with_a_root_class_have_a_history_each(tmp_path, location):
    env = home_env(tmp_path)
    one, two = _jobs(tmp_path / "one"), _jobs(tmp_path / "two")
    assert _run(one, env, location).returncode == 0
    # the other file's first run: it was never converged, so nothing of it drifted
    out = _run(two, env, location)
    assert out.returncode == 0, out.stderr
    assert "drifted" not in out.stdout
    assert "changed: A, B" in out.stdout
    for jobs, run_id in ((one, 1), (two, 2)):
        runs = json.loads(cli("history", "--history", location, f"{jobs}:Root", "--json", cwd=tmp_path, env=env).stdout)
        assert [(r["id"], r["target"], r["roots"]) for r in runs] == [
            (run_id, f"{os.path.realpath(jobs)}:Root", "Root")
        ]
    # the file named relatively, from its folder, and through a symlink: the same target
    rel = cli("history", "--history", location, "jobs.py:Root", "--json", cwd=one.parent, env=env)
    assert [r["id"] for r in json.loads(rel.stdout)] == [1]
    (tmp_path / "link.py").symlink_to(one)
    _undo(one, "b")
    linked = cli("run", "link.py:Root", *FAST, "--history", location, cwd=tmp_path, env=env)
    assert "drifted since " in linked.stdout and "(run 1): B" in linked.stdout, linked.stdout
    # a root job's name still lists the runs of every file with that root
    by_name = json.loads(cli("history", "--history", location, "Root", "--json", cwd=tmp_path, env=env).stdout)
    assert [r["id"] for r in by_name] == [1, 2, 3]
    text = cli("history", "--history", location, cwd=one.parent, env=env).stdout
    assert "  jobs.py:Root  converged" in text  # a file under the current folder is shown by its relative path


def test_a_module_target_is_the_same_target_from_any_folder(tmp_path):
    env = home_env(tmp_path)
    history = str(tmp_path / "h.sqlite3")
    one, two = _jobs(tmp_path / "one"), _jobs(tmp_path / "two")
    assert cli("run", "jobs:Root", *FAST, "--history", history, cwd=one.parent, env=env).returncode == 0
    out = cli("run", "jobs:Root", *FAST, "--history", history, cwd=two.parent, env=env)
    assert "drifted since " in out.stdout and "(run 1): A, B" in out.stdout, out.stdout
    assert _last(history, env, tmp_path)["target"] == "jobs:Root"


# -- b: a run that did not look at a job is no baseline for it -------------------------------


@pytest.mark.parametrize("subset", [["--skip", "B"], ["--only", "A"]], ids=["skip", "only"])
def test_regression_a_skip_run_is_no_drift_baseline_for_the_skipped_job(tmp_path, location, subset):
    env = home_env(tmp_path)
    jobs = _jobs(tmp_path / "w")
    assert _run(jobs, env, location).returncode == 0  # run 1: A and B converge
    second = _run(jobs, env, location, *subset)  # run 2: B skipped (or left out), A ok
    assert second.returncode == 0, second.stderr
    run2 = _last(location, env, tmp_path)
    assert run2["success"] is True and run2["target"] == f"{os.path.realpath(jobs)}:Root"
    if subset[0] == "--skip":
        assert (
            run2["counts"]["skipped"] == 1
            and "1 skipped" in cli("history", "--history", location, cwd=tmp_path, env=env).stdout
        )
    _undo(jobs, "b")
    _undo(jobs, "a")
    third = _run(jobs, env, location)  # run 3: both need their Run: B was last seen converged in run 1
    assert third.returncode == 0, third.stderr
    run3 = _last(location, env, tmp_path)
    assert run3["drifted"] == ["A", "B"]
    assert run3["drift_base"] == 1  # the oldest base of the two: each was converged then or later
    assert "drifted since " in third.stdout and "(run 1): A, B" in third.stdout


def test_a_check_is_no_drift_baseline_and_a_skipped_run_does_not_break_a_streak(tmp_path):
    env = home_env(tmp_path)
    history = str(tmp_path / "h.sqlite3")
    jobs = _jobs(tmp_path / "w")
    assert _run(jobs, env, history).returncode == 0  # run 1: A and B change
    check = cli("check", f"{jobs}:Root", *FAST, "--history", history, cwd=jobs.parent, env=env)
    assert check.returncode == 0, check.stderr  # run 2: a plan, nothing would run
    _undo(jobs, "a")
    out = _run(jobs, env, history)  # run 3: A changes again
    assert "(run 1): A" in out.stdout, out.stdout
    assert _run(jobs, env, history, "--skip", "A").returncode == 0  # run 4: A skipped
    _undo(jobs, "a")
    out = _run(jobs, env, history)  # run 5: A changed in runs 1, 3 and 5, the runs that looked at it
    assert "changed in each of the last 3 runs: is it idempotent? A" in out.stdout, out.stdout


# -- c: a verification that was stopped verified nothing --------------------------------------


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_regression_an_interrupted_verify_is_recorded_as_not_verified(tmp_path, sig, code, word):
    env = home_env(tmp_path, SLOW="3")  # (a stopped run lets a running Check end)
    history = str(tmp_path / "h.sqlite3")
    jobs = _jobs(tmp_path / "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", f"{jobs}:Verified", *FAST, "--history", history, "--verify"],
        cwd=jobs.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(jobs.parent / "verifying")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, stdout + stderr
    assert "NOT VERIFIED  the verification was stopped" in stdout
    run = _last(history, env, tmp_path)
    assert run["verified"] is None and run["success"] is False
    assert run["stopped"] == word and run["verdict"] == f"not verified ({word} while verifying)"
    assert run["counts"]["changed"] == 1 and run["unstable"] == {}
    # not a drift baseline: the next run that finds A undone compares it with no run
    _undo(jobs, "a")
    out = _run(jobs, env, history, target="Verified")
    assert "drifted" not in out.stdout


def test_a_verify_stopped_by_the_timeout_is_not_verified(tmp_path):
    env = home_env(tmp_path, SLOW="3")
    history = str(tmp_path / "h.sqlite3")
    jobs = _jobs(tmp_path / "w")
    out = _run(jobs, env, history, "--verify", "--timeout", "1", target="Verified")
    run = _last(history, env, tmp_path)
    assert run["verified"] is None and run["success"] is False and run["stopped"] == "timeout", out.stdout
    assert "NOT VERIFIED  the verification was stopped (timeout)" in out.stdout


# -- #15: the changes a job has not seen yet ---------------------------------------------------

RESTART = """\
    import json, os
    import dojob

    HERE = os.path.dirname(os.path.abspath(__file__))

    def load(name, default):
        try:
            with open(os.path.join(HERE, name)) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return default

    def save(name, value):
        with open(os.path.join(HERE, name), "w") as fh:
            json.dump(value, fh)

    class Config(dojob.Job):
        def Check(self, *a, **k):
            if load("config.json", None) != os.environ["WANT"]:
                raise RuntimeError("the config differs")
        def Run(self, *a, **k):
            save("config.json", os.environ["WANT"])

    class Restart(dojob.Job):
        DEPS = [Config]
        TRIES = 1
        def Check(self, *a, **k):
            seen = load("seen.json", [])
            seen.append(sorted(d.__name__ for d in self.changed_deps))
            save("seen.json", seen)
            if "Config" in self.changed_deps and not self.storage.get("done"):
                raise RuntimeError("the config changed: restart needed")
        def Run(self, *a, **k):
            if os.environ.get("RESTART_FAILS"):
                raise RuntimeError("the service did not come back")
            save("restarts.json", load("restarts.json", 0) + 1)
            self.storage["done"] = True

    class Service(dojob.DummyJob):
        DEPS = [Restart]
"""


@pytest.mark.parametrize(
    "where", [[], ["-j", "2"], ["-j", "2", "--executor", "processes"]], ids=["serial", "threads", "processes"]
)
def test_a_change_is_not_lost_when_the_run_that_made_it_failed(tmp_path, location, where):
    env = home_env(tmp_path, WANT="v1")
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "svc.py").write_text(textwrap.dedent(RESTART), encoding="utf-8")

    def run(*more: str, **env_more: str) -> subprocess.CompletedProcess:
        return cli(
            "run", "svc.py:Service", *FAST, *where, "--history", location, *more, cwd=folder, env={**env, **env_more}
        )

    def seen() -> list:
        return json.loads((folder / "seen.json").read_text())

    first = run(RESTART_FAILS="1")  # run 1: the config changes, the restart fails
    assert first.returncode == 1 and "FAILED  Restart" in first.stdout, first.stdout
    assert seen() == [["Config"], ["Config"]]  # its Check, and the recheck after its failed Run
    second = run("--verify")  # run 2: the config is as wanted; the restart is still owed
    assert second.returncode == 0, second.stdout + second.stderr
    # its Check, the recheck after its Run, and the verification's Check: it succeeded in this run,
    # so nothing is owed any more (the verification finds it stable)
    assert seen()[2:] == [["Config"], ["Config"], []]
    assert "UNSTABLE" not in second.stdout
    assert json.loads((folder / "restarts.json").read_text()) == 1
    third = run()  # run 3: the restart succeeded since: nothing is owed
    assert third.returncode == 0, third.stdout
    assert seen()[5:] == [[]]
    assert json.loads((folder / "restarts.json").read_text()) == 1
    statuses = {
        r["id"]: r["counts"]
        for r in json.loads(cli("history", "--history", location, "--json", cwd=folder, env=env).stdout)
    }
    assert [statuses[i]["changed"] for i in (1, 2, 3)] == [1, 1, 0]


def test_without_history_a_failed_run_s_change_is_forgotten_and_a_check_sees_what_is_owed(tmp_path):
    env = home_env(tmp_path, WANT="v1")
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "svc.py").write_text(textwrap.dedent(RESTART), encoding="utf-8")
    history = str(tmp_path / "h.sqlite3")
    assert (
        cli(
            "run", "svc.py:Service", *FAST, "--history", history, cwd=folder, env={**env, "RESTART_FAILS": "1"}
        ).returncode
        == 1
    )
    # a check (a plan) sees the change still owed: the restart would run
    check = cli("check", "svc.py:Service", *FAST, "--history", history, cwd=folder, env=env)
    assert check.returncode == 1 and json.loads((folder / "seen.json").read_text())[-1] == ["Config"]
    off = cli("run", "svc.py:Service", *FAST, "--no-history", cwd=folder, env=env)
    assert off.returncode == 0 and json.loads((folder / "seen.json").read_text())[-1] == []
    assert not (folder / "restarts.json").exists()


# -- cost: what a recorded run imports, and when ---------------------------------------------

PROBE = """\
    import json, os, sys
    import dojob

    HERE = os.path.dirname(os.path.abspath(__file__))
    WATCH = ("dojob.history.hook", "dojob.history.record", "dojob.history.store", "dojob.history.findings", "sqlite3")
    AT_IMPORT = [m for m in WATCH if m in sys.modules]

    class Probe(dojob.Job):
        def Check(self, *a, **k):
            import gc
            with open(os.path.join(HERE, "probe.json"), "w") as fh:
                json.dump({"import": AT_IMPORT, "frozen": gc.get_freeze_count() > 0}, fh)
"""


def test_regression_a_recorded_run_imports_its_history_modules_where_they_cost_no_full_collection(tmp_path):
    # 10 000 jobs: importing the history modules after the jobs' classes existed and before the run
    # froze them for the collector tipped a full collection over all of them (15-35 ms, most of the cost)
    env = home_env(tmp_path)
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE), encoding="utf-8")
    out = cli("run", "probe.py:Probe", *FAST, "--history", str(tmp_path / "h.sqlite3"), cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    probe = json.loads((tmp_path / "probe.json").read_text())
    # only the (small) hook is loaded before the jobs; the record, store and sqlite3 load in the frozen run
    assert probe == {"import": ["dojob.history.hook"], "frozen": True}
    off = cli("run", "probe.py:Probe", *FAST, "--no-history", cwd=tmp_path, env=env)
    assert off.returncode == 0 and json.loads((tmp_path / "probe.json").read_text())["import"] == []


def test_from_python_the_target_is_the_root_s_module_or_the_script(tmp_path):
    env = home_env(tmp_path)
    _jobs(tmp_path / "w")
    history = str(tmp_path / "h.sqlite3")
    script = tmp_path / "w" / "converge.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            import sys
            import dojob
            import jobs

            class Local(dojob.DummyJob):
                DEPS = [jobs.A]

            root = jobs.Root if sys.argv[1:] == ["module"] else Local
            report = dojob.run(root, history={history!r})
            print(report.history.target)
            """
        ),
        encoding="utf-8",
    )
    module = subprocess.run([sys.executable, str(script), "module"], capture_output=True, text=True, env=env)
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip() == "jobs:Root"  # as `dojob run jobs:Root` records it
    local = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert local.stdout.strip() == f"{os.path.realpath(script)}:Local"
    cli_run = cli("run", "jobs:Root", *FAST, "--history", history, cwd=script.parent, env=env)
    assert cli_run.returncode == 0 and _last(history, env, tmp_path)["target"] == "jobs:Root"


def test_regression_a_recorded_run_leaves_the_wal_for_the_next_run_instead_of_syncing_at_exit(tmp_path):
    # closing the last connection checkpointed the history and deleted its WAL (two fsyncs at exit),
    # and the next run created it again (two more): most of a converged run's wall-clock cost
    env = home_env(tmp_path)
    jobs = _jobs(tmp_path / "w")
    history = tmp_path / "h.sqlite3"
    for _ in range(2):
        assert _run(jobs, env, str(history)).returncode == 0
        assert Path(f"{history}-wal").exists()  # the process ended without a checkpoint
    runs = json.loads(cli("history", "--history", str(history), "--json", cwd=tmp_path, env=env).stdout)
    assert [r["id"] for r in runs] == [1, 2]  # both committed, read back from the WAL


def test_regression_the_kept_connection_holds_no_python_frame_alive_at_exit(tmp_path):
    # it was held by a threading thread waiting in Python: its frames kept modules alive past the collection
    # that frees them at exit, so the finalising collections walked the graph's classes again
    env = home_env(tmp_path)
    _jobs(tmp_path / "w")
    history = tmp_path / "h.sqlite3"
    code = textwrap.dedent(
        f"""\
        import sys, threading
        sys.path.insert(0, {str(tmp_path / "w")!r})
        import dojob, jobs

        for _ in range(2):
            assert dojob.run(jobs.Root, history={str(history)!r}).history.run_id is not None
        print(len(sys._current_frames()), threading.active_count())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]  # only the main thread runs Python code
    assert Path(f"{history}-wal").exists()  # and the connection was still not closed at exit


def test_one_process_keeps_one_connection_per_history(tmp_path):
    # (SQLite itself holds back the file descriptor of a closed connection while another one of the same
    # process has the file open, and reuses it: the count stays put, it does not grow with the runs)
    env = home_env(tmp_path)
    _jobs(tmp_path / "w")
    history = tmp_path / "h.sqlite3"
    code = textwrap.dedent(
        f"""\
        import os, sys, time
        sys.path.insert(0, {str(tmp_path / "w")!r})
        import dojob, jobs

        def opened():
            time.sleep(0.3)  # the keeper closes the connection kept before in its own thread
            n = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    n += os.readlink(f"/proc/self/fd/{{fd}}").startswith({str(history)!r})
                except OSError:  # (the listing's own fd, closed by now)
                    pass
            return n

        counts = []
        for runs in (3, 12):
            for _ in range(runs):
                assert dojob.run(jobs.Root, history={str(history)!r}).history.run_id is not None
            counts.append(opened())
        print(counts)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    three, fifteen = json.loads(out.stdout)
    assert three == fifteen <= 4, (three, fifteen)  # the file, its WAL and shared memory, one held-back fd


def test_one_process_recording_into_many_histories_keeps_a_bounded_number_open(tmp_path):
    # a service writing each site's runs into the site's own history held one connection per file it
    # ever wrote, for its life, and kept the descriptors of files deleted meanwhile
    from test_readme_promises import readme_says

    from dojob.history.sqlite import KEPT_FILES

    readme_says("beyond the four latest files, the oldest")
    env = home_env(tmp_path)
    _jobs(tmp_path / "w")
    folder = tmp_path / "sites"
    folder.mkdir()
    code = textwrap.dedent(
        f"""\
        import glob, os, sys
        sys.path.insert(0, {str(tmp_path / "w")!r})
        import dojob, jobs
        folder = {str(folder)!r}

        def opened():
            names = set()
            for fd in os.listdir("/proc/self/fd"):
                try:
                    target = os.readlink(f"/proc/self/fd/{{fd}}")
                except OSError:
                    continue
                if target.startswith(folder):
                    names.add(os.path.basename(target).split(".")[0])
            return sorted(names)

        for n in range(12):
            assert dojob.run(jobs.Root, history=f"{{folder}}/site{{n:02}}.sqlite3").history.run_id == 1
        print(opened())
        for name in glob.glob(f"{{folder}}/site11.sqlite3*"):  # that site's history is dropped
            os.remove(name)
        assert dojob.run(jobs.Root, history=f"{{folder}}/site10.sqlite3").history.run_id == 2
        print(opened())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    first, after = out.stdout.splitlines()
    assert eval(first) == [f"site{n:02}" for n in range(12 - KEPT_FILES, 12)]  # the latest ones, no more
    assert eval(after) == [f"site{n:02}" for n in range(12 - KEPT_FILES, 11)]  # site11 went, and its connection


def test_a_kept_connection_is_not_used_once_its_file_was_replaced_or_upgraded(tmp_path):
    env = home_env(tmp_path)
    _jobs(tmp_path / "w")
    history = tmp_path / "h.sqlite3"
    code = textwrap.dedent(
        f"""\
        import glob, os, sqlite3, sys, warnings
        sys.path.insert(0, {str(tmp_path / "w")!r})
        import dojob, jobs
        path = {str(history)!r}
        print(dojob.run(jobs.Root, history=path).history.run_id)
        for name in glob.glob(path + "*"):  # someone starts the history afresh
            os.remove(name)
        print(dojob.run(jobs.Root, history=path).history.run_id)
        with sqlite3.connect(path) as conn:  # a newer dojob migrated it
            conn.execute("UPDATE schema_version SET version = 99")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            print(dojob.run(jobs.Root, history=path).history.run_id)
        print(len(caught), str(caught[0].message) if caught else "")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    first, second, third, warned = out.stdout.splitlines()
    assert (first, second, third) == ("1", "1", "None")  # the new file got run 1; the upgraded one is left alone
    assert warned.startswith("1 ") and "history schema v99 is newer than this dojob's" in warned


def test_the_async_driver_reads_the_changes_owed_too(tmp_path):
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "svc.py").write_text(textwrap.dedent(RESTART), encoding="utf-8")
    history = str(tmp_path / "h.sqlite3")
    code = textwrap.dedent(
        f"""\
        import asyncio, os, sys
        sys.path.insert(0, {str(folder)!r})
        import dojob, svc
        os.environ["RESTART_FAILS"] = "1"
        print(asyncio.run(dojob.arun(svc.Service, history={history!r}, default_retry_delay=0)).success)
        del os.environ["RESTART_FAILS"]
        print(asyncio.run(dojob.arun(svc.Service, history={history!r})).success)
        """
    )
    env = home_env(tmp_path, WANT="v1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    assert json.loads((folder / "seen.json").read_text())[2:] == [["Config"], ["Config"]]
    assert json.loads((folder / "restarts.json").read_text()) == 1
