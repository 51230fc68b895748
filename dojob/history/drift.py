"""Drift and flapping: what a run's statuses say when set against the runs before it.

Pure functions over job names and status strings, so both backends (and the
tests) share them. A run's jobs are matched with an older run's by name: jobs
added or removed since simply have no past.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["drifted", "drifted_since", "flapping", "needs_run"]

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


#: Statuses that say nothing of a job's state: it was not looked at in that run.
_UNSEEN = frozenset({"skipped"})


def drifted_since(
    names: Sequence[str],
    statuses: Sequence[str],
    kind: str,
    bases: Iterable[tuple[Sequence[str], Sequence[str], int, str]],
) -> tuple[list[str], int | None, str | None]:
    """Jobs that need their Run now and ended converged in the last converged run that *had* them.

    ``bases`` are the earlier converged runs, newest first, as ``(names, statuses, id,
    started)``; it is read only as far as needed. A run that skipped a job
    (``--skip``) or left it out (a subset: ``--only``, ``--tags``, what only skipped
    jobs need) says nothing of it: its base is an older run. Returns the drifted
    jobs in order, and the id and start of the oldest base used (each of them
    was converged then or later, and drifted since).
    """
    open_ = {names[i]: i for i, s in enumerate(statuses) if needs_run(s, kind)}
    if not open_:
        return [], None, None
    found: set[str] = set()
    base_id: int | None = None
    since: str | None = None
    for base_names, base_statuses, run_id, started in bases:
        if base_names is names or list(base_names) == list(names):
            seen: dict[str, str | None] = {n: base_statuses[i] for n, i in open_.items()}
        else:
            old = dict(zip(base_names, base_statuses, strict=True))
            seen = {n: old.get(n) for n in open_}
        for name, status in seen.items():
            if status is None or status in _UNSEEN:
                continue  # not in that run: an older one may say
            del open_[name]
            if status in _CONVERGED:
                found.add(name)
                base_id, since = run_id, started
        if not open_:
            break
    order = [n for n in names if n in found]
    return order, (base_id if order else None), (since if order else None)


def flapping(
    names: Sequence[str], statuses: Sequence[str], previous: Iterable[tuple[Sequence[str], Sequence[str]]], window: int
) -> list[str]:
    """Jobs that changed now and in each of the ``window - 1`` runs before that had them (newest first in ``previous``).

    A run that skipped a job or left it out is passed over for that job; with
    fewer earlier runs than that, nobody is flagged yet.
    """
    need = {n: window - 1 for n, s in zip(names, statuses, strict=True) if s == "changed"}
    flagged: set[str] = set()
    for old_names, old_statuses in previous:
        if not need:
            break
        old = dict(zip(old_names, old_statuses, strict=True))
        for name in list(need):
            status = old.get(name)
            if status is None or status in _UNSEEN:
                continue
            if status != "changed":
                del need[name]
            else:
                need[name] -= 1
                if not need[name]:
                    del need[name]
                    flagged.add(name)
    return [n for n in names if n in flagged]
