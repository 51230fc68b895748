"""``dojob.DoJobber``: DoJobber 0.6's API, as scripts use it (``import dojob as dojobber``)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile

import networkx
import pytest
from conftest import flaky, make_job

import dojob as dojobber


def _graph(log=None):
    a = flaky("A", 3, TRIES=2, RETRY_DELAY=0)
    bad = flaky("Bad", None, TRIES=2, RETRY_DELAY=0)
    up = make_job("Up", [bad])
    cleaned = make_job("Cleaned", [a], Cleanup=lambda self: log.append("Cleaned") if log is not None else None)
    return make_job("Root", [up, cleaned])


def test_configure_set_args_checknrun_and_statuses():
    seen = []
    root = make_job("Root", check=lambda self, *a, **k: seen.append((a, k)) or "res")
    dj = dojobber.DoJobber()
    dj.configure(root, verbose=False)
    dj.set_args("x", movie="Alien")
    dj.checknrun()
    assert seen == [(("x",), {"movie": "Alien"})]
    assert dj.nodestatus == {"Root": True} and dj.noderesults == {"Root": "res"}
    assert dj.success() and dj.partial_success() and not dj.failure()


def test_statuses_are_bools_even_before_a_run():
    dj = dojobber.DoJobber()
    assert dj.success() is False and dj.partial_success() is False and dj.failure() is True


def test_partial_failure_and_exceptions():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    assert dj.nodestatus == {"Bad": False, "Up": None, "A": True, "Cleaned": True, "Root": None}
    assert not dj.success() and dj.partial_success() and dj.failure()
    assert set(dj.nodeexceptions) == {"Bad", "A"}  # A failed once before passing
    assert str(dj.nodeexceptions["Bad"]) == "Bad not ready (4)"
    assert dj.report["Bad"].tries == 2


def test_checknrun_can_be_called_again_and_sees_new_deps():
    root = make_job("Root", base=dojobber.DummyJob)
    dj = dojobber.DoJobber()
    dj.configure(root)
    dj.checknrun()
    assert dj.nodestatus == {"Root": True}
    root.DEPS.append(flaky("Late", None, TRIES=1))
    dj.checknrun()
    assert dj.nodestatus == {"Late": False, "Root": None}


def test_jobs_added_between_configure_and_checknrun_run():
    """checknrun runs configure's graph only while no DEPS changed: a job added in place, a DEPS
    replaced deep in the graph, and a list DEPS mutated in place are all seen."""
    mid = make_job("Mid")
    mid.DEPS = ()
    root = make_job("Root", [mid])
    dj = dojobber.DoJobber()
    dj.configure(root)
    root.DEPS.append(make_job("Added"))  # a list DEPS, mutated in place
    dj.checknrun()
    assert dj.nodestatus == {"Mid": True, "Added": True, "Root": True}
    dj.configure(root)
    mid.DEPS = (flaky("Deep", None, TRIES=1),)  # a tuple DEPS, replaced below the root
    dj.checknrun()
    assert dj.nodestatus == {"Deep": False, "Mid": None, "Added": True, "Root": None}
    dj.configure(root)
    mid.DEPS = ()
    dj.checknrun()  # removed again: the graph of configure (with Deep) is not the one run
    assert dj.nodestatus == {"Mid": True, "Added": True, "Root": True}


def test_checknrun_of_another_node_than_the_configured_root_builds_its_graph():
    a = make_job("OnlyA")
    root = make_job("RootAB", [a, make_job("OnlyB")])
    dj = dojobber.DoJobber()
    dj.configure(root)
    dj.checknrun(a)
    assert dj.nodestatus == {"OnlyA": True}
    dj.checknrun()
    assert dj.nodestatus == {"OnlyA": True, "OnlyB": True, "RootAB": True}


def test_cleanup_false_then_cleanup():
    log = []
    dj = dojobber.DoJobber()
    dj.configure(_graph(log), cleanup=False)
    dj.checknrun()
    assert log == []
    dj.cleanup()
    dj.cleanup()
    assert log == ["Cleaned"]


def test_configure_validates_the_graph_at_once():
    bad = make_job("Bad")
    bad.DEPS = bad
    with pytest.raises(dojobber.DepsError):
        dojobber.DoJobber().configure(bad)
    with pytest.raises(dojobber.DojobError, match="configure"):
        dojobber.DoJobber().checknrun()


def test_workers_and_defaults_reach_the_run():
    dj = dojobber.DoJobber()
    dj.configure(make_job("Root", [flaky("A", None)]), default_tries=4, default_retry_delay=0, workers=3)
    dj.checknrun()
    assert dj.report["A"].tries == 4


def test_graph_is_networkx_with_statuses():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    g = dj.graph
    assert isinstance(g, networkx.DiGraph) and ("Up", "Bad") in g.edges
    dj.checknrun()
    assert dj.graph.nodes["Bad"]["status"] is False and dj.graph.nodes["A"]["status"] is True


def test_write_graph_png_and_dot():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    png = io.BytesIO()
    dj.write_graph(png)
    assert png.getvalue().startswith(b"\x89PNG")
    text = io.StringIO()
    dj.write_graph(text, fmt="dot")
    dot = text.getvalue()
    assert dot.startswith("digraph") and 'label="Bad' in dot and "red" in dot


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.NOTSET)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_loglevel_holds_for_that_instance_only():
    """dojobber_loglevel sets the dojob logger's level while that DoJobber configures, runs and
    cleans up; after, another DoJobber and a plain dojob.run log nothing below the logger's own level."""
    from test_readme_promises import readme_says

    readme_says("``dojobber_loglevel`` is the level of what that instance logs there, and leaves the logger's own")
    logger = logging.getLogger("dojob")
    old = logger.level
    seen = _Lines()
    logger.addHandler(seen)
    logger.setLevel(logging.WARNING)
    try:
        loud = dojobber.DoJobber(dojobber_loglevel=logging.DEBUG)
        assert logger.level == logging.WARNING  # constructing it changes nothing process-wide
        loud.configure(_graph(), cleanup=False)
        loud.checknrun()
        loud.cleanup()
        assert any(line.startswith("configured Root") for line in seen.lines)
        assert any(line.startswith("JobFinished(job='A', status=<Status.OK") for line in seen.lines)
        assert any(line.startswith("CleanupEnded(job='Cleaned', ok=True") for line in seen.lines)  # cleanup()
        assert logger.level == logging.WARNING
        seen.lines.clear()
        quiet = dojobber.DoJobber()
        quiet.configure(_graph())
        quiet.checknrun()
        dojobber.run(_graph())
        assert seen.lines == []
        assert quiet.nodestatus == loud.nodestatus
    finally:
        logger.removeHandler(seen)
        logger.setLevel(old)


