"""Prometheus metrics of a reconcile loop, served over HTTP (``dojob run --every ... --metrics HOST:PORT``).

Built on `prometheus_client <https://prometheus.github.io/client_python/>`_
(``pip install 'dojob[metrics]'``), with a registry of its own (nothing of the
process's default registry leaks in). What is exported:

=======================================  ==========================================================
``dojob_runs_total{verdict}``            runs by verdict: converged, not_converged, interrupted, error
``dojob_run_in_progress``                1 while a run goes on
``dojob_last_run_start_timestamp_seconds``  when the last run started (Unix time)
``dojob_last_run_end_timestamp_seconds``    when it ended
``dojob_last_run_verdict{dojob_last_run_verdict}``  1 for the last run's verdict, 0 for the others
``dojob_last_converged_timestamp_seconds``  when a run last converged (absent until one does)
``dojob_job_status{job,dojob_job_status}``  1 for each job's status in the last run (ok, changed, ...)
``dojob_job_tries{job}``                 tries each job used in the last run
``dojob_try_duration_seconds``           histogram of every try's duration
``dojob_drift_total{job}``               times a converged job was found changed again
``dojob_flap_total{job}``                times a job was found flapping
``dojob_reloads_total{result}``          SIGHUP reloads: ok, failed
=======================================  ==========================================================

Drift and flapping are fed through a hook, :meth:`Metrics.record_drift` and
:meth:`Metrics.record_flap`: the loop calls the first with the jobs its own
in-memory comparison finds drifted; a run-history store that knows more (across
restarts, flapping) calls both with what it finds.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from .errors import DojobError
from .events import Status, TryEnded, TryStarted

__all__ = ["VERDICTS", "Metrics", "MetricsError", "parse_address"]

#: The values of the ``verdict`` label.
VERDICTS = ("converged", "not_converged", "interrupted", "error")
#: Buckets of the try-duration histogram, in seconds: from quick Checks to slow Runs.
TRY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, float("inf"))


class MetricsError(DojobError):
    """A bad ``--metrics`` address, a missing ``prometheus_client``, or a port that cannot be bound."""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[V6]:PORT`` as (host, port); the host defaults to 127.0.0.1.

    Raises:
        MetricsError: not one of those forms, or a port outside 0-65535 (0 picks a free one).
    """
    value = text.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s]*):(\d{1,5})|(\d{1,5})", value)
    if not match:
        raise MetricsError(f"--metrics must be HOST:PORT, :PORT or PORT, got {text!r}")
    host = match.group(1) or match.group(3) or "127.0.0.1"
    port = int(match.group(2) or match.group(4) or match.group(5))
    if port > 65535:
        raise MetricsError(f"--metrics port must be 0-65535, got {port}")
    return host, port


