"""``Converge``: an aio job that converges a class-based dojob graph.

It nests dojob's model inside an asynciojobs-style scheduler: the job awaits
:func:`dojob.arun` on the running loop, so the scheduler's window, timeout
and critical rules apply to it like to any job (a timeout cancels the
graph's running tries and runs its Cleanups).
"""

from __future__ import annotations

from typing import Any

from ..errors import DojobError
from ..runner import arun
from .jobs import AbstractJob

_JOB_OPTIONS = ("forever", "critical", "label", "required", "scheduler")


class ConvergeError(DojobError):
    """A class-based graph did not converge.

    Attributes:
        report: the run's :class:`~dojob.report.Report`.
        failed: names of the jobs that failed.
        blocked: names of the jobs blocked by a failure.
    """

    def __init__(self, root: str, report: Any) -> None:
        self.report = report
        self.failed = [job.name for job in report if job.status.value == "failed"]
        self.blocked = [job.name for job in report if job.status.value == "blocked"]
        parts = []
        if self.failed:
            parts.append("failed: " + ", ".join(self.failed))
        if self.blocked:
            parts.append("blocked: " + ", ".join(self.blocked))
        if report.stopped:
            parts.append(f"stopped: {report.stopped}")
        super().__init__(f"{root} did not converge ({'; '.join(parts) or 'unknown reason'})")


class Converge(AbstractJob):
    """An aio job whose run converges the class-based graph of ``root``.

    Args:
        root: the root :class:`dojob.Job` class.
        args, kwargs: passed to every Check and Run.
        **options: :class:`~dojob.aio.AbstractJob`'s options (``critical``,
            ``forever``, ``label``, ``required``, ``scheduler``); all others go
            to :func:`dojob.arun` (``workers``, ``timeout``, ``default_tries``,
            ``observers``, ...).

    The result is the run's :class:`~dojob.report.Report`. If the graph does
    not converge, the job raises :class:`ConvergeError`, naming the failed
    jobs. Like any job it is critical by default.

    Example:
        >>> Scheduler(Job(provision()), Converge(WebServer, kwargs={"host": "web1"}, workers=4))
    """

    def __init__(self, root: type, args: Any = (), kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        job_options = {k: options.pop(k) for k in _JOB_OPTIONS if k in options}
        self.root = root
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = options
        super().__init__(**job_options)

    def text_label(self) -> str:
        return f"Converge[{getattr(self.root, '__name__', self.root)}]"

    async def co_run(self) -> Any:
        report = await arun(self.root, args=self.args, kwargs=self.kwargs, **self.options)
        if not report.success:
            raise ConvergeError(getattr(self.root, "__name__", str(self.root)), report)
        return report
