"""A run's HTML report: one self-contained page, no scripts, no external resources.

:func:`to_html` (also :meth:`Report.to_html <dojob.report.Report.to_html>`)
builds a page with the recap, the graph coloured by status (inline SVG drawn by
Graphviz through :mod:`dojob.render`), a timeline of every phase of every try
with one row per job (inline SVG drawn here, from a
:class:`~dojob.timeline.Timeline`), and a table of failures with tracebacks.

Every piece of text that comes from a job (names, messages, tracebacks) is
escaped with :func:`html.escape` after its control characters are made visible,
and a Content-Security-Policy forbids scripts and remote loads, so a hostile job
name cannot inject markup or run code in the reader's browser.
"""

from __future__ import annotations

import html
import math
import re
import traceback as tb_module
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from .events import Status
from .recap import counts, error_line, failure_text, format_seconds, invisible_shown, is_plan, plan_counts, summary
from .recap import visible as one_line
from .timeline import Span, Timeline, TrySpan

__all__ = ["MAX_GRAPH_JOBS", "MAX_TIMELINE_ROWS", "PHASE_COLORS", "STATUS_COLORS", "timeline_svg", "to_html"]

#: Graphs with more jobs are not drawn (Graphviz layout time grows fast).
MAX_GRAPH_JOBS = 1500
#: Most job rows drawn in the timeline.
MAX_TIMELINE_ROWS = 1500
#: Most failures listed with their tracebacks.
MAX_FAILURES = 500
#: Longest traceback shown per failure (characters): a job's error may hold megabytes.
MAX_TRACEBACK_CHARS = 40_000

#: Fill colour of each phase in the timeline.
PHASE_COLORS = {
    "init": "#bab0ac",
    "check": "#4e79a7",
    "run": "#f28e2b",
    "recheck": "#59a14f",
    "cleanup": "#9c755f",
}
#: Colour of each status (as in the graph).
STATUS_COLORS = {
    "pending": "#ffffff",
    "not_run": "#ffffff",
    "ok": "#2ca02c",
    "changed": "#006400",
    "failed": "#d62728",
    "blocked": "#999999",
    "skipped": "#fff8b0",
    "would_run": "#ff9f1c",
    "interrupted": "#f1c40f",
}

