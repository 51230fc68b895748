"""A run's truth is the same in every output: a failed Cleanup and a ``--verify`` that fails or is cut short.

Found by an adversarial pass: the exit status said "failed" while the JUnit file, the
history and the event log said "converged".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

CLEANUP_FAILS = """\
import dojob

class A(dojob.Job):
    def Check(self, *args, **kwargs):
        pass

    def Cleanup(self):
        raise OSError("disk gone")
"""

FLAKY = """\
import os
import dojob

STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state")

class Flaky(dojob.Job):
    def Check(self, *args, **kwargs):  # passes, then fails: unstable
        n = int(open(STATE).read()) if os.path.exists(STATE) else 0
        open(STATE, "w").write(str(n + 1))
        if n % 2 == 1:
            raise RuntimeError(f"odd check {n}")

class Root(dojob.DummyJob):
    DEPS = (Flaky,)
"""

SLOW_VERIFY = """\
import os
import time
import dojob

MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mark")

class A(dojob.Job):
    def Check(self, *args, **kwargs):
        if not os.path.exists(MARK):
            raise RuntimeError("not yet")
        if not os.path.exists(MARK + ".rechecked"):  # the run's recheck
            open(MARK + ".rechecked", "w").close()
            return
        open(MARK + ".verifying", "w").close()  # the verification's Check
        time.sleep(30)

    def Run(self, *args, **kwargs):
        open(MARK, "w").close()
"""


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dojob", *args]


def environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "DOJOB_HISTORY")}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=cwd, env=environ(), capture_output=True, text=True, timeout=60)


def history_json(cwd: Path, db: str) -> list[dict]:
    out = cli("history", "--history", db, "--json", cwd=cwd)
    assert out.returncode == 0, out
    data = json.loads(out.stdout)
    return data if isinstance(data, list) else data["runs"]


def junit_failures(path: Path) -> tuple[int, list[str]]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    failed = [case.get("name", "") for case in suite.iter("testcase") if case.find("failure") is not None]
    return int(suite.get("failures", "-1")), failed


def test_a_failed_cleanup_fails_the_recap_junit_and_history_as_it_fails_the_exit_status(tmp_path):
    (tmp_path / "jobs.py").write_text(CLEANUP_FAILS)
    out = cli("run", "jobs.py:A", "--history", "h.db", "--junit", "j.xml", cwd=tmp_path)
    assert out.returncode == 1, out
    lines = out.stdout.splitlines()
    assert lines[0].startswith("converged in ") and lines[0].endswith("; 1 Cleanup failed"), lines
    assert lines[1] == "cleanup failed: A: OSError: disk gone", lines
    assert junit_failures(tmp_path / "j.xml") == (1, ["Cleanup of A"])
    (run,) = history_json(tmp_path, "h.db")
    assert run["success"] is False and run["verdict"] == "converged, cleanup failed: A", run


def test_a_failed_cleanup_in_the_loop_says_so_on_its_line_and_in_junit(tmp_path):
    (tmp_path / "jobs.py").write_text(CLEANUP_FAILS)
    out = cli(
        "run", "jobs.py:A", "--no-history", "--every", "0.1s", "--max-runs", "2", "--junit", "j.xml", cwd=tmp_path
    )
    assert out.returncode == 1, out
    heads = [line for line in out.stdout.splitlines() if line.startswith("run ")]
    assert len(heads) == 2 and all("; 1 Cleanup failed" in head for head in heads), heads
    assert "back-off after 1 failed run" in heads[0], heads
    assert junit_failures(tmp_path / "j.xml") == (1, ["Cleanup of A"])


def test_an_unstable_job_fails_junit_and_the_event_log_tells_the_verification(tmp_path):
    (tmp_path / "jobs.py").write_text(FLAKY)
    out = cli(
        "run", "jobs.py:Root", "--verify", "--no-history", "--junit", "j.xml", "--events", "e.jsonl", cwd=tmp_path
    )
    assert out.returncode == 1, out
    assert out.stdout.splitlines()[-2].endswith(", 1 unstable"), out.stdout
    assert junit_failures(tmp_path / "j.xml") == (1, ["Flaky"])
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events][-2:] == ["RunFinished", "RunVerified"]
    assert events[-1]["success"] is False and events[-1]["unstable"] == ["Flaky"] and events[-1]["stopped"] is None


def test_a_verification_stopped_by_sigterm_is_not_green_anywhere(tmp_path):
    (tmp_path / "jobs.py").write_text(SLOW_VERIFY)
    args = ("run", "jobs.py:A", "--verify", "--history", "h.db", "--junit", "j.xml", "--events", "e.jsonl")
    proc = subprocess.Popen(command(*args), cwd=tmp_path, env=environ(), stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "mark.verifying").exists():  # the verification's Check is running
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 143, stdout
    verdict = [line for line in stdout.splitlines() if " in " in line and ": " in line][-1]
    assert verdict.endswith("not verified (terminated while verifying)"), stdout
    assert junit_failures(tmp_path / "j.xml") == (1, ["verification (--verify)"])
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "RunVerified" and events[-1]["success"] is False
    assert events[-1]["stopped"] == "terminated"
    (run,) = history_json(tmp_path, "h.db")
    assert run["success"] is False and run["verdict"] == "not verified (terminated while verifying)"
