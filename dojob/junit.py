"""A run as JUnit XML, for CI systems (``dojob run --junit FILE``).

One ``<testsuite>`` named after the root jobs; one ``<testcase>`` per job, its
time the job's elapsed time. A failed job is a ``<failure>`` whose message is
the recap's line (the Run's error first, then the recheck's) and whose text
holds both tracebacks; a programming error (``__init__`` raised, a ``NameError``
in Check...) is an ``<error>`` instead, as JUnit means it; a blocked, interrupted
or never-run job is ``<skipped>`` (its message the status, as in the recap). In a
plan run (``dojob check``) a job that would run is a ``<failure type="would_run">``.
The suite's ``<properties>`` say when, where and with what command line it ran.
Text is made valid XML 1.0 (control characters shown as ``\\x1b``).
"""

from __future__ import annotations

import re
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .diagnose import programming_error
from .events import Status
from .recap import cleanup_cut_short, counts, error_line, failed_line, failure_text, is_plan, plan_counts

__all__ = ["to_junit"]

#: Longest traceback kept per error (characters).
MAX_TRACEBACK_CHARS = 20_000

# XML 1.0 forbids these outright; surrogates cannot be encoded
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _xml(text: Any, limit: int | None = None) -> str:
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return _INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) <= 0xFF else "\\ufffd", text)


def _traceback(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    except Exception:  # a hostile exception
        return error_line(exc)


def _plan_case(case: ET.Element, job: Any, kind: str | None) -> str | None:
    """Fill a plan run's test case: not checked is skipped; would run is a failure (an error for a bug).

    Returns the tag added (``"skipped"``, ``"failure"``, ``"error"``), or None for a pass.
    """
    if job.plan is None:
        ET.SubElement(case, "skipped", message="not checked")
        return "skipped"
    if not job.plan.startswith("would_run"):
        return None
    tag = "error" if programming_error(job, kind) else "failure"
    message = f"would run: {failure_text(job, kind)}"
    element = ET.SubElement(case, tag, type="would_run", message=_xml(message, 2000))
    element.text = _xml(_traceback(job.exception), MAX_TRACEBACK_CHARS)
    return tag


def _run_case(case: ET.Element, job: Any, kind: str | None) -> str | None:
    """Fill a run's test case: ok and changed pass, failed is a failure (an error for a bug), the rest skipped.

    A skipped case's message is its status as the recap words it (``interrupted: KeyboardInterrupt``,
    ``blocked by Name``). Returns the tag added, or None for a pass.
    """
    status = job.status
    if status is Status.OK or status is Status.CHANGED:
        case.set("status", status.value)
        return None
    if status is Status.FAILED:
        tag = "error" if programming_error(job, kind) else "failure"
        exc = job.exception
        element = ET.SubElement(
            case,
            tag,
            type=_xml(type(exc).__name__ if exc is not None else "Failed"),
            message=_xml(failed_line(job, kind), 2000),  # the recap's line
        )
        text = []
        cause = getattr(job, "cause", None)
        if cause is not None:
            text.append("Run raised:\n" + _traceback(cause) + "\n\nthen the recheck failed:")
        text.append(_traceback(exc))
        element.text = _xml("\n".join(text), MAX_TRACEBACK_CHARS * 2)
        return tag
    if status is Status.BLOCKED:
        message = f"blocked by {job.blocked_by}" if job.blocked_by else "blocked"
    elif status is Status.INTERRUPTED and not job.tries and job.blocked_by:
        message = f"interrupted: not started, waited for {job.blocked_by}"
    else:
        word = getattr(status, "value", str(status)).replace("_", " ")
        message = f"{word}: {error_line(job.exception)}" if job.exception is not None else word
    ET.SubElement(case, "skipped", message=_xml(message, 2000))
    return "skipped"


def to_junit(
    report: Any,
    *,
    context: Mapping[str, str] | None = None,
    cleanup_failures: Sequence[tuple[str, BaseException]] = (),
) -> bytes:
    """The JUnit XML of ``report`` (UTF-8 bytes with an XML declaration).

    A job ``--verify`` found unstable fails its test case, a verification cut
    short is a failing ``verification (--verify)`` case, and each Cleanup that
    raised is a failing ``Cleanup of NAME`` case: the command failed, so does
    the suite.

    Args:
        report: a :class:`~dojob.report.Report`.
        context: when, where and how it ran, written as the suite's properties.
        cleanup_failures: ``(job name, exception)`` of each Cleanup that raised.
    """
    plan = is_plan(report)
    graph = getattr(report, "graph", None)
    kinds = {spec.name: spec.kind for spec in graph.specs} if graph is not None else {}
    roots = ", ".join(getattr(report, "roots", ()) or ()) or "dojob"
    suite = ET.Element("testsuite", name=_xml(f"dojob {'check' if plan else 'run'}: {roots}", 500))
    if context:
        props = ET.SubElement(suite, "properties")
        for key, value in context.items():
            ET.SubElement(props, "property", name=_xml(key), value=_xml(value, 5000))
    fill = _plan_case if plan else _run_case
    tally: Counter[str | None] = Counter()
    unstable = getattr(getattr(report, "history", None), "unstable", None) or {}
    for job in report.jobs.values():
        case = ET.SubElement(suite, "testcase", classname=_xml(roots, 500), name=_xml(job.name, 1000))
        elapsed = job.elapsed
        case.set("time", f"{elapsed:.6f}" if elapsed is not None and elapsed >= 0 else "0")
        tag = fill(case, job, kinds.get(job.name))
        if tag is None and job.name in unstable:
            case.attrib.pop("status", None)
            message = f"unstable: converged, then its Check failed again: {unstable[job.name]}"
            ET.SubElement(case, "failure", type="unstable", message=_xml(message, 2000))
            tag = "failure"
        tally[tag] += 1
    stopped = getattr(getattr(report, "history", None), "verify_stopped", None)
    if stopped and not unstable:  # the run converged, its verification did not end: the command failed
        case = ET.SubElement(suite, "testcase", classname=_xml(roots, 500), name="verification (--verify)")
        case.set("time", "0")
        message = f"not verified ({stopped} while verifying): the jobs it did not reach were not checked again"
        ET.SubElement(case, "failure", type="not_verified", message=_xml(message, 2000))
        tally["failure"] += 1
    for name, exc in cleanup_failures:
        case = ET.SubElement(suite, "testcase", classname=_xml(roots, 500), name=_xml(f"Cleanup of {name}", 1000))
        case.set("time", "0")
        if cleanup_cut_short(exc):
            message = f"cleanup interrupted: {name}"
        else:
            message = f"cleanup failed: {name}: {error_line(exc)}"
        element = ET.SubElement(case, "failure", type=_xml(type(exc).__name__), message=_xml(message, 2000))
        element.text = _xml(_traceback(exc), MAX_TRACEBACK_CHARS)
        tally["failure"] += 1
    n_fail, n_error, n_skip = tally["failure"], tally["error"], tally["skipped"]
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(n_fail))
    suite.set("errors", str(n_error))
    suite.set("skipped", str(n_skip))
    elapsed = report.elapsed or 0.0
    suite.set("time", f"{elapsed:.6f}")
    if context and context.get("started"):
        suite.set("timestamp", _xml(context["started"]))
    if context and context.get("host"):
        suite.set("hostname", _xml(context["host"]))
    summary = plan_counts(report) if plan else counts(report)
    ET.SubElement(suite, "system-out").text = _xml(", ".join(f"{k}={v}" for k, v in summary.items()))
    suites = ET.Element("testsuites", name="dojob", tests=suite.get("tests", "0"))
    suites.append(suite)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"
