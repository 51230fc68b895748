"""The HTML report (checked in headless Chromium), the timeline behind it, Jupyter pictures, event dicts."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import flaky, make_job

import dojob
from dojob import FakeClock
from dojob.eventlog import EventLog, event_to_dict
from dojob.events import Phase, PhaseEnded, RunStarted, Status, TryEnded
from dojob.htmlreport import timeline_svg
from dojob.timeline import Timeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SVG = "{http://www.w3.org/2000/svg}"

HOSTILE_RUN = """\
    import time
    import dojob

    def job(name, deps=(), fail=False, passes_on=1, sleep=0.05):
        def check(self, *args, **kwargs):
            calls = self.global_storage.setdefault(name, [])
            calls.append(1)
            time.sleep(sleep)
            if fail:
                raise RuntimeError('bad <script>alert("x")</script> {braces} "quotes"\\nline2 \\x1b[31mred')
            if len(calls) < passes_on:
                raise RuntimeError("not yet")

        return type(name, (dojob.Job,), {"DEPS": list(deps), "Check": check, "Run": lambda self, *a, **k: None,
                                         "TRIES": 3, "RETRY_DELAY": 0.05})

    A = job('<script>alert("A")</script>', passes_on=2)
    B = job('B "quoted" {brace}\\nnewline\\x1b[2J', fail=True, sleep=0.02)
    C = job("C <img src=x onerror=alert(1)>", [B])
    D = job("D &amp; </svg><script>", passes_on=5)
    E = job("E", sleep=0.1)
    Root = job("Root", [A, C, D, E])
