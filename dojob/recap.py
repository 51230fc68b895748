"""The end-of-run recap: what an operator reads when a run is over.

:func:`summary` turns a :class:`~dojob.report.Report` into a few lines of text:
each failed job with its last error (on one line) and its tries, the jobs each
failure blocked listed under it, why the run stopped early if it did, and a last
line with the counts per status and the elapsed time. For a plan run
(``plan=True``, ``dojob check``) it lists every job's plan instead.

The text is safe for a terminal: job names and messages go through
:func:`~dojob.observe.one_line`, so a hostile name cannot move the cursor or
inject escape sequences. Colour is opt-in (``color=True``); :func:`use_color`
decides it for a stream the way the ``dojob`` command does (a terminal, and
``NO_COLOR`` unset or empty).

Example:
    >>> print(dojob.run(WatchMovie, kwargs=options).summary())
    FAILED  TurnOnTV (3 tries): RuntimeError: Remote batteries are dead.
              blocked: StartMovie, WatchMovie
    not converged in 0.36 s: 9 ok, 4 changed (3 needed retries), 1 failed, 2 blocked, 0 interrupted
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

from .events import Status
from .observe import one_line
from .render import format_duration

__all__ = ["PLAN_WORDS", "format_seconds", "summary", "use_color"]

#: How each ``JobReport.plan`` value reads in a plan recap.
PLAN_WORDS: dict[str, str] = {
    "ok": "ok",
    "would_run": "would run",
    "ok_upstream_changes": "ok now, upstream will change",
    "would_run_upstream_changes": "would run, upstream will change",
}

#: Failed jobs listed in full; the rest are counted.
MAX_FAILED_SHOWN = 20
#: Blocked jobs named under each failure; the rest are counted.
MAX_BLOCKED_SHOWN = 10
#: Longest error message shown (characters).
MAX_ERROR_CHARS = 300

_STOPPERS = (KeyboardInterrupt, SystemExit)

# SGR codes; the recap is plain text, colour is a few escape sequences around words.
_SGR = {
    "ok": "32",
    "changed": "32;1",
    "failed": "31;1",
    "blocked": "90",
    "interrupted": "33",
    "bad": "31;1",
    "good": "32;1",
    "warn": "33;1",
    "dim": "2",
}

_STOP_REASONS = {
    "critical": "a critical job failed",
    "timeout": "the run's timeout passed",
    "interrupted": "interrupted (Ctrl-C)",
}


def use_color(stream: TextIO | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output written to ``stream``.

    True when ``stream`` is a terminal, ``TERM`` is not ``dumb`` and ``NO_COLOR``
    is unset or empty (https://no-color.org); ``FORCE_COLOR`` (non-empty) forces it.

    Args:
        stream: where the text goes.
        environ: the environment (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


def format_seconds(seconds: float | None) -> str:
    """A duration for people (see :func:`dojob.render.format_duration`), or ``"?"`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    return format_duration(seconds)


def error_line(exception: BaseException | None) -> str:
    """``"Type: message"`` of an exception, on one safe line (the message shortened if long)."""
    if exception is None:
        return "no error recorded"
    try:
        message = str(exception)
    except Exception:  # a hostile __str__ must not break the recap
        message = "<unprintable>"
    name = type(exception).__name__
    text = f"{name}: {message}" if message else name
    return one_line(text, MAX_ERROR_CHARS)


def _tries(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


def _names(names: list[str], limit: int) -> str:
    shown = ", ".join(one_line(n, 200) for n in names[:limit])
    if len(names) > limit:
        shown += f" ... and {len(names) - limit} more"
    return shown


class _Paint:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        if not self.color:
            return text
        return f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def _is_interrupted(status: Status, exception: BaseException | None, stopped: str | None) -> bool:
    """A job the run's stop cut short: never started, or its try was interrupted."""
    if status is Status.NOT_RUN:
        return stopped is not None
    return status is Status.FAILED and isinstance(exception, _STOPPERS)


def _was_cut(job: Any) -> bool:
    """A job whose try the run's stop cut short (Ctrl-C, or the run's timeout)."""
    return job.status is Status.NOT_RUN or isinstance(job.exception, _STOPPERS)


def counts(report: Any) -> dict[str, int]:
    """The recap's counts per kind of ending.

    Keys: ok, ok_retried (ok on a later try), changed, retried (changed on a
    later try), failed, blocked, interrupted (cut short by the run's stop),
    not_run (never tried although the run was not stopped).
    """
    jobs = report.jobs
    column = getattr(jobs, "column", None)
    if column is not None:
        statuses, tries, exceptions = column("status"), column("tries"), column("exception")
    else:
        rows = list(jobs.values())
        statuses = [j.status for j in rows]
        tries = [j.tries for j in rows]
        exceptions = [j.exception for j in rows]
    keys = ("ok", "ok_retried", "changed", "retried", "failed", "blocked", "interrupted", "not_run")
    out = dict.fromkeys(keys, 0)
    stopped = report.stopped
    for status, n, exc in zip(statuses, tries, exceptions, strict=True):
        if _is_interrupted(status, exc, stopped):
            out["interrupted"] += 1
        elif status is Status.OK or status is Status.CHANGED:
            out[status.value] += 1
            if n > 1:
                out["retried" if status is Status.CHANGED else "ok_retried"] += 1
        elif status is Status.FAILED or status is Status.BLOCKED or status is Status.NOT_RUN:
            out[status.value] += 1
    return out


def summary(report: Any, *, color: bool = False) -> str:
    """The recap of ``report`` as text (no trailing newline).

    Args:
        report: a :class:`~dojob.report.Report`.
        color: add ANSI colours.

    Returns:
        For a normal run: one ``FAILED`` line per failed job with its tries and
        last error (``INTERRUPTED`` for a try the run's stop cut short), the jobs it blocked indented below it,
        a line saying why the run stopped if it did, and a last line with the
        verdict, the counts and the elapsed time. For a plan run: one line per
        job with its plan, then the counts.
    """
    paint = _Paint(color)
    plans = [j.plan for j in report.jobs.values()]
    if any(p is not None for p in plans):
        return _plan_summary(report, paint)
    lines: list[str] = []
    blocked: dict[str, list[str]] = {}
    failed: list[Any] = []
    for job in report.jobs.values():
        if job.status is Status.BLOCKED and job.blocked_by is not None:
            blocked.setdefault(job.blocked_by, []).append(job.name)
        elif job.status is Status.FAILED or (job.status is Status.NOT_RUN and job.tries):
            failed.append(job)
    cut = [_was_cut(job) for job in failed]
    width = 11 if any(cut) else 6
    indent = " " * (width + 2)
    for job, was_cut in list(zip(failed, cut, strict=True))[:MAX_FAILED_SHOWN]:
        if was_cut:
            head = paint("INTERRUPTED".ljust(width), "interrupted")
            what = f"during try {job.tries} ({error_line(job.exception)})"
        else:
            head = paint("FAILED".ljust(width), "failed")
            what = f"({_tries(job.tries)}): {error_line(job.exception)}"
        lines.append(f"{head}  {one_line(job.name, 200)} {what}")
        under = blocked.get(job.name)
        if under:
            lines.append(indent + paint(f"blocked: {_names(under, MAX_BLOCKED_SHOWN)}", "blocked"))
    if len(failed) > MAX_FAILED_SHOWN:
        lines.append(f"... and {len(failed) - MAX_FAILED_SHOWN} more failed jobs")
    if report.stopped is not None:
        reason = _STOP_REASONS.get(report.stopped, one_line(str(report.stopped)))
        stopped_job = getattr(report, "stopped_job", None)
        if stopped_job:
            reason += f": {one_line(stopped_job, 200)}"
        lines.append(paint(f"run stopped: {reason}", "warn"))
    lines.extend(_history_lines(report, paint))
    c = counts(report)
    verdict = paint("converged", "good") if report.success else paint("not converged", "bad")
    ok_retried = f" ({c['ok_retried']} needed retries)" if c["ok_retried"] else ""
    parts = [
        paint(f"{c['ok']} ok", "ok") + ok_retried,
        paint(f"{c['changed']} changed", "changed") + f" ({c['retried']} needed retries)",
        paint(f"{c['failed']} failed", "failed") if c["failed"] else f"{c['failed']} failed",
        paint(f"{c['blocked']} blocked", "blocked"),
        paint(f"{c['interrupted']} interrupted", "interrupted") if c["interrupted"] else "0 interrupted",
    ]
    if c["not_run"]:
        parts.append(f"{c['not_run']} not run")
    lines.append(f"{verdict} in {format_seconds(report.elapsed)}: {', '.join(parts)}")
    return "\n".join(lines)


def _history_lines(report: Any, paint: _Paint) -> list[str]:
    """What :mod:`dojob.history` found (drifted, flapping, unstable jobs), when the run was recorded or verified."""
    findings = getattr(report, "history", None)
    return findings.recap_lines(paint.color) if findings is not None else []


def _plan_summary(report: Any, paint: _Paint) -> str:
    """A plan run's recap: every job's plan, then the counts."""
    rows = list(report.jobs.values())
    width = min(40, max((len(one_line(j.name, 200)) for j in rows), default=3))
    lines = []
    tally = dict.fromkeys(PLAN_WORDS, 0)
    not_checked = 0
    for job in rows:
        name = one_line(job.name, 200).ljust(width)
        if job.plan is None:
            not_checked += 1
            lines.append(f"{name}  {paint('not checked', 'interrupted')}")
            continue
        tally[job.plan] = tally.get(job.plan, 0) + 1
        word = PLAN_WORDS.get(job.plan, job.plan)
        style = "ok" if job.plan == "ok" else ("warn" if job.plan.startswith("would_run") else "dim")
        line = f"{name}  {paint(word, style)}"
        if job.plan.startswith("would_run") and job.exception is not None:
            line += f"  ({error_line(job.exception)})"
        lines.append(line)
    if report.stopped is not None:
        lines.append(paint(f"check stopped: {_STOP_REASONS.get(report.stopped, report.stopped)}", "warn"))
    lines.extend(_history_lines(report, paint))
    would = tally["would_run"] + tally["would_run_upstream_changes"]
    verdict = paint("nothing would run", "good") if would == 0 and not not_checked else paint("changes needed", "warn")
    parts = [f"{tally['ok']} ok", f"{would} would run", f"{tally['ok_upstream_changes']} ok now, upstream will change"]
    if not_checked:
        parts.append(f"{not_checked} not checked")
    lines.append(f"{verdict} ({format_seconds(report.elapsed)}): {', '.join(parts)}")
    return "\n".join(lines)
