"""``DoJobber``: a drop-in for DoJobber 0.6 scripts, as a thin layer over :func:`dojob.run`.

``import dojob as dojobber`` is enough for scripts that follow DoJobber's
README. Differences, all deliberate: retries never sleep while other jobs
could run; ``checknrun()`` may be called again (each call is a fresh run);
``workers=`` runs branches in parallel; a Cleanup that raises does not stop
the other Cleanups (their failures are raised together); developer logging
goes to the ``dojob`` logger, which has no handler unless you add one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from typing import IO, Any

from .errors import CleanupError, DojobError
from .graph import JobGraph, build_graph
from .job import Job
from .observe import logger
from .render import graph_dot, render, svg
from .report import Report
from .runner import frozen_build, run_graph


class DoJobber:
    """DoJobber's API: ``configure``, ``set_args``, ``checknrun``, ``cleanup``, statuses, graphs.

    Args:
        dojobber_loglevel: level of the ``dojob`` logger (e.g. ``logging.DEBUG``);
            add a handler (``logging.basicConfig()``) to see the messages.
    """

    def __init__(self, dojobber_loglevel: int | None = None, **_ignored: Any) -> None:
        if dojobber_loglevel is not None:
            logger.setLevel(dojobber_loglevel)
        self._root: type[Job] | None = None
        self._options: dict[str, Any] = {}
        self._graph: JobGraph | None = None
        self._args: tuple = ()
        self._kwargs: dict[str, Any] = {}
        self._report: Report | None = None
        self._pending_cleanup: Report | None = None
        self.nodestatus: dict[str, bool | None] = {}
        self.nodeexceptions: dict[str, BaseException] = {}
        self.noderesults: dict[str, Any] = {}

    def configure(
        self,
        root: type[Job],
        no_act: bool = False,
        verbose: bool = False,
        debug: bool = False,
        cleanup: bool = True,
        default_tries: int = 3,
        default_retry_delay: float = 1,
        workers: int = 1,
        **options: Any,
    ) -> None:
        """Set the root job and the options; builds and validates the graph now.

        Raises:
            GraphError: the graph is invalid (cycle, bad DEPS, bad TRIES, ...).
        """
        self._graph = build_graph(root, default_tries=default_tries, default_retry_delay=default_retry_delay)
        self._root = root
        self._options = dict(
            no_act=no_act,
            verbose=verbose,
            debug=debug,
            cleanup=cleanup,
            workers=workers,
            default_tries=default_tries,
            default_retry_delay=default_retry_delay,
            **options,
        )
        logger.debug("configured %s: %d jobs", root.__name__, len(self._graph))

    def set_args(self, *args: Any, **kwargs: Any) -> None:
        """Set the arguments passed to every Check and Run."""
        self._args = args
        self._kwargs = kwargs

    def checknrun(self, node: type[Job] | None = None) -> None:
        """Converge the graph (from ``node`` if given, else the configured root).

        DEPS are read again, so jobs added since ``configure`` are included.
        """
        root = node or self._root
        if root is None:
            raise DojobError("configure() must be called before checknrun()")
        options = dict(self._options)
        tries = options.pop("default_tries")
        delay = options.pop("default_retry_delay")
        report = None
        try:
            with frozen_build(lambda: build_graph(root, default_tries=tries, default_retry_delay=delay)) as graph:
                self._graph = graph
                self.nodestatus, self.nodeexceptions, self.noderesults = {}, {}, {}
                report = run_graph(graph, args=self._args, kwargs=self._kwargs, **options)
        except CleanupError as exc:
            report = exc.report
            raise
        finally:
            if report is not None:
                self._set_report(report)

    def _set_report(self, report: Report) -> None:
        self._report = report
        self._pending_cleanup = None if self._options.get("cleanup", True) else report
        self.nodestatus = report.statuses()
        self.nodeexceptions = report.exceptions()
        self.noderesults = report.results()

    @property
    def report(self) -> Report | None:
        """The last run's :class:`~dojob.report.Report`, or None."""
        return self._report

    def cleanup(self) -> None:
        """Run the Cleanups deferred by ``configure(cleanup=False)`` (LIFO), once."""
        if self._pending_cleanup is not None:
            pending, self._pending_cleanup = self._pending_cleanup, None
            pending.cleanup()

    def success(self) -> bool:
        """Every job succeeded."""
        return bool(self.nodestatus) and all(self.nodestatus.values())

    def partial_success(self) -> bool:
        """At least one job succeeded."""
        return any(self.nodestatus.values())

    def failure(self) -> bool:
        """Not every job succeeded."""
        return not self.success()

    @property
    def graph(self) -> Any:
        """The job graph as a ``networkx.DiGraph`` (edge job -> dependency), with ``status`` node attributes."""
        if self._graph is None:
            raise DojobError("configure() must be called first")
        g = self._graph.nx.copy()
        for name, status in self.nodestatus.items():
            g.nodes[name]["status"] = status
        return g

    def dot(self) -> str:
        """The graph as DOT text, coloured by the last run."""
        if self._graph is None:
            raise DojobError("configure() must be called first")
        return graph_dot(self._graph, self._report)

    def _repr_svg_(self) -> str | None:
        """The graph coloured by the last run, for Jupyter; None before :meth:`configure`."""
        if self._graph is None:
            return None
        return svg(self.dot())

    def write_graph(self, fileobj: IO[Any], fmt: str = "png") -> None:
        """Write the graph, coloured by the last run, to ``fileobj`` in format ``fmt``.

        ``fmt`` is any Graphviz output format ('png', 'svg', 'pdf', ...) or 'dot'
        (text, no Graphviz needed).

        Raises:
            RenderError: Graphviz is missing or the format is unknown.
        """
        data = render(self.dot(), fmt)
        try:
            fileobj.write(data)
        except TypeError:
            fileobj.write(data.decode())

    def display_graph(self) -> None:
        """Show the graph in an image viewer (ImageMagick's ``display``, else ``xdg-open``)."""
        viewer = shutil.which("display") or shutil.which("xdg-open")
        if viewer is None:
            raise DojobError("display_graph() needs an image viewer: install ImageMagick (display) or xdg-utils")
        with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as fh:
            self.write_graph(fh, "png")
        subprocess.run([viewer, fh.name], check=False)
