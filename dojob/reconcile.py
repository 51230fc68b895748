"""Keep it converged: ``dojob run TARGET --every INTERVAL`` converges, sleeps, converges again.

Each iteration is a full run, as a fresh ``dojob run`` would do it: the graph is
built again from the root classes, with new job instances and a new
``global_storage``. After a converged run the loop sleeps the whole interval
(plus up to ``--jitter``); after a failed one it backs off, from
:data:`FIRST_BACKOFF` seconds, doubling, up to the interval. Each iteration
prints one line (the recap's verdict line, numbered and timed), and the rest of
the recap when something changed, failed or drifted.

Signals: SIGTERM and SIGINT end a sleep at once and the loop exits 143 / 130;
during a run they stop it the way Ctrl-C does (running tries finish, Cleanups
run, the recap is printed), then the loop exits. SIGHUP re-imports the target
before the next run, which starts at once; a module that does not import (or
whose graph is invalid) keeps the previous graph, and the loop says so.

Seams for what comes next: *drift* is found by a detector called with each
report (by default :class:`HistoryDrift`: what the run-history store found, else
:class:`InMemoryDrift`, which compares the runs of this process; any callable
returning :class:`LoopFindings` can be plugged in instead), and *hooks* get fresh
observers for each run and the :class:`Iteration` after it.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from .bind import BoundJob
from .errors import CleanupError, GraphError, OptionError
from .events import Status
from .job import Job
from .loopoptions import LoopError, add_options, parse_interval
from .observe import Trace, one_line
from .recap import cleanup_lines, error_line, use_color, with_cleanups_failed

__all__ = [
    "EXIT_TERMINATED",
    "FIRST_BACKOFF",
    "HistoryDrift",
    "LoopFindings",
    "InMemoryDrift",
    "Iteration",
    "Loop",
    "LoopError",
    "add_options",
    "backoff",
    "loop_command",
    "parse_interval",
]

#: Exit status after SIGTERM (128 + 15), as a shell reports a process it ended.
EXIT_TERMINATED = 143
EXIT_INTERRUPTED = 130
#: Seconds before the first retry of a failed run; each further failure doubles it, up to the interval.
FIRST_BACKOFF = 1.0


def backoff(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` failed runs in a row: 1, 2, 4, ... s, at most ``interval``."""
    return min(interval, FIRST_BACKOFF * 2 ** min(max(failures, 1) - 1, 60))


def _duration(seconds: float) -> str:
    """A sleep for people: ``250 ms``, ``1 s``, ``2.5 s``, ``5 min``, ``1 h 30 min``."""
    from .durations import format_duration

    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600 and seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return format_duration(seconds)


# -- drift -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopFindings:
    """What a drift detector found in one run of the loop.

    Attributes:
        drifted: (job, where it had converged: ``"run 2"``) for each job that
            had converged and whose first Check failed again in this run.
        flapping: jobs whose state keeps changing between runs (left empty by
            :class:`InMemoryDrift`; a history store fills it).
    """

    drifted: tuple[tuple[str, str], ...] = ()
    flapping: tuple[str, ...] = ()


class ErrorSink(Protocol):
    """Prints one error message; ``exc``, the exception behind it if any, adds its traceback under ``-d``."""

    def __call__(self, message: str, exc: BaseException | None = None, /) -> None: ...


class DriftDetector(Protocol):
    """Called with each run's report and number; says what drifted. A history store can be one."""

    def __call__(self, report: Any, number: int) -> LoopFindings: ...


_STOPPERS = (KeyboardInterrupt, SystemExit)


class InMemoryDrift:
    """Drift between the runs of this process: a job that converged in an earlier run and is found
    not converged at its first Check now (it changed again, or failed).

    Only jobs with a Check count (``RunonlyJob`` and awaitables run every time);
    a try the run's stop cut short is not drift; a job blocked or not run keeps
    the run it last converged in.
    """

    def __init__(self) -> None:
        self.converged: dict[str, int] = {}

    def __call__(self, report: Any, number: int) -> LoopFindings:
        checked = None
        graph = getattr(report, "graph", None)
        if graph is not None:
            checked = {spec.name for spec in graph.specs if spec.kind in ("job", "dummy")}
        drifted: list[tuple[str, str]] = []
        for job in report.jobs.values():
            if checked is not None and job.name not in checked:
                continue
            if job.status is Status.CHANGED or (
                job.status is Status.FAILED and not isinstance(job.exception, _STOPPERS)
            ):
                since = self.converged.get(job.name)
                if since is not None:
                    drifted.append((job.name, f"run {since}"))
            if job.status is Status.OK or job.status is Status.CHANGED:
                self.converged[job.name] = number
            elif job.status is Status.FAILED and not isinstance(job.exception, _STOPPERS):
                self.converged.pop(job.name, None)
        return LoopFindings(tuple(drifted))


