"""A stopped run says "interrupted" everywhere: recap, event log, JUnit, history, graph and HTML report.

Each test runs ``dojob run`` as an operator would, with every output on, stops
it (a CRITICAL failure, ``--timeout``, a job's ``KeyboardInterrupt``, a real
SIGTERM, a real Ctrl-C) and reads each job's status back from every output:
they must be the same, and the jobs the stop kept from starting read
"interrupted" in all of them (never "not run").
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

JOBS = """
    import os, time
    import dojob

    STOP = os.environ["STOP"]

    class First(dojob.Job):
        TRIES = 1
        CRITICAL = STOP == "critical"

        def Check(self, *args, **kwargs):
            open("started", "w").close()
            if STOP == "job-ctrl-c":
                raise KeyboardInterrupt
            if STOP in ("timeout", "sigterm", "sigint"):
                time.sleep(0.6)
                return
            raise RuntimeError("no")

        def Run(self, *args, **kwargs):
            pass

    class Later(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

    class After(dojob.DummyJob):
        DEPS = (Later,)

    class Root(dojob.DummyJob):
        DEPS = (First, After)
"""

#: what the graph's fill colours mean (render.py's palette)
COLOURS = {"gold": "interrupted", "red": "failed", "grey": "blocked", "white": "not_run", "#2ca02c": "ok"}


def _launch(tmp_path: Path, stop: str) -> subprocess.Popen:
    (tmp_path / "jobs.py").write_text(textwrap.dedent(JOBS), encoding="utf-8")
    args = ["--events", "ev.jsonl", "--junit", "j.xml", "--report", "r.html", "--graph", "g.dot"]
    args += ["--history", "h.sqlite3", "--no-progress"]
    if stop == "timeout":
        args += ["--timeout", "0.2"]
    return subprocess.Popen(
        [sys.executable, "-m", "dojob", "run", "jobs.py:Root", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "STOP": stop},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _run(tmp_path: Path, stop: str) -> tuple[int, str]:
    proc = _launch(tmp_path, stop)
    try:
        if stop in ("sigterm", "sigint"):
            deadline = time.monotonic() + 30
            while not (tmp_path / "started").exists():
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM if stop == "sigterm" else signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in stderr, stderr
    return proc.returncode, stdout


def _from_events(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "ev.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events[-1]["event"] == "RunFinished"
    out: dict[str, str] = {}
    for e in events:
        if e["event"] in ("JobFinished", "JobBlocked"):
            assert e["job"] not in out, e  # one ending per job
            out[e["job"]] = e.get("status", "blocked")
    return out


def _from_junit(tmp_path: Path) -> dict[str, str]:
    out = {}
    for case in ET.parse(tmp_path / "j.xml").getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            out[case.get("name")] = "failed"
        elif (skipped := case.find("skipped")) is not None:
            out[case.get("name")] = re.split(r"[: ]", skipped.get("message"))[0].replace("not", "not_run")
        else:
            out[case.get("name")] = case.get("status")
    return out


def _from_history(tmp_path: Path) -> dict[str, str]:
    from dojob.history import open_store

    with open_store(str(tmp_path / "h.sqlite3")) as store:
        run = store.run(store.last_id())
    assert run is not None
    return {job["name"]: job["status"] for job in run["jobs"]}


def _from_graph(tmp_path: Path) -> dict[str, str]:
    nodes = re.findall(r'label="([^"\\]+)[^"]*", fillcolor="([^"]+)"', (tmp_path / "g.dot").read_text())
    return {name: COLOURS.get(colour, colour) for name, colour in nodes}


def _recap_counts(stdout: str) -> dict[str, int]:
    verdict = [line for line in stdout.splitlines() if line.startswith("not converged in ")][-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (ok|changed|failed|blocked|interrupted|not run)", verdict)}


def _html_counts(tmp_path: Path) -> dict[str, int]:
    table = re.search(r'<table id="counts">(.*?)</table>', (tmp_path / "r.html").read_text()).group(1)
    heads = re.findall(r"</i>([^<]+)</th>", table)
    cells = [int(n) for n in re.findall(r"<td class=num>(\d+)</td>", table)]
    return dict(zip(heads, cells, strict=False))


@pytest.mark.parametrize(
    ("stop", "code", "first"),
    [
        ("critical", 1, "failed"),
        ("timeout", 1, "interrupted"),
        ("job-ctrl-c", 130, "interrupted"),
        ("sigint", 130, "interrupted"),
        ("sigterm", 143, "interrupted"),
    ],
)
def test_regression_a_stopped_run_says_interrupted_in_every_output(tmp_path: Path, stop: str, code: int, first: str):
    # the recap counted the jobs the stop kept from starting "interrupted", while the event log had no
    # ending for them, JUnit said "not run", the history recorded not_run and the graph drew them white
    returncode, stdout = _run(tmp_path, stop)
    assert returncode == code, stdout
    events = _from_events(tmp_path)
    expected = {"First": first, "Later": "interrupted", "After": "interrupted"}
    expected["Root"] = "blocked" if first == "failed" else "interrupted"
    assert events == expected
    assert _from_junit(tmp_path) == expected
    assert _from_history(tmp_path) == expected
    assert _from_graph(tmp_path) == expected
    # Root waited for First: each output words it as the recap does ("not started" under First)
    waited = "blocked by First" if first == "failed" else "not started, waited for First"
    assert re.search(rf'label="Root[^"]*"[^\]]*tooltip="{waited}"', (tmp_path / "g.dot").read_text())
    root = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase[@name='Root']/skipped")
    assert root.get("message") == (waited if first == "failed" else f"interrupted: {waited}")
    if first != "failed":
        assert "             not started: Root" in stdout.splitlines()
    interrupted = sum(s == "interrupted" for s in expected.values())
    recap = _recap_counts(stdout)
    assert recap["interrupted"] == interrupted and "not run" not in recap
    assert recap["failed"] == sum(s == "failed" for s in expected.values())
    assert recap["blocked"] == sum(s == "blocked" for s in expected.values())
    html = _html_counts(tmp_path)
    assert html["interrupted"] == interrupted and html["failed"] == recap["failed"]
    assert html["blocked"] == recap["blocked"]
    with sqlite3.connect(tmp_path / "h.sqlite3") as db:  # the recorded counts are the recap's
        (counts,) = db.execute("SELECT counts FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert json.loads(counts)["interrupted"] == interrupted and json.loads(counts)["not_run"] == 0


def test_regression_a_job_never_started_without_a_stop_is_not_run_in_the_report_and_the_event_log_alike():
    # a forever monitor waiting for work that ended: the run is over before it may start; nothing
    # stopped the run, so it is "not run" (not "interrupted"), and the event log says so too
    from dojob.events import JobFinished, Status
    from dojob.graph import JobGraph, JobSpec
    from dojob.plan import Planner

    work = JobSpec("Work", 0, object(), "awaitable", 1, 0.0, is_async=True)
    monitor = JobSpec("Monitor", 1, object(), "awaitable", 1, 0.0, is_async=True, forever=True)
    seen: list = []
    p = Planner(JobGraph([work, monitor], [(), (0,)], ()), emit=seen.append)
    (i,) = p.next_actions(0.0)
    p.complete(i, True, 1.0)
    assert not p.is_active() and p.next_actions(1.0) == []
    p.finish(1.0)
    assert p.stopped is None and p.status == [Status.OK, Status.NOT_RUN] and p.succeeded()
    finished = [(e.job, e.status) for e in seen if isinstance(e, JobFinished)]
    assert finished == [("Work", Status.OK), ("Monitor", Status.NOT_RUN)]


def test_regression_a_forever_monitor_cancelled_after_the_work_is_not_called_interrupted():
    # the recap listed a monitor cancelled at the end of a converged run as "INTERRUPTED ... during
    # try 1" while counting it "1 not run" and "0 interrupted"; the graph drew it gold, the HTML
    # report listed it under Failures "(interrupted)": nothing stopped that run
    import asyncio

    from dojob import aio
    from dojob.htmlreport import failures_section
    from dojob.recap import counts
    from dojob.render import graph_dot

    work = aio.Job(asyncio.sleep(0.01), label="work")
    monitor = aio.Job(asyncio.sleep(30), forever=True, label="monitor")
    scheduler = aio.Scheduler(work, monitor)
    assert scheduler.run() is True
    report = scheduler.report
    assert report.stopped is None and report.success
    statuses = {name.split(" ", 1)[1]: job.status.value for name, job in report.jobs.items()}
    assert statuses == {"work": "changed", "monitor": "not_run"}
    summary = report.summary()
    assert "INTERRUPTED" not in summary and summary.splitlines()[-1].endswith("0 interrupted, 1 not run")
    assert counts(report)["interrupted"] == 0 and counts(report)["not_run"] == 1
    dot = graph_dot(report.graph, report)
    assert re.search(r'label="2 monitor[^"]*", fillcolor="white"', dot), dot
    assert "monitor" not in failures_section(report, None)
