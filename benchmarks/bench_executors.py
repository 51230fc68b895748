"""Executors benchmark: CPU-bound jobs on a process pool, and per-try overhead (issue 4).

* CPU: 40 independent jobs, each Check burns ~50 ms of pure-Python CPU; serial
  vs ``executor="processes", workers=2``. Target: <= 0.6x the serial time.
* Overhead: 200 trivial independent jobs with 2 workers on the built-in
  threads, dojob's process pool (``executor="processes"``: one process per
  slot, so a worker's death costs only its own try) under fork and spawn, the
  standard library's ``ProcessPoolExecutor`` (shared queue: one death fails
  every try in flight) for comparison, and a Dask LocalCluster (2 worker
  processes), as time per try, side by side. Pools are started by each run
  (they are part of what a run costs), except the standard pool and Dask,
  which are warmed once.

Run: ``python benchmarks/bench_executors.py`` (Dask figures need ``pip install 'dojob[dask]'``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import best_time, verdict

import dojob


def burn(seconds: float) -> int:
    """Spin pure-Python arithmetic for about ``seconds`` of CPU."""
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        for i in range(1000):
            n += i * i
    return n


def cpu_graph(jobs: int = 40, seconds: float = 0.05) -> type:
    def check(self, *args, **kwargs):
        return burn(seconds)

    def run(self, *args, **kwargs):
        return None

    deps = tuple(type(f"Cpu{i}", (dojob.Job,), {"Check": check, "Run": run}) for i in range(jobs))
    return type("CpuRoot", (dojob.DummyJob,), {"DEPS": deps})


def trivial_graph(jobs: int = 200) -> type:
    def check(self, *args, **kwargs):
        return None

    deps = tuple(type(f"T{i}", (dojob.Job,), {"Check": check, "Run": check}) for i in range(jobs))
    return type("TrivialRoot", (dojob.DummyJob,), {"DEPS": deps})


def main() -> int:
    print(f"dojob {dojob.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    root = cpu_graph()
    serial = best_time(lambda: dojob.run(root), 2)
    pooled = best_time(lambda: dojob.run(root, executor="processes", workers=2), 3)
    ratio = pooled / serial
    print("\n40 CPU-bound jobs (~50 ms each)")
    print(f"  serial {serial:.3f}s   2 processes {pooled:.3f}s   ratio {ratio:.2f}x")
    ok = ratio <= 0.6
    print(f"  {verdict(ok):6} 2-process pool <= 0.6x serial: {ratio:.2f}x")

    root = trivial_graph()
    n = 201
    rows = [("threads (built-in)", best_time(lambda: dojob.run(root, workers=2), 5))]
    rows.append(("processes (fork)", best_time(lambda: dojob.run(root, executor="processes:fork", workers=2), 3)))
    rows.append(("processes (spawn)", best_time(lambda: dojob.run(root, executor="processes:spawn", workers=2), 3)))
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        dojob.run(root, executor=pool, workers=2)  # warm the workers
        rows.append(("stdlib pool (fork)", best_time(lambda: dojob.run(root, executor=pool, workers=2), 3)))
    try:
        import distributed
    except ImportError:
        print("  (dask not installed: pip install 'dojob[dask]')")
    else:
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            dojob.run(root, executor=client, workers=2)  # warm the workers
            rows.append(("dask LocalCluster", best_time(lambda: dojob.run(root, executor=client, workers=2), 3)))
    print("\nPer-try overhead, 200 trivial jobs, 2 workers")
    base = rows[0][1]
    for name, seconds in rows:
        print(f"  {name:20} {seconds:7.3f}s  {seconds / n * 1e3:7.3f} ms/try  {seconds / base:7.1f}x threads")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
