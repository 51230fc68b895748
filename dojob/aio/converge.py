"""``Converge``: an aio job that converges a class-based dojob graph.

It nests dojob's model inside an asynciojobs-style scheduler: the job awaits
:func:`dojob.arun` on the running loop, so the scheduler's window, timeout
and critical rules apply to it like to any job (a timeout cancels the
graph's running tries and runs its Cleanups).
"""

from __future__ import annotations

from typing import Any

from ..errors import DojobError
from ..graph import build_graph
from ..runner import arun
from .jobs import AbstractJob, shutdown_jobs

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

    Shutdown, as for a nested scheduler: the aio jobs in the graph's ``DEPS`` get
    their ``co_shutdown()`` when this job's run ends (converged or not), within
    ``shutdown_timeout`` seconds (default 1); if the run never ended (cancelled), the
    enclosing scheduler's shutdown does it.

    Example:
        >>> Scheduler(Job(provision()), Converge(WebServer, kwargs={"host": "web1"}, workers=4))
    """

    def __init__(
        self,
        root: type,
        args: Any = (),
        kwargs: dict[str, Any] | None = None,
        *,
        shutdown_timeout: float | None = 1,
        **options: Any,
    ) -> None:
        job_options = {k: options.pop(k) for k in _JOB_OPTIONS if k in options}
        self.shutdown_timeout = shutdown_timeout
        self._did_shutdown = False
        self.root = root
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = options
        super().__init__(**job_options)

    def text_label(self) -> str:
        return f"Converge[{getattr(self.root, '__name__', self.root)}]"

    async def co_run(self) -> Any:
        self._did_shutdown = False
        report = await arun(self.root, args=self.args, kwargs=self.kwargs, **self.options)
        await self.co_shutdown()
        if not report.success:
            raise ConvergeError(getattr(self.root, "__name__", str(self.root)), report)
        return report

    def _aio_nodes(self) -> list[Any]:
        """The aio jobs listed in the DEPS of the graph's classes."""
        options = {k: self.options[k] for k in ("default_tries", "default_retry_delay") if k in self.options}
        return [spec.cls for spec in build_graph(self.root, **options).awaitables]

    async def co_shutdown(self) -> bool | None:
        """Await the ``co_shutdown()`` of the aio jobs in the graph, once per run (None: done already)."""
        if self._did_shutdown:
            return None
        self._did_shutdown = True
        return await shutdown_jobs(self._aio_nodes(), self.shutdown_timeout)
