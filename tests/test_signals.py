"""The bounded signal storm: `dojob run` stopped by SIGINT, SIGTERM or two signals, at random moments.

A seeded storm of launches on a graph of a few thousand jobs with Cleanups,
serial and on threads. Whatever the moment: exit 130 (SIGINT first) or 143
(SIGTERM first), no traceback, the Cleanup of every job whose Check ran was
called, the ``--events`` file is whole JSON lines with one ``RunFinished``
(only Cleanup events after it), and the ``--report`` page is written.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

LAUNCHES = int(os.environ.get("STORM_LAUNCHES", 50))
SEED = 20261201
JOBS = 3000

GRAPH = f"""\
    import os
    import time
    import dojob

    def check(self, *args, **kwargs):
        if self.N == 0:
            open("started", "w").close()
        time.sleep(0.0002)
        if self.N % 97 == 5 and not self.global_storage.get(self.N):
            self.global_storage[self.N] = True
            raise RuntimeError("not yet")

    def cleanup(self):
        time.sleep(0.0001)
        with open("cleaned.txt", "a") as fh:
            fh.write(type(self).__name__ + "\\n")

    def run(self, *args, **kwargs):
        pass

    groups = []
    for g in range({JOBS} // 100):
        members = [type(f"J{{g}}_{{i}}", (dojob.Job,), {{"N": g * 100 + i, "Check": check, "Run": run,
                    "Cleanup": cleanup, "RETRY_DELAY": 0.05}}) for i in range(100)]
        groups.append(type(f"G{{g}}", (dojob.DummyJob,), {{"DEPS": members}}))

    def gate(self, *args, **kwargs):
        time.sleep(0.3)

    Root = type("Root", (dojob.Job,), {{"DEPS": groups, "Check": gate, "Run": run}})
"""


def _launch(folder: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", "graph.py:Root", "-j", str(workers),
         "--events", "run.jsonl", "--report", "r.html"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=os.environ.copy(), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _one(folder: Path, plan: tuple[int, float, list[int], float]) -> str | None:
    """One launch of the storm; None if every promise held, else what broke."""
    workers, delay, signals, gap = plan
    folder.mkdir()
    (folder / "graph.py").write_text(textwrap.dedent(GRAPH), encoding="utf-8")
    proc = _launch(folder, workers)
    try:
        deadline = time.monotonic() + 60
        while not (folder / "started").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                return f"never started: {proc.communicate()}"
            time.sleep(0.01)
        time.sleep(delay)
        for n, signum in enumerate(signals):
            if n:
                time.sleep(gap)
            if proc.poll() is None:
                proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return _verdict(folder, proc.returncode, stdout, stderr, signals)


def _verdict(folder: Path, code: int, stdout: str, stderr: str, signals: list[int]) -> str | None:
    expected = 130 if signals[0] == signal.SIGINT else 143
    if code != expected and not (code == 0 and "converged" in stdout):  # 0 only if it was over already
        return f"exit {code}, expected {expected}: {stdout[-300:]!r} {stderr[-500:]!r}"
    if "Traceback" in stderr:
        return f"traceback: {stderr[-800:]}"
    text = (folder / "run.jsonl").read_text(encoding="utf-8")
    if not text.endswith("\n"):
        return "the event log is cut mid-line"
    events = [json.loads(line) for line in text.splitlines()]
    kinds = [e["event"] for e in events]
    if kinds.count("RunFinished") != 1:
        return f"{kinds.count('RunFinished')} RunFinished events"
    after = kinds[kinds.index("RunFinished") + 1 :]
    if any(k not in ("CleanupStarted", "CleanupEnded") for k in after):
        return f"events after RunFinished: {set(after)}"
    checked = {e["job"] for e in events if e["event"] == "PhaseStarted" and e["job"] not in ("Root",)}
    checked = {j for j in checked if not j.startswith("G")}
    called = {e["job"] for e in events if e["event"] == "CleanupStarted"}
    if checked != called:
        return f"{len(checked - called)} Cleanups not called, {len(called - checked)} called without a Check"
    ended_ok = {e["job"] for e in events if e["event"] == "CleanupEnded" and e["ok"]}
    cleaned = (folder / "cleaned.txt").read_text().split() if (folder / "cleaned.txt").exists() else []
    if len(cleaned) != len(set(cleaned)) or not ended_ok <= set(cleaned):
        return "a Cleanup ran twice, or one said ok without running"
    html = (folder / "r.html").read_text(encoding="utf-8") if (folder / "r.html").exists() else ""
    if "</html>" not in html:
        return "no --report page"
    return None


def test_a_seeded_storm_of_signals_keeps_every_promise(tmp_path):
    rng = random.Random(SEED)
    plans = []
    for _ in range(LAUNCHES):
        first = rng.choice([signal.SIGINT, signal.SIGTERM])
        signals = [first] if rng.random() < 0.6 else [first, rng.choice([signal.SIGINT, signal.SIGTERM])]
        plans.append((rng.choice([1, 1, 2, 4]), rng.uniform(0.0, 0.5), signals, rng.uniform(0.0, 0.3)))
    started = time.monotonic()
    with cf.ThreadPoolExecutor(3) as pool:
        verdicts = list(pool.map(lambda item: _one(tmp_path / f"run{item[0]}", item[1]), enumerate(plans)))
    broken = [(n, plans[n], v) for n, v in enumerate(verdicts) if v is not None]
    assert broken == [], broken
    assert len(verdicts) == LAUNCHES
    assert time.monotonic() - started < 120  # ~60 s on an idle two-core machine


def _self_signal(signum: int, after: float) -> threading.Timer:
    timer = threading.Timer(after, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def test_handle_signals_makes_sigterm_a_stop_from_python(tmp_path):
    """dojob.run(handle_signals=True): SIGTERM ends the running phase, Cleanups run, Terminated is raised."""
    import dojob

    log = []

    class Prepare(dojob.Job):
        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

        def Cleanup(self):
            log.append("cleanup")

    class Sleeps(dojob.Job):
        DEPS = (Prepare,)

        def Check(self, *a, **k):
            time.sleep(5)

        def Run(self, *a, **k):
            pass

    before = signal.getsignal(signal.SIGTERM)
    timer = _self_signal(signal.SIGTERM, 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(dojob.Terminated) as info:
            dojob.run(Sleeps, handle_signals=True)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGTERM
    report = info.value.report
    assert report.stopped == "terminated" and report["Sleeps"].status is dojob.Status.INTERRUPTED
    assert log == ["cleanup"] and signal.getsignal(signal.SIGTERM) is before  # the handler is given back


def test_handle_signals_is_refused_off_the_main_thread():
    import dojob

    job = type("J", (dojob.Job,), {"Check": lambda self, *a, **k: None, "Run": lambda self, *a, **k: None})
    with cf.ThreadPoolExecutor(1) as pool:
        error = pool.submit(lambda: dojob.run(job, handle_signals=True)).exception()
    assert isinstance(error, dojob.OptionError) and "main thread" in str(error)
