"""Phases for the remote-executor tests: importable by name, so these functions travel by reference.

Tests build job classes with ``type()`` from these functions; the classes set
what a phase does (``GROUP``, ``ACTION``, ``VICTIM``...). Processes coordinate
through files in the folder passed as the run's ``dir`` keyword argument: each
Check appends its pid to ``<dir>/<Job>.runs`` (one line per execution).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import dojob


def record(folder: str, name: str, suffix: str = "runs") -> None:
    with open(os.path.join(folder, f"{name}.{suffix}"), "a") as f:
        f.write(f"{os.getpid()}\n")


def lines(folder: str, name: str, suffix: str = "runs") -> list[int]:
    """The pids recorded by ``name`` (one per execution), [] if none."""
    path = os.path.join(folder, f"{name}.{suffix}")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(line) for line in f.read().split()]


def wait_for(folder: str, names: tuple[str, ...], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not all(lines(folder, name) for name in names):
        if time.monotonic() > end:
            raise TimeoutError(f"not all of {names} started within {timeout}s")
        time.sleep(0.01)


def meeting_check(self, *args, dir: str, **kwargs):
    """Record this execution, wait until every job of ``GROUP`` runs its Check, then do ``ACTION``."""
    cls = type(self)
    record(dir, cls.__name__)
    wait_for(dir, cls.GROUP)
    action = cls.ACTION
    if action == "kill":  # SIGKILL the worker that runs VICTIM's Check, mid-try
        os.kill(lines(dir, cls.VICTIM)[-1], signal.SIGKILL)
        time.sleep(cls.LINGER)
    elif action == "wait":
        time.sleep(cls.LINGER)
    elif action == "die":
        os._exit(3)
    elif action == "die-once":  # the first execution kills its worker, the next one passes
        if len(lines(dir, cls.__name__)) == 1:
            os._exit(3)
    elif action == "hang":  # until the test releases it (at most a minute)
        end = time.monotonic() + 60
        while not os.path.exists(os.path.join(dir, "release")) and time.monotonic() < end:
            time.sleep(0.05)
    elif action in ("KeyboardInterrupt", "SystemExit"):
        self.dir = dir  # for the Cleanup, which runs on this very instance
        raise KeyboardInterrupt if action == "KeyboardInterrupt" else SystemExit(3)
    return os.getpid()


def noop(self, *args, **kwargs):
    return None


def note_cleanup(self):
    """A Cleanup that records which process ran it."""
    record(self.dir, type(self).__name__, "cleanup")


def job(name: str, action: str | None = None, *, group: tuple[str, ...] = (), **attrs) -> type:
    """A job class whose Check is :func:`meeting_check` (made with ``type()``: it travels by value)."""
    body = {"Check": meeting_check, "Run": noop, "GROUP": group, "ACTION": action, "TRIES": 1, "LINGER": 0}
    body.update(attrs)
    return type(name, (dojob.Job,), body)


class Where(dojob.Job):
    """A module-level class: its Check says whether the worker imported it (by reference)."""

    def Check(self, *args, **kwargs):
        module = sys.modules.get(type(self).__module__)
        return getattr(module, type(self).__qualname__, None) is type(self)

    def Run(self, *args, **kwargs):
        return None


CLI_JOBS = """
import os

import dojob
import neighbour

HERE = os.path.dirname(os.path.abspath(__file__))


class Leaf(dojob.Job):
    def Check(self, *args, **kwargs):
        if not os.path.exists(os.path.join(HERE, "leaf")):
            raise LookupError("leaf not made yet")
        return neighbour.where(type(self))

    def Run(self, *args, **kwargs):
        neighbour.make(os.path.join(HERE, "leaf"))


class Root(dojob.Job):
    DEPS = (Leaf,)

    def Check(self, *args, **kwargs):
        return neighbour.where(type(self))

    def Run(self, *args, **kwargs):
        pass
"""

NEIGHBOUR = """
import os
import sys


def make(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))


def where(cls):
    return f"{os.getpid()} {cls.__module__ in sys.modules}"
"""


def cli_target(folder) -> str:
    (folder / "jobs.py").write_text(textwrap.dedent(CLI_JOBS))
    (folder / "neighbour.py").write_text(textwrap.dedent(NEIGHBOUR))
    return str(folder / "jobs.py")


def run_cli(*argv: str, start_method: str | None = None, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``dojob ARGV`` in a fresh interpreter (with multiprocessing's default start method set first)."""
    prelude = f"import multiprocessing; multiprocessing.set_start_method({start_method!r}); " if start_method else ""
    code = prelude + "import sys; from dojob.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, timeout=timeout)


HANG = """
import os
import time

import dojob

HERE = os.path.dirname(os.path.abspath(__file__))


class Hang(dojob.Job):
    def Check(self, *args, **kwargs):
        with open(os.path.join(HERE, "pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)

    def Run(self, *args, **kwargs):
        pass
"""
