"""What ``dojob.run(..., history=..., verify=...)`` does around a run: read, verify, record, compare.

:func:`recorded` (and :func:`arecorded` for the async driver) wraps the
runner's driver function: it opens the history and reads what each job has not
seen yet (its DEPS' changes since it last succeeded, for ``Job.changed_deps``),
runs the graph, verifies a converged run if asked (every job's Check once more
on fresh instances, same arguments and ``global_storage``, no Run), records the
run, and returns the report as a :class:`RecordedReport` whose ``history`` holds
the :class:`~dojob.history.findings.Findings`. A history that fails produces one
warning; the run's outcome never depends on it.

This module is imported before the run's graph is frozen for the collector
(see :func:`dojob.runner.frozen_build`), so it imports next to nothing: the
record, the store and the findings are loaded inside the run, where what an
import allocates costs no pass of the collector over the whole graph (a full
pass over 10 000 jobs' classes costs 15-35 ms, more than all the rest of the
recording).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..records import Record, compile_inits, record
from ..report import Report

__all__ = ["RecordedReport", "RunVerified", "arecorded", "recorded"]


@record
class RunVerified(Record):
    """The event of a ``--verify`` pass, after the run's ``RunFinished``: what the run's success was worth.

    ``success`` is the command's (False when a job is unstable or the
    verification was stopped); ``unstable`` names the jobs whose Check failed
    again; ``stopped`` says what stopped the verification, if something did.
    """

    success: bool
    unstable: tuple[str, ...]
    stopped: str | None
    time: float


compile_inits()


class RecordedReport(Report):
    """A :class:`~dojob.report.Report` with ``history``: the run's :class:`~dojob.history.findings.Findings`."""

    __slots__ = ("history",)


def _wrap(report: Any, findings: Any) -> RecordedReport:
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


def _stop_word(exc: BaseException) -> str:
    """What stopped a verification, as a report's ``stopped`` says it."""
    stopped = getattr(getattr(exc, "report", None), "stopped", None)
    if stopped:
        return str(stopped)
    from ..errors import Terminated

    if isinstance(exc, Terminated):
        return "terminated"
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else type(exc).__name__


