"""Importable jobs for the tests of bind, capacities, retry policies and changed_deps.

They live in a module (not in test functions) so that worker processes import
them by reference, as users' jobs in a package are.
"""

from __future__ import annotations

import importlib
import os
import threading
import time

import dojob


def by_reference(obj: object) -> bool:
    """Whether ``obj``'s class is the very class its module defines (not a copy sent by value)."""
    cls = type(obj)
    return getattr(importlib.import_module(cls.__module__), cls.__name__, None) is cls


class SendInvite(dojob.Job):
    """Invites ``self.NAME`` at ``self.EMAIL``: records where it ran and how its class arrived."""

    def Check(self, *args, **kwargs):
        if self.global_storage.get(f"invited:{self.NAME}") != self.EMAIL:
            raise LookupError(f"{self.NAME} not invited")
        return self.EMAIL

    def Run(self, *args, **kwargs):
        # one key per job: remote tries merge global_storage key by key
        self.global_storage[f"invited:{self.NAME}"] = self.EMAIL
        self.global_storage[f"ref:{self.NAME}"] = (by_reference(self), os.getpid())


class Party(dojob.DummyJob):
    """Depends on the invitations given in DEPS by the test."""

    DEPS: tuple = ()


class Counter:
    """How many tries hold each resource at once, in one process (threads or async)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.claimed_while_used: list[str] = []


COUNTER = Counter()


def hold(job: dojob.Job, seconds: float) -> None:
    """Count ``job``'s resources as held for ``seconds`` (a sync phase)."""
    c = COUNTER
    names = (*job.USES, *job.CLAIMS)
    with c.lock:
        for name in names:
            c.now[name] = c.now.get(name, 0) + 1
            c.peak[name] = max(c.peak.get(name, 0), c.now[name])
    time.sleep(seconds)
    with c.lock:
        for name in names:
            c.now[name] -= 1


class WriteConfig(dojob.Job):
    """The service's config file holds ``--set config=...``."""

    def Check(self, *args, **kwargs):
        if self.global_storage.get("config") != kwargs["config"]:
            raise LookupError("config differs")

    def Run(self, *args, **kwargs):
        self.global_storage["config"] = kwargs["config"]


class InstallPackage(dojob.Job):
    """Always already installed: never changes."""

    def Check(self, *args, **kwargs):
        pass

    def Run(self, *args, **kwargs):
        pass


class RestartService(dojob.Job):
    """Restart the service when its config changed in this run: a Check, not a handler."""

    DEPS = (InstallPackage, WriteConfig)

    def Check(self, *args, **kwargs):
        self.global_storage["changed_seen"] = sorted(d.__name__ for d in self.changed_deps)
        if WriteConfig in self.changed_deps and "WriteConfig" in self.changed_deps and not self.storage.get("done"):
            raise RuntimeError("the config changed: restart needed")

    def Run(self, *args, **kwargs):
        self.global_storage["restarts"] = self.global_storage.get("restarts", 0) + 1
        self.storage["done"] = True
