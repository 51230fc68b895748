"""Core engine benchmark: dojob vs DoJobber 0.6.3 vs a stdlib graphlib floor, side by side.

Workloads (issue 2):

* CPU: a layered graph (width 20, each job needs two jobs of the layer below,
  every Check passes); dojob at 4 000 / 10 000 / 100 000 jobs, DoJobber at
  4 000 (it is quadratic), the floor (graphlib order, instantiate, Check) at all.
* I/O: 200 jobs in layers of 20, each Check fails until its Run (a 20 ms
  sleep) has run; dojob with workers=20 against the critical path (10 layers x
  20 ms) and DoJobber (serial).
* Memory: tracemalloc peak while converging 100 000 jobs, dojob vs the floor.

Prints every figure and the ratios against the targets; exits 1 if one is missed.
Run: ``python benchmarks/bench_core.py`` (``--quick`` for smaller sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import best_time, graphlib_floor, layered, peak_memory, verdict

import dojob


def _check(self, *args, **kwargs):
    return None


def _run(self, *args, **kwargs):
    return None


CPU_BODY = {"Check": _check, "Run": _run}


def _io_check(self, *args, **kwargs):
    if not self.global_storage.get(type(self).__name__):
        raise LookupError("not yet")


def _io_run(self, *args, **kwargs):
    time.sleep(0.02)
    self.global_storage[type(self).__name__] = True


IO_BODY = {"Check": _io_check, "Run": _io_run, "RETRY_DELAY": 0}


def import_dojobber():
    """DoJobber 0.6.3 prints warnings at import (no dot, no display); keep them quiet."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with contextlib.redirect_stderr(io.StringIO()):
        import dojobber
    return dojobber


def dojobber_run(dojobber, root) -> None:
    d = dojobber.DoJobber()
    d.configure(root, default_retry_delay=0)
    d.checknrun()
    assert d.success()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test, no targets)")
    opts = parser.parse_args(argv)
    dojobber = import_dojobber()
    small, mid, big = (1000, 2000, 20000) if opts.quick else (4000, 10000, 100000)
    results: list[tuple[str, bool]] = []

    def target(name: str, ok: bool, text: str) -> None:
        results.append((name, ok))
        print(f"  {verdict(ok):6} {name}: {text}")

    print(f"dojob {dojob.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    print("\nCPU-bound layered graph (width 20, two deps per job, every Check passes)")
    print(f"{'jobs':>8} {'dojob':>10} {'floor':>10} {'DoJobber':>10} {'dojob/floor':>12} {'DoJobber/dojob':>15}")
    times: dict[int, float] = {}
    for n in (small, mid, big):
        root, _ = layered(n, dojob.Job, body=CPU_BODY)
        assert dojob.run(root).success
        repeat = 7 if n <= 10000 else 3
        t_dojob = times[n] = best_time(lambda root=root: dojob.run(root), repeat)
        t_floor = best_time(lambda root=root: graphlib_floor(root), repeat)
        t_dj = None
        if n == small:
            dj_root, _ = layered(n, dojobber.Job, body=CPU_BODY)
            t_dj = best_time(lambda dj_root=dj_root: dojobber_run(dojobber, dj_root), 1)
        dj_text = f"{t_dj:10.3f}" if t_dj else f"{'-':>10}"
        speedup = f"{t_dj / t_dojob:14.0f}x" if t_dj else f"{'-':>15}"
        print(f"{n:8} {t_dojob:10.4f} {t_floor:10.4f} {dj_text} {t_dojob / t_floor:11.2f}x {speedup}")
        if n == small:
            target(f"{n} jobs: >= 200x faster than DoJobber", t_dj / t_dojob >= 200, f"{t_dj / t_dojob:.0f}x")
        if n == big:
            target(f"{n} jobs: <= 3x the graphlib floor", t_dojob / t_floor <= 3, f"{t_dojob / t_floor:.2f}x")
    scale = times[big] / times[mid]
    target(f"time({big})/time({mid}) <= 11", scale <= 11, f"{scale:.2f}")

    print("\nI/O-bound: 200 jobs in layers of 20, each Run sleeps 20 ms")
    root, _ = layered(200, dojob.Job, body=IO_BODY, root_base=dojob.DummyJob)  # 200 sleepers + a root
    critical_path = 10 * 0.02  # 10 layers of 20 ms
    report = dojob.run(root, workers=20)
    assert report.success and report["J0"].status is dojob.Status.CHANGED
    t_io = best_time(lambda: dojob.run(root, workers=20), 5)
    dj_root, _ = layered(200, dojobber.Job, body=IO_BODY, root_base=dojobber.DummyJob)
    t_dj_io = best_time(lambda: dojobber_run(dojobber, dj_root), 1)
    print(f"  dojob workers=20: {t_io:.3f}s  critical path: {critical_path:.3f}s  DoJobber (serial): {t_dj_io:.3f}s")
    target("I/O wall time <= 1.15x the critical path", t_io <= 1.15 * critical_path, f"{t_io / critical_path:.3f}x")

    print(f"\nPeak memory converging {big} jobs (tracemalloc)")
    root, _ = layered(big, dojob.Job, body=CPU_BODY)
    m_dojob = peak_memory(lambda: dojob.run(root))
    m_floor = peak_memory(lambda: graphlib_floor(root))
    print(f"  dojob {m_dojob / 2**20:.1f} MiB   floor {m_floor / 2**20:.1f} MiB")
    target("peak memory <= 2x the floor", m_dojob <= 2 * m_floor, f"{m_dojob / m_floor:.2f}x")

    missed = [name for name, ok in results if not ok]
    summary = f"{len(results) - len(missed)}/{len(results)} targets met"
    print("\n" + summary + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed and not opts.quick else 0


if __name__ == "__main__":
    sys.exit(main())
