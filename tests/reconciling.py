"""Drive ``dojob run --every`` as an operator would: a real process, its output read as it comes, real signals."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

#: Seconds any wait for a line or an exit may take on a loaded machine before a test gives up.
PATIENCE = 30.0


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a loop under test: its own state directory, no colours."""
    env = dict(os.environ)
    for name in ("NO_COLOR", "FORCE_COLOR", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(name, None)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["DOJOB_HISTORY"] = "off"  # these tests are about the loop's own drift (a history's: test_history_cli)
    env.update(extra)
    return env


class Proc:
    """A ``python -m dojob ARGS`` process whose stdout and stderr lines are collected as they come."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dojob", *args],
            cwd=cwd,
            env=env if env is not None else env_for(cwd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A shell's background jobs ignore SIGINT; give the child Python's usual handler.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out, "out"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err, "err"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into: list[str], name: str) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            self._lines.put((name, line.rstrip("\n")))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, stream: str = "out", timeout: float = PATIENCE) -> re.Match:
        """Wait until a line of ``stream`` matches ``pattern`` (a regex, searched); return the match."""
        regex = re.compile(pattern)
        for line in self.out if stream == "out" else self.err:
            m = regex.search(line)
            if m:
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matched {pattern!r} on std{stream}: out={self.out} err={self.err}")
            try:
                name, line = self._lines.get(timeout=min(left, 0.1))
            except queue.Empty:
                if (
                    self.proc.poll() is not None
                    and all(not r.is_alive() for r in self._readers)
                    and self._lines.empty()
                ):
                    raise AssertionError(
                        f"exited {self.proc.returncode} before {pattern!r}: out={self.out} err={self.err}"
                    ) from None
                continue
            if name == stream:
                m = regex.search(line)
                if m:
                    return m

    def wait_until(self, predicate, what: str = "the condition", timeout: float = PATIENCE) -> None:
        """Wait until ``predicate()`` holds while the process runs."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                time.sleep(0.1)  # let the readers catch up
                raise AssertionError(f"exited {self.proc.returncode} before {what}: out={self.out} err={self.err}")
            assert time.monotonic() < deadline, f"{what} never came: out={self.out} err={self.err}"
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = PATIENCE) -> int:
        """Wait for the exit; return the status (the output is complete afterwards)."""
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate, timeout: float = PATIENCE, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} never came"
        time.sleep(0.02)


ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def run_on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, list[str]]:
    """``dojob ARGS`` with stderr on a pseudo-terminal: (status, stdout, the terminal's lines without escapes)."""
    import select

    master, slave = os.openpty()
    environ = dict(env, COLUMNS="110", LINES="40", TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        proc.wait(timeout=PATIENCE)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    lines = [part for line in text.split("\n") for part in line.split("\r") if part.strip()]
    return proc.returncode, stdout, lines
