"""dojob.aio versus asynciojobs 0.21.3, side by side, on layered graphs.

Two graphs, each built identically for both libraries (layers of ``width``
jobs; every job past the first layer requires two jobs of the layer below):

* ``trivial``: 10 000 jobs whose coroutine returns at once, to measure the
  scheduling overhead. Target: dojob.aio at least 2x faster than asynciojobs.
* ``sleeping``: 200 jobs sleeping 20 ms each (10 layers, so the critical path
  is 10 x 20 ms = 200 ms). Target: wall time at most 1.15x the critical path.

Each case runs ``--repeat`` times per library (alternating), after a
collection of garbage; the best time counts. Job objects are built outside
the timing; ``scheduler.run()`` (event loop set-up included) is timed.

Usage::

    python benchmarks/bench_aio.py            # best of 5; exit status 1 if a target is missed
    python benchmarks/bench_aio.py --quick    # best of 2, same sizes (the targets are defined at these sizes)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import asynciojobs

import dojob.aio

SPEEDUP_TARGET = 2.0
CRITICAL_PATH_TARGET = 1.15


def build(aio: Any, n: int, width: int, make: Callable[[], Any]) -> Any:
    """A non-critical scheduler of ``n`` jobs in layers of ``width``.

    Job k of layer l requires jobs k and k+1 (modulo ``width``) of layer l-1.
    """
    below: list[Any] = []
    layer: list[Any] = []
    jobs = []
    for i in range(n):
        k = i % width
        if k == 0 and i:
            below, layer = layer, []
        required = (below[k], below[(k + 1) % len(below)]) if below else None
        job = aio.Job(make(), required=required, critical=False)
        layer.append(job)
        jobs.append(job)
    return aio.Scheduler(*jobs, critical=False)


async def trivial() -> None:
    return None


def sleeper(seconds: float) -> Callable[[], Any]:
    def make() -> Any:
        return asyncio.sleep(seconds)

    return make


def timed_run(aio: Any, n: int, width: int, make: Callable[[], Any]) -> float:
    scheduler = build(aio, n, width, make)
    gc.collect()
    begin = time.perf_counter()
    ok = scheduler.run()
    elapsed = time.perf_counter() - begin
    if ok is not True:
        raise SystemExit(f"{aio.__name__}: run() returned {ok!r}")
    return elapsed


def best_of(repeat: int, n: int, width: int, make: Callable[[], Any]) -> dict[str, float]:
    times: dict[str, list[float]] = {"dojob.aio": [], "asynciojobs": []}
    for _ in range(repeat):
        for name, module in (("asynciojobs", asynciojobs), ("dojob.aio", dojob.aio)):
            times[name].append(timed_run(module, n, width, make))
    return {name: min(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (best of 2)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per library and case (best counts)")
    options = parser.parse_args(argv)
    quick = options.quick
    repeat = options.repeat or (2 if quick else 5)
    width = 20
    n_trivial = 10_000
    n_sleeping, nap = 200, 0.02
    critical_path = (n_sleeping // width) * nap
    print(f"asynciojobs {asynciojobs.__version__} vs dojob.aio; Python {sys.version.split()[0]}; best of {repeat}")
    failures = []

    best = best_of(repeat, n_trivial, width, trivial)
    ratio = best["asynciojobs"] / best["dojob.aio"]
    print(f"\n{n_trivial} trivial jobs, width {width}:")
    for name in ("asynciojobs", "dojob.aio"):
        per_job = best[name] / n_trivial * 1e6
        print(f"  {name:12s} {best[name] * 1000:8.1f} ms  ({per_job:.1f} us/job)")
    verdict = "ok" if ratio >= SPEEDUP_TARGET else "MISSED"
    print(f"  dojob.aio is {ratio:.2f}x faster (target >= {SPEEDUP_TARGET}x): {verdict}")
    if ratio < SPEEDUP_TARGET:
        failures.append("speed-up")

    best = best_of(repeat, n_sleeping, width, sleeper(nap))
    path = f"critical path {critical_path * 1000:.0f} ms"
    print(f"\n{n_sleeping} jobs sleeping {nap * 1000:.0f} ms, width {width} ({path}):")
    for name in ("asynciojobs", "dojob.aio"):
        print(f"  {name:12s} {best[name] * 1000:8.1f} ms  ({best[name] / critical_path:.3f}x the critical path)")
    factor = best["dojob.aio"] / critical_path
    verdict = "ok" if factor <= CRITICAL_PATH_TARGET else "MISSED"
    print(f"  dojob.aio wall / critical path = {factor:.3f} (target <= {CRITICAL_PATH_TARGET}): {verdict}")
    if factor > CRITICAL_PATH_TARGET:
        failures.append("critical path")

    if failures:
        print(f"\ntargets missed: {', '.join(failures)}")
        return 1
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