class HistoryDrift:
    """Drift and flapping as a run-history store found them, else :class:`InMemoryDrift`'s.

    A run recorded in a history (``dojob.run(..., history=...)``) returns a report
    whose ``history`` attribute holds that store's findings (``drifted``,
    ``flapping``, ``drift_base``): those are used, since they span restarts.
    A report without them (no history, or it could not be written) is compared
    with the earlier runs of this process.
    """

    def __init__(self) -> None:
        self.memory = InMemoryDrift()

    def __call__(self, report: Any, number: int) -> LoopFindings:
        local = self.memory(report, number)  # always: it keeps its memory current
        found = getattr(report, "history", None)
        if found is None or getattr(found, "run_id", 0) is None:
            return local
        base = getattr(found, "drift_base", None)
        where = f"history run {base}" if base is not None else "an earlier run"
        drifted = tuple((str(name), where) for name in getattr(found, "drifted", ()) or ())
        return LoopFindings(drifted, tuple(str(n) for n in getattr(found, "flapping", ()) or ()))


# -- one iteration ---------------------------------------------------------------------


@dataclass
class Iteration:
    """One run of the loop, as hooks, metrics and the recap see it.

    Attributes:
        number: 1 for the first run.
        started, ended: Unix times.
        verdict: converged, not_converged, interrupted or error (see :data:`dojob.metrics.VERDICTS`).
        status: the exit status a one-shot ``dojob run`` would have had.
        report: the run's report (None when it had none: a graph error, an early stop).
        findings: what the drift detector found.
        error: the graph or option error that kept the run from starting.
    """

    number: int
    started: float
    ended: float = 0.0
    verdict: str = "error"
    status: int = 2
    report: Any = None
    findings: LoopFindings = field(default_factory=LoopFindings)
    error: BaseException | None = None
    #: a stop (SIGTERM, Ctrl-C, a job's ``sys.exit()``) ended this run: the loop ends with it.
    stopped: bool = False
    cleanup_failures: list[tuple[str, BaseException]] = field(default_factory=list)


class Hook(Protocol):
    """What a hook (a run-history store, say) may define; both methods are optional."""

    def observers(self, number: int) -> Iterable[Any]: ...

    def finished(self, iteration: Iteration) -> None: ...


# -- signals ---------------------------------------------------------------------------


class _Signals:
    """SIGTERM/SIGINT stop the loop, SIGHUP asks for a reload; a sleep ends at once on any of them.

    Between runs all three set a flag and write to a pipe the sleep waits on.
    During a run the engine handles SIGINT and SIGTERM (``handle_signals``:
    the first stops the run, Cleanups run, the recap is printed; a second
    abandons what still runs), and SIGHUP only sets its flag.
    """

    _WATCHED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.stop: int | None = None
        self.reload = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._saved: dict[int, Any] = {}

    def install(self) -> None:
        for sig in self._WATCHED:
            self._saved[sig] = signal.getsignal(sig)
        self._between()

    def restore(self) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._saved.clear()
        for fd in (self._read, self._write):
            os.close(fd)

    def _ignored(self, sig: int) -> bool:
        return sig == signal.SIGINT and self._saved.get(sig) is signal.SIG_IGN  # e.g. a background job

    def _between(self) -> None:
        for sig in self._WATCHED:
            if not self._ignored(sig):
                signal.signal(sig, self._flag)

    def leave_run(self) -> None:
        self._between()

    def _flag(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        elif self.stop is None:
            self.stop = signum
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._write, b"!")
        except (BlockingIOError, OSError):  # the pipe is full: the sleep wakes anyway
            pass

    def sleep(self, seconds: float, *, tick: float | None = None, on_tick: Callable[[], Any] | None = None) -> None:
        """Sleep ``seconds``, or less if a signal came; every ``tick`` seconds call ``on_tick`` (the watchdog)."""
        deadline = time.monotonic() + seconds
        while self.stop is None and not self.reload:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._read], [], [], min(left, tick) if tick else left)
            if ready:
                try:
                    while os.read(self._read, 512):
                        pass
                except BlockingIOError:
                    pass
            elif on_tick is not None:
                on_tick()