class _Recorder:
    def __init__(self, history: Any, verify: bool) -> None:
        from . import History

        self.history = None if history is None or history is False else History.coerce(history)
        self.verify = bool(verify)
        self.started = 0.0
        self.plan = self.no_act = False
        self.key = ""
        self.store: Any = None
        self.read_error: str | None = None
        self.observers: tuple[Any, ...] = ()

    def prepare(self, graph: Any, options: Any, keywords: dict[str, Any], read: bool = True) -> Any:
        """The run's :class:`~dojob.options.RunOptions` (given, or made from keywords), ready to verify,
        with the changes each job has not seen yet when there is a history."""
        from ..options import RunOptions

        options = options or RunOptions.from_keywords(**keywords)
        if self.verify and options.global_storage is None:
            from ..storage import SharedStorage

            options = options.replace(global_storage=SharedStorage())  # the verification sees the world left
        self.plan = bool(options.plan)
        self.no_act = bool(options.no_act) and not self.plan
        self.observers = tuple(options.observers or ())
        self.started = time.time()
        if self.history is not None:
            from .record import target_key

            self.key = target_key(self.history.targets, graph, graph.roots)
            if read:
                changes = self.read(graph)
                if changes:
                    options = options.replace(changed_before=changes)
        return options

    def read(self, graph: Any) -> dict[str, frozenset[str]]:
        """Open the history and read each job's DEPS changed since it last succeeded (one query)."""
        history = self.history
        assert history is not None
        from . import open_store

        try:
            store = open_store(history.location, create_folder=history.create_folder)
        except Exception as exc:  # tried again when the run is recorded; that one warns
            self.read_error = _error_text(exc, history)
            return {}
        try:
            changes = store.changes_since_success(self.key, graph.names, graph.deps)
        except Exception as exc:
            self.read_error = _error_text(exc, history)
            store.close()  # (not kept: it may be broken)
            return {}
        if store.backend == "sqlite":
            self.store = store  # kept for the record: one connection per run (it holds no lock meanwhile)
        else:
            store.close_soon()  # a server may drop a connection left idle for a long run
        return changes

    def verifies(self, report: Any, options: Any) -> bool:
        return self.verify and bool(report.success) and not options.plan and not options.no_act

    @staticmethod
    def verify_options(options: Any) -> Any:
        from ..options import Mode

        # every job succeeded in the run just ended: no change is left unseen
        return options.replace(mode=Mode.of(plan=True), verbose=False, debug=False, observers=(), changed_before=None)

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

    def finish(
        self,
        report: Any,
        unstable: dict[str, str] | None,
        verify_stopped: str | None = None,
        cleanup_failed: list[str] | None = None,
        cleanup_word: str = "failed",
    ) -> RecordedReport:
        """Record the run; ``verify_stopped`` says what stopped its verification, if something did;
        ``cleanup_failed`` names the jobs whose Cleanup raised (the command failed: so does the record)."""
        from . import HistoryError, display_location, open_store
        from .findings import Findings

        history = self.history
        verified = None if unstable is None or (verify_stopped and not unstable) else not unstable
        if unstable is not None or verify_stopped:
            self.tell_verified(report, unstable or {}, verify_stopped)
        findings = Findings(unstable=unstable or {}, verified=verified, verify_stopped=verify_stopped)
        if history is None:
            return _wrap(report, findings)
        findings.flap_window = history.flap_window
        findings.location = display_location(history.location)
        findings.history = history
        store, self.store = self.store, None
        try:
            from ..observe import one_line
            from .record import build_record

            record = build_record(
                report,
                started=self.started,
                ended=time.time(),
                targets=history.targets,
                options=history.options,
                unstable=unstable,
                plan=self.plan,
                target=self.key or None,
            )
            if self.no_act:  # DoJobber's look-only run: no drift base, not one of the flap window's runs
                record.kind = "no_act"
            if verify_stopped:  # not verified: no drift base, and the command did not succeed
                record.verified = verified
                record.success = False
                record.stopped = verify_stopped
                if not unstable:
                    record.verdict = f"not verified ({one_line(verify_stopped, 40)} while verifying)"
            if cleanup_failed:  # the jobs may all be ok, but the run did not succeed (exit 1)
                record.success = False
                shown = ", ".join(one_line(name, 60) for name in cleanup_failed[:3])
                more = f" and {len(cleanup_failed) - 3} more" if len(cleanup_failed) > 3 else ""
                record.verdict = f"{record.verdict}, cleanup {cleanup_word}: {shown}{more}"
            findings.target = record.target
            if store is not None and not _still_there(store):  # removed or replaced while the jobs ran
                store.close()
                store = None
            if store is None:
                store = open_store(history.location, create_folder=history.create_folder)
            try:
                store.write(record, history.flap_window)
            except BaseException:
                store.close()  # (not kept: it may be broken)
                raise
            store.close_soon()
        except HistoryError as exc:
            findings.warning = f"history not recorded: {_error_text(exc, history)}"
        except Exception as exc:  # a driver's error, a full disk...: the run goes on
            findings.warning = f"history not recorded: {_error_text(exc, history)}"
        else:
            found = record.findings
            findings.run_id = record.id
            findings.drifted = list(found.get("drifted", []))
            findings.drift_base = found.get("drift_base")
            findings.drift_since = found.get("drift_since")
            findings.flapping = list(found.get("flapping", []))
            if self.read_error:
                findings.warning = f"history not read (changes of earlier runs unseen): {self.read_error}"
        if findings.warning:
            try:
                history.warn(findings.warning)
            except Exception:  # e.g. warnings turned into errors: the run still stands
                pass
        return _wrap(report, findings)

    def tell_verified(self, report: Any, unstable: dict[str, str], stopped: str | None) -> None:
        """Send the run's observers (the ``--events`` log...) a :class:`RunVerified`; one that raises is skipped."""
        success = bool(report.success) and not unstable and not stopped
        event = RunVerified(success, tuple(unstable), stopped, time.time() - self.started)
        for observer in self.observers:
            with contextlib.suppress(Exception):
                observer(event)

    def finish_stopped(self, exc: BaseException) -> None:
        """A run that raised with a report (Ctrl-C, a Cleanup that failed): record it, keep raising."""
        from ..errors import CleanupError
        from ..recap import cleanup_cut_short

        report = getattr(exc, "report", None)
        if isinstance(report, Report):
            pairs = exc.failures if isinstance(exc, CleanupError) else getattr(exc, "cleanup_failures", None) or ()
            failed = [name for name, _ in pairs] or None  # (raised, or cut short by the stop)
            cut = bool(failed) and all(cleanup_cut_short(e) for _, e in pairs)
            try:
                exc.report = self.finish(  # type: ignore[attr-defined]
                    report, None, cleanup_failed=failed, cleanup_word="interrupted" if cut else "failed"
                )
            except Exception:
                pass
        elif self.store is not None:
            self.store.close_soon()


