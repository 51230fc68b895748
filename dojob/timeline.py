"""A :class:`Timeline` observer: when every phase of every try ran, for reports.

Attach one to a run and hand it to :meth:`Report.to_html <dojob.report.Report.to_html>`::

    timeline = Timeline()
    report = dojob.run(Root, observers=[timeline], workers=4)
    Path("run.html").write_text(report.to_html(timeline))

It keeps plain data only (names, numbers, strings): one :class:`Span` per phase
(check, run, recheck, init failures, cleanup), one :class:`TrySpan` per try.
Events are matched by class name, so events this module does not know are
ignored. Calls must be serialised, as :class:`~dojob.observe.Dispatcher` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Span", "Timeline", "TrySpan"]


@dataclass
class Span:
    """One phase of one try (or a Cleanup). Times are seconds since the run started.

    Attributes:
        job: the job's name.
        try_number: the try (0 for a Cleanup).
        phase: ``"init"``, ``"check"``, ``"run"``, ``"recheck"`` or ``"cleanup"``.
        start, end: when it ran; ``end`` is None while it runs.
        ok: True passed, False raised, None never ended (interrupted, or cut at its
            ``TIMEOUT``: cancelled, or abandoned to its thread).
        error: ``"Type: message"`` when it raised.
        traceback: the formatted traceback when it raised.
        worker: the thread or process it ran on, when the engine says.
        abandoned: the phase overran its timeout and was left running.
    """

    job: str
    try_number: int
    phase: str
    start: float
    end: float | None = None
    ok: bool | None = None
    error: str | None = None
    traceback: str | None = None
    worker: str | None = None
    abandoned: bool = False


@dataclass
class TrySpan:
    """One try of a job: from TryStarted to TryEnded; ``retry_at`` when another try follows."""

    job: str
    try_number: int
    start: float
    end: float | None = None
    ok: bool | None = None
    retry_at: float | None = None


@dataclass
class Timeline:
    """Records the timing of every phase of every try, and the Cleanups.

    Attributes:
        spans: every phase, in the order they started.
        tries: every try, in the order they started.
        jobs: job names in the order they first started (the rows of a timeline).
        workers: the run's worker count (from RunStarted).
        end: when the run finished (RunFinished), or None.
        running: ``(time, tries running)`` after every try started or ended, in event order.
    """

    spans: list[Span] = field(default_factory=list)
    tries: list[TrySpan] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    workers: int = 1
    end: float | None = None
    running: list[tuple[float, int]] = field(default_factory=list)
    _open: dict[tuple[str, int, str], Span] = field(default_factory=dict, repr=False)
    _open_tries: dict[tuple[str, int], TrySpan] = field(default_factory=dict, repr=False)
    _abandoned: dict[tuple[str, int, str], Span] = field(default_factory=dict, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)
    _last: float = field(default=0.0, repr=False)

    def _row(self, job: str) -> None:
        if job not in self._seen:
            self._seen.add(job)
            self.jobs.append(job)

    def __call__(self, event: Any) -> None:
        kind = type(event).__name__
        t = getattr(event, "time", None)
        if isinstance(t, (int, float)):
            self._last = max(self._last, float(t))
        handler = getattr(self, "_on_" + kind, None)
        if handler is not None:
            handler(event)

    # -- handlers, by event class name ---------------------------------------
    def _on_RunStarted(self, event: Any) -> None:
        self.workers = event.workers

    def _on_TryStarted(self, event: Any) -> None:
        self._row(event.job)
        span = TrySpan(event.job, event.try_number, event.time)
        self.tries.append(span)
        self._open_tries[(event.job, event.try_number)] = span
        self.running.append((event.time, len(self._open_tries)))

    def _on_TryEnded(self, event: Any) -> None:
        span = self._open_tries.pop((event.job, event.try_number), None)
        if span is None:
            span = TrySpan(event.job, event.try_number, event.time)
            self.tries.append(span)
        span.end, span.ok, span.retry_at = event.time, event.ok, event.retry_at
        self.running.append((event.time, len(self._open_tries)))

    def _on_PhaseStarted(self, event: Any) -> None:
        self._row(event.job)
        phase = getattr(event.phase, "value", event.phase)
        span = Span(event.job, event.try_number, phase, event.time, worker=getattr(event, "worker", None))
        self.spans.append(span)
        self._open[(event.job, event.try_number, phase)] = span

    def _on_PhaseEnded(self, event: Any) -> None:
        phase = getattr(event.phase, "value", event.phase)
        key = (event.job, event.try_number, phase)
        span = self._open.pop(key, None)
        if span is None and key in self._abandoned:  # the failure of a phase left running: the same bar
            span = self._abandoned.pop(key)
        elif span is None:  # e.g. an init failure: no PhaseStarted
            self._row(event.job)
            span = Span(event.job, event.try_number, phase, event.time)
            self.spans.append(span)
        if not span.abandoned:
            span.end, span.ok = event.time, event.ok
            if event.error_type == "PhaseTimeout":  # cancelled at its bound: it never ended
                span.ok = None
        if not event.ok:
            span.error = f"{event.error_type}: {event.error}" if event.error else event.error_type
            span.traceback = event.traceback

    def _on_PhaseAbandoned(self, event: Any) -> None:
        phase = getattr(event.phase, "value", event.phase)
        key = (event.job, event.try_number, phase)
        span = self._open.pop(key, None)
        if span is not None:
            span.end, span.ok, span.abandoned = event.time, None, True
            span.error = "abandoned: the phase overran its timeout"
            self._abandoned[key] = span

    def _on_CleanupStarted(self, event: Any) -> None:
        self._row(event.job)
        span = Span(event.job, 0, "cleanup", event.time)
        self.spans.append(span)
        self._open[(event.job, 0, "cleanup")] = span

    def _on_CleanupEnded(self, event: Any) -> None:
        span = self._open.pop((event.job, 0, "cleanup"), None)
        if span is None:
            self._row(event.job)
            span = Span(event.job, 0, "cleanup", event.time)
            self.spans.append(span)
        span.end, span.ok = event.time, event.ok
        if not event.ok:
            span.error = f"{event.error_type}: {event.error}" if event.error else event.error_type
            span.traceback = event.traceback

    def _on_RunFinished(self, event: Any) -> None:
        self.end = event.time

    # -- queries ---------------------------------------------------------------
    @property
    def last_time(self) -> float:
        """The latest time seen in any event (the right edge of a drawing)."""
        return self._last

    def max_parallel(self) -> int:
        """The most tries that ran at the same time (counted in event order, so exact)."""
        return max((n for _, n in self.running), default=0)
