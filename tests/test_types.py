"""dojob's own type hints hold: ``mypy dojob`` (configured in pyproject.toml's ``[tool.mypy]``) finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error_in_dojob(tmp_path):
    # the cache goes to a temporary folder: the check writes nothing into the repository
    before = sorted(p.name for p in ROOT.iterdir())
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "dojob", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("Success: no issues found in"), out.stdout
    checked = int(out.stdout.split(" in ")[1].split()[0])  # "... in 65 source files": the package, not a stray file
    assert checked >= len(list((ROOT / "dojob").rglob("*.py"))), out.stdout
    assert sorted(p.name for p in ROOT.iterdir()) == before
