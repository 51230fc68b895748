"""Hostile input: names, messages and results that try to break every output format.

Job names (made with ``type(name, ...)``), exception messages and results hold
quotes, braces, newlines, ANSI and OSC escapes, ``<script>``, DOT syntax,
bidi overrides, lone surrogates and very long strings. They go through the
trace, the DOT text and Graphviz's SVG, the HTML report, the event log, the
recap and the ``dojob`` command, none of which may break its format, inject
markup or escape sequences, or crash. Results that are recursive, unpicklable
or whose ``repr`` raises must not crash them either.
"""

from __future__ import annotations

import html.parser
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from conftest import make_job

import dojob
from dojob.eventlog import EventLog
from dojob.observe import one_line
from dojob.render import graph_dot
from dojob.timeline import Timeline

#: Hostile texts; each becomes a job name, an exception message and a result.
HOSTILE = [
    'quote"double',
    "quote'single",
    "brace{x}}{",
    "new\nline",
    "carriage\rreturn",
    "ansi\x1b[31mred\x1b[0m",
    "osc\x1b]0;pwned\x07title",
    "csi8\x9b31mred",
    "<script>alert(1)</script>",
    '"]; evil [label="x',
    "digraph { a -> b }",
    "<b>html</b>-label",
    "back\\slash\\",
    "tab\there",
    "bidi\u202egnp.exe",
    "\u00e9t\u00e9 \u2603 \U0001f600",
    "x" * 5000,
]
#: Only in messages: a class name may not contain NUL, and a lone surrogate cannot be encoded.
MESSAGE_ONLY = ["nul\x00byte", "surrogate\ud800half"]

#: The raw escapes of the hostile texts, in context (colour output of our own may use "\x1b[31m").
HOSTILE_ESCAPES = ("ansi\x1b[31m", "red\x1b[0m", "\x1b]0;", "\x07", "\x9b31m", "\u202e", "\ud800")