def test_a_loud_dojobber_in_one_thread_leaves_a_quiet_one_in_another_quiet():
    import threading

    logger = logging.getLogger("dojob")
    seen = _Lines()
    logger.addHandler(seen)
    inside, done = threading.Event(), threading.Event()

    def waits(self, *args, **kwargs):
        inside.set()
        assert done.wait(10)

    loud_root = make_job("LoudRoot", [make_job("LoudWaits", check=waits)])
    quiet_root = make_job("QuietRoot", [make_job("QuietJob")])
    loud = dojobber.DoJobber(dojobber_loglevel=logging.DEBUG)
    loud.configure(loud_root)
    thread = threading.Thread(target=loud.checknrun)
    try:
        thread.start()
        assert inside.wait(10)  # the loud run is under way, in its own thread
        quiet = dojobber.DoJobber()
        quiet.configure(quiet_root)
        quiet.checknrun()
        assert quiet.success()
        done.set()
        thread.join(10)
        assert loud.success()
        assert any("job='LoudWaits'" in line for line in seen.lines)
        assert not [line for line in seen.lines if "Quiet" in line]
    finally:
        done.set()
        logger.removeHandler(seen)


def test_module_exposes_dojobbers_names():
    for name in ("DoJobber", "Job", "DummyJob", "RunonlyJob"):
        assert hasattr(dojobber, name)


CAT = shutil.which("cat")  # by its path: the tests empty PATH


def _viewer(tmp_path, seen):
    """A fake ImageMagick ``display`` that saves the image piped in, and the directory it is in."""
    viewer = tmp_path / "bin" / "display"
    viewer.parent.mkdir(exist_ok=True)
    viewer.write_text(f'#!/bin/sh\n{CAT} > "{seen}"\n')
    viewer.chmod(0o755)
    return viewer.parent


def test_display_graph_pipes_the_png_into_display(tmp_path, monkeypatch):
    seen = tmp_path / "seen.png"
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    dot_dir = os.path.dirname(shutil.which("dot"))  # Graphviz renders the PNG; cat is there too
    monkeypatch.setenv("PATH", f"{_viewer(tmp_path, seen)}:{dot_dir}")
    dj.display_graph()
    assert seen.read_bytes().startswith(b"\x89PNG")


