"""Shared helpers for the dojob test-suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import dojob

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def _history_never_in_the_real_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dojob run`` records its history by default: here, in a temporary state folder of each test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.delenv("DOJOB_HISTORY", raising=False)


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def phases(self) -> list[str]:
        """``"Job.phase:pass|fail"`` for every ended phase, in order."""
        return [
            f"{e.job}.{e.phase.value}:{'pass' if e.ok else 'fail'}"
            for e in self.events
            if isinstance(e, dojob.events.PhaseEnded)
        ]

    def try_starts(self) -> list[tuple[str, int]]:
        return [(e.job, e.try_number) for e in self.of(dojob.events.TryStarted)]


def make_job(
    name: str,
    deps: Iterable[type] = (),
    *,
    check: Callable[..., Any] | None = None,
    run: Callable[..., Any] | None = None,
    base: type = dojob.Job,
    **attrs: Any,
) -> type:
    """A Job class called ``name``; Check passes and Run does nothing unless given."""
    body: dict[str, Any] = {"DEPS": list(deps)}
    if base is not dojob.DummyJob:
        if base is not dojob.RunonlyJob:
            body["Check"] = check or (lambda self, *a, **k: None)
        body["Run"] = run or (lambda self, *a, **k: None)
    body.update(attrs)
    return type(name, (base,), body)


def flaky(name: str, passes_on: int | None, deps: Iterable[type] = (), log: list | None = None, **attrs: Any) -> type:
    """A job whose Check passes from its ``passes_on``-th call on (never if None); calls are logged."""

    def check(self: Any, *a: Any, **k: Any) -> str:
        calls = self.global_storage.setdefault(("calls", name), [])
        calls.append(self._check_phase)
        if log is not None:
            log.append((name, self._check_phase))
        if passes_on is None or len(calls) < passes_on:
            raise RuntimeError(f"{name} not ready ({len(calls)})")
        return f"{name}-result"

    return make_job(name, deps, check=check, **attrs)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# -- hypothesis profiles (issue 6) -------------------------------------------------------
# "dev" (the default) explores more; "ci" (loaded when CI is set) is sized so that the
# property, fault, stress and hostile suites together stay well under two minutes.
# HYPOTHESIS_PROFILE=name picks one explicitly.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "dev",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(  # HYPOTHESIS_PROFILE=thorough, before a release: ~5 minutes
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))
