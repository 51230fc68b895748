"""What ``dojob run`` of a one-job file loads and does at start-up (issue 17: <= 150 ms wall).

Each check runs the command in a fresh interpreter with the history on (the
default), a private state directory, and reports which modules it left loaded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from dojob.host import hostname

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONE_JOB = (
    "import dojob\n\n\nclass Hello(dojob.Job):\n    def Check(self):\n        pass\n\n"
    "    def Run(self):\n        pass\n"
)


def cli_run(tmp_path: Path, *args: str, modules: tuple[str, ...]) -> tuple[int, list[str], str]:
    """``dojob run onejob.py:Hello ARGS`` in a fresh interpreter: exit code, which of ``modules`` it loaded, stdout."""
    (tmp_path / "onejob.py").write_text(ONE_JOB)
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from dojob.cli import main

        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["run", "onejob.py:Hello", *sys.argv[1:]])
        print(json.dumps([code, sorted(m for m in sys.modules if m in {modules!r}), out.getvalue()]))
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT, XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("DOJOB_HISTORY", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    code_, loaded, out = json.loads(proc.stdout.strip().splitlines()[-1])
    return code_, loaded, out


def test_regression_a_one_job_run_does_not_load_socket(tmp_path: Path) -> None:
    # issue 17: the lock file, the history record and the report read the host name through socket
    # (and selectors)
    code, loaded, out = cli_run(
        tmp_path,
        modules=(
            "socket",
            "selectors",
        ),
    )
    assert code == 0 and "converged" in out and "1 ok" in out
    assert loaded == []
    assert list((tmp_path / "state" / "dojob").iterdir())  # the history was written: it was on


def test_the_host_name_is_the_one_socket_gives() -> None:
    assert hostname() == socket.gethostname() != ""
