"""The code stays lint-clean, as README's Development section asks: ``ruff check`` and ``ruff format --check``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text()


@pytest.mark.parametrize(
    "command",
    [["check", "dojob", "tests"], ["format", "--check", "dojob", "tests", "benchmarks", "examples"]],
    ids=["check", "format"],
)
def test_ruff_finds_nothing(command):
    assert f"``ruff {' '.join(command)}``" in README  # the command README gives, exactly
    # no cache: the check writes nothing into the repository
    before = sorted(p.name for p in ROOT.iterdir())
    out = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(p.name for p in ROOT.iterdir()) == before