# -- regressions: DoJobber code that did not run unchanged (issue #13) ----------------------------


SCRIPT = """\
import os, sys
from dojobber import Job, DoJobber, DummyJob
import dojobber.dojobber
from dojobber.dojobber import RunonlyJob

class Here(Job):
    def Check(self, *args, **kwargs):
        if kwargs["want"] != "yes":
            raise RuntimeError("not here")
    def Run(self, *args, **kwargs):
        pass

class Root(DummyJob):
    DEPS = (Here,)

import dojob
assert dojobber.dojobber.Job is Job is dojob.Job, "dojobber is not dojob"
dj = DoJobber()
dj.configure(Root, verbose=True, default_retry_delay=0)
dj.set_args(want=sys.argv[1])
dj.checknrun()
print(__name__, sys.argv[1:], sorted(dj.nodestatus.items()), os.path.basename(sys.path[0]))
sys.exit(0 if dj.success() else 3)
"""


def _shim(tmp_path, *args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(dojobber.__file__))}
    return subprocess.run(
        [sys.executable, "-m", "dojob.dojobber", *args], cwd=cwd or tmp_path, env=env, capture_output=True, text=True
    )


def test_regression_a_dojobber_script_runs_unchanged_through_the_shim(tmp_path):
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "movie.py").write_text(SCRIPT)
    ok = _shim(tmp_path, "scripts/movie.py", "yes")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "__main__ ['yes'] [('Here', True), ('Root', True)] scripts\n"
    assert ok.stderr == "Here.check: pass\nRoot.check: pass\n"
    bad = _shim(tmp_path, "scripts/movie.py", "no")
    assert bad.returncode == 3, bad.stderr
    assert "[('Here', False), ('Root', None)]" in bad.stdout
    assert bad.stderr.count('Here.recheck: fail "not here"\n') == 3
    (folder / "mod.py").write_text(SCRIPT)
    as_module = _shim(tmp_path, "-m", "mod", "yes", cwd=folder)
    assert as_module.returncode == 0 and "('Here', True)" in as_module.stdout, as_module.stderr
    missing = _shim(tmp_path, "nowhere.py")
    assert missing.returncode == 2 and "no such script" in missing.stderr
    usage = _shim(tmp_path)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_regression_the_shim_shadows_nothing_outside_its_process(tmp_path):
    # another program importing dojobber gets the real one (or none), never dojob
    probe = "import importlib.util as u; s = u.find_spec('dojobber'); print(s.origin if s else None)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert out == "None" or os.sep + "dojob" + os.sep not in out
    from dojob import dojobber as shim

    assert "dojobber" not in sys.modules or sys.modules["dojobber"] is not shim


def test_regression_the_shim_refuses_to_mix_with_an_imported_dojobber(monkeypatch):
    from dojob import dojobber as shim

    fake = type(sys)("dojobber")
    monkeypatch.setitem(sys.modules, "dojobber", fake)
    with pytest.raises(RuntimeError, match="already imported"):
        shim.alias()


def _trace(capfd):
    return capfd.readouterr().err.splitlines()


@pytest.mark.parametrize("workers", [1, 2])
def test_regression_dummyjob_with_a_failing_check_fails_like_dojobbers(workers, capfd):
    class Sofa(dojobber.DummyJob):
        TRIES = 1

        def Check(self, *args, **kwargs):
            raise ValueError("no sofa")

    dj = dojobber.DoJobber()
    dj.configure(Sofa, verbose=True, workers=workers)
    dj.checknrun()
    assert dj.nodestatus == {"Sofa": False}
    assert type(dj.nodeexceptions["Sofa"]) is ValueError and str(dj.nodeexceptions["Sofa"]) == "no sofa"
    assert _trace(capfd) == ["Sofa.check: fail", "Sofa.run: pass", 'Sofa.recheck: fail "no sofa"']


