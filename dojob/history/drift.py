"""Drift and flapping: what a run's statuses say when set against the runs before it.

Pure functions over job names and status strings, so both backends (and the
tests) share them. A run's jobs are matched with an older run's by name: jobs
added or removed since simply have no past.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["drifted", "flapping", "needs_run"]

#: Statuses of a run's job whose Check failed, so that its Run was needed.
_NEEDED_RUN = frozenset({"changed", "failed"})


def needs_run(status: str, kind: str) -> bool:
    """Whether a job that ended in ``status`` needed its Run (a plan: would run)."""
    if kind == "plan":
        return status.startswith("would_run")
    return status in _NEEDED_RUN


#: How a job ended converged: it passed its Check, or its Run made it pass.
_CONVERGED = ("ok", "changed")


def drifted(
    names: Sequence[str], statuses: Sequence[str], kind: str, base_names: Sequence[str], base_statuses: Sequence[str]
) -> list[str]:
    """Jobs that ended converged in the base run (the last converged one: ``ok`` or ``changed``)
    and need their Run now, in order: the world moved away from what that run left."""
    candidates = [i for i, s in enumerate(statuses) if needs_run(s, kind)]
    if not candidates:
        return []
    if list(base_names) == list(names):
        return [names[i] for i in candidates if base_statuses[i] in _CONVERGED]
    was_ok = {n for n, s in zip(base_names, base_statuses, strict=True) if s in _CONVERGED}
    return [names[i] for i in candidates if names[i] in was_ok]


def flapping(
    names: Sequence[str], statuses: Sequence[str], previous: Sequence[tuple[Sequence[str], Sequence[str]]], window: int
) -> list[str]:
    """Jobs that changed now and in each of the ``window - 1`` runs before (newest first in ``previous``).

    Fewer earlier runs than that: nobody is flagged yet.
    """
    if len(previous) < window - 1:
        return []
    changed = [n for n, s in zip(names, statuses, strict=True) if s == "changed"]
    for old_names, old_statuses in previous[: window - 1]:
        if not changed:
            break
        before = {n for n, s in zip(old_names, old_statuses, strict=True) if s == "changed"}
        changed = [n for n in changed if n in before]
    return changed
