"""``Job.bind`` against ``type()``: a fan-out of 10 000 parameterised jobs, made, built and converged.

Each measurement runs in a fresh interpreter (what a CLI run is): it makes the
10 000 jobs (``SendInvite.bind(NAME=..., EMAIL=...)``, or one ``type()`` class
per friend as DoJobber scripts do), puts them in the DEPS of a root, and
converges the graph with ``dojob.run`` (serial). Two scenarios: *first run*
(each Check fails until its Run recorded the invitation: check, run, recheck)
and *converged* (every Check passes, as on every later run). The figure is the
best of ``--repeat`` fresh runs of each, and the target is the issue's: bind at
least 3x faster. The parts are timed apart too, each in its own fresh
interpreter: making the jobs, building the graph (``build_graph``), and
``dojob.run`` (which builds it again, then converges). And the same jobs are
converged with no engine at all (walk ``DEPS``, topological order, instantiate,
Check, Run and recheck where the Check fails): the ratio there is the most an
engine that checks every job could reach. As in
``benchmarks/run.py``, the engine is imported before the clock starts
(``import dojob`` loads it on first use; its cost is the same for both kinds
and is measured apart).

Run: ``python benchmarks/bench_bind.py`` (``--jobs N``, ``--repeat R``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

#: The measured part, run by ``--one KIND`` in a fresh interpreter; prints seconds.
CHILD = """
import graphlib
import time
import dojob
from dojob.graph import build_graph

run = dojob.run  # the engine, imported before any timing


class SendInvite(dojob.Job):
    NAME = None
    EMAIL = None

    def Check(self, *args, **kwargs):
        if self.global_storage.get(self.NAME) != self.EMAIL:
            raise LookupError(self.NAME)

    def Run(self, *args, **kwargs):
        self.global_storage[self.NAME] = self.EMAIL


def floor(root, store):
    # no engine: walk DEPS, topological order, then per job instantiate, Check (and Run, recheck)
    sorter = graphlib.TopologicalSorter()
    stack, seen = [root], set()
    while stack:
        job = stack.pop()
        if job not in seen:
            seen.add(job)
            sorter.add(job, *job.DEPS)
            stack.extend(job.DEPS)
    for job in sorter.static_order():
        obj = job()
        obj.global_storage = store
        try:
            obj.Check()
        except LookupError:
            obj.Run()
            obj.Check()


def main(kind, n, converged, build, bare=False):
    friends = [(f"Friend {i}", f"friend{i}@example.com") for i in range(n)]
    t0 = time.perf_counter()
    if kind == "bind":
        jobs = [SendInvite.bind(NAME=name, EMAIL=email) for name, email in friends]
    else:
        jobs = [type(f"Invite{i}", (SendInvite,), {"NAME": name, "EMAIL": email})
                for i, (name, email) in enumerate(friends)]
    made = time.perf_counter()
    root = type("InviteFriends", (dojob.DummyJob,), {"DEPS": tuple(jobs)})
    if bare:  # no engine at all
        floor(root, dict(friends) if converged else {})
    elif build:  # the graph build alone
        assert len(build_graph(root)) == n + 1
    else:
        report = run(root, global_storage=dict(friends) if converged else None)
        assert report.success and len(report) == n + 1
    print(made - t0, time.perf_counter() - made)
"""


def measure(kind: str, n: int, converged: bool, build: bool = False, bare: bool = False) -> tuple[float, float]:
    """(making the jobs, building and converging) in seconds, in a fresh interpreter.

    ``build``: building only; ``bare``: converging without the engine (the floor).
    """
    code = CHILD + f"\nmain({kind!r}, {n}, {converged}, {build}, {bare})\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    make, run = map(float, out.stdout.split())
    return make, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    opts = parser.parse_args(argv)
    import dojob

    print(f"dojob {dojob.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{opts.jobs} parameterised jobs in one fan-out, made + built + converged; best of {opts.repeat} fresh runs")
    missed = []
    last_builds: dict[str, float] = {}
    for converged in (False, True):
        print("converged (every Check passes):" if converged else "first run (check, run, recheck):")
        best: dict[str, tuple[float, float, float]] = {}
        bare: dict[str, float] = {}
        builds: dict[str, float] = {}
        for _ in range(opts.repeat):
            for kind in ("type", "bind"):  # interleaved, so that a load spike hits both
                make, run = measure(kind, opts.jobs, converged)
                if kind not in best or make + run < best[kind][0]:
                    best[kind] = (make + run, make, run)
                make, run = measure(kind, opts.jobs, converged, bare=True)
                bare[kind] = min(bare.get(kind, float("inf")), make + run)
                if not converged:  # (the build does not depend on the scenario)
                    builds[kind] = min(builds.get(kind, float("inf")), measure(kind, opts.jobs, False, True)[1])
        if builds:
            last_builds = builds
        for kind, label in (("type", "type() classes"), ("bind", "Job.bind")):
            total, make, run = best[kind]
            print(f"  {label:15} {total * 1000:7.1f} ms   (making the jobs {make * 1000:6.1f} ms, "
                  f"dojob.run {run * 1000:6.1f} ms; build_graph alone {last_builds[kind] * 1000:5.1f} ms)")  # fmt: skip
        ratio = best["type"][0] / best["bind"][0]
        making = best["type"][1] / best["bind"][1]
        running = best["type"][2] / best["bind"][2]
        building = last_builds["type"] / last_builds["bind"]
        print(f"  {'ok' if ratio >= 3 else 'MISSED':6} bind >= 3x faster than type(): {ratio:.2f}x"
              f" (making the jobs {making:.1f}x, dojob.run {running:.2f}x, build_graph {building:.2f}x)")  # fmt: skip
        floor = bare["type"] / bare["bind"]
        print(f"  no engine at all (walk DEPS, topological order, instantiate, Check/Run): type() "
              f"{bare['type'] * 1000:.1f} ms, Job.bind {bare['bind'] * 1000:.1f} ms: {floor:.2f}x, "
              "the most any engine that checks every job could reach")  # fmt: skip
        if ratio < 3:
            missed.append("converged" if converged else "first run")
    ok = not missed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
