"""Phases for the remote-executor tests: importable by name, so these functions travel by reference.

Tests build job classes with ``type()`` from these functions; the classes set
what a phase does (``GROUP``, ``ACTION``, ``VICTIM``...). Processes coordinate
through files in the folder passed as the run's ``dir`` keyword argument: each
Check appends its pid to ``<dir>/<Job>.runs`` (one line per execution).
"""

from __future__ import annotations

import os
import signal
import sys
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
