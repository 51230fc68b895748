"""What travels to workers, and how: by reference or by value, decided per class (issue 11).

Also the ``dojob`` command with process pools under every start method, and
that ``import dojob`` stays light (no cloudpickle, no distributed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import types

import pytest
import remote_jobs
from remote_jobs import HANG, cli_target, run_cli

import dojob
from dojob import shipping
from dojob.target import load_target


class ModuleLevel(dojob.Job):
    def Check(self, *args, **kwargs):
        return None

    def Run(self, *args, **kwargs):
        return None


class Renamed(dojob.Job):  # reachable only under another name: its qualified name leads elsewhere
    pass


Alias = Renamed
Renamed = None  # type: ignore[assignment,misc]


def test_each_class_travels_by_reference_only_when_its_name_leads_back_to_it():
    class Local(dojob.Job):
        pass

    assert shipping.how(remote_jobs.Where) == "reference"
    assert shipping.how(ModuleLevel) == "reference"  # this test module is on sys.path: workers import it
    assert shipping.how(dojob.DummyJob) == "reference"
    assert shipping.how(Local) == "value"  # made in a function
    assert shipping.how(type("Made", (dojob.Job,), {})) == "value"
    assert shipping.how(Alias) == "value"
    assert shipping.how(remote_jobs.meeting_check) == "reference"


def test_modules_nobody_can_import_by_name_travel_by_value(tmp_path):
    loose = types.ModuleType("dojob_test_loose_module")
    exec("import dojob\nclass Loose(dojob.Job):\n    pass\n", loose.__dict__)
    sys.modules[loose.__name__] = loose
    try:
        assert not shipping.importable(loose) and shipping.how(loose.Loose) == "value"
    finally:
        del sys.modules[loose.__name__]
    assert shipping.importable(os) and shipping.importable(sys) and shipping.importable(dojob)
    assert shipping.importable(sys.modules["dojob.job"])


def test_cli_file_targets_and_their_neighbours_travel_by_value(tmp_path):
    root = load_target(f"{cli_target(tmp_path)}:Root")
    assert root.__module__.startswith("dojob_target_")
    leaf = root.DEPS[0]
    assert shipping.how(root) == "value" and shipping.how(leaf) == "value"
    neighbour = sys.modules["neighbour"]
    assert not shipping.importable(neighbour)  # found only because a target's folder was put on sys.path
    payload = shipping.dumps(leaf)
    assert b"leaf not made yet" in payload  # the class's code itself travels


def test_regression_import_dojob_loads_neither_cloudpickle_nor_distributed():
    code = (
        "import sys, dojob, dojob.cli\n"
        "dojob.run(type('A', (dojob.Job,), {'Check': lambda self: None, 'Run': lambda self: None}), workers=2)\n"
        "print(sorted(m for m in ('cloudpickle', 'distributed', 'dask') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


MAIN_SCRIPT = """
import multiprocessing
import os

import dojob


class Main(dojob.Job):
    def Check(self, *args, **kwargs):
        return os.getpid()

    def Run(self, *args, **kwargs):
        pass


if __name__ == "__main__":
    multiprocessing.set_start_method("{method}")
    report = dojob.run(Main, executor="processes")
    print(dojob.shipping.how(Main), report.success, report["Main"].result != os.getpid())
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_class_of_main_reaches_spawned_workers_by_value(method, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(MAIN_SCRIPT.replace("{method}", method)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["value", "True", "True"]


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_regression_a_cli_file_target_runs_on_processes_under_every_start_method(method, tmp_path):
    """``dojob run file.py:Root --executor processes`` with multiprocessing's default start method set."""
    target = cli_target(tmp_path)
    done = run_cli("run", f"{target}:Root", "--executor", "processes", "-v", start_method=method, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Leaf.recheck: pass" in done.stderr and "Root.check: pass" in done.stderr


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_the_command_names_the_start_method_and_the_class_arrives_by_value(method, tmp_path):
    target = cli_target(tmp_path)
    code = (
        "import sys; from dojob.cli import main; from dojob.target import load_target; import dojob\n"
        f"root = load_target({target + ':Root'!r})\n"
        f"report = dojob.run(root, executor='processes:{method}')\n"
        "print(report['Leaf'].result.split()[1], report['Root'].result.split()[1])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]  # the worker never imported the target's module
    run = run_cli("run", f"{target}:Root", "--executor", f"processes:{method}", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_command_refuses_an_unknown_start_method(tmp_path):
    done = run_cli("run", f"{cli_target(tmp_path)}:Root", "--executor", "processes:threads", cwd=tmp_path)
    assert done.returncode == 2 and "processes[:fork|spawn|forkserver]" in done.stderr
    assert not (tmp_path / "leaf").exists()


def test_regression_the_command_with_a_timeout_ends_a_hung_process_try(tmp_path):
    (tmp_path / "hang.py").write_text(textwrap.dedent(HANG))
    start = time.monotonic()
    done = run_cli("run", "hang.py:Hang", "--executor", "processes", "--timeout", "2", cwd=tmp_path, timeout=40)
    elapsed = time.monotonic() - start
    assert done.returncode == 1, done.stdout + done.stderr
    assert elapsed < 2 * 2 + 8  # T, the Cleanups' T, a kill, and the interpreter's start and exit
    assert "timed out" in done.stdout + done.stderr
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