def _still_there(store: Any) -> bool:
    """Whether the SQLite file ``store`` opened is still at its path: a job may have removed its folder,
    and a record written into the removed file would be lost without a word."""
    path = getattr(store, "path", "")
    if not path:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == store.ident


def _error_text(exc: BaseException, history: Any) -> str:
    from ..observe import one_line
    from . import HistoryError, display_location

    if isinstance(exc, HistoryError):
        return one_line(str(exc), 500)
    return f"{display_location(history.location)}: {one_line(f'{type(exc).__name__}: {exc}', 500)}"


def recorded(driver: Callable[..., Report], history: Any, verify: bool) -> Callable[..., Report]:
    """``driver`` (the runner's ``run_graph``) with the history and verification around it."""
    recorder = _Recorder(history, verify)

    def run(graph: Any, options: Any = None, **keywords: Any) -> Report:
        options = recorder.prepare(graph, options, keywords)
        try:
            report = driver(graph, options)
        except BaseException as exc:
            recorder.finish_stopped(exc)
            raise
        unstable, stopped = None, None
        if recorder.verifies(report, options):
            from ..errors import CleanupError

            try:
                check = driver(graph, recorder.verify_options(options))
            except CleanupError as exc:
                check = exc.report
            except BaseException as exc:  # interrupted while verifying: recorded as not verified, then stop
                _attach(exc, _finish_stopped_verify(recorder, report, exc))
                raise
            unstable = recorder.unstable(graph, check)
            stopped = check.stopped  # a timeout: the jobs not reached were not verified
        with _signals_noted(options) as late:
            done = recorder.finish(report, unstable, stopped)
        return _then_stopped(late, done)

    return run


@contextlib.contextmanager
def _signals_noted(options: Any) -> Iterator[Any]:
    """While the history is written: under ``handle_signals`` a SIGINT/SIGTERM is noted in the yielded
    :class:`~dojob.stopping.Stop`, not raised, so the record is written whole (see :func:`_then_stopped`)."""
    from ..stopping import Stop, handling_signals

    late = Stop()  # not interruptible: a signal is only noted
    if not getattr(options, "handle_signals", False):
        yield late
        return
    with handling_signals(late):
        yield late


def _then_stopped(late: Any, done: Report) -> Report:
    """``done``, or the stop noted while it was recorded, raised with it attached (the CLI's outputs still come)."""
    if late.exception is not None:
        _attach(late.exception, done)
        raise late.exception
    return done


def _finish_stopped_verify(recorder: _Recorder, report: Any, exc: BaseException) -> Any:
    try:
        check = getattr(exc, "report", None)
        unstable = recorder.unstable(report.graph, check) if isinstance(check, Report) else {}
        return recorder.finish(report, unstable, _stop_word(exc))
    except Exception:
        return report


def _attach(exc: BaseException, report: Report) -> None:
    """Let the caller of a stopped run recap it (as the runner does for Ctrl-C)."""
    try:
        exc.report = report  # type: ignore[attr-defined]
    except Exception:
        pass


def arecorded(driver: Callable[..., Awaitable[Report]], history: Any, verify: bool) -> Callable[..., Awaitable[Report]]:
    """:func:`recorded` for the async driver (``arun_graph``); the database is read and written from a thread."""
    recorder = _Recorder(history, verify)

    async def run(graph: Any, options: Any = None, **keywords: Any) -> Report:
        import asyncio  # here: a plain run (and its history) never loads asyncio

        options = recorder.prepare(graph, options, keywords, read=False)
        if recorder.history is not None:
            changes = await asyncio.to_thread(recorder.read, graph)
            if changes:
                options = options.replace(changed_before=changes)
        try:
            report = await driver(graph, options)
        except BaseException as exc:
            recorder.finish_stopped(exc)
            raise
        unstable, stopped = None, None
        if recorder.verifies(report, options):
            from ..errors import CleanupError

            try:
                check = await driver(graph, recorder.verify_options(options))
            except CleanupError as exc:
                check = exc.report
            except BaseException as exc:
                _attach(exc, _finish_stopped_verify(recorder, report, exc))
                raise
            unstable = recorder.unstable(graph, check)
            stopped = check.stopped
        with _signals_noted(options) as late:
            done = await asyncio.to_thread(recorder.finish, report, unstable, stopped)
        return _then_stopped(late, done)

    return run