#: Statuses of jobs a stop cut short (a forever job cancelled once the work was done is *not run*).
_CUT = (Status.INTERRUPTED,)

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fff}
main{max-width:1250px;margin:0 auto;padding:1em 1.5em 3em}
h1{font-size:1.5em;margin:.4em 0}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.verdict{display:inline-block;padding:.2em .7em;border-radius:.3em;font-weight:bold;color:#fff}
.verdict.good{background:#2ca02c}.verdict.bad{background:#d62728}.verdict.plan{background:#e07b00}
dl.context{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;font-size:.9em;margin:.4em 0}
dl.context dt{color:#666}dl.context dd{margin:0;font-family:monospace;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.4em 0}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6em;overflow:auto;font-size:.85em;margin:.3em 0}
.figure{overflow:auto;border:1px solid #eee;padding:.5em}
.figure svg{max-width:100%;height:auto}
.legend span{display:inline-block;margin-right:1.2em;font-size:.85em}
.swatch{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin-right:.3em;border:1px solid #555}
.note{color:#666;font-size:.9em}
details summary{cursor:pointer;color:#036}
"""

# control characters, bidi overrides and isolates, line separators, lone surrogates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _esc(text: Any) -> str:
    """Text for HTML (content or quoted attribute): control and invisible characters shown (``\\xNN``), then escaped."""
    text = invisible_shown(str(text))
    text = _CONTROL.sub(_visible, text)
    return html.escape(text, quote=True)


def _name(name: str, limit: int = 200) -> str:
    """A job name on one line, escaped for HTML."""
    return html.escape(one_line(str(name), limit), quote=True)


# -- the graph ------------------------------------------------------------------


_SVG_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _safe_svg(svg_text: str) -> str:
    """Graphviz's SVG made ready to inline: prologue and comments dropped, checked for active content.

    Raises:
        ValueError: the SVG is not well-formed or holds scripts, event handlers,
            foreign objects or javascript: links.
    """
    text = _COMMENT.sub("", _SVG_PROLOGUE.sub("", svg_text, count=1))
    root = ET.fromstring(text)
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in ("script", "foreignobject", "iframe", "object", "embed"):
            raise ValueError(f"unexpected <{tag}> in Graphviz output")
        for attr, value in element.attrib.items():
            local = attr.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or (local == "href" and not value.startswith("#")):
                raise ValueError(f"unexpected attribute {local!r} in Graphviz output")
    return text.strip()


def graph_section(report: Any) -> str:
    """The graph coloured by ``report``, as inline SVG (or why it is missing)."""
    graph = getattr(report, "graph", None)
    if graph is None:
        return '<p class="note">The graph is not known for this report.</p>'
    if len(graph) > MAX_GRAPH_JOBS:
        return (
            f'<p class="note">The graph has {len(graph)} jobs; graphs of more than {MAX_GRAPH_JOBS} are not drawn.</p>'
        )
    from .render import MAX_FANOUT, RenderError, graph_dot, svg

    dot = graph_dot(graph, report, max_fanout=MAX_FANOUT)
    try:
        picture = _safe_svg(svg(dot))
    except (RenderError, ValueError, ET.ParseError) as exc:
        return (
            f'<p class="note">The graph could not be drawn ({_esc(one_line(str(exc), 300))}); its DOT source:</p>'
            f"<pre>{_esc(dot)}</pre>"
        )
    return f'<div class="figure">{picture}</div>'


# -- the timeline -----------------------------------------------------------------

_LABEL_W = 230
_CHART_W = 900
_ROW_H = 22
_BAR_H = 13
_AXIS_H = 26
_LANE_H = 36


def _nice_step(span: float, target: int = 8) -> float:
    """A round tick interval (1, 2 or 5 times a power of ten) giving about ``target`` ticks."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # pragma: no cover


def _fmt(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".") if t else "0"


def _rows_from_report(report: Any) -> tuple[list[str], list[Span], list[TrySpan]]:
    """Without a Timeline: one bar per job, from its first try's start to its last try's end."""
    jobs, spans = [], []
    for job in report.jobs.values():
        if job.started is None:
            continue
        jobs.append(job.name)
        span = Span(job.name, job.tries, job.status.value, job.started, job.ended, job.status.ok)
        if job.exception is not None and not job.status.ok:
            span.error = error_line(job.exception)
        spans.append(span)
    return jobs, spans, []


def _shown_status(job: Any) -> str:
    """The status a row shows: in a plan, "would_run" or "ok", never "failed"."""
    if job.plan is not None:
        return "would_run" if job.plan.startswith("would_run") else "ok"
    return str(getattr(job.status, "value", job.status))


def timeline_svg(report: Any, timeline: Timeline | None = None) -> str:
    """The timeline as inline SVG: a row per job, a bar per phase, a line per try, a lane of parallelism.

    Args:
        report: the run's report (its elapsed time sets the scale).
        timeline: what a :class:`Timeline` observer recorded; without it one bar per job.
    """
    if timeline is not None:
        jobs, spans, tries = list(timeline.jobs), timeline.spans, timeline.tries
        end = max(timeline.last_time, report.elapsed or 0.0)
    else:
        jobs, spans, tries = _rows_from_report(report)
        end = report.elapsed or 0.0
    by_job_status = {name: _shown_status(j) for name, j in report.jobs.items()}
    listed = set(jobs)
    jobs += [name for name in report.jobs if name not in listed]  # never tried: empty rows
    shown = jobs[:MAX_TIMELINE_ROWS]
    row_of = {name: i for i, name in enumerate(shown)}
    end = end if end > 0 else 1e-3
    scale = _CHART_W / end
    lane = _LANE_H if timeline is not None and timeline.running else 0
    top = _AXIS_H + lane
    height = top + _ROW_H * max(1, len(shown)) + 8
    width = _LABEL_W + _CHART_W + 20
    x0 = _LABEL_W

    def x(t: float) -> float:
        return x0 + max(0.0, min(t, end)) * scale

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="12">',
        f"<title>timeline: {len(shown)} jobs, {_esc(format_seconds(end))}</title>",
    ]
    # axis and grid
    step = _nice_step(end)
    n_ticks = int(end / step) + 1
    for k in range(n_ticks + 1):
        tick = k * step
        if tick > end * 1.0001:
            break
        xt = x(tick)
        out.append(f'<line x1="{xt:.1f}" y1="{_AXIS_H - 6}" x2="{xt:.1f}" y2="{height - 4}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{xt:.1f}" y="{_AXIS_H - 10}" text-anchor="middle" fill="#555">{_fmt(tick)} s</text>')
    # parallelism lane
    if timeline is not None and timeline.running:
        out.append(_parallel_lane(timeline.running, end, x, _AXIS_H, timeline.workers))
    # rows
    for i, name in enumerate(shown):
        y = top + i * _ROW_H
        if i % 2:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{_ROW_H}" fill="#fafafa"/>')
        status = by_job_status.get(name, "pending")
        color = STATUS_COLORS.get(status, "#ffffff")
        out.append(
            f'<rect x="4" y="{y + 6}" width="10" height="10" fill="{color}" stroke="#555">'
            f"<title>{_esc(status)}</title></rect>"
        )
        out.append(
            f'<text x="20" y="{y + 15}" fill="#222">{_name(name, 32)}'
            f"<title>{_name(name, 2000)}: {_esc(status)}</title></text>"
        )
    # tries: a line under the phases; a dotted line while waiting for the retry
    next_start: dict[tuple[str, int], float] = {(t.job, t.try_number): t.start for t in tries}
    for t in tries:
        row = row_of.get(t.job)
        if row is None:
            continue
        y = top + row * _ROW_H + 3 + _BAR_H + 2
        t_end = t.end if t.end is not None else end
        color = "#2ca02c" if t.ok else ("#d62728" if t.ok is False else "#888888")
        what = "passed" if t.ok else ("failed" if t.ok is False else "did not end")
        tip = f"{one_line(t.job, 300)} try {t.try_number} {what}: {_fmt(t.start)}-{_fmt(t_end)} s"
        out.append(
            f'<line x1="{x(t.start):.1f}" y1="{y}" x2="{max(x(t_end), x(t.start) + 2):.1f}" y2="{y}" '
            f'stroke="{color}" stroke-width="2"><title>{_esc(tip)}</title></line>'
        )
        following = next_start.get((t.job, t.try_number + 1))
        if t.end is not None and following is not None and following > t.end:
            out.append(
                f'<line x1="{x(t.end):.1f}" y1="{y}" x2="{x(following):.1f}" y2="{y}" stroke="#999" '
                f'stroke-dasharray="2,3"><title>{_esc(one_line(t.job, 300))} waits for try {t.try_number + 1}'
                "</title></line>"
            )
    # phases
    for s in spans:
        row = row_of.get(s.job)
        if row is None:
            continue
        y = top + row * _ROW_H + 3
        s_end = s.end if s.end is not None else end
        w = max(2.0, (min(s_end, end) - max(0.0, s.start)) * scale)
        fill = PHASE_COLORS.get(s.phase) or STATUS_COLORS.get(s.phase, "#cccccc")
        stroke = ' stroke="#d62728" stroke-width="2"' if s.ok is False else ""
        if s.ok is None:
            stroke = ' stroke="#000" stroke-width="1" stroke-dasharray="3,2"'
        label = s.phase if timeline is None else f"try {s.try_number} {s.phase}"
        if s.phase == "cleanup":
            label = "cleanup"
        outcome = "pass" if s.ok else ("fail" if s.ok is False else _unfinished(s))
        took = format_seconds(s_end - s.start)
        tip = f"{one_line(s.job, 300)} {label}: {_fmt(s.start)}-{_fmt(s_end)} s ({took}), {outcome}"
        if s.error:
            tip += f"\n{one_line(s.error, 500)}"
        if s.worker:
            tip += f"\non {one_line(s.worker, 100)}"
        out.append(
            f'<rect x="{x(s.start):.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}" fill="{fill}"{stroke}>'
            f"<title>{_esc(tip)}</title></rect>"
        )
    if len(jobs) > len(shown):
        out.append(
            f'<text x="{x0}" y="{height - 2}" fill="#666">... {len(jobs) - len(shown)} more jobs not drawn</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _parallel_lane(steps: list[tuple[float, int]], end: float, x: Any, y0: int, workers: int) -> str:
    """A step chart of how many tries ran at each moment, from ``(time, running)`` steps."""
    peak = max((n for _, n in steps), default=0)
    top = max(peak, workers, 1)
    h = _LANE_H - 10
    base = y0 + h

    def y(n: int) -> float:
        return base - n * h / top

    path = [f"M{x(0.0):.1f},{base}"]
    level = 0
    for t, n in steps:
        path.append(f"L{x(t):.1f},{y(level):.1f}")
        path.append(f"L{x(t):.1f},{y(n):.1f}")
        level = n
    path.append(f"L{x(end):.1f},{y(level):.1f}L{x(end):.1f},{base}Z")
    return (
        f'<text x="20" y="{base - 4}" fill="#222">running tries (max {peak})</text>'
        f'<path d="{"".join(path)}" fill="#c6dbef" stroke="#4e79a7">'
        f"<title>tries running at once: at most {peak} (workers: {workers})</title></path>"
    )


def _legend() -> str:
    parts = [f'<span><i class="swatch" style="background:{c}"></i>{p}</span>' for p, c in PHASE_COLORS.items()]
    parts.append('<span><i class="swatch" style="background:#fff;border:2px solid #d62728"></i>phase failed</span>')
    parts.append('<span><i class="swatch" style="background:#fff;border:1px dashed #000"></i>did not end</span>')
    parts.append('<span><i class="swatch" style="background:#999;height:2px;border:0"></i>waiting to retry</span>')
    return '<p class="legend">' + "".join(parts) + "</p>"


# -- failures -----------------------------------------------------------------------


def _format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc``, cut at :data:`MAX_TRACEBACK_CHARS` (its last lines kept: they say the error)."""
    try:
        text = "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    except Exception:  # pragma: no cover - a hostile exception
        return error_line(exc)
    if len(text) > MAX_TRACEBACK_CHARS:
        half = MAX_TRACEBACK_CHARS // 2
        text = f"{text[:half]}\n... ({len(text) - 2 * half} characters left out) ...\n{text[-half:]}"
    return text


def _unfinished(span: Span) -> str:
    """How a phase that never ended reads in its tooltip."""
    if span.abandoned:
        return "abandoned at its timeout, its thread left running"
    return "timed out" if span.error and span.error.startswith("PhaseTimeout") else "interrupted"


def failures_section(report: Any, timeline: Timeline | None) -> str:
    """A table of failed jobs (and failed Cleanups) with their last error and traceback."""
    last_failure: dict[str, Span] = {}
    cleanup_failures: list[Span] = []
    if timeline is not None:
        for s in timeline.spans:
            if s.ok is False or (s.ok is None and s.error):  # raised, or cut at its timeout
                if s.phase == "cleanup":
                    cleanup_failures.append(s)
                else:
                    last_failure[s.job] = s
    rows = []
    plan = is_plan(report)
    failed = [
        j
        for j in report.jobs.values()
        if (j.status is Status.FAILED or (j.status in _CUT and j.exception is not None))
        and not (plan and j.plan is not None)  # in a plan a failing Check means "would run", not a failure
    ]
    kinds = _kinds(report)
    for job in failed[:MAX_FAILURES]:
        span = last_failure.get(job.name)
        tb = span.traceback if span is not None and span.traceback else None
        if tb is None and job.exception is not None:
            tb = _format_traceback(job.exception)
        where = f"try {span.try_number} {span.phase}" if span is not None else f"try {job.tries}"
        if job.status in _CUT:
            where += " (interrupted)"
        cause = getattr(job, "cause", None)
        cause_tb = ""
        if cause is not None:
            cause_tb = (
                f"<details><summary>Run's traceback</summary><pre>{_esc(_format_traceback(cause))}</pre></details>"
            )
        rows.append(
            f"<tr><td>{_name(job.name)}</td><td class=num>{job.tries}</td><td>{_esc(where)}</td>"
            f"<td>{_esc(failure_text(job, kinds.get(job.name)))}{cause_tb}"
            f"<details><summary>traceback</summary><pre>{_esc(tb or 'no traceback')}</pre></details></td></tr>"
        )
    for span in cleanup_failures[:MAX_FAILURES]:
        rows.append(
            f"<tr><td>{_name(span.job)}</td><td class=num>-</td><td>cleanup</td>"
            f"<td>{_esc(one_line(span.error or '', 500))}"
            f"<details><summary>traceback</summary><pre>{_esc(span.traceback or 'no traceback')}</pre>"
            "</details></td></tr>"
        )
    if not rows:
        return '<p class="note">No failures.</p>'
    more = ""
    if len(failed) > MAX_FAILURES:
        more = f'<p class="note">... and {len(failed) - MAX_FAILURES} more failed jobs.</p>'
    return (
        "<table><thead><tr><th>job</th><th>tries</th><th>last failure</th><th>error</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + more
    )


def _kinds(report: Any) -> dict[str, str]:
    graph = getattr(report, "graph", None)
    return {spec.name: spec.kind for spec in graph.specs} if graph is not None else {}


def plan_section(report: Any) -> str:
    """A plan run's jobs that would run, each with what its Check said (programming errors marked)."""
    from .diagnose import programming_error

    kinds = _kinds(report)
    rows = []
    for job in report.jobs.values():
        if job.plan is None or not job.plan.startswith("would_run"):
            continue
        bug = programming_error(job, kinds.get(job.name))
        said = error_line(job.exception)
        if bug:
            said = f"programming error in {bug}: {said}"
        upstream = "yes" if job.plan.endswith("_upstream_changes") else "no"
        rows.append(f"<tr><td>{_name(job.name)}</td><td>{upstream}</td><td>{_esc(said)}</td></tr>")
    if not rows:
        return '<p class="note">Nothing would run.</p>'
    return (
        "<table><thead><tr><th>job</th><th>upstream will change</th><th>its Check said</th></tr></thead><tbody>"
        + "".join(rows[:MAX_FAILURES])
        + "</tbody></table>"
    )


def context_section(context: Mapping[str, str]) -> str:
    """When, where and with what command line the run happened."""
    words = {
        "started": "started (UTC)",
        "host": "host",
        "user": "user",
        "cwd": "working directory",
        "command": "command line",
        "python": "Python",
    }
    items = [f"<dt>{_esc(words.get(k, k))}</dt><dd>{_esc(one_line(str(v), 2000))}</dd>" for k, v in context.items()]
    return '<dl class="context" id="context">' + "".join(items) + "</dl>"


def default_context() -> dict[str, str]:
    """This process's context: now, the host, the user, the working directory and ``sys.argv``."""
    import datetime as dt
    import getpass
    import os
    import sys

    from .host import hostname

    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "host": hostname(),
        "user": user,
        "cwd": os.getcwd(),
        "command": " ".join(sys.argv[:1]) + " ...",
    }


def _plan_counts_table(report: Any) -> str:
    c = plan_counts(report)
    cells = [
        ("ok", c["ok"], STATUS_COLORS["ok"]),
        ("would run", c["would_run"], STATUS_COLORS["would_run"]),
        ("ok now, upstream will change", c["ok_upstream_changes"], "#ffffff"),
        ("programming errors", c["programming_errors"], STATUS_COLORS["failed"]),
        ("not checked", c["not_checked"], "#ffffff"),
    ]
    head = "".join(f'<th><i class="swatch" style="background:{color}"></i>{word}</th>' for word, _, color in cells)
    body = "".join(f"<td class=num>{n}</td>" for _, n, _ in cells)
    return f'<table id="counts"><thead><tr>{head}</tr></thead><tbody><tr>{body}</tr></tbody></table>'


def _counts_table(report: Any) -> str:
    if is_plan(report):
        return _plan_counts_table(report)
    c = counts(report)
    cells = [
        ("ok", c["ok"], STATUS_COLORS["ok"]),
        ("changed", c["changed"], STATUS_COLORS["changed"]),
        ("needed retries", c["retried"] + c["ok_retried"], "#ffffff"),
        ("failed", c["failed"], STATUS_COLORS["failed"]),
        ("blocked", c["blocked"], STATUS_COLORS["blocked"]),
        ("interrupted", c["interrupted"], STATUS_COLORS["interrupted"]),
    ]
    head = "".join(f'<th><i class="swatch" style="background:{color}"></i>{word}</th>' for word, _, color in cells)
    body = "".join(f"<td class=num>{n}</td>" for _, n, _ in cells)
    elapsed = _esc(format_seconds(report.elapsed))
    return (
        f'<table id="counts"><thead><tr>{head}<th>elapsed</th></tr></thead>'
        f"<tbody><tr>{body}<td class=num>{elapsed}</td></tr></tbody></table>"
    )


def _history_section(report: Any) -> str:
    """What :mod:`dojob.history` found, and each job's last runs, when the run was recorded or verified."""
    findings = getattr(report, "history", None)
    return findings.html_section() if findings is not None else ""


def to_html(
    report: Any, timeline: Timeline | None = None, *, title: str | None = None, context: Mapping[str, str] | None = None
) -> str:
    """The HTML report of a run, as one self-contained page.

    Args:
        report: a :class:`~dojob.report.Report`.
        timeline: a :class:`~dojob.timeline.Timeline` that observed the run
            (every phase of every try); without it each job is drawn as one bar.
        title: the page's title (default: from the root jobs' names).
        context: when, where and how it ran (``started``, ``host``, ``user``,
            ``cwd``, ``command``...); default: this process, now.

    Returns:
        The page, starting with ``<!DOCTYPE html>``. A plan run (``dojob check``)
        reads as a plan: its badge says "changes needed" or "nothing would run",
        its counts are the plan's, and the jobs that would run are listed under
        "Would run", not under "Failures".
    """
    roots = ", ".join(one_line(r, 100) for r in getattr(report, "roots", ()) or ())
    if title is None:
        title = f"dojob report: {roots}" if roots else "dojob report"
    plan = is_plan(report)
    if plan:
        c = plan_counts(report)
        nothing = c["would_run"] == 0 and not c["not_checked"]
        verdict, badge = ("nothing would run", "good") if nothing else ("changes needed", "plan")
    else:
        verdict, badge = ("converged", "good") if report.success else ("not converged", "bad")
    if report.stopped:
        verdict += f" (stopped: {report.stopped})"
    plan_note = ""
    if plan:
        plan_note = (
            '<p class="note">This was a plan run (<code>dojob check</code>): every Check ran once, and the '
            "Cleanups of the jobs checked; no Run. Orange jobs would run.</p>"
        )
    n_tries = len(timeline.tries) if timeline is not None else sum(j.tries for j in report.jobs.values())
    timeline_note = (
        f'<p class="note">{n_tries} tries on at most {timeline.max_parallel()} at once '
        f"({timeline.workers} worker{'s' if timeline.workers != 1 else ''}). Hover a bar for its times and error.</p>"
        if timeline is not None
        else '<p class="note">No per-phase timing was recorded (pass a Timeline observer): one bar per job.</p>'
    )
    if plan:
        last = f'<section id="plan"><h2>Would run</h2>{plan_section(report)}</section>'
    else:
        last = f'<section id="failures"><h2>Failures</h2>{failures_section(report, timeline)}</section>'
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(one_line(title, 300))}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_esc(one_line(title, 300))}</h1>",
        f'<p><span class="verdict {badge}" id="verdict">{_esc(verdict)}</span> '
        f"{len(report.jobs)} jobs in {_esc(format_seconds(report.elapsed))}</p>",
        context_section(context if context is not None else default_context()),
        plan_note,
        _history_section(report),
        '<section id="recap"><h2>Recap</h2>',
        _counts_table(report),
        f'<pre class="recap">{_esc(summary(report))}</pre></section>',
        f'<section id="graph"><h2>Graph</h2>{graph_section(report)}</section>',
        '<section id="timeline"><h2>Timeline</h2>',
        timeline_note,
        _legend(),
        f'<div class="figure">{timeline_svg(report, timeline)}</div></section>',
        last,
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