class _TryTimer:
    """An observer that feeds the try-duration histogram from TryStarted/TryEnded events."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.started: dict[tuple[str, int], float] = {}

    def __call__(self, event: Any) -> None:
        kind = type(event)
        if kind is TryStarted:
            self.started[(event.job, event.try_number)] = event.time
        elif kind is TryEnded:
            t0 = self.started.pop((event.job, event.try_number), None)
            if t0 is not None:
                self.histogram.observe(max(0.0, event.time - t0))


class Metrics:
    """The loop's metrics and, once :meth:`serve` is called, the HTTP endpoint at ``/metrics``.

    Raises:
        MetricsError: ``prometheus_client`` is not installed.
    """

    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
        except ImportError:
            raise MetricsError("--metrics needs prometheus_client: pip install 'dojob[metrics]'") from None
        self.registry = registry = CollectorRegistry()
        self._lock = threading.Lock()
        self.runs = Counter("dojob_runs", "Runs by verdict.", ["verdict"], registry=registry)
        for verdict in VERDICTS:
            self.runs.labels(verdict)  # every verdict is there from the start, at 0
        self.in_progress = Gauge("dojob_run_in_progress", "1 while a run goes on.", registry=registry)
        self.last_start = Gauge(
            "dojob_last_run_start_timestamp_seconds", "When the last run started (Unix time).", registry=registry
        )
        self.last_end = Gauge(
            "dojob_last_run_end_timestamp_seconds", "When the last run ended (Unix time).", registry=registry
        )
        self.last_verdict = Enum(
            "dojob_last_run_verdict", "The last run's verdict.", states=VERDICTS, registry=registry
        )
        self.last_converged = Gauge(
            "dojob_last_converged_timestamp_seconds", "When a run last converged (Unix time).", registry=registry
        )
        self._converged_once = False
        self.job_status = Enum(
            "dojob_job_status",
            "Each job's status in the last run.",
            ["job"],
            states=[s.value for s in Status],
            registry=registry,
        )
        self.job_tries = Gauge("dojob_job_tries", "Tries each job used in the last run.", ["job"], registry=registry)
        self.try_duration = Histogram(
            "dojob_try_duration_seconds", "Duration of every try.", buckets=TRY_BUCKETS, registry=registry
        )
        self.drift = Counter(
            "dojob_drift", "Times a converged job was found changed again.", ["job"], registry=registry
        )
        self.flap = Counter("dojob_flap", "Times a job was found flapping.", ["job"], registry=registry)
        self.reloads = Counter("dojob_reloads", "SIGHUP reloads of the target.", ["result"], registry=registry)
        for result in ("ok", "failed"):
            self.reloads.labels(result)
        self._jobs: set[str] = set()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- fed by the loop ---------------------------------------------------------------

    def observer(self) -> _TryTimer:
        """A fresh observer for one run: it times every try."""
        return _TryTimer(self.try_duration)

    def run_started(self, when: float) -> None:
        """A run started at Unix time ``when``."""
        self.in_progress.set(1)
        self.last_start.set(when)

    def run_finished(self, verdict: str, when: float, report: Any = None) -> None:
        """A run ended at ``when`` with ``verdict`` (one of :data:`VERDICTS`); ``report`` gives per-job values."""
        with self._lock:
            self.runs.labels(verdict).inc()
            self.last_end.set(when)
            self.last_verdict.state(verdict)
            if verdict == "converged":
                self.last_converged.set(when)
            self.in_progress.set(0)
            if report is not None:
                self._jobs_from(report)

    def _jobs_from(self, report: Any) -> None:
        names = set()
        for job in report.jobs.values():
            name = job.name
            names.add(name)
            self.job_status.labels(name).state(job.status.value)
            self.job_tries.labels(name).set(job.tries)
        for gone in self._jobs - names:  # a job the reloaded graph no longer has: none of its series stay
            for family in (self.job_status, self.job_tries, self.drift, self.flap):
                family.remove(gone)  # (a series it never had: nothing to remove)
        self._jobs = names

    def reloaded(self, ok: bool) -> None:
        """A SIGHUP reload succeeded (``ok``) or failed and the previous graph was kept."""
        self.reloads.labels("ok" if ok else "failed").inc()

    # -- the drift/flap hook -----------------------------------------------------------

    def record_drift(self, jobs: Iterable[str]) -> None:
        """Count one drift for each of ``jobs``: each had converged, then was found changed again.

        The hook a run-history store calls with the drift it finds; the loop calls
        it with what its in-memory comparison of consecutive runs finds.
        """
        for job in jobs:
            self.drift.labels(job).inc()

    def record_flap(self, jobs: Iterable[str]) -> None:
        """Count one flap for each of ``jobs`` (a job whose state keeps changing between runs)."""
        for job in jobs:
            self.flap.labels(job).inc()

    # -- the endpoint -------------------------------------------------------------------

    def text(self) -> str:
        """The exposition text that ``/metrics`` serves."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; return the address bound (port 0 picks one).

        Raises:
            MetricsError: the address cannot be bound.
        """
        from prometheus_client import start_http_server

        try:
            result = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MetricsError(f"--metrics {host}:{port}: cannot listen: {exc.strerror or exc}") from None
        if not isinstance(result, tuple):  # prometheus_client < 0.17 returned nothing
            raise MetricsError("--metrics needs prometheus_client >= 0.17")
        self._server, self._thread = result
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop serving (the port is free again when this returns)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
