"""The measured cases of ``benchmarks/run.py``, one per fresh child process.

Each case builds its workload, runs it once (a first run: graph build
included, no memo, no frozen heap from an earlier run) and returns what it
measured as a dict of plain numbers. The harness starts a new interpreter for
every figure, so a case imports only what it measures.

``classes`` is the time to create the job classes (or task objects) alone:
reported as the baseline, not counted in the run.
"""

from __future__ import annotations

import contextlib
import gc
import graphlib
import io
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import layered

WIDTH = 20


def _check(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _run(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


CPU_BODY = {"Check": _check, "Run": _run}


def _io_check(self: Any, *args: Any, **kwargs: Any) -> None:
    if not self.global_storage.get(type(self).__name__):
        raise LookupError("not yet")


def _io_run(self: Any, *args: Any, **kwargs: Any) -> None:
    time.sleep(0.02)
    self.global_storage[type(self).__name__] = True


IO_BODY = {"Check": _io_check, "Run": _io_run, "RETRY_DELAY": 0}


def floor(root: type) -> None:
    """The introspecting floor: walk DEPS from the root, stdlib topological order, instantiate, Check."""
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


def _import_dojobber() -> Any:
    """DoJobber 0.6.3 warns at import (no dot, no display): keep it quiet."""
    warnings.filterwarnings("ignore")
    with contextlib.redirect_stderr(io.StringIO()):
        import dojobber
    return dojobber


def _cpu_runner(api: str) -> tuple[type, Callable[[type], None]]:
    """The Job base class of ``api`` and the call that converges a root with it."""
    if api == "dojobber":
        dojobber = _import_dojobber()

        def converge(root: type) -> None:
            d = dojobber.DoJobber()
            d.configure(root, default_retry_delay=0)
            d.checknrun()
            assert d.success()

        return dojobber.Job, converge
    import dojob

    # resolved before any timing: ``import dojob`` loads the engine on first use, and import time is measured apart
    run, DoJobber = dojob.run, dojob.DoJobber
    if api == "run":

        def converge(root: type) -> None:
            assert run(root).success

    elif api == "api":

        def converge(root: type) -> None:
            d = DoJobber()
            d.configure(root)
            d.checknrun()
            assert d.success()

    elif api == "floor":
        return dojob.Job, floor
    else:
        raise SystemExit(f"unknown api {api!r}")
    return dojob.Job, converge


def cpu(api: str, n: int, warm: bool = False) -> dict[str, float]:
    """Converge the layered graph of ``n`` passing jobs with ``api`` (run, api, dojobber, floor)."""
    base, converge = _cpu_runner(api)
    t0 = time.perf_counter()
    root, _ = layered(n, base, WIDTH, body=CPU_BODY)
    t1 = time.perf_counter()
    converge(root)
    t2 = time.perf_counter()
    out = {"classes": t1 - t0, "first": t2 - t1}
    if warm:
        gc.collect()
        t3 = time.perf_counter()
        converge(root)
        out["warm"] = time.perf_counter() - t3
    return out


def memory(api: str, n: int) -> dict[str, float]:
    """Peak bytes (tracemalloc) of the first run above what exists once the classes are built."""
    base, converge = _cpu_runner(api)
    tracemalloc.start()
    root, _ = layered(n, base, WIDTH, body=CPU_BODY)
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    converge(root)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"classes": baseline, "peak": peak - baseline}


def io_threads(n: int, workers: int) -> dict[str, float]:
    """``n`` jobs in layers of 20 whose Check fails until their Run (20 ms) ran, on ``workers`` threads."""
    import dojob

    run, changed = dojob.run, dojob.Status.CHANGED  # the engine loaded before the timing
    t0 = time.perf_counter()
    root, _ = layered(n, dojob.Job, WIDTH, body=IO_BODY, root_base=dojob.DummyJob)
    t1 = time.perf_counter()
    report = run(root, workers=workers)
    t2 = time.perf_counter()
    assert report.success and report["J0"].status is changed
    return {"classes": t1 - t0, "first": t2 - t1, "critical": -(-n // WIDTH) * 0.02}


async def _trivial() -> None:
    return None


def aio(lib: str, n: int) -> dict[str, float]:
    """``n`` trivial coroutine jobs (layered, two requirements each): Jobs, Scheduler and run() timed."""
    if lib == "asynciojobs":
        import asynciojobs as module
    else:
        import dojob.aio as module
    t0 = time.perf_counter()
    below: list[Any] = []
    layer: list[Any] = []
    jobs = []
    for i in range(n):
        k = i % WIDTH
        if k == 0 and i:
            below, layer = layer, []
        required = (below[k], below[(k + 1) % len(below)]) if below else None
        job = module.Job(_trivial(), required=required, critical=False)
        layer.append(job)
        jobs.append(job)
    scheduler = module.Scheduler(*jobs, critical=False)
    ok = scheduler.run()
    t1 = time.perf_counter()
    assert ok is True, ok
    return {"first": t1 - t0}


def _deps(i: int) -> tuple[int, ...]:
    layer, pos = divmod(i, WIDTH)
    if not layer:
        return ()
    start = (layer - 1) * WIDTH
    return (start + pos, start + (pos + 1) % WIDTH)


def luigi_case(n: int) -> dict[str, float]:
    """Luigi's local scheduler on the converged graph: every task's ``complete()`` is True.

    ``luigi.build`` is handed every task, so that it checks each one (given the
    root alone, a complete root hides the rest of the graph).
    """
    import logging

    import luigi

    logging.getLogger("luigi-interface").setLevel(logging.ERROR)
    logging.getLogger("luigi").setLevel(logging.ERROR)

    class Layered(luigi.Task):
        i = luigi.IntParameter()

        def requires(self) -> list[Any]:
            return [Layered(i=d) for d in _deps(self.i)]

        def complete(self) -> bool:
            return True

        def run(self) -> None:
            return None

    t0 = time.perf_counter()
    tasks = [Layered(i=i) for i in range(n)]
    t1 = time.perf_counter()
    ok = luigi.build(tasks, local_scheduler=True, workers=1, log_level="ERROR")
    t2 = time.perf_counter()
    assert ok, "luigi.build failed"
    return {"classes": t1 - t0, "first": t2 - t1}


def _doit_loader(n: int, executed: list[int]) -> Any:
    from doit.cmd_base import ModuleTaskLoader

    def check() -> bool:
        return True

    def action() -> None:
        executed.append(1)

    def task_layered() -> Any:
        for i in range(n):
            yield {
                "basename": f"J{i}",
                "actions": [action],
                "task_dep": [f"J{d}" for d in _deps(i)],
                "uptodate": [check],
                "verbosity": 0,
            }

    return ModuleTaskLoader({"task_layered": task_layered, "DOIT_CONFIG": {"verbosity": 0}})


def doit_case(n: int, db: str) -> dict[str, float]:
    """doit on the converged graph: every ``uptodate`` check is True (its state file ``db`` exists already).

    The ``executed-only`` reporter: quiet when nothing runs, as ``dojob.run`` is.
    """
    from doit.doit_cmd import DoitMain

    executed: list[int] = []
    t0 = time.perf_counter()
    code = DoitMain(_doit_loader(n, executed)).run(["--db-file", db, "--reporter", "executed-only"])
    t1 = time.perf_counter()
    assert code == 0, f"doit exit status {code}"
    return {"first": t1 - t0, "executed": len(executed)}


def doit_prepare(n: int, db: str) -> dict[str, float]:
    """Run doit once so that the measured runs find every task up to date."""
    return doit_case(n, db)


IMPORT_SNIPPET = """\
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import {module}
t1, c1 = time.perf_counter(), time.process_time()
after_import = set(sys.modules)
{module}.{attribute}
t2, c2 = time.perf_counter(), time.process_time()
after_use = set(sys.modules)
import json
heavy = ("networkx", "rich", "graphviz", "cloudpickle", "distributed", "asyncio", "concurrent.futures", "logging")
out = {{"first": t1 - t0, "with": t2 - t0, "cpu": c1 - c0, "cpu_with": c2 - c0}}
out.update({{"modules": len(after_import), "modules_with": len(after_use)}})
out.update({{"has:" + m: m in after_import for m in heavy}})
out.update({{"with:" + m: m in after_use for m in heavy}})
print(json.dumps(out))
"""


def import_snippet(module: str, attribute: str) -> str:
    """Code for ``python -c`` timing ``import module`` in a bare interpreter, then until ``module.attribute`` is loaded.

    ``modules`` and ``has:`` describe what the statement loaded; ``modules_with`` and ``with:`` what it took
    for ``attribute``.
    """
    return IMPORT_SNIPPET.format(module=module, attribute=attribute)


CASES: dict[str, Callable[..., dict[str, float]]] = {
    "cpu": cpu,
    "memory": memory,
    "io": io_threads,
    "aio": aio,
    "luigi": luigi_case,
    "doit": doit_case,
    "doit-prepare": doit_prepare,
}


def one_job_file(directory: str) -> str:
    """Write a file with one passing job; return the ``dojob run`` target."""
    path = os.path.join(directory, "onejob.py")
    with open(path, "w") as fh:
        fh.write(
            "import dojob\n\n\n"
            "class Hello(dojob.Job):\n"
            "    def Check(self, *args, **kwargs):\n"
            "        return None\n\n"
            "    def Run(self, *args, **kwargs):\n"
            "        return None\n"
        )
    return f"{path}:Hello"


def temp_dir() -> str:
    return tempfile.mkdtemp(prefix="dojob-bench-")
