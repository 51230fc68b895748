"""Running part of a graph: ``only`` (glob patterns on names), ``tags``, and ``skip``.

:func:`select` turns a built :class:`~dojob.graph.JobGraph` into the graph of
the selected jobs and everything they need:

* ``only``: jobs whose name matches one of the patterns (``fnmatch`` globs,
  case-sensitive; a pattern equal to a name matches it too, brackets and all,
  so a bound job's exact name works);
* ``tags``: jobs with one of these ``TAGS``; with ``only``, jobs matching either;
* ``skip``: jobs whose name matches are *skipped*: treated as satisfied without
  being checked, and what only they need is left out. This is the operator
  saying "that part is done, do not touch it"; a skipped job is never silent:
  its status is ``skipped`` in the report, the recap names it, the trace
  prints a line for it, ``dojob list`` marks it. A run with skipped jobs and
  nothing failed is a success (``report.success``); the recap says what was
  skipped.

Every pattern or tag that matches no job is an error naming it, raised before
anything runs: a typo must not turn into an empty (successful) run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import SelectionError

if TYPE_CHECKING:  # imported where used: ``import dojob`` binds select() without loading the graph code
    from .graph import JobGraph


def _patterns(option: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for item in out:
        if not isinstance(item, str) or not item:
            raise SelectionError(option, repr(item), "is not a non-empty string")
    return out


def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile(f"(?:{re.escape(pattern)}\\Z)|(?:{fnmatch.translate(pattern)})", re.DOTALL)


def matching(names: list[str], patterns: tuple[str, ...], option: str) -> dict[str, list[int]]:
    """Pattern -> the indices of the names it matches; raise :class:`SelectionError` for one matching none."""
    out: dict[str, list[int]] = {}
    for pattern in patterns:
        match = _matcher(pattern).match
        hits = [i for i, name in enumerate(names) if match(name)]
        if not hits:
            raise SelectionError(option, pattern)
        out[pattern] = hits
    return out


def select(
    graph: JobGraph,
    *,
    only: str | Iterable[str] | None = None,
    tags: str | Iterable[str] | None = None,
    skip: str | Iterable[str] | None = None,
) -> JobGraph:
    """The part of ``graph`` to run: the selected jobs, what they need, and the skipped ones marked.

    Returns ``graph`` itself when nothing is selected or skipped.

    Raises:
        SelectionError: a pattern or tag matches no job.
    """
    only_p = _patterns("only", only)
    tags_p = _patterns("tags", tags)
    skip_p = _patterns("skip", skip)
    if not (only_p or tags_p or skip_p):
        return graph
    names = graph.names
    specs = graph.specs
    n = len(specs)
    targets: set[int] = set()
    for hits in matching(names, only_p, "only").values():
        targets.update(hits)
    for tag in tags_p:
        hits = [s.index for s in specs if tag in s.tags]
        if not hits:
            raise SelectionError("tags", tag, "is the TAGS of no job")
        targets.update(hits)
    if only_p or tags_p:
        roots = [i for i in range(n) if i in targets]
    else:
        root_names = set(graph.roots)
        roots = [i for i in range(n) if names[i] in root_names]
    skipped_by = matching(names, skip_p, "skip")
    skipped = {i for hits in skipped_by.values() for i in hits}
    if only_p or tags_p:  # a skip pattern must name a job of the selection (other skips aside)
        wanted = _needed(graph, roots, set())
        for pattern, hits in skipped_by.items():
            if not any(wanted[i] for i in hits):
                raise SelectionError("skip", pattern, "matches no job of the selection")
    keep = _needed(graph, roots, skipped)
    new_index = [-1] * n
    kept = [i for i in range(n) if keep[i]]
    for j, i in enumerate(kept):
        new_index[i] = j
    new_specs = [specs[i]._replace(index=j) for j, i in enumerate(kept)]
    new_deps = [tuple(new_index[d] for d in graph.deps[i] if keep[d]) for i in kept]
    from .graph import JobGraph  # (already loaded: ``graph`` is one)

    sub = JobGraph(new_specs, new_deps, tuple(names[i] for i in roots))
    sub.skipped = frozenset(new_index[i] for i in skipped if keep[i])
    return sub


def _needed(graph: JobGraph, roots: list[int], skipped: set[int]) -> list[bool]:
    """Which jobs ``roots`` need (themselves included), not looking past skipped jobs."""
    keep = [False] * len(graph.specs)
    stack = list(roots)
    while stack:
        i = stack.pop()
        if keep[i]:
            continue
        keep[i] = True
        if i not in skipped:
            stack.extend(graph.deps[i])
    return keep
