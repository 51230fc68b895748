"""Start ``dojob run`` on a target file and press Ctrl-C at it, as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def launch(tmp_path: Path, source: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Write ``source`` to ``sleepy.py`` in ``tmp_path`` and start ``dojob run *args`` there."""
    (tmp_path / "sleepy.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
        # A shell's background jobs ignore SIGINT; give the child Python's usual handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def interrupt(proc: subprocess.Popen, started: Path, times: int = 1, pause: float = 0.2) -> tuple[str, str, float]:
    """Send SIGINT ``times`` times once ``started`` exists; return stdout, stderr, seconds to exit."""
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        t0 = time.monotonic()
        for _ in range(times):
            time.sleep(pause)
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        return stdout, stderr, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
