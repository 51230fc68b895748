"""``DoJobber``: a drop-in for DoJobber 0.6 scripts, as a thin layer over :func:`dojob.run`.

``python -m dojob.dojobber script.py`` runs a script that imports ``dojobber``
unchanged; ``import dojob as dojobber`` (or ``from dojob import ...``) is the
one-line edit. The deliberate differences are listed in README.rst
("DoJobber compatibility"); everything else behaves as DoJobber 0.6.3 ships it.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
from operator import attrgetter
from typing import IO, Any

from .errors import DojobError, RootError
from .events import Status
from .graph import JobGraph, build_graph
from .job import Job
from .observe import LogObserver, log_regardless, logger
from .report import Report
from .runner import collector_is_ours, frozen_build, pause_collector, run_graph


class DoJobber:
    """DoJobber's API: ``configure``, ``set_args``, ``checknrun``, ``cleanup``, statuses, graphs.

    Args:
        dojobber_loglevel: the level of what this instance logs to the ``dojob`` logger
            (e.g. ``logging.DEBUG``: its configure and every event of its runs and Cleanups),
            whatever the logger's own level, which it leaves alone: another DoJobber, or a
            ``dojob.run`` in another thread, logs as if this one did not exist. Add a handler
            (``logging.basicConfig()``) to see the messages.
    """

    def __init__(self, dojobber_loglevel: int | None = None, **_ignored: Any) -> None:
        self._loglevel = dojobber_loglevel
        self._root: type[Job] | None = None
        self._options: dict[str, Any] = {}
        self._graph: JobGraph | None = None
        #: configure's graph, its root and the DEPS of its classes as the build read them
        self._built: tuple[JobGraph, type[Job], list[Any] | None] | None = None
        self._args: tuple = ()
        self._kwargs: dict[str, Any] = {}
        self._report: Report | None = None
        self._pending_cleanup: Report | None = None
        #: the run whose nodestatus/nodeexceptions/noderesults these are (None: empty, no run yet)
        self._source: Report | None = None
        #: those three dicts, each made from ``_source`` when first read (or set by the caller)
        self._views: dict[str, dict[str, Any]] = {}

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

        ``root`` is a Job class, or the name of one (a subclass of :class:`~dojob.job.Job`).

        Raises:
            GraphError: the graph is invalid (cycle, bad DEPS, bad TRIES, ...).
        """
        root = _job_named(root) if isinstance(root, str) else root
        self._graph = self._built = None  # the old graph goes before the new one is built (peak memory)
        self._graph = _build_collector_off(root, default_tries, default_retry_delay)
        self._built = (self._graph, root, self._graph.read_deps)
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
        if self._loglevel is None:
            logger.debug("configured %s: %d jobs", root.__name__, len(self._graph))
        elif self._loglevel <= logging.DEBUG:
            log_regardless(logger, logging.DEBUG, "configured %s: %d jobs", root.__name__, len(self._graph))

    def set_args(self, *args: Any, **kwargs: Any) -> None:
        """Set the arguments passed to every Check and Run."""
        self._args = args
        self._kwargs = kwargs

    def checknrun(self, node: type[Job] | str | None = None) -> None:
        """Converge the graph (from ``node``, a Job class or a job's name, if given; else the root).

        DEPS are read again, so jobs added since ``configure`` are included: if
        no job's DEPS changed (and ``node`` is the configured root), the graph
        ``configure`` built and validated is run, else it is built again. The
        working directory is the caller's again when this returns (or raises), as
        in DoJobber. If a job raises ``SystemExit``/``KeyboardInterrupt``, the
        statuses reached so far are kept before it propagates.
        """
        if self._root is None:
            raise DojobError("configure() must be called before checknrun()")
        root = self._root if node is None else self._node(node)
        options = dict(self._options)
        tries = options.pop("default_tries")
        delay = options.pop("default_retry_delay")
        if self._loglevel is not None and self._loglevel <= logging.DEBUG and not logger.isEnabledFor(logging.DEBUG):
            observer = LogObserver(regardless=True)  # (else the session adds a LogObserver of its own)
            options["observers"] = [*options.get("observers", ()), observer]
        cwd = os.getcwd()
        report = None
        built, self._built = self._built, None  # used once: a second checknrun builds again
        if built is not None and built[1] is root and _deps_unchanged(built[0], built[2]):
            configured = built[0]
            build = lambda: configured  # noqa: E731
        else:
            self._graph = built = None  # not held while the new one is built (peak memory)
            build = lambda: build_graph(root, default_tries=tries, default_retry_delay=delay)  # noqa: E731
        try:
            with frozen_build(build) as graph:
                self._graph = graph
                self._source, self._views = None, {}
                report = run_graph(graph, args=self._args, kwargs=self._kwargs, **options)
        except BaseException as exc:  # a CleanupError, or a stopper after the Cleanups: both carry the report
            report = getattr(exc, "report", None)
            raise
        finally:
            if isinstance(report, Report):
                self._set_report(report)
            _chdir_back(cwd)

    def _node(self, node: type[Job] | str) -> type[Job]:
        """The Job class of ``node``: itself, or the configured graph's job of that name."""
        if not isinstance(node, str):
            return node
        graph = self._graph
        if graph is not None and node in graph and isinstance(graph[node].cls, type):
            return graph[node].cls
        return _job_named(node)

    def _set_report(self, report: Report) -> None:
        self._report = report
        self._pending_cleanup = None if self._options.get("cleanup", True) else report
        self._source, self._views = report, {}  # the three dicts are made when read: at 100 000 jobs
        # they cost ~10% of a run and 15 MB, for scripts that mostly ask success() only

    def _view(self, name: str, make: Any) -> dict[str, Any]:
        view = self._views.get(name)
        if view is None:
            view = self._views[name] = {} if self._source is None else make(self._source)
        return view

    @property
    def nodestatus(self) -> dict[str, bool | None]:
        """Job name -> True (succeeded), False (failed), None (never tried) of the last run."""
        return self._view("nodestatus", Report.statuses)

    @nodestatus.setter
    def nodestatus(self, value: dict[str, bool | None]) -> None:
        self._views["nodestatus"] = value

    @property
    def nodeexceptions(self) -> dict[str, BaseException]:
        """Job name -> the last exception of each job that failed a try, in the last run."""
        return self._view("nodeexceptions", Report.exceptions)

    @nodeexceptions.setter
    def nodeexceptions(self, value: dict[str, BaseException]) -> None:
        self._views["nodeexceptions"] = value

    @property
    def noderesults(self) -> dict[str, Any]:
        """Job name -> the passing Check's value of each job that succeeded in the last run."""
        return self._view("noderesults", Report.results)

    @noderesults.setter
    def noderesults(self, value: dict[str, Any]) -> None:
        self._views["noderesults"] = value

    def _oks(self) -> list[bool | None]:
        """The DoJobber status (True/False/None) of every job of the last run, without the name dict."""
        if self._source is None or "nodestatus" in self._views:
            return list(self.nodestatus.values())
        jobs = self._source.jobs
        column = getattr(jobs, "column", None)
        statuses = column("status") if column is not None else [j.status for j in jobs.values()]
        return list(map(_OK.__getitem__, statuses))

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
        oks = self._oks()
        return bool(oks) and all(oks)

    def partial_success(self) -> bool:
        """At least one job succeeded."""
        return any(self._oks())

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
        from .render import graph_dot  # (the drawing code: only for graphs)

        return graph_dot(self._graph, self._report)

    def _repr_svg_(self) -> str | None:
        """The graph coloured by the last run, for Jupyter; None before :meth:`configure`."""
        if self._graph is None:
            return None
        from .render import svg

        return svg(self.dot())

    def write_graph(self, filed: IO[Any] | None = None, fmt: str = "png", *, fileobj: IO[Any] | None = None) -> None:
        """Write the graph, coloured by the last run, to the file object ``filed`` in format ``fmt``.

        ``fmt`` is any Graphviz output format ('png', 'svg', 'pdf', ...) or 'dot'
        (text, no Graphviz needed). ``fileobj=`` is the same as ``filed``.

        Raises:
            RenderError: Graphviz is missing or the format is unknown (a ``RuntimeError``).
        """
        target = filed if filed is not None else fileobj
        if target is None:
            raise TypeError("write_graph() needs a file object (filed)")
        from .render import render

        data = render(self.dot(), fmt)
        try:
            target.write(data)
        except TypeError:
            target.write(data.decode())

    def display_graph(self) -> None:
        """Show the graph in ImageMagick's ``display``, the PNG piped in (no file is left behind).

        As in DoJobber, without ``display`` or Graphviz this does nothing (it says so on the
        ``dojob`` logger).

        Raises:
            RenderError: ``display`` exited with an error (a ``RuntimeError``, as in DoJobber).
        """
        from .render import RenderError, render

        viewer = shutil.which("display")
        if viewer is None:
            logger.warning("display_graph(): no 'display' program (ImageMagick) on PATH; nothing shown")
            return
        try:
            png = render(self.dot(), "png")
        except RenderError as exc:
            logger.warning("display_graph(): cannot draw the graph (%s); nothing shown", exc)
            return
        proc = subprocess.run([viewer], input=png, check=False)
        if proc.returncode != 0:
            raise RenderError(f'Cannot show graph using "display" (exit status {proc.returncode})')