def test_regression_graphs_dojobber_runs_are_accepted_and_run_as_dojobber_runs_them(capfd, caplog):
    cpus = []

    class CountCPUs(dojobber.Job):  # DoJobber's README example: a Check, no Run
        def Check(self, *args, **kwargs):
            self.global_storage["num_cpus"] = 4

    class FixFanSpeed(dojobber.Job):
        DEPS = (CountCPUs,)

        def Check(self, *args, **kwargs):
            cpus.append(self.global_storage["num_cpus"])

    class CheckOnly(dojobber.Job):
        TRIES = 1

        def Check(self, *args, **kwargs):
            raise RuntimeError("still wrong")

    ran = []

    class RunOnlyNoCheck(dojobber.Job):  # a Job whose Check is missing: every try fails, after its Run
        TRIES = 1.1  # DoJobber counts this down: 2 tries

        def Run(self, *args, **kwargs):
            ran.append("run")

    class ChecksAnyway(dojobber.RunonlyJob):  # its Check replaces the implicit one, as in DoJobber
        def Check(self, *args, **kwargs):
            return "checked"

        def Run(self, *args, **kwargs):
            raise AssertionError("never runs: the Check passes")

    class Root(dojobber.DummyJob):
        DEPS = (FixFanSpeed, CheckOnly, RunOnlyNoCheck, ChecksAnyway)

    dj = dojobber.DoJobber()
    with caplog.at_level("WARNING", logger="dojob"):
        dj.configure(Root, verbose=True, default_tries=1.1, default_retry_delay=0)
        dj.checknrun()
    assert dj.nodestatus == {
        "CountCPUs": True, "FixFanSpeed": True, "CheckOnly": False, "RunOnlyNoCheck": False,
        "ChecksAnyway": True, "Root": None,
    }  # fmt: skip
    assert cpus == [4] and ran == ["run", "run"] and dj.noderesults["ChecksAnyway"] == "checked"
    assert dj.report["RunOnlyNoCheck"].tries == 2 and dj.report["CheckOnly"].tries == 1
    assert str(dj.nodeexceptions["RunOnlyNoCheck"]) == "'RunOnlyNoCheck' object has no attribute 'Check'"
    trace = _trace(capfd)
    assert trace[:3] == ["CountCPUs.check: pass", "FixFanSpeed.check: pass", "CheckOnly.check: fail"]
    assert trace[3:5] == ["CheckOnly.run: fail", 'CheckOnly.recheck: fail "still wrong"']
    warned = [r.getMessage() for r in caplog.records]
    assert any("'CountCPUs'" in w and "no Run" in w for w in warned)
    assert any("'RunOnlyNoCheck'" in w and "no Check" in w for w in warned)
    assert any("'RunOnlyNoCheck'" in w and "TRIES=1.1" in w and "2 tries" in w for w in warned)
    assert any("default_tries=1.1" in w for w in warned)
    assert any("'ChecksAnyway'" in w and "runs as a Job" in w for w in warned)