# -- the loop ------------------------------------------------------------------------


class Loop:
    """The reconcile loop of one ``dojob run --every`` command line.

    Args:
        ns: the parsed command line (``every``, ``jitter``, ``max_runs``, the run options).
        roots: the root Job classes, loaded once by the command.
        options: keyword arguments for :func:`dojob.run` (args, kwargs, workers, ...).
        write_outputs: writes ``--report``/``--graph`` after a run: ``(report, timeline) -> (written, errors)``.
        err: prints an error message on stderr.
        metrics: a :class:`~dojob.metrics.Metrics`, or None.
        notifier: a :class:`~dojob.sdnotify.Notifier`, or None.
        drift: the drift detector (default :class:`InMemoryDrift`).
        hooks: more per-run observers and after-run callbacks (see :class:`Hook`).
    """

    def __init__(
        self,
        ns: argparse.Namespace,
        roots: list[type[Job] | BoundJob],
        options: dict[str, Any],
        *,
        write_outputs: Callable[..., tuple[list[str], list[tuple[str, str]]]] | None = None,
        err: ErrorSink,
        metrics: Any = None,
        notifier: Any = None,
        drift: DriftDetector | None = None,
        hooks: Sequence[Any] = (),
        events: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.ns = ns
        self.roots = list(roots)
        self.options = options
        self.write_outputs = write_outputs
        self.err = err
        self.metrics = metrics
        self.notifier = notifier
        self.drift: DriftDetector = drift or HistoryDrift()
        self.hooks = list(hooks)
        self.events = events
        self.out = out
        self.signals = _Signals()
        self.every: float = ns.every
        self.jitter: float = ns.jitter or 0.0
        self.max_runs: int | None = ns.max_runs
        self.show_progress = ns.progress if ns.progress is not None else _isatty(sys.stderr)

    # -- messages

    def _say(self, text: str) -> None:
        sys.stderr.write(f"dojob: {text}\n")
        sys.stderr.flush()

    def _print(self, lines: list[str]) -> None:
        out = self.out or sys.stdout
        out.write("\n".join(lines) + "\n")
        out.flush()

    # -- the loop

    def run(self) -> int:
        """Run until ``--max-runs``, a stop signal, or a job's ``sys.exit()``; return the exit status."""
        self.signals.install()
        try:
            return self._loop()
        finally:
            self.signals.restore()
            if self.notifier is not None:
                self.notifier.close()

    def _loop(self) -> int:
        signals, notifier = self.signals, self.notifier
        number, failures, status = 0, 0, 0
        while signals.stop is None:
            if signals.reload:
                signals.reload = False
                self._reload()
                if signals.stop is not None:
                    break
            number += 1
            it = self._run_once(number)
            status = it.status
            if it.error is not None and number == 1:
                return status  # the graph is invalid: as a one-shot run would, exit 2 at once
            converged = it.verdict == "converged"
            failures = 0 if converged else failures + 1
            last = signals.stop is not None or it.stopped
            last = last or (self.max_runs is not None and number >= self.max_runs)
            delay = None
            if not last:
                delay = self.every + self.jitter * random.random() if converged else backoff(failures, self.every)
            self._recap(it, delay, failures)
            for hook in self.hooks:
                self._call_hook(hook, "finished", it)
            text = f"run {number} {it.verdict.replace('_', ' ')} at {time.strftime('%H:%M:%S')}"
            if delay is not None:
                text += f"; next run in {_duration(delay)}"
            if notifier is not None:
                if number == 1:
                    notifier.ready(text)
                else:
                    notifier.status(text)
            if last:
                break
            watchdog = getattr(notifier, "watchdog", None)
            signals.sleep(
                delay or 0.0,
                tick=watchdog / 2 if watchdog else None,
                on_tick=notifier.ping if watchdog else None,
            )
        if signals.stop is not None:
            name = signal.Signals(signals.stop).name
            status = EXIT_TERMINATED if signals.stop == signal.SIGTERM else EXIT_INTERRUPTED
            runs = "1 run" if number == 1 else f"{number} runs"
            self._say(f"{'terminated' if signals.stop == signal.SIGTERM else 'interrupted'} ({name}) after {runs}")
        if notifier is not None:
            notifier.stopping(f"stopped after {number} runs")
        return status

    def _reload(self) -> None:
        """Re-import the targets (SIGHUP); keep the previous roots if that fails."""
        from .graph import build_graph
        from .reimport import reimport_targets

        if self.notifier is not None:
            self.notifier.reloading()
        targets = ", ".join(one_line(t, 200) for t in self.ns.targets)
        try:
            roots = reimport_targets(self.ns.targets)
            defaults = {k: v for k, v in self.options.items() if k in ("default_tries", "default_retry_delay")}
            graph = build_graph(*roots, **defaults)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a SyntaxError, the module's own error, an invalid graph
            self.err(f"reload failed, keeping the previous graph: {targets}: {error_line(exc)}", exc)
            if self.metrics is not None:
                self.metrics.reloaded(False)
        else:
            self.roots = list(roots)
            self._say(f"reloaded {targets}: {len(graph)} jobs")
            if self.metrics is not None:
                self.metrics.reloaded(True)
        if self.notifier is not None:
            self.notifier.ready()

    def _observers(self, number: int) -> tuple[list[Any], Any, Any]:
        ns = self.ns
        observers: list[Any] = []
        progress = timeline = None
        if self.events is not None:
            from .eventlog import EventLog

            observers.append(EventLog(self.events))
        if ns.report:
            from .timeline import Timeline

            timeline = Timeline()
            observers.append(timeline)
        if self.show_progress:
            from .progress import Progress

            progress = Progress()
            observers.append(progress)
        if ns.verbose or ns.debug:
            writer: Any = progress.writer() if progress else None
            observers.append(Trace(debug=ns.debug, stream=writer))
        from .cli import _InterruptNotice  # one notice for one-shot runs and the loop

        observers.append(_InterruptNotice(progress.writer() if progress else None))
        if self.metrics is not None:
            observers.append(self.metrics.observer())
        if self.notifier is not None and self.notifier.watchdog:
            ping = self.notifier.ping
            observers.append(lambda event: ping())
        for hook in self.hooks:
            observers.extend(self._call_hook(hook, "observers", number) or ())
        return observers, progress, timeline

    def _call_hook(self, hook: Any, name: str, arg: Any) -> Any:
        """``hook.name(arg)`` if the hook has it; a hook that raises is reported and never stops the loop."""
        method = getattr(hook, name, None)
        if method is None:
            return None
        try:
            return method(arg)
        except Exception as exc:
            self.err(f"warning: {type(hook).__name__}.{name} failed: {error_line(exc)}", exc)
            return None

    def _run_once(self, number: int) -> Iteration:
        import dojob

        observers, progress, timeline = self._observers(number)
        it = Iteration(number, started=time.time())
        if self.metrics is not None:
            self.metrics.run_started(it.started)
        if self.notifier is not None:
            self.notifier.ping(force=True)
        stopped_by: int | None = None  # the exit status a stop asked for
        cleanup_error = None
        try:  # the engine handles SIGINT/SIGTERM while the run lasts, then gives the loop's handlers back
            it.report = dojob.run(*self.roots, observers=observers, handle_signals=True, **self.options)
        except (GraphError, OptionError) as exc:
            it.error = exc
        except CleanupError as exc:
            cleanup_error = exc
            it.cleanup_failures = exc.failures
            it.report = exc.report
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (also as the engine's Terminated, which has .signum)
            if getattr(exc, "signum", None) == signal.SIGTERM and self.signals.stop is None:
                self.signals.stop = signal.SIGTERM
            stopped_by = EXIT_INTERRUPTED
            it.report = getattr(exc, "report", None)
            it.cleanup_failures = getattr(exc, "cleanup_failures", [])
        except SystemExit as exc:  # a job called sys.exit(): recap, then exit as it asked
            stopped_by = exc.code if isinstance(exc.code, int) else 1
            it.report = getattr(exc, "report", None)
            it.cleanup_failures = getattr(exc, "cleanup_failures", [])
        finally:
            self.signals.leave_run()
            if progress is not None:
                progress.stop()
        it.ended = time.time()
        if it.error is not None:
            it.verdict, it.status = "error", 2
            prefix = "graph error" if isinstance(it.error, GraphError) else "error"
            self.err(f"{prefix}: {it.error}", it.error)
        elif stopped_by == EXIT_INTERRUPTED:
            if self.signals.stop is None:
                self.signals.stop = signal.SIGINT
            it.verdict = "interrupted"
            it.status = EXIT_TERMINATED if self.signals.stop == signal.SIGTERM else EXIT_INTERRUPTED
        elif stopped_by is not None:
            it.verdict, it.status = "not_converged", stopped_by
        else:
            ok = it.report.success and cleanup_error is None
            it.verdict, it.status = ("converged", 0) if ok else ("not_converged", 1)
        it.stopped = stopped_by is not None
        if it.report is not None:
            it.findings = self.drift(it.report, number)
            if self.write_outputs is not None:
                _, errors = self.write_outputs(it.report, timeline, it.cleanup_failures)
                for path, problem in errors:
                    self.err(f"error: cannot write {path!r}: {one_line(problem, 500)}")  # a reason, no exception
        if self.metrics is not None:
            self.metrics.run_finished(it.verdict, it.ended, it.report)
            self.metrics.record_drift(name for name, _ in it.findings.drifted)
            self.metrics.record_flap(it.findings.flapping)
        return it

    def _recap(self, it: Iteration, delay: float | None, failures: int) -> None:
        """One line per run; the rest of the recap when something changed, failed or drifted."""
        when = time.strftime("%H:%M:%S", time.localtime(it.started))
        head = f"run {it.number} at {when}: "
        report = it.report
        if report is None:
            head += "interrupted before the run had a report" if it.verdict == "interrupted" else "did not run"
            details: list[str] = []
        else:
            lines = report.summary(color=use_color(self.out or sys.stdout)).split("\n")
            head += lines[-1]
            details = []
            if getattr(report, "history", None) is not None:  # the recap has the history's own lines
                findings = LoopFindings((), ())
            else:
                findings = it.findings
            for name, since in findings.drifted:
                details.append(f"drifted: {one_line(name, 200)} (converged in {one_line(since, 200)})")
            if findings.flapping:
                details.append("flapping: " + ", ".join(one_line(n, 200) for n in findings.flapping))
            details.extend(lines[:-1])  # the recap's own lines: failures, changed: names
        head = with_cleanups_failed(head, it.cleanup_failures)
        details.extend(cleanup_lines(it.cleanup_failures))
        if delay is not None:
            head += f"; next run in {_duration(delay)}"
            if it.verdict != "converged":
                head += f" (back-off after {failures} failed run{'s' if failures > 1 else ''})"
        self._print([head] + ["    " + line for line in details])


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False


# -- the command line ------------------------------------------------------------------


def loop_command(
    ns: argparse.Namespace,
    err: ErrorSink,
    roots: list[type[Job] | BoundJob],
    options: dict[str, Any],
    write_outputs: Callable[..., tuple[list[str], list[tuple[str, str]]]] | None = None,
    events: TextIO | None = None,
) -> int:
    """``dojob run --every``: the loop, its metrics endpoint and its systemd notifications.

    ``events`` is the ``--events`` stream when the caller opened it already
    (else the loop opens ``ns.events`` itself); every run's events go there.

    Raises:
        LoopError: a loop-only option without ``--every``.
        MetricsError: a bad ``--metrics`` address or no ``prometheus_client``.
    """
    if ns.every is None:
        given = [f"--{n.replace('_', '-')}" for n in ("jitter", "max_runs", "metrics") if getattr(ns, n) is not None]
        raise LoopError(f"{', '.join(given)} needs --every INTERVAL")
    from .sdnotify import Notifier

    metrics = None
    if ns.metrics is not None:
        from .metrics import Metrics, parse_address

        host, port = parse_address(ns.metrics)
        metrics = Metrics()
        bound_host, bound_port = metrics.serve(host, port)
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        sys.stderr.write(f"dojob: metrics at http://{shown}:{bound_port}/metrics\n")
        sys.stderr.flush()
    notifier = Notifier()
    opened = None
    try:
        if ns.events and events is None:
            try:
                events = opened = open(ns.events, "w", encoding="utf-8")
            except OSError as exc:
                raise LoopError(f"cannot write {ns.events!r}: {exc.strerror or exc}") from None
        loop = Loop(
            ns,
            roots,
            options,
            write_outputs=write_outputs,
            err=err,
            metrics=metrics,
            notifier=notifier if notifier.enabled else None,
            events=events,
        )
        return loop.run()
    finally:
        if opened is not None:
            opened.close()
        if metrics is not None:
            metrics.close()
