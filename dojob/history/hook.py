"""What ``dojob.run(..., history=..., verify=...)`` does around a run: verify, record, compare.

:func:`recorded` (and :func:`arecorded` for the async driver) wraps the
runner's driver function: it runs the graph, verifies a converged run if asked
(every job's Check once more on fresh instances, same arguments and
``global_storage``, no Run), records the run, and returns the report as a
:class:`RecordedReport` whose ``history`` holds the :class:`Findings`. A
history that fails produces one warning; the run's outcome never depends on it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import CleanupError
from ..observe import one_line
from ..report import Report
from . import History, HistoryError, display_location, open_store
from .findings import Findings

__all__ = ["RecordedReport", "arecorded", "recorded"]


class RecordedReport(Report):
    """A :class:`~dojob.report.Report` with ``history``: the run's :class:`Findings`."""

    __slots__ = ("history",)


def _wrap(report: Any, findings: Findings) -> RecordedReport:
    out = RecordedReport(
        report.jobs,
        success=bool(report.success) and not findings.unstable,
        elapsed=report.elapsed,
        stopped=report.stopped,
        stopped_job=report.stopped_job,
        roots=report.roots,
        cleanup=report._cleanup,
        graph=report.graph,
    )
    object.__setattr__(out, "history", findings)
    return out


class _Recorder:
    def __init__(self, history: Any, verify: bool) -> None:
        self.history = None if history is None or history is False else History.coerce(history)
        self.verify = bool(verify)
        self.started = 0.0
        self.plan = self.no_act = False

    def prepare(self, options: Any, keywords: dict[str, Any]) -> Any:
        """The run's :class:`~dojob.options.RunOptions` (given, or made from keywords), ready to verify."""
        from ..options import RunOptions

        options = options or RunOptions.from_keywords(**keywords)
        if self.verify and options.global_storage is None:
            from ..storage import SharedStorage

            options = options.replace(global_storage=SharedStorage())  # the verification sees the world left
        self.plan = bool(options.plan)
        self.no_act = bool(options.no_act) and not self.plan
        self.started = time.time()
        return options

    def verifies(self, report: Any, options: Any) -> bool:
        return self.verify and bool(report.success) and not options.plan and not options.no_act

    @staticmethod
    def verify_options(options: Any) -> Any:
        from ..options import Mode

        return options.replace(mode=Mode.of(plan=True), verbose=False, debug=False, observers=())

    @staticmethod
    def unstable(graph: Any, check: Any) -> dict[str, str]:
        from .record import error_first_line

        out = {}
        for spec in graph.specs:
            if spec.kind == "runonly":  # no Check to ask
                continue
            job = check.jobs[spec.name]
            if job.plan is not None and job.plan.startswith("would_run"):
                out[spec.name] = error_first_line(job.exception) if job.exception is not None else "Check failed"
        return out

    def finish(self, report: Any, unstable: dict[str, str] | None) -> RecordedReport:
        history = self.history
        findings = Findings(unstable=unstable or {}, verified=None if unstable is None else not unstable)
        if history is None:
            return _wrap(report, findings)
        findings.flap_window = history.flap_window
        findings.location = display_location(history.location)
        findings.history = history
        try:
            from .record import build_record

            record = build_record(
                report,
                started=self.started,
                ended=time.time(),
                targets=history.targets,
                options=history.options,
                unstable=unstable,
                plan=self.plan,
            )
            if self.no_act:  # DoJobber's look-only run: no drift base, not one of the flap window's runs
                record.kind = "no_act"
            findings.target = record.target
            store = open_store(history.location, create_folder=history.create_folder)
            try:
                store.write(record, history.flap_window)
            finally:
                store.close_soon()
        except HistoryError as exc:
            findings.warning = f"history not recorded: {one_line(str(exc), 500)}"
        except Exception as exc:  # a driver's error, a full disk...: the run goes on
            text = one_line(f"{type(exc).__name__}: {exc}", 500)
            findings.warning = f"history not recorded: {findings.location}: {text}"
        else:
            found = record.findings
            findings.run_id = record.id
            findings.drifted = list(found.get("drifted", []))
            findings.drift_base = found.get("drift_base")
            findings.drift_since = found.get("drift_since")
            findings.flapping = list(found.get("flapping", []))
        if findings.warning:
            try:
                history.warn(findings.warning)
            except Exception:  # e.g. warnings turned into errors: the run still stands
                pass
        return _wrap(report, findings)

    def finish_stopped(self, exc: BaseException) -> None:
        """A run that raised with a report (Ctrl-C, a Cleanup that failed): record it, keep raising."""
        report = getattr(exc, "report", None)
        if isinstance(report, Report):
            try:
                exc.report = self.finish(report, None)  # type: ignore[attr-defined]
            except Exception:
                pass


def recorded(driver: Callable[..., Report], history: Any, verify: bool) -> Callable[..., Report]:
    """``driver`` (the runner's ``run_graph``) with verification and history around it."""
    recorder = _Recorder(history, verify)

    def run(graph: Any, options: Any = None, **keywords: Any) -> Report:
        options = recorder.prepare(options, keywords)
        try:
            report = driver(graph, options)
        except BaseException as exc:
            recorder.finish_stopped(exc)
            raise
        unstable = None
        if recorder.verifies(report, options):
            try:
                check = driver(graph, recorder.verify_options(options))
            except CleanupError as exc:
                check = exc.report
            except BaseException as exc:  # interrupted while verifying: record the run as it was, then stop
                _attach(exc, _wrap_stop(recorder, report))
                raise
            unstable = recorder.unstable(graph, check)
        return recorder.finish(report, unstable)

    return run


def _wrap_stop(recorder: _Recorder, report: Any) -> Any:
    try:
        return recorder.finish(report, None)
    except Exception:
        return report


def _attach(exc: BaseException, report: Report) -> None:
    """Let the caller of a stopped run recap it (as the runner does for Ctrl-C)."""
    try:
        exc.report = report  # type: ignore[attr-defined]
    except Exception:
        pass


def arecorded(driver: Callable[..., Awaitable[Report]], history: Any, verify: bool) -> Callable[..., Awaitable[Report]]:
    """:func:`recorded` for the async driver (``arun_graph``); the database is written from a thread."""
    recorder = _Recorder(history, verify)

    async def run(graph: Any, options: Any = None, **keywords: Any) -> Report:
        options = recorder.prepare(options, keywords)
        try:
            report = await driver(graph, options)
        except BaseException as exc:
            recorder.finish_stopped(exc)
            raise
        unstable = None
        if recorder.verifies(report, options):
            try:
                check = await driver(graph, recorder.verify_options(options))
            except CleanupError as exc:
                check = exc.report
            except BaseException as exc:
                _attach(exc, _wrap_stop(recorder, report))
                raise
            unstable = recorder.unstable(graph, check)
        import asyncio  # here: a plain run (and its history) never loads asyncio

        return await asyncio.to_thread(recorder.finish, report, unstable)

    return run