def test_regression_dojob_list_shows_the_warnings(tmp_path):
    (tmp_path / "jobs.py").write_text(
        "import dojob\nclass CountCPUs(dojob.Job):\n    def Check(self, *a, **k):\n        pass\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.path.dirname(os.path.dirname(dojobber.__file__))]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "dojob", "list", "jobs.py:CountCPUs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "dojob: warning: job 'CountCPUs': defines no Run method" in proc.stderr
    assert proc.stdout.splitlines()[1].split()[:3] == ["CountCPUs", "job", "3"]
    for command in ("list", "graph", "run", "check"):  # each command: the warning once, in dojob's own words
        proc = subprocess.run(
            [sys.executable, "-m", "dojob", command, "jobs.py:CountCPUs"],
            cwd=tmp_path, env={**env, "DOJOB_HISTORY": "off"}, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines() == [
            "dojob: warning: job 'CountCPUs': defines no Run method: its Check alone decides"
        ], command


def test_regression_errors_dojobber_raised_as_runtime_error_still_are():
    a = make_job("A")
    b = make_job("B", [a])
    a.DEPS = [b]
    for bad, options in (
        (b, {}),  # a cycle
        (make_job("T", TRIES=0), {}),
        (make_job("T", TRIES=0.5), {}),  # DoJobber: int(TRIES) < 1
        (make_job("D", RETRY_DELAY=-1), {}),
        (make_job("O"), {"default_tries": 0}),
        (make_job("O"), {"default_retry_delay": -0.5}),
    ):
        with pytest.raises(RuntimeError) as info:
            dojobber.DoJobber().configure(bad, **options)
        assert isinstance(info.value, (ValueError, dojobber.DojobError))
    with pytest.raises(RuntimeError):
        dojobber.build_graph(b)
    with pytest.raises(ValueError):  # the other half of the contract
        dojobber.build_graph(b)
    dj = dojobber.DoJobber()
    dj.configure(make_job("G"))
    with pytest.raises(RuntimeError):
        dj.write_graph(io.BytesIO(), fmt="no-such-format")


def test_regression_runonly_job_under_no_act_fails_with_dojobbers_runtime_error(capfd):
    ro = make_job("Ro", base=dojobber.RunonlyJob)
    dj = dojobber.DoJobber()
    dj.configure(ro, no_act=True, verbose=True)
    dj.checknrun()
    exc = dj.nodeexceptions["Ro"]
    assert dj.nodestatus == {"Ro": False}
    assert isinstance(exc, RuntimeError) and str(exc) == "Runonly node check intentionally fails first time."
    assert _trace(capfd) == ["Ro.check: fail"]


def test_regression_checknrun_goes_back_to_the_callers_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    away = tmp_path / "away"
    away.mkdir()
    seen = []

    class Wanders(dojobber.Job):
        def Check(self, *args, **kwargs):
            seen.append(os.getcwd())
            os.chdir(away)
            if len(seen) < 2:
                raise RuntimeError("again")

        def Run(self, *args, **kwargs):
            seen.append(os.getcwd())
            os.chdir(away)

        def Cleanup(self):
            os.chdir(away)

    dj = dojobber.DoJobber()
    dj.configure(Wanders)
    dj.checknrun()
    assert dj.success()
    assert seen == [str(tmp_path)] * 3  # before every phase, as DoJobber does
    assert os.getcwd() == str(tmp_path)  # and after checknrun

    class Quits(dojobber.Job):
        def Check(self, *args, **kwargs):
            os.chdir(away)
            raise SystemExit(4)

        def Run(self, *args, **kwargs):
            pass

    dj.configure(Quits)
    with pytest.raises(SystemExit):
        dj.checknrun()
    assert os.getcwd() == str(tmp_path)


def test_regression_write_graph_takes_dojobbers_filed_keyword():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    out = io.StringIO()
    dj.write_graph(filed=out, fmt="dot")
    assert out.getvalue().startswith("digraph")
    png = io.BytesIO()
    dj.write_graph(filed=png)
    assert png.getvalue().startswith(b"\x89PNG")


def test_regression_a_node_may_be_given_by_name():
    log = []
    a = flaky("NamedA", None, TRIES=1, log=log)
    root = make_job("NamedRoot", [make_job("NamedB", check=lambda self, *x, **k: log.append("B")), a])
    dj = dojobber.DoJobber()
    dj.configure("NamedRoot", default_retry_delay=0)  # DoJobber takes class names where it takes classes
    dj.checknrun(node="NamedB")
    assert dj.nodestatus == {"NamedB": True} and log == ["B"]
    dj.checknrun("NamedRoot")
    assert dj.nodestatus == {"NamedB": True, "NamedA": False, "NamedRoot": None}
    assert dj.graph.number_of_nodes() == 3 and root.__name__ == "NamedRoot"
    with pytest.raises(dojobber.RootError):
        dj.configure("NoSuchJobAnywhere")


@pytest.mark.parametrize("stopper", [SystemExit, KeyboardInterrupt])
def test_regression_nodestatus_is_kept_when_a_job_raises_systemexit(stopper):
    class Fine(dojobber.Job):
        def Check(self, *args, **kwargs):
            return "fine"

        def Run(self, *args, **kwargs):
            pass

    class Quits(dojobber.Job):
        DEPS = (Fine,)

        def Check(self, *args, **kwargs):
            raise stopper(5)

        def Run(self, *args, **kwargs):
            pass

    dj = dojobber.DoJobber()
    dj.configure(Quits)
    with pytest.raises(stopper) as info:
        dj.checknrun()
    assert info.value.args == (5,)
    assert dj.nodestatus["Fine"] is True and dj.noderesults["Fine"] == "fine"
    assert dj.nodestatus["Quits"] is not True
    assert not dj.success()


def test_regression_display_graph_is_quiet_without_a_viewer_and_leaves_no_file(tmp_path, monkeypatch, caplog):
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    dot_dir = os.path.dirname(shutil.which("dot"))
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with caplog.at_level("WARNING", logger="dojob"):
        assert dj.display_graph() is None  # no viewer: nothing shown, nothing raised
    assert "no 'display' program" in caplog.text
    seen = tmp_path / "seen.png"
    monkeypatch.setenv("PATH", f"{_viewer(tmp_path, seen)}:{dot_dir}")
    dj.display_graph()
    assert seen.read_bytes().startswith(b"\x89PNG")
    assert list(scratch.iterdir()) == []  # the PNG went through a pipe, no temporary file
    seen.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # a viewer but no Graphviz: nothing shown, nothing raised
    caplog.clear()
    with caplog.at_level("WARNING", logger="dojob"):
        assert dj.display_graph() is None
    assert "cannot draw the graph" in caplog.text and not seen.exists()
    with pytest.raises(RuntimeError, match="Graphviz"):  # write_graph says so instead of writing nothing
        dj.write_graph(io.BytesIO())
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{dot_dir}")
    failing = tmp_path / "bin" / "display"
    failing.write_text("#!/bin/sh\nexit 1\n")
    with pytest.raises(RuntimeError, match="display"):
        dj.display_graph()


def test_regression_per_try_attributes_are_set_as_dojobber_sets_them():
    seen = []

    class Tracked(dojobber.Job):
        def Check(self, *args, **kwargs):
            seen.append(
                (
                    "check",
                    self._check_phase,
                    type(self._check_exception) if self._check_exception else None,
                    self._run_results,
                    self._run_exception,
                )
            )
            if self._check_phase == "check":
                raise KeyError("first")
            return "rechecked"

        def Run(self, *args, **kwargs):
            seen.append(("run", self._check_phase, repr(self._check_exception), self._check_results))
            return "ran"

        def Cleanup(self):
            seen.append(("cleanup", self._recheck_results, self._recheck_exception, self._run_results))

    class Boom(dojobber.Job):
        TRIES = 1

        def Check(self, *args, **kwargs):
            if self._check_phase == "recheck":
                seen.append(("boom", repr(self._run_exception), self._run_results))
            raise ValueError("still")

        def Run(self, *args, **kwargs):
            raise OSError("run broke")

        def Cleanup(self):
            seen.append(("boom-cleanup", repr(self._recheck_exception), self._recheck_results))

    dj = dojobber.DoJobber()
    dj.configure(make_job("Both", [Tracked, Boom], base=dojobber.DummyJob))
    dj.checknrun()
    assert seen == [
        ("check", "check", None, None, None),
        ("run", "check", "KeyError('first')", None),
        ("check", "recheck", KeyError, "ran", None),
        ("boom", "OSError('run broke')", None),
        ("boom-cleanup", "ValueError('still')", None),
        ("cleanup", "rechecked", None, "ran"),
    ]


def test_regression_a_real_dojobber_class_is_refused_with_the_way_out():
    real_job = type("Job", (), {"__module__": "dojobber.dojobber", "DEPS": ()})  # what the real package defines
    mine = type("Mine", (real_job,), {"Check": lambda self, *a, **k: None})
    with pytest.raises(
        dojobber.RootError, match=r"real DoJobber package; run the script with 'python -m dojob\.dojobber"
    ):
        dojobber.build_graph(mine)
    with pytest.raises(dojobber.DepsError, match="real DoJobber package"):
        dojobber.build_graph(make_job("Root", [mine]))
    with pytest.raises(dojobber.RootError) as plain:
        dojobber.build_graph(int)
    assert "DoJobber" not in str(plain.value)


def test_a_job_that_cannot_be_created_is_traced_as_init(capfd):
    class Broken(dojobber.Job):
        TRIES = 1

        def __init__(self):
            raise OSError("no config")

        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

    dj = dojobber.DoJobber()
    dj.configure(Broken, verbose=True)
    dj.checknrun()
    assert dj.nodestatus == {"Broken": False} and str(dj.nodeexceptions["Broken"]) == "no config"
    assert _trace(capfd) == ['Broken.init: fail "no config"']  # DoJobber: "Broken.check: fail"


def test_the_warnings_reach_stderr_of_an_unconfigured_script(tmp_path):
    (tmp_path / "cpus.py").write_text(
        "from dojobber import Job, DoJobber\n"
        "class CountCPUs(Job):\n"
        "    def Check(self, *a, **k):\n"
        "        self.global_storage['num_cpus'] = 4\n"
        "dj = DoJobber()\n"
        "dj.configure(CountCPUs)\n"
        "dj.checknrun()\n"
        "print(dj.nodestatus)\n"
    )
    proc = _shim(tmp_path, "cpus.py")
    assert proc.returncode == 0 and proc.stdout == "{'CountCPUs': True}\n", proc.stderr
    assert proc.stderr == "job 'CountCPUs': defines no Run method: its Check alone decides\n"
