"""The ``verbose`` output of a scheduler: an observer rendering engine events as asynciojobs' lines.

The engine never prints; a scheduler created with ``verbose=True`` (or any
scheduler after ``set_debug(True)``) adds this observer to its runs.
"""

from __future__ import annotations

from typing import Any

from ..events import JobFinished, PhaseEnded, RunFinished, RunStarted, RunStopping, Status, TryEnded, TryStarted
from .watch import Watch

_debug = False


def set_debug(debug: bool) -> None:
    """Make every scheduler verbose, with the traceback of every exception (asynciojobs' DEBUG)."""
    global _debug
    _debug = bool(debug)


def debug_enabled() -> bool:
    return _debug


_STOPS = {
    "timeout": "PureScheduler.co_run: TIMEOUT occurred",
    "critical": "Emergency exit upon exception in critical job",
    "interrupted": "PureScheduler.co_run: interrupted",
}
_FINISHED = {
    Status.OK: "DONE",
    Status.CHANGED: "DONE",
    Status.FAILED: "RAISED EXC.",
    Status.NOT_RUN: "CANCELLED",
    Status.INTERRUPTED: "CANCELLED",
}


class Feedback:
    """Prints one line per start, end, retry and stop of a scheduler's jobs.

    Args:
        scheduler: the scheduler whose run this observes.
        names: spec name -> job, for the run's graph.
        debug: also print the traceback of every failed try.
    """

    def __init__(self, scheduler: Any, names: dict[str, Any], *, debug: bool = False) -> None:
        self.scheduler = scheduler
        self.names = names
        self.debug = debug

    def _time(self) -> None:
        watch = self.scheduler.watch
        if watch is not None:
            watch.print_elapsed()
        else:
            Watch.print_wall_clock()

    def _say(self, text: str) -> None:
        self._time()
        print(f"SCHEDULER {self.scheduler.stats()}: {text}")

    def _job(self, name: str, state: str) -> None:
        job = self.names.get(name)
        if job is None:
            return
        self._time()
        print(
            f"{self.scheduler.stats()} {state:8s}: {job.repr_id()} {job.repr_short()} {job.repr_main()} "
            f"{job.repr_result()} {job.repr_requires()}"
        )

    def __call__(self, event: Any) -> None:
        kind = type(event)
        if kind is TryStarted:
            self._job(event.job, "STARTING" if event.try_number == 1 else f"RETRY #{event.try_number}")
        elif kind is JobFinished:
            self._job(event.job, _FINISHED.get(event.status, event.status.value))
        elif kind is TryEnded:
            if event.retry_at is not None:
                self._job(event.job, f"FAILED try #{event.try_number}, will retry")
        elif kind is PhaseEnded:
            if self.debug and not event.ok and event.traceback:
                print(event.traceback)
        elif kind is RunStopping:
            self._say(_STOPS.get(event.reason, event.reason))
        elif kind is RunStarted:
            self._say(f"entering co_run() with {len(self.names)} jobs")
        elif kind is RunFinished:
            self._say("co_run() is over")
