"""README.rst stays true: its two commands are the ones CI and a newcomer use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _console_commands(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.rst").read_text()
    quick_start = readme.split("Quick start", 1)[1].split("A job\n", 1)[0]
    install_and_example, test_command = _console_commands(quick_start)[:2]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == test_command
    assert "bash .ci/install" in ci and install_and_example.startswith("bash .ci/install && python examples/")


def test_readme_mentions_every_public_name():
    import dojob

    readme = (ROOT / "README.rst").read_text()
    important = ["run", "arun", "DoJobber", "Job", "DummyJob", "RunonlyJob", "FakeClock", "CycleError", "CleanupError"]
    for name in important:
        assert name in dojob.__all__
        assert re.search(rf"\b{name}\b", readme), name
