"""The end-of-run recap: what an operator reads when a run is over.

:func:`summary` turns a :class:`~dojob.report.Report` into a few lines of text:
each failed job with its last error (on one line) and its tries, the jobs each
failure blocked listed under it, why the run stopped early if it did, and a last
line with the counts per status and the elapsed time. For a plan run
(``plan=True``, ``dojob check``) it lists every job's plan instead.

For a failed job whose Run raised before its recheck failed, both errors are
shown, the Run's (the cause) first; a failure that is a bug in the job's code
(its ``__init__`` raised, or its Check raised ``NameError``, ``TypeError``...)
says "programming error". A ``changed:`` line names the jobs that changed
the world.

The text is safe for a terminal: job names and messages go through
:func:`visible`, so a hostile name cannot move the cursor or inject escape
sequences, and invisible characters (zero-width spaces, bidi marks) are shown
as ``\u200b``: ``Deploy\u200bProd`` never reads as ``DeployProd``. Colour is opt-in (``color=True``); :func:`use_color`
decides it for a stream the way the ``dojob`` command does (a terminal, and
``NO_COLOR`` unset or empty).

Example:
    >>> print(dojob.run(WatchMovie, kwargs={"battery_state": "dead"}).summary())
    FAILED  TurnOnTV (3 tries): RuntimeError: Remote batteries are dead.
            blocked: StartMovie, WatchMovie
    FAILED  SitOnCouch (3 tries): RuntimeError: No space on couch.
            also blocks: StartMovie, WatchMovie
    changed: DimTheLights, PopcornBowl, Popcorn, Pizza, SendInvite[NAME='Wendell Bagg'], ...
    not converged in 206 ms: 3 ok, 8 changed (3 needed retries), 2 failed, 2 blocked, 0 interrupted
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TextIO

from .durations import format_duration
from .errors import RunTimeout, StoppedBeforeRun, safe_str, safe_type_name
from .events import Status
from .observe import one_line as _one_line

__all__ = [
    "PLAN_WORDS",
    "counts",
    "error_line",
    "failed_line",
    "format_seconds",
    "invisible_shown",
    "plan_counts",
    "summary",
    "use_color",
    "visible",
]


def visible(text: str, limit: int = 2000) -> str:
    """``text`` on one safe terminal line, with invisible characters shown (``\\u200b``).

    :func:`dojob.observe.one_line` escapes control characters; this also
    escapes format characters (zero-width spaces and joiners, bidi marks, soft
    hyphens...), which would make two different names look the same.
    """
    return _one_line(invisible_shown(str(text)), limit)


def invisible_shown(text: str) -> str:
    """``text`` with its format characters (zero-width spaces, bidi marks...) written as ``\\u200b``, lines kept."""
    if text.isascii():  # no format character is ASCII: most names need no look-up (nor unicodedata)
        return text
    from unicodedata import category

    def invisible(char: str) -> bool:
        return category(char) in ("Cf", "Zl", "Zp") or char in "\u115f\u1160\u3164\uffa0"

    if any(invisible(c) for c in text):
        text = "".join(f"\\u{ord(c):04x}" if invisible(c) else c for c in text)
    return text


one_line = visible

#: How each ``JobReport.plan`` value reads in a plan recap.
PLAN_WORDS: dict[str, str] = {
    "ok": "ok",
    "would_run": "would run",
    "ok_upstream_changes": "ok now, upstream will change",
    "would_run_upstream_changes": "would run, upstream will change",
    "skipped": "SKIPPED (--skip: treated as satisfied, not checked)",
}

#: Failed jobs listed in full; the rest are counted.
MAX_FAILED_SHOWN = 20
#: Blocked jobs named under each failure; the rest are counted.
MAX_BLOCKED_SHOWN = 10
#: Longest error message shown (characters).
MAX_ERROR_CHARS = 300
#: Changed jobs named on the ``changed:`` line; the rest are counted.
MAX_CHANGED_SHOWN = 12

_STOPPERS = (KeyboardInterrupt, SystemExit)

# SGR codes; the recap is plain text, colour is a few escape sequences around words.
_SGR = {
    "ok": "32",
    "changed": "32;1",
    "failed": "31;1",
    "blocked": "90",
    "interrupted": "33",
    "skipped": "33;1",
    "bad": "31;1",
    "good": "32;1",
    "warn": "33;1",
    "dim": "2",
}

_STOP_REASONS = {
    "critical": "a critical job failed",
    "timeout": "the run's timeout passed",
    "interrupted": "interrupted (Ctrl-C)",
    "terminated": "terminated (SIGTERM)",
    "exited": "a job called sys.exit()",
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
    """A duration for people (see :func:`dojob.durations.format_duration`), or ``"?"`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    return format_duration(seconds)


def error_line(exception: BaseException | None) -> str:
    """``"Type: message"`` of an exception, on one safe line (the message shortened if long)."""
    if exception is None:
        return "no error recorded"
    message = safe_str(exception)  # a hostile __str__ must not break the recap
    name = safe_type_name(exception)
    text = f"{name}: {message}" if message else name
    return one_line(text, MAX_ERROR_CHARS)


def cleanup_cut_short(exc: BaseException) -> bool:
    """Whether a Cleanup's exception says it was interrupted (Ctrl-C, a cancellation) rather than failed."""
    from .steps import is_cancelled_error  # (asyncio is loaded only by runs that use it)

    return isinstance(exc, KeyboardInterrupt) or is_cancelled_error(exc)


def cleanup_lines(failures: Any) -> list[str]:
    """The recap's lines for ``(job name, exception)`` of Cleanups that raised or were cut short."""
    return [
        f"cleanup interrupted: {_one_line(name, 200)}"
        if cleanup_cut_short(exc)
        else f"cleanup failed: {_one_line(name, 200)}: {error_line(exc)}"
        for name, exc in failures
    ]


def with_cleanups_failed(verdict: str, failures: Any) -> str:
    """The verdict line, saying how many Cleanups of ``(job name, exception)`` raised and how many were cut
    short: the jobs may have converged, the command did not."""
    interrupted = sum(1 for _, exc in failures if cleanup_cut_short(exc))
    failed = len(failures) - interrupted
    if failed:
        verdict += f"; {failed} Cleanup{'s' if failed != 1 else ''} failed"
    if interrupted:
        verdict += f"; {interrupted} Cleanup{'s' if interrupted != 1 else ''} interrupted"
    return verdict


def failed_line(job: Any, kind: str | None = None) -> str:
    """A failed job's recap line after its ``FAILED`` head: name, tries, the Run's error then the recheck's."""
    return f"{one_line(job.name, 200)} ({_tries(job.tries)}): {failure_text(job, kind)}{_not_retried(job.exception)}"


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
    if status is Status.INTERRUPTED:
        return True
    return status is Status.FAILED and isinstance(exception, _STOPPERS)


def _words(status: Any) -> str:
    """How a status reads: its value with spaces (a status this module does not know is shown as is)."""
    return one_line(str(getattr(status, "value", status)).replace("_", " "), 40)


def failure_text(job: Any, kind: str | None = None) -> str:
    """What went wrong with a failed job, on one line, the cause first.

    ``Type: message`` of its last error; ``Run raised Type: message; then the
    recheck: Type: message`` when Run raised before the recheck failed; prefixed
    with ``programming error in __init__/Check/Run:`` when the code is at fault.
    """
    from .diagnose import programming_error

    where = programming_error(job, kind)
    cause = getattr(job, "cause", None)
    text = error_line(job.exception)
    if where == "__init__":
        return f"programming error in __init__: {text}"
    if cause is not None:
        text = f"Run raised {error_line(cause)}; then the recheck: {text}"
    if where is not None:
        text = f"programming error in {where}: {text}"
    return text


def _also_blocks(report: Any, name: str, listed: set[str]) -> list[str]:
    """Blocked jobs downstream of failed job ``name`` that are listed under another failure.

    Fixing only that other failure would not unblock them: an incident report says so.
    """
    graph = getattr(report, "graph", None)
    if graph is None:
        return []
    try:
        index, specs, dependents = graph.index[name], graph.specs, graph.dependents
    except (AttributeError, KeyError, TypeError):
        return []
    jobs = report.jobs
    seen = {index}
    stack = list(dependents[index])
    out = []
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        job = jobs.get(specs[d].name)
        if job is None or job.status is not Status.BLOCKED:
            continue
        if job.name not in listed:
            out.append((d, job.name))
        stack.extend(dependents[d])
    return [n for _, n in sorted(out)]


def _kinds(report: Any) -> dict[str, str]:
    graph = getattr(report, "graph", None)
    if graph is None:
        return {}
    try:
        return {spec.name: spec.kind for spec in graph.specs}
    except Exception:  # a report built by hand
        return {}


def _cut_short(exc: BaseException | None) -> bool:
    """Whether ``exc`` is what a stop did to a running try (not the error of a try that had ended)."""
    from .steps import is_cancelled_error  # (loaded by every run; asyncio is not imported for it)

    return isinstance(exc, (*_STOPPERS, RunTimeout, StoppedBeforeRun)) or (exc is not None and is_cancelled_error(exc))


def _was_cut(job: Any) -> bool:
    """A job whose try the run's stop cut short (Ctrl-C, or the run's timeout)."""
    return job.status is Status.INTERRUPTED or isinstance(job.exception, _STOPPERS)


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
    keys = ("ok", "ok_retried", "changed", "retried", "failed", "blocked", "interrupted", "not_run", "skipped")
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
        elif status is Status.SKIPPED:
            out["skipped"] += 1
        else:  # a status this recap does not know: counted under its own name
            key = str(getattr(status, "value", status))
            out[key] = out.get(key, 0) + 1
    return out


def _not_retried(exception: BaseException | None) -> str:
    """``"; not retried: ..."`` when RETRY_ON refused to retry ``exception`` (see :mod:`dojob.retry`)."""
    for note in getattr(exception, "__notes__", None) or ():
        if isinstance(note, str) and note.startswith("not retried: "):
            return "; " + one_line(note, 300)
    return ""


def plan_counts(report: Any) -> dict[str, int]:
    """A plan run's counts: ok, would_run (with or without upstream changes), ok_upstream_changes, not_checked.

    The text recap and the HTML report both count with this, so they agree.
    """
    out = {"ok": 0, "would_run": 0, "ok_upstream_changes": 0, "not_checked": 0, "programming_errors": 0, "skipped": 0}
    kinds = _kinds(report)
    from .diagnose import programming_error

    for job in report.jobs.values():
        plan = job.plan
        if plan is None:
            out["not_checked"] += 1
        elif plan.startswith("would_run"):
            out["would_run"] += 1
            if programming_error(job, kinds.get(job.name)):
                out["programming_errors"] += 1
        elif plan == "ok_upstream_changes":
            out["ok_upstream_changes"] += 1
        elif plan == "skipped":
            out["skipped"] += 1
        else:
            out["ok"] += 1
    return out


def is_plan(report: Any) -> bool:
    """Whether ``report`` is a plan run's (``plan=True``, ``dojob check``)."""
    return any(j.plan is not None for j in report.jobs.values())


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
    if is_plan(report):
        return _plan_summary(report, paint)
    kinds = _kinds(report)
    lines: list[str] = []
    blocked: dict[str, list[str]] = {}
    waiting: dict[str, list[str]] = {}  # jobs never started downstream of an interrupted one
    failed: list[Any] = []
    changed: list[str] = []
    others: list[Any] = []
    known: tuple[Status, ...] = (Status.OK, Status.CHANGED, Status.FAILED, Status.BLOCKED, Status.NOT_RUN)
    known += (Status.PENDING, Status.INTERRUPTED, Status.SKIPPED)
    for job in report.jobs.values():
        status = job.status
        if status is Status.BLOCKED and job.blocked_by is not None:
            blocked.setdefault(job.blocked_by, []).append(job.name)
        elif status is Status.CHANGED:
            changed.append(job.name)
        elif status is Status.INTERRUPTED and not job.tries and job.blocked_by is not None:
            waiting.setdefault(job.blocked_by, []).append(job.name)
        elif status is Status.FAILED or (status is Status.INTERRUPTED and job.tries):
            failed.append(job)
        elif status not in known and job.tries:  # a status this recap does not know, e.g. interrupted
            others.append(job)
    cut = [_was_cut(job) for job in failed]
    width = 11 if any(cut) or others else 6
    indent = " " * (width + 2)
    for job, was_cut in list(zip(failed, cut, strict=True))[:MAX_FAILED_SHOWN]:
        if was_cut:
            head = paint("INTERRUPTED".ljust(width), "interrupted")
            when = "during" if _cut_short(job.exception) else "after"  # after: its try had ended, a retry was due
            what = f"{when} try {job.tries} ({error_line(job.exception)})"
            lines.append(f"{head}  {one_line(job.name, 200)} {what}")
        else:
            head = paint("FAILED".ljust(width), "failed")
            lines.append(f"{head}  {failed_line(job, kinds.get(job.name))}")
        under = blocked.get(job.name)
        if under:
            lines.append(indent + paint(f"blocked: {_names(under, MAX_BLOCKED_SHOWN)}", "blocked"))
        also = _also_blocks(report, job.name, set(under or ()))
        if also:
            lines.append(indent + paint(f"also blocks: {_names(also, MAX_BLOCKED_SHOWN)}", "blocked"))
        after = waiting.get(job.name)
        if after:
            lines.append(indent + paint(f"not started: {_names(after, MAX_BLOCKED_SHOWN)}", "interrupted"))
    if len(failed) > MAX_FAILED_SHOWN:
        lines.append(f"... and {len(failed) - MAX_FAILED_SHOWN} more failed jobs")
    skipped = [job.name for job in report.jobs.values() if job.status is Status.SKIPPED]
    if skipped:  # loudly: they were not even checked
        head = paint("SKIPPED".ljust(width), "skipped")
        lines.append(f"{head}  {_names(skipped, MAX_BLOCKED_SHOWN)} (--skip: treated as satisfied, not checked)")
    for job in others[:MAX_FAILED_SHOWN]:
        head = paint(_words(job.status).upper().ljust(width), "interrupted")
        detail = f": {error_line(job.exception)}" if job.exception is not None else ""
        lines.append(f"{head}  {one_line(job.name, 200)} (try {job.tries}){detail}")
    if report.stopped is not None:
        reason = _STOP_REASONS.get(report.stopped, one_line(str(report.stopped)))
        stopped_job = getattr(report, "stopped_job", None)
        if stopped_job:
            reason += f": {one_line(stopped_job, 200)}"
        lines.append(paint(f"run stopped: {reason}", "warn"))
        shown = {job.name for job in failed[:MAX_FAILED_SHOWN]}
        unnamed = [n for by, names in waiting.items() if by not in shown for n in names]  # waiting for one unnamed
        unnamed += [
            j.name
            for j in report.jobs.values()
            if j.status is Status.INTERRUPTED and not j.tries and j.blocked_by is None
        ]
        if unnamed:
            lines.append(paint(f"not started: {_names(unnamed, MAX_BLOCKED_SHOWN)}", "interrupted"))
    if changed:
        lines.append(paint("changed:", "changed") + f" {_names(changed, MAX_CHANGED_SHOWN)}")
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
    if c["skipped"]:
        parts.append(paint(f"{c['skipped']} skipped", "skipped"))
    parts += [f"{n} {_words(key)}" for key, n in c.items() if key not in _COUNT_KEYS and n]
    findings = getattr(report, "history", None)
    if findings is not None and findings.unstable:
        parts.append(paint(f"{len(findings.unstable)} unstable", "failed"))
    elif findings is not None and findings.verify_stopped:  # the run converged; its verification did not end
        parts.append(paint(f"not verified ({one_line(findings.verify_stopped, 40)} while verifying)", "warn"))
    lines.append(f"{verdict} in {format_seconds(report.elapsed)}: {', '.join(parts)}")
    return "\n".join(lines)


_COUNT_KEYS = ("ok", "ok_retried", "changed", "retried", "failed", "blocked", "interrupted", "not_run", "skipped")


def _history_lines(report: Any, paint: _Paint) -> list[str]:
    """What :mod:`dojob.history` found (drifted, flapping, unstable jobs), when the run was recorded or verified."""
    findings = getattr(report, "history", None)
    return findings.recap_lines(paint.color) if findings is not None else []


def _plan_summary(report: Any, paint: _Paint) -> str:
    """A plan run's recap: every job's plan, then the counts (those of :func:`plan_counts`)."""
    from .diagnose import programming_error

    kinds = _kinds(report)
    rows = list(report.jobs.values())
    width = min(40, max((len(one_line(j.name, 200)) for j in rows), default=3))
    lines = []
    for job in rows:
        name = one_line(job.name, 200).ljust(width)
        if job.plan is None:
            lines.append(f"{name}  {paint('not checked', 'interrupted')}")
            continue
        word = PLAN_WORDS.get(job.plan, one_line(job.plan, 60))
        would = job.plan.startswith("would_run")
        style = "ok" if job.plan == "ok" else ("warn" if job.plan.startswith(("would_run", "skipped")) else "dim")
        line = f"{name}  {paint(word, style)}"
        if would and job.exception is not None:
            where = programming_error(job, kinds.get(job.name))
            if where == "__init__":
                line = f"{name}  {paint('cannot start', 'failed')}  (programming error in __init__: "
                line += f"{error_line(job.exception)})"
            elif where is not None:
                line += f"  (programming error in {where}? {error_line(job.exception)})"
            else:
                line += f"  ({error_line(job.exception)})"
        lines.append(line)
    if report.stopped is not None:
        lines.append(paint(f"check stopped: {_STOP_REASONS.get(report.stopped, report.stopped)}", "warn"))
    lines.extend(_history_lines(report, paint))
    c = plan_counts(report)
    nothing = c["would_run"] == 0 and not c["not_checked"]
    verdict = paint("nothing would run", "good") if nothing else paint("changes needed", "warn")
    parts = [f"{c['ok']} ok", f"{c['would_run']} would run", f"{c['ok_upstream_changes']} ok now, upstream will change"]
    if c["programming_errors"]:
        parts.append(paint(f"{c['programming_errors']} programming errors", "failed"))
    if c["not_checked"]:
        parts.append(f"{c['not_checked']} not checked")
    if c["skipped"]:
        parts.append(f"{c['skipped']} skipped")
    lines.append(f"{verdict} ({format_seconds(report.elapsed)}): {', '.join(parts)}")
    return "\n".join(lines)