_OK = {status: status.ok for status in Status}
_DEPS = attrgetter("DEPS")
_CLS = attrgetter("cls")


def _build_collector_off(root: type[Job], default_tries: int, default_retry_delay: float) -> JobGraph:
    """``build_graph`` with the garbage collector off, as ``dojob.run`` builds (each of its passes would
    walk every class built so far), the new objects then moved to the oldest generation at once.

    Speed trick: ``freeze()`` + ``unfreeze()`` is that move (else the first young collection after the
    build walks the whole graph). Skipped if the application uses ``gc.freeze()`` itself.
    """
    if not collector_is_ours():
        return build_graph(root, default_tries=default_tries, default_retry_delay=default_retry_delay)
    pause_collector()
    try:
        return build_graph(root, default_tries=default_tries, default_retry_delay=default_retry_delay)
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def _deps_unchanged(graph: JobGraph, taken: list[Any] | None = None) -> bool:
    """Every job of ``graph`` is a plain Job class whose DEPS are still the jobs the build found.

    First the DEPS read now are compared with those the walk ``taken`` (``graph.read_deps``): a
    tuple DEPS it took as is compares by identity, in one pass in C (2% of the check below). Speed
    trick: the build's own reading, not a second pass over every class at configure (a cache miss
    each on a big graph: with it, the API cost 1.09-1.13x ``dojob.run``'s CPU time at 10 000 jobs).
    A list DEPS (which can change in place) was taken as a new tuple: it never compares equal, and
    the job-by-job check decides. That one says False (so: build again) also for what it cannot
    tell cheaply: a node that is not a class, DEPS that are an iterator or the like, DEPS listing
    a job twice.
    """
    specs = graph.specs
    if taken is not None:
        try:
            if list(map(_DEPS, map(_CLS, specs))) == taken:
                return True
        except AttributeError:  # a DEPS deleted since, or an aio job
            return False
    for spec, indices in zip(specs, graph.deps, strict=True):
        cls = spec.cls
        if not isinstance(cls, type):
            return False
        deps: Any = getattr(cls, "DEPS", ())  # (every Job class has one; a plain type may not)
        if type(deps) is not tuple:
            if type(deps) not in (list, set, frozenset):
                return False
            deps = tuple(deps)
        if len(deps) != len(indices):
            return False
        for dep, index in zip(deps, indices, strict=True):
            if specs[index].cls is not dep:
                return False
    return True


def _chdir_back(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:  # the directory went away meanwhile: nothing to go back to
        logger.warning("checknrun(): cannot go back to %r: %s", cwd, exc)


def _job_named(name: str) -> type[Job]:
    """The one subclass of :class:`Job` called ``name`` (as DoJobber lets a node be named)."""
    found: list[type[Job]] = []
    pending: list[type] = [Job]
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        subs: list[type] = type.__subclasses__(cls)
        for sub in subs:
            if sub not in seen:
                seen.add(sub)
                pending.append(sub)
                if sub.__name__ == name:
                    found.append(sub)
    if len(found) != 1:
        raise RootError(name)
    return found[0]
