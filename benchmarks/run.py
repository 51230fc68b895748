"""What users feel: dojob against its peers and its floor, every figure a fresh process, first run.

Each figure is the median of several child processes; each child builds its
workload, converges it once (graph build included) and reports. The cases run
in rounds, interleaved, and a ratio is the median of the ratios measured in
the same round, so that a shared machine's drift hits both sides alike. Creating the
job classes is timed apart, as the baseline. The ratios are computed from one
invocation, side by side, and every target of issue 17 is printed with its
measured value and a verdict (``met``, ``missed``, or ``unmeasured`` when a
peer is not installed: ``pip install 'dojob[bench]'``).

Children run with byte-code caching on (in a private cache directory, warmed
first), as an installed package would; ``PYTHONDONTWRITEBYTECODE`` is dropped
for them.

Usage::

    python benchmarks/run.py               # full sizes, median of 5 processes; exit 1 if a target is missed
    python benchmarks/run.py --quick       # tiny sizes, one process each: a smoke test, verdicts meaningless
    python benchmarks/run.py --repeat 3    # median of 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FULL = {"small": 4_000, "mid": 10_000, "big": 100_000, "peers": 10_000, "aio": 10_000, "io": 200, "mem": 100_000}
#: Rounds with a DoJobber 0.6.3 process (~10 s each at 4 000 jobs): its ratio to dojob's 50 ms run moves
#: by 15-20% from round to round on a shared VM, so every round has one (a median of 3 moved by more than that).
SLOW_ROUNDS = 5
QUICK = {"small": 100, "mid": 200, "big": 2_000, "peers": 200, "aio": 200, "io": 40, "mem": 2_000}


@dataclass
class Target:
    """One target of the issue: a measured value against a bound."""

    key: str
    text: str
    value: float | None
    bound: float
    higher_is_better: bool
    unit: str = "x"
    why: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "unmeasured"
        ok = self.value >= self.bound if self.higher_is_better else self.value <= self.bound
        return "met" if ok else "missed"

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        value = "-" if self.value is None else _fmt(self.value, self.unit)
        tail = f"  ({self.why})" if self.why else ""
        bound = _fmt(self.bound, self.unit)
        return f"  {self.verdict:<10} {self.key:<16} {value:>10}  target {sign} {bound:<8} {self.text}{tail}"


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "":
        return f"{value:.2f}"
    return f"{value:.2f}x" if value < 100 else f"{value:.0f}x"


@dataclass
class Harness:
    """Starts the children, keeps their figures, says what failed."""

    env: dict[str, str]
    log: Callable[[str], None]
    cwd: str  # an empty directory: ``python -c`` puts the working directory first on sys.path
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def child(self, key: str, *args: Any, timeout: float = 600, code: str | None = None) -> None:
        """Run one case (or ``code``) in a fresh interpreter and keep its figures under ``key``."""
        if key in self.errors:
            return
        if code is not None:
            cmd = [sys.executable, "-c", code]
        else:
            cmd = [sys.executable, os.path.join(HERE, "run.py"), "--child", *map(str, args)]
        try:
            proc = subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.errors[key] = f"timed out after {timeout:.0f} s"
            return
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            if "ModuleNotFoundError" in last:
                last = last.split(":", 1)[-1].strip() + " (pip install 'dojob[bench]')"
            self.errors[key] = last
            self.log(f"  ! {key}: {last}")
            return
        self.samples.setdefault(key, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))

    def wall(self, key: str, cmd: list[str]) -> None:
        """Wall time of a whole command, as the user sees it, and its CPU time (a loaded machine inflates the wall)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if proc.returncode != 0:
            self.errors[key] = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return
        self.samples.setdefault(key, []).append({"first": elapsed, "cpu": cpu})

    def paired(self, a: str, b: str, field: str = "first") -> list[float]:
        """``a / b`` for each round that measured both (a ratio within a round resists a drifting machine)."""
        pairs = zip(self.samples.get(a, ()), self.samples.get(b, ()), strict=False)  # DoJobber: fewer rounds
        return [x[field] / y[field] for x, y in pairs if field in x and field in y and y[field]]

    def median(self, key: str, field: str = "first") -> float | None:
        values = [s[field] for s in self.samples.get(key, ()) if field in s]
        return statistics.median(values) if values else None

    def why(self, *keys: str) -> str:
        return "; ".join(f"{k}: {self.errors[k]}" for k in keys if k in self.errors)


