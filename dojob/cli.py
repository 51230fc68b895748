"""The ``dojob`` command (also ``python -m dojob``).

Commands::

    dojob run   TARGET... [options]   converge the graph; recap on stdout
    dojob check TARGET... [options]   every job's Check once, nothing else: the plan
    dojob graph TARGET... [-o FILE]   the graph as DOT (default, on stdout), SVG or PNG
    dojob list  TARGET...             jobs in dependency order with DEPS, TRIES, RETRY_DELAY
                                      (a ``!`` after the kind marks a CRITICAL job)

A TARGET is ``path/to/file.py:RootJob`` or ``package.module:RootJob``.

Streams: the recap (and ``list``, and DOT without ``-o``) go to standard
output; the ``-v``/``-d`` trace, the live progress and error messages go to
standard error, so ``dojob run ... > recap.txt`` keeps the recap and still
shows progress.

Exit status: 0 converged (``check``: nothing would run), 1 not converged
(``check``: something would run; also a Cleanup that failed), 2 usage or graph
error (bad target, cycle, bad DEPS, bad option: one line on stderr, the
traceback too with ``-d``), 130 interrupted by Ctrl-C (after the Cleanups ran).

Values given with ``--set``/``--arg`` reach the jobs only: dojob writes them to
no trace, event, recap, report or graph.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from .errors import CleanupError, DojobError, GraphError, OptionError
from .events import RunStopping
from .observe import Trace, one_line
from .recap import error_line, use_color
from .target import TargetError, load_target

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_CONVERGED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parse_sets",
    "parse_value",
]

EXIT_OK = 0
EXIT_NOT_CONVERGED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_TEXT_FORMATS = ("dot", "gv")


class UsageError(DojobError):
    """A bad command line or output file; exit status 2."""


# -- option parsing ----------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def parse_value(text: str) -> Any:
    """A ``--set``/``--arg`` value: JSON when it parses (``true``, ``3``, ``[1, 2]``, ``"x"``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` items as keyword arguments; the last of repeated keys wins.

    Raises:
        UsageError: an item has no ``=`` or an empty key (the value is never echoed).
    """
    out: dict[str, Any] = {}
    for n, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            # Never echo the item: it may hold a secret.
            raise UsageError(f"--set number {n} must be KEY=VALUE (the key may not be empty)")
        out[key] = parse_value(value)
    return out


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets", nargs="+", metavar="TARGET", help="path/to/file.py:RootJob or package.module:RootJob"
    )
    parser.add_argument("-d", "--debug", action="store_true", help="trace with tracebacks; tracebacks of errors too")
    parser.add_argument("--tries", type=_positive_int, metavar="N", help="TRIES of jobs that set none (default 3)")
    parser.add_argument(
        "--retry-delay", type=_seconds, metavar="S", help="RETRY_DELAY of jobs that set none (default 1 s)"
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="trace every phase on stderr (DoJobber's -v)")
    parser.add_argument("-j", "--workers", type=_positive_int, default=1, metavar="N", help="tries at once (default 1)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for every Check and Run; VALUE is JSON if it parses, else a string (repeatable)",
    )
    parser.add_argument(
        "--arg",
        dest="args",
        action="append",
        default=[],
        metavar="VALUE",
        help="positional argument for every Check and Run, parsed like --set values (repeatable)",
    )
    parser.add_argument("--no-cleanup", action="store_true", help="do not call the jobs' Cleanup methods")
    parser.add_argument(
        "--timeout", type=_seconds, metavar="S", help="stop starting jobs after S seconds; Cleanups get S seconds more"
    )
    parser.add_argument(
        "--executor",
        default=None,
        metavar="WHERE",
        help="where tries run: threads (default), processes[:fork|spawn|forkserver], or dask://host:port "
        "(needs dojob[dask])",
    )
    parser.add_argument("--events", metavar="FILE", help="write every engine event as a JSON line to FILE")
    parser.add_argument("--report", metavar="FILE", help="write an HTML report (recap, graph, timeline) to FILE")
    parser.add_argument(
        "--graph",
        dest="graphs",
        action="append",
        default=[],
        metavar="FILE",
        help="write the graph coloured by status to FILE (.dot, .svg, .png, ...; repeatable)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress on stderr (default: when stderr is a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``dojob`` argument parser."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="dojob",
        description="Converge job graphs: check, run what is not done yet, retry, report.",
        epilog="Exit status: 0 converged, 1 not converged, 2 usage or graph error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"dojob {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = commands.add_parser("run", help="converge the graph of TARGET(s)", description="Converge the graph.")
    check = commands.add_parser(
        "check",
        help="run every Check once, nothing else: what would run?",
        description="Run every job's Check once and change nothing; exit 0 when nothing would run, else 1.",
    )
    for sub in (run, check):
        _common(sub)
        _run_options(sub)
    graph = commands.add_parser("graph", help="draw the graph", description="Write the job graph.")
    _common(graph)
    graph.add_argument(
        "-o", "--output", metavar="FILE", help="FILE.dot, FILE.svg, FILE.png, ... (default: DOT on stdout)"
    )
    listing = commands.add_parser(
        "list",
        help="list the jobs",
        description="List jobs in dependency order (a '!' after the kind marks a CRITICAL job).",
    )
    _common(listing)
    return parser


# -- helpers ------------------------------------------------------------------------


def _graph_format(path: str) -> str:
    """The Graphviz format of an output file, from its extension.

    Raises:
        UsageError: no extension, an unknown one, or Graphviz is needed and missing.
    """
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        raise UsageError(f"cannot tell the graph format of {path!r}: give it an extension (.dot, .svg, .png)")
    if ext in _TEXT_FORMATS:
        return ext
    try:
        import graphviz
    except ImportError:  # pragma: no cover - a dependency
        raise UsageError("writing .svg/.png needs the 'graphviz' Python package") from None
    if ext not in graphviz.FORMATS:
        raise UsageError(f"unknown graph format {ext!r} (from {path!r}); use .dot, .svg, .png, .pdf")
    if shutil.which("dot") is None:
        raise UsageError(f"writing {path!r} needs Graphviz's 'dot' program: apt-get install graphviz (or .dot)")
    return ext


def _write_graph(path: str, dot: str, fmt: str) -> None:
    from .render import render

    data = dot.encode("utf-8", "backslashreplace") if fmt in _TEXT_FORMATS else render(dot, fmt)
    with open(path, "wb") as fh:
        fh.write(data)


class _InterruptNotice:
    """Tells the operator, once, what a Ctrl-C is doing while running tries finish."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def __call__(self, event: Any) -> None:
        if type(event) is RunStopping and event.reason == "interrupted":
            stream = self.stream or sys.stderr
            stream.write("dojob: interrupted: waiting for running tries to finish (Ctrl-C again to abandon them)\n")
            stream.flush()


def _check_writable(path: str, option: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path!r}: no such directory {folder!r}")


class _Err:
    """Error messages on stderr, one line each (plus a traceback with ``-d``)."""

    def __init__(self, debug: bool, stream: TextIO | None = None) -> None:
        self.debug = debug
        self.stream = stream

    def __call__(self, message: str, exc: BaseException | None = None) -> None:
        stream = self.stream or sys.stderr
        if self.debug and exc is not None:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=stream)
        stream.write(f"dojob: {one_line(message, 1000)}\n")
        stream.flush()


def _load(targets: list[str], err: _Err) -> list[type] | None:
    """The root Job classes, or None after reporting why one cannot be loaded."""
    roots = []
    for target in targets:
        try:
            roots.append(load_target(target))
        except TargetError as exc:
            err(f"error: {exc}", exc)
            return None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the target's own code raised while importing
            err(f"error: cannot import target {target!r}: {error_line(exc)}", exc)
            return None
    return roots


# -- commands ------------------------------------------------------------------------


def _cmd_list(ns: argparse.Namespace, err: _Err) -> int:
    from .graph import build_graph

    roots = _load(ns.targets, err)
    if roots is None:
        return EXIT_USAGE
    graph = build_graph(*roots, **_defaults(ns))
    names = [one_line(s.name, 200) for s in graph.specs]
    width = max([len("JOB"), *map(len, names)])
    kinds = {"job": "job", "dummy": "dummy", "runonly": "runonly"}
    out = [f"{'JOB'.ljust(width)}  {'KIND':<7}  {'TRIES':>5}  {'RETRY_DELAY':>11}  DEPS"]
    for spec, name in zip(graph.specs, names, strict=True):
        deps = ", ".join(one_line(graph.specs[d].name, 200) for d in graph.deps[spec.index]) or "-"
        kind = kinds.get(spec.kind, spec.kind) + ("!" if spec.critical else "")
        out.append(f"{name.ljust(width)}  {kind:<7}  {spec.tries:>5}  {spec.retry_delay:>11g}  {deps}")
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def _cmd_graph(ns: argparse.Namespace, err: _Err) -> int:
    from .graph import build_graph
    from .render import graph_dot

    fmt = _graph_format(ns.output) if ns.output else "dot"
    if ns.output:
        _check_writable(ns.output, "-o")
    roots = _load(ns.targets, err)
    if roots is None:
        return EXIT_USAGE
    graph = build_graph(*roots, **_defaults(ns))
    dot = graph_dot(graph)
    if ns.output:
        _write_graph(ns.output, dot, fmt)
    else:
        sys.stdout.write(dot)
    return EXIT_OK


def _defaults(ns: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ns.tries is not None:
        out["default_tries"] = ns.tries
    if ns.retry_delay is not None:
        out["default_retry_delay"] = ns.retry_delay
    return out


@contextlib.contextmanager
def _opened(path: str | None) -> Iterator[TextIO | None]:
    if path is None:
        yield None
        return
    try:
        fh = open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    with fh:
        yield fh


def _cmd_run(ns: argparse.Namespace, err: _Err, parser: argparse.ArgumentParser) -> int:
    import dojob

    plan = ns.command == "check"
    try:
        kwargs = parse_sets(ns.sets)
    except UsageError as exc:
        parser.error(str(exc))
    args = [parse_value(a) for a in ns.args]
    extra: dict[str, Any] = {}
    if ns.timeout is not None:
        extra["timeout"] = ns.timeout
    if ns.executor is not None:
        usable = ("threads", "processes", "processes:fork", "processes:spawn", "processes:forkserver")
        if ns.executor not in usable and not ns.executor.startswith("dask://"):
            where = "threads, processes[:fork|spawn|forkserver] or dask://host:port"
            parser.error(f"--executor must be {where}, not {ns.executor!r}")
        extra["executor"] = ns.executor
    for path in ns.graphs:
        _graph_format(path)  # a bad extension is a usage error before anything runs
    outputs = [(p, "--graph") for p in ns.graphs] + [(ns.report, "--report"), (ns.events, "--events")]
    for path, option in outputs:
        if path:
            _check_writable(path, option)
    roots = _load(ns.targets, err)
    if roots is None:
        return EXIT_USAGE

    progress = None
    show_progress = ns.progress if ns.progress is not None else _isatty(sys.stderr)
    observers: list[Any] = []
    timeline = None
    if ns.report:
        from .timeline import Timeline

        timeline = Timeline()
        observers.append(timeline)
    if show_progress:
        from .progress import Progress

        progress = Progress()
        observers.append(progress)
    if ns.verbose or ns.debug:
        observers.append(Trace(debug=ns.debug, stream=progress.writer() if progress else None))
    observers.append(_InterruptNotice(progress.writer() if progress else None))

    report = None
    cleanup_error: CleanupError | None = None
    cleanup_failures: list[tuple[str, BaseException]] = []
    stop_status: int | None = None  # set when Ctrl-C or a job's sys.exit() stopped the run
    with _opened(ns.events) as events:
        if events is not None:
            from .eventlog import EventLog

            observers.insert(0, EventLog(events))
        try:
            report = dojob.run(
                *roots,
                args=args,
                kwargs=kwargs,
                workers=ns.workers,
                plan=plan,
                cleanup=not ns.no_cleanup,
                observers=observers,
                **_defaults(ns),
                **extra,
            )
        except (GraphError, OptionError) as exc:
            err(f"graph error: {exc}" if isinstance(exc, GraphError) else f"error: {exc}", exc)
            return EXIT_USAGE
        except CleanupError as exc:
            cleanup_error = exc
            cleanup_failures = exc.failures
            report = exc.report
        except KeyboardInterrupt as exc:
            stop_status = EXIT_INTERRUPTED
            report = getattr(exc, "report", None)
            cleanup_failures = getattr(exc, "cleanup_failures", [])
        except SystemExit as exc:  # a job called sys.exit(): recap, then exit as it asked
            stop_status = exc.code if isinstance(exc.code, int) else EXIT_NOT_CONVERGED
            report = getattr(exc, "report", None)
            cleanup_failures = getattr(exc, "cleanup_failures", [])
        finally:
            if progress is not None:
                progress.stop()

    if report is None:  # stopped before the run had a report
        err("interrupted")
        return EXIT_INTERRUPTED if stop_status is None else stop_status
    written, output_errors = _write_outputs(ns, report, timeline)
    color = use_color(sys.stdout)
    lines = [report.summary(color=color)]
    for name, exc in cleanup_failures:
        if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            lines.append(f"cleanup interrupted: {one_line(name, 200)}")
        else:
            lines.append(f"cleanup failed: {one_line(name, 200)}: {error_line(exc)}")
    if written:
        lines.append(f"written: {one_line(', '.join(written), 1000)}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    for path, exc in output_errors:
        err(f"error: cannot write {path!r}: {one_line(str(exc), 500)}", exc)
    if stop_status is not None:
        return stop_status
    if output_errors:
        return EXIT_USAGE
    if plan:
        would_run = any(j.plan is None or j.plan.startswith("would_run") for j in report.jobs.values())
        return EXIT_NOT_CONVERGED if would_run or report.stopped else EXIT_OK
    return EXIT_OK if report.success and cleanup_error is None else EXIT_NOT_CONVERGED


def _write_outputs(ns: argparse.Namespace, report: Any, timeline: Any) -> tuple[list[str], list[tuple[str, Exception]]]:
    """Write the ``--report`` and ``--graph`` files; return the paths written and the failures."""
    written: list[str] = []
    errors: list[tuple[str, Exception]] = []
    if ns.report:
        try:
            with open(ns.report, "w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(report.to_html(timeline))
            written.append(ns.report)
        except (OSError, DojobError) as exc:
            errors.append((ns.report, exc))
    if ns.graphs:
        from .render import graph_dot

        dot = graph_dot(report.graph, report)
        for path in ns.graphs:
            try:
                _write_graph(path, dot, _graph_format(path))
                written.append(path)
            except (OSError, DojobError) as exc:
                errors.append((path, exc))
    if ns.events:
        written.append(ns.events)
    return written, errors


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dojob`` command; return its exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    ns = parser.parse_args(argv)
    err = _Err(ns.debug)
    try:
        if ns.command == "list":
            return _cmd_list(ns, err)
        if ns.command == "graph":
            return _cmd_graph(ns, err)
        return _cmd_run(ns, err, parser)
    except UsageError as exc:
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except GraphError as exc:
        err(f"graph error: {exc}", exc)
        return EXIT_USAGE
    except DojobError as exc:  # e.g. RenderError while writing a picture
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except OSError as exc:  # an output file that cannot be written
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `dojob list ... | head`
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_NOT_CONVERGED