class Evil(Exception):
    """An exception whose message cannot even be computed."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr either")

    __str__ = __repr__


def _recursive_list() -> list:
    out: list = [1]
    out.append(out)
    return out


def _recursive_dict() -> dict:
    out: dict = {"a": 1}
    out["self"] = out
    return out


RESULTS = [_recursive_list, _recursive_dict, threading.Lock, lambda: (x for x in ()), BadRepr, lambda: "<script>"]


def _hostile_graph() -> tuple[type, list[str]]:
    """A root over: one failing job per hostile name (message hostile too), one blocked job
    under each, and jobs whose results are hostile."""
    leaves = []
    names = []
    messages = HOSTILE + MESSAGE_ONLY
    for i, name in enumerate(HOSTILE):
        message = messages[i % len(messages)]

        def check(self, *a, _message=message, **k):
            raise ValueError(_message)

        bad = make_job(name, check=check, TRIES=1)
        leaves.append(make_job(f"after {name}"[:60] + f" #{i}", [bad]))
        names += [name, leaves[-1].__name__]
    for i, message in enumerate(MESSAGE_ONLY):

        def check(self, *a, _message=message, **k):
            raise ValueError(_message)

        leaves.append(make_job(f"message-{i}", check=check, TRIES=1))
        names.append(leaves[-1].__name__)

    def evil(self, *a, **k):
        raise Evil()

    leaves.append(make_job("evil-message", check=evil, TRIES=1))
    names.append("evil-message")
    for i, result in enumerate(RESULTS):
        leaves.append(make_job(f"result-{i}", check=lambda self, *a, _r=result, **k: _r()))
        names.append(leaves[-1].__name__)
    root = make_job("Root", leaves)
    return root, names + ["Root"]


@pytest.fixture(scope="module")
def hostile_run():
    root, names = _hostile_graph()
    trace, events, timeline = io.StringIO(), io.StringIO(), Timeline()
    report = dojob.run(root, observers=[dojob.Trace(debug=True, stream=trace), EventLog(events), timeline], workers=4)
    return report, names, trace.getvalue(), events.getvalue(), timeline


def _no_hostile_escapes(text: str) -> None:
    for seq in HOSTILE_ESCAPES:
        assert seq not in text, repr(seq)
    assert "carriage\rreturn" not in text and "\x00" not in text


def test_the_run_itself_copes(hostile_run):
    report, names, *_ = hostile_run
    assert sorted(report.jobs) == sorted(names)
    for name in HOSTILE:
        assert report[name].status is dojob.Status.FAILED and report[name].ok is False
    assert report["evil-message"].status is dojob.Status.FAILED
    assert report["result-0"].result[1] is report["result-0"].result  # results are kept as they are
    # the report's own views do not choke on them
    repr(report), report.counts(), report.statuses(), report.exceptions(), report.results()


def test_trace_keeps_one_event_per_line(hostile_run):
    report, names, trace, events, _ = hostile_run
    _no_hostile_escapes(trace)
    lines = Counter(trace.splitlines())
    for line in lines:
        assert line.replace("\t", " ").isprintable() and len(line) < 5000
    # every phase that ended is exactly one line, whatever its job's name or message
    for event in map(json.loads, events.splitlines()):
        if event["event"] != "PhaseEnded":
            continue
        head = f"{one_line(event['job'])}.{event['phase']}: "
        if event["ok"]:
            line = head + "pass"
        elif event["phase"] in ("recheck", "init"):
            line = head + f'fail "{one_line(event["error"])}"'
        else:
            line = head + "fail"
        assert lines[line] >= 1, line


def test_event_log_is_one_ascii_json_object_per_line_and_names_round_trip(hostile_run):
    report, names, _, events, _ = hostile_run
    seen = set()
    for line in events.splitlines():
        assert line.isascii()
        event = json.loads(line)
        if "job" in event and event["job"] is not None:
            seen.add(event["job"])
    assert seen == set(names)
    errors = [json.loads(line).get("error") for line in events.splitlines()]
    assert "surrogate\ud800half" in errors and "nul\x00byte" in errors  # exact, escaped in JSON
    assert any(e and e.startswith("<unprintable Evil>") for e in errors)


def test_recap_is_plain_safe_text(hostile_run):
    report, *_ = hostile_run
    text = report.summary()
    _no_hostile_escapes(text)
    assert "\x1b" not in text
    for line in text.splitlines():
        assert line.replace("\t", " ").isprintable() and len(line) < 1200
    assert "Evil: <unprintable>" in text
    colored = report.summary(color=True)
    _no_hostile_escapes(colored)


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_escapes_everything(hostile_run):
    report, names, _, _, timeline = hostile_run
    page = report.to_html(timeline, title="<script>alert('title')</script>")
    _no_hostile_escapes(page)
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"script", "iframe", "object", "embed", "foreignobject", "b"}
    assert not [a for a in parser.attrs if a.startswith("on")]
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Content-Security-Policy" in page
    text = "".join(parser.text)
    assert "after <script>alert(1)</script>" in text  # shown, as text


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz")
def test_dot_renders_with_graphviz_to_well_formed_svg(hostile_run, tmp_path):
    report, names, *_ = hostile_run
    source = graph_dot(report.graph, report)
    _no_hostile_escapes(source)
    assert source.startswith("digraph dojob {") and source.rstrip().endswith("}")
    (tmp_path / "g.dot").write_text(source, encoding="utf-8")
    done = subprocess.run(["dot", "-Tsvg", "g.dot"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    root = ET.fromstring(done.stdout)
    svg = "{http://www.w3.org/2000/svg}"
    nodes = [g for g in root.iter(f"{svg}g") if g.get("class") == "node"]
    assert len(nodes) == len(names)
    assert not [e for e in root.iter() if e.tag.rsplit("}", 1)[-1].lower() in ("script", "foreignobject")]


def test_a_result_whose_repr_raises_or_that_contains_itself_crashes_no_output(hostile_run):
    report, *_ = hostile_run
    assert isinstance(report["result-4"].result, BadRepr)
    page = report.to_html()
    assert "result-4" in page
    graph_dot(report.graph, report)
    report.summary()
    dj = dojob.DoJobber()
    dj.configure(make_job("R", check=lambda self, *a, **k: _recursive_dict()))
    dj.checknrun()
    assert dj.noderesults["R"]["self"]["a"] == 1


# -- the dojob command ------------------------------------------------------------------------

HOSTILE_MODULE = """\
import dojob

NAMES = {names!r}
MESSAGES = {messages!r}
jobs = []
for i, name in enumerate(NAMES):
    def check(self, *a, _message=MESSAGES[i % len(MESSAGES)], **k):
        raise ValueError(_message)
    jobs.append(type(name, (dojob.Job,), {{"Check": check, "Run": lambda self, *a, **k: None, "TRIES": 1}}))
Root = type("Root", (dojob.DummyJob,), {{"DEPS": jobs}})
"""


def test_the_dojob_command_with_hostile_names_and_messages(tmp_path):
    source = HOSTILE_MODULE.format(names=HOSTILE, messages=MESSAGE_ONLY + HOSTILE)
    (tmp_path / "hostile.py").write_text(textwrap.dedent(source), encoding="utf-8")
    outputs = ["--events", "run.jsonl", "--report", "run.html", "--graph", "run.dot"]
    if shutil.which("dot"):
        outputs += ["--graph", "run.svg"]
    done = subprocess.run(
        [sys.executable, "-m", "dojob", "run", "hostile.py:Root", "-d", "--progress", *outputs],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        errors="strict",
        timeout=120,
        env={**os.environ, "TERM": "xterm", "FORCE_COLOR": "1"},
    )
    assert done.returncode == 1, done.stderr
    _no_hostile_escapes(done.stdout)
    _no_hostile_escapes(done.stderr)
    assert not [line for line in done.stderr.splitlines() if line.startswith("Traceback")]  # -d's are indented
    recap = [line for line in done.stdout.splitlines() if "FAILED" in line]
    assert len(recap) == len(HOSTILE)
    assert "not converged\x1b[0m in " in done.stdout.splitlines()[-2]  # FORCE_COLOR
    for line in (tmp_path / "run.jsonl").read_text(encoding="ascii").splitlines():
        json.loads(line)
    _no_hostile_escapes((tmp_path / "run.html").read_text(encoding="utf-8"))
    if shutil.which("dot"):
        ET.fromstring((tmp_path / "run.svg").read_text(encoding="utf-8"))


# -- regressions --------------------------------------------------------------------------------


def test_regression_debug_trace_let_escape_sequences_through_in_tracebacks():
    """``-d`` printed each failing phase's traceback as is: the message inside it could move the
    cursor, recolour or retitle the operator's terminal."""

    def check(self, *a, **k):
        raise ValueError("ansi\x1b[31mred \x1b]0;pwned\x07 bidi\u202eevil\rback")

    stream = io.StringIO()
    dojob.run(make_job("A", check=check, TRIES=1), observers=[dojob.Trace(debug=True, stream=stream)])
    text = stream.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "ValueError: ansi\\x1b[31mred \\x1b]0;pwned\\x07 bidi\\u202eevil\\x0dback" in text