def child_env(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def dojob_command() -> list[str]:
    """The ``dojob`` console script of this interpreter, else the one on PATH, else ``python -m dojob``.

    The script beside ``sys.executable`` comes first: the one on PATH may be a version
    manager's shim (pyenv's is a bash script that costs more than Python's own start-up).
    """
    script = os.path.join(os.path.dirname(sys.executable), "dojob")
    if not os.access(script, os.X_OK):
        script = shutil.which("dojob")
    return [script] if script else [sys.executable, "-m", "dojob"]


def measure(h: Harness, sizes: dict[str, int], repeat: int, mem_repeat: int, target_file: str) -> None:
    """Every child, ``repeat`` rounds, interleaved so that a load spike hits all cases alike."""
    from cases import import_snippet

    small, mid, big, peers = sizes["small"], sizes["mid"], sizes["big"], sizes["peers"]
    db = os.path.join(tempfile.mkdtemp(prefix="dojob-bench-doit-"), "doit.db")
    h.child("doit-prepare", "doit-prepare", peers, db)
    rounds: list[tuple[str, tuple[Any, ...]]] = []
    for n in (small, mid, big):
        rounds.append((f"run:{n}", ("cpu", "run", n, "warm")))
        rounds.append((f"api:{n}", ("cpu", "api", n, "warm")))
    for n in (small, mid, big):
        rounds.append((f"floor:{n}", ("cpu", "floor", n, "warm")))
    if peers not in (small, mid, big):
        rounds.append((f"run:{peers}", ("cpu", "run", peers, "warm")))
    slow = [(f"dojobber:{small}", ("cpu", "dojobber", small))]  # quadratic: ~10 s per process
    rounds.append(("aio", ("aio", "dojob.aio", sizes["aio"])))
    rounds.append(("asynciojobs", ("aio", "asynciojobs", sizes["aio"])))
    rounds.append(("luigi", ("luigi", peers)))
    rounds.append(("doit", ("doit", peers, db)))
    rounds.append(("io", ("io", sizes["io"], 20)))
    for r in range(repeat):
        h.log(f"round {r + 1}/{repeat} (load {load()})")
        for key, args in rounds + (slow if r < SLOW_ROUNDS else []):
            h.child(key, *args)
        h.child("import", code=import_snippet("dojob", "run"))
        h.wall("python", [sys.executable, "-c", "pass"])
        h.wall("cli", [*dojob_command(), "run", target_file])
    for r in range(mem_repeat):
        h.log(f"memory {r + 1}/{mem_repeat} (load {load()})")
        for api in ("run", "api", "floor"):
            h.child(f"mem:{api}", "memory", api, sizes["mem"])


def report(h: Harness, sizes: dict[str, int], repeat: int, started: str, load_start: str) -> list[Target]:
    small, mid, big, peers = sizes["small"], sizes["mid"], sizes["big"], sizes["peers"]
    m = h.median
    out = print
    out("\nFresh process, first run (graph build included), median seconds; classes = creating the job classes")
    out(f"  {'case':<30} {'jobs':>7} {'classes':>9} {'first run':>10} {'per job':>9}")

    def row(label: str, key: str, n: int) -> None:
        first, classes = m(key), m(key, "classes")
        if first is None:
            out(f"  {label:<30} {n:>7} {'-':>9} {'-':>10} {'':>9}  {h.errors.get(key, '')}")
            return
        cl = f"{classes:9.3f}" if classes is not None else f"{'':>9}"
        out(f"  {label:<30} {n:>7} {cl} {first:10.3f} {first / n * 1e6:7.1f}us")

    for n in (small, mid, big):
        row("dojob.run", f"run:{n}", n)
        row("DoJobber API (dojob)", f"api:{n}", n)
        row("graphlib floor (walks DEPS)", f"floor:{n}", n)
    row("DoJobber 0.6.3", f"dojobber:{small}", small)
    row("dojob.aio (Scheduler incl.)", "aio", sizes["aio"])
    row("asynciojobs 0.21.3", "asynciojobs", sizes["aio"])
    if peers not in (small, mid, big):
        row("dojob.run", f"run:{peers}", peers)
    row("Luigi, local scheduler", "luigi", peers)
    row("doit", "doit", peers)
    row("I/O 20 ms jobs, 20 threads", "io", sizes["io"])

    out("\nWarm (the same root run again in the same process; for reference, no target)")
    for n in (small, mid, big):
        parts = []
        for label, key in (("dojob.run", "run"), ("DoJobber API", "api"), ("floor", "floor")):
            warm = m(f"{key}:{n}", "warm")
            parts.append(f"{label} {warm:.3f}s" if warm is not None else f"{label} -")
        out(f"  {n:>7} jobs: " + "   ".join(parts))

    out("\nStart-up, median; wall time, and CPU time (what a loaded machine does not inflate)")
    py, cli, imp, imp_run = m("python"), m("cli"), m("import"), m("import", "with")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.1f} ms"

    if py is not None:
        out(f"  python -c pass (interpreter alone)       {ms(py):>9} wall  {ms(m('python', 'cpu')):>9} CPU")
    if imp is not None and imp_run is not None:
        sample = h.samples["import"][-1]
        pulled = [k[4:] for k, v in sample.items() if k.startswith("has:") and v]
        pulled_run = [k[5:] for k, v in sample.items() if k.startswith("with:") and v]
        out(f"  import dojob (the statement)             {ms(imp):>9} wall  {ms(m('import', 'cpu')):>9} CPU")
        out(f"    {sample['modules']} modules loaded then; heavy ones: {', '.join(pulled) or 'none'}")
        out(f"  import dojob, then dojob.run loaded      {ms(imp_run):>9} wall  {ms(m('import', 'cpu_with')):>9} CPU")
        out(f"    {sample['modules_with']} modules loaded then; heavy ones: {', '.join(pulled_run) or 'none'}")
    if cli is not None:
        out(f"  dojob run onejob.py:Hello (the command)  {ms(cli):>9} wall  {ms(m('cli', 'cpu')):>9} CPU")

    out("\nPeak memory of the first run above the classes' baseline (tracemalloc), median")
    for label, key in (("dojob.run", "mem:run"), ("DoJobber API", "mem:api"), ("floor", "mem:floor")):
        peak, base = m(key, "peak"), m(key, "classes")
        if peak is None:
            out(f"  {label:<14} -  {h.errors.get(key, '')}")
        else:
            out(f"  {label:<14} {peak / 2**20:8.1f} MiB   (classes: {base / 2**20:.1f} MiB, {sizes['mem']} jobs)")

    def t(key: str, text: str, value: Any, bound: float, higher: bool, unit: str = "x", why: str = "") -> Target:
        """A target; ``value`` a figure, or the per-round ratios (their median counts, their range is shown)."""
        if isinstance(value, list):
            if len(set(value)) > 1:
                spread = f"rounds: {_fmt(min(value), unit)} - {_fmt(max(value), unit)}"
                why = f"{spread}; {why}" if why else spread
            value = statistics.median(value) if value else None
        return Target(key, text, value, bound, higher, unit, why)

    doit_executed = m("doit", "executed")
    doit_why = h.why("doit", "doit-prepare")
    if doit_executed:
        doit_why = f"doit ran {doit_executed:.0f} tasks: the graph was not converged"
    mem = sizes["mem"]
    aio_n = sizes["aio"]
    io_n = sizes["io"]
    targets = [
        t("api-run-mid", f"DoJobber API / dojob.run at {mid}", h.paired(f"api:{mid}", f"run:{mid}"), 1.15, False),
        t("api-run-big", f"DoJobber API / dojob.run at {big}", h.paired(f"api:{big}", f"run:{big}"), 1.15, False),
        t(
            "dojobber-run",
            f"DoJobber 0.6.3 / dojob.run at {small}",
            h.paired(f"dojobber:{small}", f"run:{small}"),
            250,
            True,
            why=h.why(f"dojobber:{small}"),
        ),
        t(
            "dojobber-api",
            f"DoJobber 0.6.3 / DoJobber API at {small}",
            h.paired(f"dojobber:{small}", f"api:{small}"),
            250,
            True,
            why=h.why(f"dojobber:{small}"),
        ),
        t("run-floor", f"dojob.run / floor at {big}", h.paired(f"run:{big}", f"floor:{big}"), 1.5, False),
        t("run-scaling", f"dojob.run time({big})/time({mid})", h.paired(f"run:{big}", f"run:{mid}"), 11, False, ""),
        t(
            "api-scaling",
            f"DoJobber API time({big})/time({mid})",
            h.paired(f"api:{big}", f"api:{mid}"),
            11,
            False,
            "",
        ),
        t(
            "aio-asynciojobs",
            f"asynciojobs / dojob.aio at {aio_n}, Scheduler incl.",
            h.paired("asynciojobs", "aio"),
            2.5,
            True,
            why=h.why("asynciojobs"),
        ),
        t(
            "luigi",
            f"Luigi / dojob.run, converged {peers}",
            h.paired("luigi", f"run:{peers}"),
            10,
            True,
            why=h.why("luigi"),
        ),
        t(
            "doit",
            f"doit / dojob.run, converged {peers}",
            [] if doit_executed else h.paired("doit", f"run:{peers}"),
            3,
            True,
            why=doit_why,
        ),
        t(
            "io-critical",
            f"{io_n} x 20 ms I/O on threads / critical path",
            ratio(m("io"), m("io", "critical")),
            1.1,
            False,
        ),
        t("import", "import dojob", imp, 0.040, False, "ms"),
        t("import-run", "import dojob, then dojob.run loaded (what a script pays)", imp_run, 0.040, False, "ms"),
        t("cli-one-job", "dojob run of a one-job file, wall", cli, 0.150, False, "ms", h.why("cli")),
        t(
            "mem-run",
            f"peak memory dojob.run / floor at {mem}",
            ratio(m("mem:run", "peak"), m("mem:floor", "peak")),
            1.5,
            False,
        ),
        t(
            "mem-api",
            f"peak memory DoJobber API / floor at {mem}",
            ratio(m("mem:api", "peak"), m("mem:floor", "peak")),
            1.5,
            False,
        ),
    ]
    out(f"\nTargets (issue 17): a time ratio is the median over {repeat} rounds of the two figures of one round")
    out(f"(DoJobber 0.6.3: {SLOW_ROUNDS} rounds at most); a time, the median; memory, the ratio of the medians")
    for target in targets:
        out(target.line())
    met = [x for x in targets if x.verdict == "met"]
    missed = [x.key for x in targets if x.verdict == "missed"]
    unmeasured = [x.key for x in targets if x.verdict == "unmeasured"]
    summary = f"{len(met)}/{len(targets)} targets met"
    if missed:
        summary += f"; missed: {', '.join(missed)}"
    if unmeasured:
        summary += f"; unmeasured: {', '.join(unmeasured)}"
    out("\n" + summary)
    out(f"machine: {machine()}; load average {load_start} at start, {load()} at end")
    out(f"date: {started}")
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one process per figure (a smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="processes per figure (median counts)")
    parser.add_argument("--json", metavar="FILE", help="also write every sample, error and target to FILE")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child is not None:
        return run_child(opts.child)
    sizes = QUICK if opts.quick else FULL
    repeat = opts.repeat or (1 if opts.quick else 5)
    mem_repeat = 1 if opts.quick else min(repeat, 3)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start = load()
    print(f"dojob benchmarks: every figure a fresh process, first run, median of {repeat} processes")
    print(f"machine: {machine()}; load average {load_start}")
    print(f"date: {started}{'   (--quick: tiny sizes, verdicts meaningless)' if opts.quick else ''}")
    work = tempfile.mkdtemp(prefix="dojob-bench-")
    try:
        env = child_env(os.path.join(work, "pycache"))
        cwd = os.path.join(work, "cwd")
        os.mkdir(cwd)
        for modules in ("dojob, dojob.cli, dojob.aio, dojob.compat", "dojobber", "asynciojobs", "luigi", "doit"):
            # fill the byte-code cache (a peer that is missing fails here and is reported later)
            subprocess.run([sys.executable, "-c", f"import {modules}"], env=env, cwd=cwd, capture_output=True)
        sys.path.insert(0, HERE)
        from cases import one_job_file

        target_file = one_job_file(work)
        h = Harness(env, log=lambda text: print(text, file=sys.stderr, flush=True), cwd=cwd)
        measure(h, sizes, repeat, mem_repeat, target_file)
        targets = report(h, sizes, repeat, started, load_start)
        if opts.json:
            with open(opts.json, "w") as fh:
                record = {"date": started, "machine": machine(), "load": [load_start, load()], "sizes": sizes}
                record.update(samples=h.samples, errors=h.errors)
                record["targets"] = [dict(vars(x), verdict=x.verdict) for x in targets]
                json.dump(record, fh, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(x.verdict == "missed" for x in targets) and not opts.quick else 0


def run_child(args: list[str]) -> int:
    """``run.py --child CASE ARGS...``: one case in this (fresh) process; its figures as JSON on stdout."""
    sys.path.insert(0, HERE)
    from cases import CASES

    name, *rest = args
    fn = CASES[name]
    values: list[Any] = []
    for a in rest:
        if a == "warm":
            values.append(True)
        else:
            try:
                values.append(int(a))
            except ValueError:
                values.append(a)
    result = fn(*values)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
