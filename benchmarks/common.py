"""Workloads shared by the benchmarks: layered graphs of Job classes, timing and memory helpers."""

from __future__ import annotations

import gc
import graphlib
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def layered(
    n: int, base: type, width: int = 20, *, body: dict[str, Any] | None = None, root_base: type | None = None
) -> tuple[type, list[type]]:
    """``n`` job classes in layers of ``width``; each needs two jobs of the layer below.

    Returns the root (depending on the whole top layer; of class ``root_base``
    without ``body`` if given, else like the others) and the classes.
    """
    layers: list[list[type]] = []
    classes = []
    for i in range(n):
        layer, pos = divmod(i, width)
        deps: tuple[type, ...] = ()
        if layer:
            below = layers[layer - 1]
            deps = (below[pos], below[(pos + 1) % len(below)])
        cls = type(f"J{i}", (base,), {"DEPS": deps, **(body or {})})
        if pos == 0:
            layers.append([])
        layers[layer].append(cls)
        classes.append(cls)
    if root_base is not None:
        root = type("Root", (root_base,), {"DEPS": tuple(layers[-1])})
    else:
        root = type("Root", (base,), {"DEPS": tuple(layers[-1]), **(body or {})})
    return root, classes


def graphlib_floor(root: type) -> None:
    """The floor: stdlib topological order, instantiate each class, call Check."""
    sorter: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    stack, seen = [root], set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        sorter.add(cls, *cls.DEPS)
        stack.extend(cls.DEPS)
    for cls in sorter.static_order():
        cls().Check()


def best_time(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The best wall time of ``repeat`` calls (a full collection before each)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (tracemalloc) while ``fn`` runs, above what existed before."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