"""


class Tags(HTMLParser):
    """Every tag name and attribute of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.names.add(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def chromium(url: str, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    """Load ``url`` in headless Chromium with console messages logged to stderr."""
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *flags,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def console_lines(stderr: str) -> list[str]:
    """Chromium's log lines for console messages (errors, uncaught exceptions, CSP violations)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory) -> Path:
    """An HTML report of a parallel run with retries, a failure, blocked jobs and hostile names."""
    folder = tmp_path_factory.mktemp("report")
    (folder / "hostile.py").write_text(textwrap.dedent(HOSTILE_RUN))
    out = subprocess.run(
        [sys.executable, "-m", "dojob", "run", "hostile.py:Root", "-j", "3", "--report", "run.html"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert "written: run.html" in out.stdout
    return folder / "run.html"


def test_chromium_reports_console_errors_of_a_broken_page(tmp_path):
    """The check below is meaningful: Chromium does log a page's console errors this way."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><title>t</title><p>x</p><script>console.error('oops'); nope();</script>")
    logged = console_lines(chromium(page.as_uri(), tmp_path, "--dump-dom").stderr)
    assert any("oops" in line for line in logged) and any("Uncaught ReferenceError" in line for line in logged)


def test_report_renders_in_chromium_without_console_errors(hostile_report, tmp_path):
    out = chromium(hostile_report.as_uri(), tmp_path, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    assert console_lines(out.stderr) == []
    dom = out.stdout
    assert '<span class="verdict bad" id="verdict">not converged</span>' in dom
    assert "<h2>Recap</h2>" in dom and "1 failed, 2 blocked, 0 interrupted" in dom
    assert dom.count("<svg") == 2  # the graph and the timeline
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="timeline"' in dom
    assert "Traceback (most recent call last)" in dom
    # Hostile names and messages are text, never markup.
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom and '&lt;script&gt;alert("A")&lt;/script&gt;' in dom
    assert "\x1b" not in dom


def test_report_is_self_contained(hostile_report):
    page = hostile_report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    tags = Tags()
    tags.feed(page)
    assert not {"script", "link", "img", "iframe", "object", "embed", "foreignobject"} & tags.names
    for name, value in tags.attributes:
        assert name != "src" and not name.startswith("on"), (name, value)
        if name.endswith("href"):
            assert value.startswith("#"), value


def test_report_timeline_shows_retries_and_parallelism(hostile_report):
    page = hostile_report.read_text()
    svg_text = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') :]
    svg_text = svg_text[: svg_text.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg_text)
    tips = [t.text or "" for t in root.iter(f"{SVG}title")]  # ElementTree decodes the entities
    assert any(re.match(r"D &amp; </svg><script> try 3 check: .*, pass\b", t) for t in tips)  # D passed on try 3
    assert any(t.startswith("D &amp; </svg><script> waits for try 2") for t in tips)  # the retry delay
    assert any(re.match(r'B "quoted" \{brace\}\\x0anewline\\x1b\[2J try 3 recheck: .*fail', t) for t in tips)
    assert any(t.startswith("tries running at once: at most 3 (workers: 3)") for t in tips)
    rows = [t for t in root.iter(f"{SVG}text") if t.get("x") == "20"]
    names = [("".join(r.itertext())) for r in rows]
    assert any(n.startswith("C <img src=x onerror=alert(1)>") for n in names)  # never tried: still a row
    assert re.search(r"\d+ tries on at most 3 at once \(3 workers\)", page)


def test_report_screenshot_is_drawn(hostile_report, tmp_path):
    shot = tmp_path / "shot.png"
    out = chromium(hostile_report.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1300,1400")
    assert out.returncode == 0 and console_lines(out.stderr) == []
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000


def test_to_html_from_the_api_with_and_without_a_timeline():
    timeline = Timeline()
    root = make_job("Root", [flaky("A", 3, TRIES=3, RETRY_DELAY=1), make_job("B")])
    report = dojob.run(root, observers=[timeline], clock=FakeClock())
    with_timeline = report.to_html(timeline, title="nightly <b>")
    assert "<title>nightly &lt;b&gt;</title>" in with_timeline
    assert "A try 2 check" in with_timeline and "A waits for try 2" in with_timeline
    without = report.to_html()
    assert "No per-phase timing was recorded" in without and "<svg" in without
    assert without.count('class="timeline"') == 1


def test_to_html_of_a_report_without_a_graph_and_of_an_interrupted_run():
    report = dojob.Report({"X": dojob.JobReport("X", Status.FAILED, 1, None, ValueError("<b>"), 0.0, 1.0)}, elapsed=1.0)
    page = report.to_html()
    assert "The graph is not known for this report." in page and "ValueError: &lt;b&gt;" in page
    assert report._repr_svg_() is None

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    timeline = Timeline()
    with pytest.raises(KeyboardInterrupt) as caught:
        dojob.run(make_job("Root", [make_job("Stop", check=interrupt)]), observers=[timeline])
    page = caught.value.report.to_html(timeline)
    assert "not converged (stopped: interrupted)" in page
    assert "Stop try 1 check" in page and "interrupted" in page  # the phase that never ended


def test_jupyter_svg_of_reports_and_dojobbers():
    root = make_job("Root", [make_job("Dep", check=lambda self, *a, **k: 1 / 0, TRIES=1)])
    report = dojob.run(root)
    picture = report._repr_svg_()
    assert picture.lstrip().startswith("<?xml") and "<svg" in picture
    titles = {t.text for t in ET.fromstring(picture).iter(f"{SVG}title")}
    assert {"n0", "n1"} <= titles
    assert 'fill="red"' in picture and 'fill="grey"' in picture

    jobber = dojob.DoJobber()
    assert jobber._repr_svg_() is None  # nothing configured yet
    jobber.configure(root)
    assert "<svg" in jobber._repr_svg_()
    jobber.checknrun()
    assert 'fill="red"' in jobber._repr_svg_()


def test_timeline_records_every_phase_of_every_try():
    timeline = Timeline()
    a = flaky("A", 4, TRIES=3, RETRY_DELAY=2)
    dojob.run(make_job("Root", [a]), observers=[timeline], clock=FakeClock())
    assert timeline.jobs == ["A", "Root"]
    a_spans = [(s.try_number, s.phase, s.start, s.ok) for s in timeline.spans if s.job == "A"]
    assert a_spans == [
        (1, "check", 0.0, False),
        (1, "run", 0.0, True),
        (1, "recheck", 0.0, False),
        (2, "check", 2.0, False),
        (2, "run", 2.0, True),
        (2, "recheck", 2.0, True),
    ]
    failed = [s for s in timeline.spans if s.ok is False]
    assert all(s.error.startswith("RuntimeError: A not ready") and "Traceback" in s.traceback for s in failed)
    assert [(t.job, t.try_number, t.ok, t.retry_at) for t in timeline.tries] == [
        ("A", 1, False, 2.0),
        ("A", 2, True, None),
        ("Root", 1, True, None),
    ]
    assert timeline.end == 2.0 and timeline.max_parallel() == 1 and timeline.workers == 1
    svg_text = timeline_svg(dojob.Report({}, elapsed=2.0), timeline)
    ET.fromstring(svg_text)  # well-formed


def test_timeline_ignores_unknown_events_and_tolerates_missing_starts():
    timeline = Timeline()
    timeline(RunStarted(2, ("R",), 4, "threads"))
    timeline(object())
    timeline(PhaseEnded("R", 1, Phase.INIT, False, 0.5, "TypeError", "bad init", "tb"))
    timeline(TryEnded("R", 1, False, 0.5))
    (span,) = timeline.spans
    assert (span.phase, span.start, span.end, span.error) == ("init", 0.5, 0.5, "TypeError: bad init")
    assert timeline.workers == 4 and timeline.jobs == ["R"] and len(timeline.tries) == 1


def test_event_dicts_are_plain_json(tmp_path):
    event = TryEnded("A", 1, False, 0.25, math.inf)
    data = event_to_dict(event, ts="2024-01-01T00:00:00Z")
    assert data == {
        "schema": 1,
        "event": "TryEnded",
        "ts": "2024-01-01T00:00:00Z",
        "job": "A",
        "try_number": 1,
        "ok": False,
        "time": 0.25,
        "retry_at": "inf",
    }
    path = tmp_path / "events.jsonl"
    with path.open("w") as fh:
        dojob.run(make_job("Root", [make_job("Snow\u2603\n")]), observers=[EventLog(fh)])
    lines = path.read_bytes().splitlines()
    assert all(line.isascii() for line in lines)
    events = [json.loads(line) for line in lines]
    assert events[0]["roots"] == ["Root"] and events[1]["job"] == "Snow\u2603\n"
    finished = [e for e in events if e["event"] == "JobFinished"]
    assert [e["status"] for e in finished] == ["ok", "ok"]  # enums as their values


@pytest.mark.parametrize("asynchronous", [False, True], ids=["thread", "async"])
def test_regression_a_timed_out_phase_is_one_dashed_bar_with_its_error(asynchronous):
    """README: a phase that never ended (interrupted, timed out) has a dashed outline; it is drawn once."""
    import asyncio
    import time

    if asynchronous:

        async def check(self, *args, **kwargs):
            await asyncio.sleep(0.4)
    else:

        def check(self, *args, **kwargs):
            time.sleep(0.4)

    Slow = type("Slow", (dojob.Job,), {"TIMEOUT": 0.1, "TRIES": 1, "Check": check, "Run": lambda self, *a, **k: None})
    timeline = Timeline()
    report = dojob.run(Slow, observers=[timeline], workers=2)
    assert report["Slow"].status is Status.FAILED
    (span,) = [s for s in timeline.spans if s.job == "Slow"]  # not a second, zero-length bar for the failure
    assert span.ok is None and span.abandoned is not asynchronous
    assert span.error.startswith("PhaseTimeout: Slow.check took longer than TIMEOUT=0.1s")
    assert 0.08 < span.end - span.start < 0.35
    svg = timeline_svg(report, timeline)
    (bar,) = re.findall(r"<rect [^>]*><title>Slow try 1 check[^<]*</title>", svg)
    assert 'stroke-dasharray="3,2"' in bar and "d62728" not in bar
    assert ("abandoned at its timeout" if not asynchronous else "timed out") in bar
    failures = report.to_html(timeline).split('<section id="failures">')[1].split("</section>")[0]
    assert "<td>Slow</td>" in failures and "PhaseTimeout: Slow.check took longer than TIMEOUT=0.1s" in failures