def test_regression_bidi_overrides_and_lone_surrogates_reached_terminals_and_pages():
    """one_line (trace, recap, list) and the HTML report escaped C0/C1 controls only: a bidi
    override reordered what the operator read, and a lone surrogate made writing the recap to a
    UTF-8 stdout raise UnicodeEncodeError."""
    text = "bidi\u202egnp.exe \u2066iso\u2069 line\u2028sep half\ud800"
    assert one_line(text) == "bidi\\u202egnp.exe \\u2066iso\\u2069 line\\u2028sep half\\ud800"
    one_line(text).encode("utf-8")  # writable
    report = dojob.run(make_job(text.replace("\ud800", ""), check=lambda self, *a, **k: 1 / 0, TRIES=1))
    page = report.to_html()
    assert "\u202e" not in page and "\\u202e" in page
    page.encode("utf-8")


def test_regression_an_exception_whose_str_raises_broke_the_graph_and_the_html_report():
    def check(self, *a, **k):
        raise Evil()

    report = dojob.run(make_job("A", check=check, TRIES=1))
    assert "Evil: &lt;unprintable&gt;" in report.to_html()
    assert "Evil: <unprintable>" in graph_dot(report.graph, report)


def test_regression_a_lone_surrogate_in_a_message_crashed_the_dojob_command(tmp_path):
    """The recap went to stdout with the surrogate in it: UnicodeEncodeError, no recap."""
    source = """\
        import dojob

        class A(dojob.Job):
            TRIES = 1

            def Check(self, *args, **kwargs):
                raise ValueError("half\\ud800")

            def Run(self, *args, **kwargs):
                pass
        """
    (tmp_path / "s.py").write_text(textwrap.dedent(source), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "dojob", "run", "s.py:A"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and done.stderr == ""
    assert done.stdout.splitlines()[0] == "FAILED  A (1 try): ValueError: half\\ud800"


def test_an_unpicklable_result_under_the_process_executor_fails_its_job_clearly():
    lock = make_job("Lock", check=lambda self, *a, **k: threading.Lock(), TRIES=1)
    recursive = make_job("Recursive", check=lambda self, *a, **k: _recursive_list(), TRIES=1)
    report = dojob.run(lock, recursive, executor="processes", workers=2)
    assert report["Recursive"].status is dojob.Status.OK
    assert report["Recursive"].result[1] == report["Recursive"].result  # rebuilt with its cycle
    assert report["Lock"].status is dojob.Status.FAILED
    assert "cannot send the try's outcome back" in str(report["Lock"].exception)
    assert "FAILED  Lock (1 try): RemoteError: TypeError: cannot send" in report.summary()


def test_a_megabyte_error_is_bounded_in_the_event_log():
    """A 5 MB error message made a 20 MB event log (the message is in four events of the try)."""
    import io

    from dojob.eventlog import EventLog

    class Huge(dojob.Job):
        TRIES = 1

        def Check(self, *args, **kwargs):
            raise RuntimeError("x" * 5_000_000)

        def Run(self, *args, **kwargs):
            pass

    stream = io.StringIO()
    report = dojob.run(Huge, observers=[EventLog(stream)])
    assert not report.success and len(str(report.jobs["Huge"].exception)) == 5_000_000  # the report keeps it all
    lines = stream.getvalue().splitlines()
    assert len(stream.getvalue()) < 100_000, len(stream.getvalue())
    errors = [json.loads(line)["error"] for line in lines if '"error": "x' in line]
    assert errors and all(e.endswith("... (4995040 more characters)") and len(e) < 5_100 for e in errors), errors[0][
        -60:
    ]


def test_a_megabyte_error_is_bounded_in_the_html_report():
    from dojob.htmlreport import MAX_TRACEBACK_CHARS

    class Huge(dojob.Job):
        TRIES = 1

        def Check(self, *args, **kwargs):
            raise RuntimeError("x" * 3_000_000)

        def Run(self, *args, **kwargs):
            pass

    page = dojob.run(Huge).to_html()
    assert len(page) < 3 * MAX_TRACEBACK_CHARS + 200_000, len(page)
    assert "characters left out" in page and "RuntimeError" in page
