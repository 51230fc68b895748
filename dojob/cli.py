"""The ``dojob`` command (also ``python -m dojob``).

Commands::

    dojob run   TARGET... [options]   converge the graph; recap on stdout
    dojob check TARGET... [options]   every job's Check once, nothing else: the plan
    dojob graph TARGET... [-o FILE]   the graph as DOT (default, on stdout), SVG or PNG
    dojob list  TARGET...             jobs in dependency order with DEPS, TRIES, retry policy,
                                      TAGS and resources (a ``!`` after the kind marks a CRITICAL job)
    dojob history [TARGET]            recorded runs; ``history show RUN``, ``history job NAME``

Every command takes a selection: ``--only PATTERN`` (glob on job names,
repeatable) and ``--tags TAG`` keep the matching jobs and what they need,
``--skip PATTERN`` treats jobs as satisfied without checking them (they show
as *skipped*); a pattern matching no job is an error. ``--capacity api=3``
lets at most 3 tries USE the resource "api" at once.

A TARGET is ``path/to/file.py:RootJob`` or ``package.module:RootJob``.

Streams: the recap (and ``list``, and DOT without ``-o``) go to standard
output; the ``-v``/``-d`` trace, the live progress and error messages go to
standard error, so ``dojob run ... > recap.txt`` keeps the recap and still
shows progress.

Exit status: 0 converged (``check``: nothing would run), 1 not converged
(``check``: something would run; also a Cleanup that failed, or an output file
that could not be written after the run), 2 usage or graph error, found before
any job ran (bad target, cycle, bad DEPS, bad option or output path: one line
on stderr, the traceback too with ``-d``), 130 interrupted by Ctrl-C, 143 stopped
by SIGTERM (both after the Cleanups ran; a second signal abandons the tries still running).

A run that started always ends with its recap and its requested files: each
output path is checked before anything runs, and a file that still cannot be
written afterwards gets a ``not written: FILE: why`` line instead.

``--set KEY=VALUE`` gives the string VALUE; ``--set KEY:=JSON`` a typed value
(``3``, ``true``, ``[1, 2]``; Python's ``True``/``False``/``None`` too).
``--arg VALUE`` and ``--arg :=JSON`` likewise. A plain value that reads like a
boolean or None (``False``, ``true``, ``None``...) is refused: as a string it
would be truthy. Values reach the jobs only: dojob writes them to no trace,
event, recap, report or graph (the report's command line shows ``KEY=…``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import errno
import json
import math
import os
import shlex
import shutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from .bind import BoundJob
from .errors import CleanupError, DojobError, GraphError, OptionError, Terminated
from .events import PhaseEnded, RunStarted, RunStopping
from .history.cli_history import add_history_parser, history_of, warn_through
from .history.cli_history import add_options as add_history_options
from .history.cli_history import main as history_main
from .job import Job
from .observe import Trace
from .outfiles import discard_stale, identity, open_stream, real_path, stdout_to_null, stream_fd, write_file
from .recap import cleanup_lines, error_line, use_color, with_cleanups_failed
from .recap import visible as one_line
from .records import Record, compile_inits, record
from .stopping import Stop, handling_signals
from .target import TargetError, display_name, load_target, preload

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_CONVERGED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "parse_args",
    "parse_sets",
    "parse_value",
]

EXIT_OK = 0
EXIT_NOT_CONVERGED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

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


#: Plain values refused: as strings they would be truthy, which is never what ``--set flag=False`` meant.
_LOOKS_TYPED = frozenset({"true", "false", "none", "null"})
_PYTHON_WORDS = {"True": True, "False": False, "None": None}


def parse_value(text: str) -> Any:
    """A typed value (what follows ``:=``): JSON, or Python's ``True``, ``False``, ``None``.

    Raises:
        UsageError: it is not JSON (the value is never echoed: it may be a secret).
    """
    if text in _PYTHON_WORDS:
        return _PYTHON_WORDS[text]
    try:
        return json.loads(text)
    except ValueError as exc:
        where = f" at character {exc.pos + 1}" if isinstance(exc, json.JSONDecodeError) else ""
        raise UsageError(f"is not JSON{where} (write a string as KEY=VALUE, or quote it: KEY:='\"...\"')") from None


def _plain(value: str, what: str, typed_form: str) -> str:
    if value.strip().lower() in _LOOKS_TYPED:
        word = value.strip()
        json_word = {"true": "true", "false": "false", "none": "null", "null": "null"}[word.lower()]
        raise UsageError(
            f"{what}={word} would be the string {word!r}, which is true in Python; "
            f"write {typed_form}{json_word} for the value, or {typed_form}'\"{word}\"' for the string"
        )
    return value


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set`` items as keyword arguments; the last of repeated keys wins.

    ``KEY=VALUE`` gives the string VALUE (``version=1.10`` stays ``"1.10"``);
    ``KEY:=JSON`` a typed value (``n:=3``, ``flag:=true``, ``items:=[1, 2]``).

    Raises:
        UsageError: no ``=``, an empty key, a bad JSON value, or a plain value
            that reads like a boolean or None (the value is never echoed).
    """
    out: dict[str, Any] = {}
    for n, item in enumerate(items, 1):
        key, sep, value = item.partition("=")
        typed = key.endswith(":")
        if typed:
            key = key[:-1]
        key = key.strip()
        if not sep:
            # Never echo the item: it may hold a secret.
            raise UsageError(
                f"--set number {n} has no '=': write --set KEY=VALUE (a string) or --set KEY:=JSON (a typed value)"
            )
        if not key:
            raise UsageError(f"--set number {n} must be KEY=VALUE or KEY:=JSON (the key may not be empty)")
        shown = one_line(key, 100)
        if key == "self":  # every Check(self, *args, **kwargs) would fail with a TypeError
            raise UsageError("--set self=...: 'self' is the job itself in Check and Run; choose another key")
        if typed:
            try:
                out[key] = parse_value(value)
            except UsageError as exc:
                raise UsageError(f"--set {shown}:=... {exc}") from None
        else:
            out[key] = _plain(value, f"--set {shown}", f"{shown}:=")
    return out


def parse_args(items: Sequence[str]) -> list[Any]:
    """``--arg`` items as positional arguments: ``VALUE`` a string, ``:=JSON`` typed (see :func:`parse_sets`)."""
    out: list[Any] = []
    for n, item in enumerate(items, 1):
        if item.startswith(":="):
            try:
                out.append(parse_value(item[2:]))
            except UsageError as exc:
                raise UsageError(f"--arg number {n} (:=...) {exc}") from None
        else:
            out.append(_plain(item, f"--arg number {n}: VALUE", ":="))
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
    _selection_options(parser)


# -- selection and capacities (see dojob.select) ---------------------------------------


def _capacity_item(text: str) -> tuple[str, int]:
    name, sep, units = text.partition("=")
    name = name.strip()
    try:
        value = int(units)
    except ValueError:
        value = 0
    if not sep or not name or value < 1:
        raise argparse.ArgumentTypeError(f"expected RESOURCE=UNITS with UNITS a whole number >= 1, got {text!r}")
    return name, value


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only", action="append", default=[], metavar="PATTERN",
        help="only the jobs whose name matches this glob, and what they need (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--tags", action="append", default=[], metavar="TAG",
        help="only the jobs with this tag (TAGS), and what they need (repeatable, comma-separated)",
    )  # fmt: skip
    parser.add_argument(
        "--skip", action="append", default=[], metavar="PATTERN",
        help="treat the jobs matching this glob as satisfied, without checking them: shown as skipped (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--capacity", action="append", default=[], type=_capacity_item, metavar="RESOURCE=UNITS",
        help="at most UNITS tries USE RESOURCE at once; a CLAIM takes all of them (repeatable)",
    )  # fmt: skip


def _selection(ns: argparse.Namespace) -> dict[str, Any]:
    """The ``only``/``tags``/``skip`` keywords of the command line."""
    tags = [t.strip() for item in ns.tags for t in item.split(",") if t.strip()]
    if ns.tags and not tags:  # `--tags "$TAG"` with an empty variable must not select the whole graph
        raise UsageError(f"--tags {','.join(ns.tags)!r} names no tag")
    return {"only": ns.only or None, "tags": tags or None, "skip": ns.skip or None}


def _selected_graph(ns: argparse.Namespace, roots: list[type[Job] | BoundJob]) -> Any:
    from .graph import build_graph
    from .select import select

    return select(build_graph(*roots, **_defaults(ns)), **_selection(ns))


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="trace every phase on stderr (DoJobber's -v)")
    parser.add_argument("-j", "--workers", type=_positive_int, default=1, metavar="N", help="tries at once (default 1)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for every Check and Run: KEY=VALUE a string, KEY:=JSON a typed value (repeatable)",
    )
    parser.add_argument(
        "--arg",
        dest="args",
        action="append",
        default=[],
        metavar="VALUE",
        help="positional argument for every Check and Run: a string, or :=JSON a typed value (repeatable)",
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
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a Check raising NameError, AttributeError, TypeError, ImportError or SyntaxError fails, Run not called",
    )
    parser.add_argument("--events", metavar="FILE", help="write every engine event as a JSON line to FILE")
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML file, one test case per job, for CI")
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
        epilog="Exit status: 0 converged, 1 not converged, 2 usage or graph error, 130 interrupted, 143 SIGTERM.",
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
        add_history_options(sub, verify=sub is run)  # dojob.history: --history, --no-history, --flap-window, --verify
    from .loopoptions import add_options  # issue 16: --every, --jitter, --max-runs, --metrics, --lock

    add_options(run)
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
    add_history_parser(commands)
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
        raise UsageError("writing .svg/.png needs the 'graphviz' Python package: pip install graphviz") from None
    if ext not in graphviz.FORMATS:
        raise UsageError(f"unknown graph format {ext!r} (from {path!r}); use .dot, .svg, .png, .pdf")
    if shutil.which("dot") is None:
        raise UsageError(
            f"writing {path!r} needs Graphviz's 'dot' program, which is not installed: "
            "sudo apt-get install graphviz (macOS: brew install graphviz), or write a .dot file"
        )
    return ext


def _write_graph(path: str, dot: str, fmt: str, modes: dict[str, int] | None = None) -> None:
    from .render import render

    write_file(path, dot.encode("utf-8", "backslashreplace") if fmt in _TEXT_FORMATS else render(dot, fmt), modes)


class _RunStarted:
    """Once the run started, a signal no longer cuts the command short: the run stops, then the outputs.

    During the run the engine handles signals; after it (history, recap, files)
    a late one is only noted, and the command exits 130/143 once all is written.
    """

    def __init__(self, late: Stop) -> None:
        self.late = late

    def __call__(self, event: Any) -> None:
        if type(event) is RunStarted:
            self.late.interruptible = False


class _InterruptNotice:
    """Tells the operator, once, what a Ctrl-C is doing: waiting for running threads, or nothing to wait for."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.driver: str | None = None

    def __call__(self, event: Any) -> None:
        kind = type(event)
        if kind is RunStarted:
            self.driver = event.driver
        elif kind is RunStopping and event.reason in ("interrupted", "terminated"):
            n = event.running
            if n and self.driver != "async":  # (async tries are cancelled at once: nothing is waited for)
                tries = f"{n} running tr{'ies' if n > 1 else 'y'}"
                text = f"waiting for {tries} to finish (a second Ctrl-C or SIGTERM abandons them)"
            else:
                text = "stopping now; the Cleanups run, then the recap"
            stream = self.stream or sys.stderr
            stream.write(f"dojob: {event.reason}: {text}\n")
            stream.flush()


def _outputs(ns: argparse.Namespace) -> list[tuple[str, str]]:
    """``(option, path)`` of every file the command line asks for."""
    out = [("--report", getattr(ns, "report", None)), ("--junit", getattr(ns, "junit", None))]
    out += [("--events", getattr(ns, "events", None))] + [("--graph", path) for path in getattr(ns, "graphs", ())]
    return [(option, path) for option, path in out if path]


def _check_inputs_apart(ns: argparse.Namespace) -> None:
    """Refuse, before anything is opened, an output, lock or history database that is one of the command's files.

    ``--report jobs.py`` would destroy the target it names, ``--junit`` on the
    history database the history, ``--lock`` on a target the target. Files are
    the same by their resolved path or by device and inode (a hard link), and
    the history by the file it opens (``sqlite:///PATH``, ``~`` expanded).

    Raises:
        UsageError: naming the two options (or the target) that share a file.
    """
    written = [*_outputs(ns)]
    if getattr(ns, "lock", None):
        written.append(("--lock", ns.lock))
    if getattr(ns, "output", None):  # dojob graph -o
        written.append(("-o", ns.output))
    kept: dict[object, str] = {}  # a file the command reads or keeps (by path and by identity) -> what it is

    def keep(path: str, what: str) -> None:
        kept.setdefault(real_path(path), what)
        ident = identity(path)
        if ident is not None:
            kept.setdefault(ident, what)

    def kept_as(path: str) -> str | None:
        if stream_fd(path) is not None:
            return None
        ident = identity(path)
        return kept.get(real_path(path)) or (kept.get(ident) if ident is not None else None)

    for target in getattr(ns, "targets", ()) or ():
        file, sep, _ = target.rpartition(":")
        if sep and file:
            keep(file, f"the target file of {target!r}")
    history = _history_file(ns)
    if history is not None:  # a SQLite file (and its write-ahead log): written too
        for suffix in ("", "-wal", "-shm"):
            what = kept_as(history + suffix)
            if what is not None:
                raise UsageError(f"the --history database {history + suffix!r} is {what}: dojob would overwrite it")
        for suffix in ("", "-wal", "-shm"):
            keep(history + suffix, "the --history database")
    for option, path in written:
        what = kept_as(path)
        if what is not None:
            raise UsageError(f"{option} {path!r} is {what}: dojob would overwrite it")


def _history_file(ns: argparse.Namespace) -> str | None:
    """The SQLite file the command's history opens (``~`` expanded), or None (off, or a server)."""
    from .history import backend_of, path_of
    from .history.cli_history import location_of

    if getattr(ns, "no_history", False):
        return None
    location = location_of(getattr(ns, "history", None))[0]  # (dojob graph: the default one, not to be overwritten)
    if not location or backend_of(location) != "sqlite":
        return None
    return os.path.expanduser(path_of(location))


def _discard_stale(ns: argparse.Namespace) -> None:
    """Remove the ``--report``, ``--junit`` and ``--graph`` files an earlier command left: they would pass as new.

    Each is written again once the run ends (with the permissions it had); a
    command stopped before its run (a signal, a bad target, a graph error)
    leaves none, never an old green one. See :func:`dojob.outfiles.discard_stale`.
    """
    ns.output_modes = discard_stale([path for path in (ns.report, ns.junit, *ns.graphs) if path])


def _before_start(exc: BaseException) -> str:
    """What a signal that stopped the command before its run did, in the words the operator and event log see."""
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM) before the run started: nothing ran"
    return "interrupted before the run started: nothing ran"


def _check_outputs(outputs: list[tuple[str, str]]) -> None:
    """Refuse, before anything runs, an output path that cannot be written: after changes it would be too late.

    Raises:
        UsageError: a bad graph format, a directory, a missing or unwritable
            folder (where a symlink points), a symlink loop, an unwritable
            file, or one file named twice (by path, hard link or stream).
    """
    seen: dict[object, str] = {}
    for option, path in outputs:
        if option in ("--graph", "-o"):
            _graph_format(path)
        fd = stream_fd(path)
        ident = identity(path) if fd is None else None
        keys: list[object] = [("fd", fd)] if fd is not None else [real_path(path), *([ident] if ident else [])]
        for key in keys:
            if key in seen:
                raise UsageError(f"{option} {path!r}: the same file as {seen[key]}")
        for key in keys:
            seen[key] = f"{option} {path!r}"
        if fd is not None:  # one of the command's own streams (/dev/stdout): written as it is
            continue
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError(f"{option} {path!r}: a loop of symlinks") from None
        real = real_path(path)
        if os.path.isdir(real):
            raise UsageError(f"{option} {path!r} is a directory: name a file")
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            raise UsageError(f"{option} {path!r}: no such directory {folder!r}")
        if os.path.exists(real):
            if not os.access(real, os.W_OK):
                raise UsageError(f"{option} {path!r}: permission denied (the file is not writable)")
        elif not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {path!r}: permission denied (cannot create a file in {folder!r})")


def _check_writable(path: str, option: str) -> None:
    _check_outputs([(option, path)])


class _Err:
    """Error messages on stderr, one line each (plus a traceback with ``-d``).

    Internal module names of target files (``dojob_target_0_jobs``) are shown as the files' paths.
    """

    def __init__(self, debug: bool, stream: TextIO | None = None) -> None:
        self.debug = debug
        self.stream = stream
        #: The exception of the last error reported (for the event log).
        self.last: BaseException | None = None

    def __call__(self, message: str, exc: BaseException | None = None) -> None:
        stream = self.stream or sys.stderr
        self.last = exc
        if stream is None:  # started with stderr closed (2>&-): the exit status still tells
            return
        try:
            if self.debug and exc is not None:
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                stream.write(display_name(text))
            stream.write(f"dojob: {one_line(display_name(message), 1000)}\n")
            stream.flush()
        except (OSError, ValueError):  # stderr is a closed pipe or a full disk: the exit status still tells
            pass


@contextlib.contextmanager
def _warnings_to(err: _Err) -> Iterator[None]:
    """While the command runs, what dojob logs (warnings: DoJobber accepts it, dojob runs it anyway) is one
    ``dojob: warning: ...`` line each, and nothing else prints it (Python's last-resort handler printed it bare)."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                err(f"{record.levelname.lower()}: {record.getMessage()}")
            except Exception:
                self.handleError(record)

    logger = logging.getLogger("dojob")
    handler, propagate = Handler(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _load(targets: list[str], err: _Err) -> list[type[Job] | BoundJob] | None:
    """The root Job classes, or None after reporting why one cannot be loaded."""
    roots: list[type[Job] | BoundJob] = []
    for target in targets:
        try:
            roots.append(load_target(target))
        except TargetError as exc:
            err(f"error: {exc}", exc)
            return None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the target's own code raised while importing
            where = _where(exc)
            err(f"error: cannot import target {target!r}: {error_line(exc)}{where}", exc)
            return None
    return roots


def _where(exc: BaseException) -> str:
    """`` (file.py, line N)`` of the innermost frame of ``exc`` (or of a SyntaxError's own place)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}, line {exc.lineno})"
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return ""
    return f" ({last.tb_frame.f_code.co_filename}, line {last.tb_lineno})"


# -- commands ------------------------------------------------------------------------


def _resources(spec: Any, capacity: dict[str, int]) -> str:
    """What a try of ``spec`` takes: ``api:1/3`` (one of 3 units), ``db:all`` (a CLAIM), ``cache:1``."""
    parts = [f"{name}:all" + (f"/{capacity[name]}" if name in capacity else "") for name in spec.claims]
    parts += [f"{name}:1" + (f"/{capacity[name]}" if name in capacity else "") for name in spec.uses]
    return ",".join(parts) or "-"


def _policy(spec: Any) -> str:
    """The retry policy beyond TRIES and RETRY_DELAY, as one word: ``x2,<=30s,+10%,on=OSError,from=end``."""
    retry = spec.retry
    if retry is None:
        return "-"
    parts = [f"x{retry.backoff:g}"] if retry.backoff != 1 else []
    if retry.max_delay is not None:
        parts.append(f"<={retry.max_delay:g}s")
    if retry.jitter:
        parts.append(f"+{retry.jitter * 100:g}%")
    if retry.on is not None:
        parts.append("on=" + ("|".join(t.__name__ for t in retry.on) or "nothing"))
    if retry.from_end:
        parts.append("from=end")
    return ",".join(parts)


def _cmd_list(ns: argparse.Namespace, err: _Err) -> int:
    from .resources import check_capacity

    roots = _load(ns.targets, err)
    if roots is None:
        return EXIT_USAGE
    graph = _selected_graph(ns, roots)
    capacity = check_capacity(graph, dict(ns.capacity) or None)
    kinds = {"job": "job", "dummy": "dummy", "runonly": "runonly"}
    header = ("JOB", "KIND", "TRIES", "RETRY_DELAY", "RETRY_POLICY", "TAGS", "RESOURCES")
    rows = []
    for spec in graph.specs:
        kind = kinds.get(spec.kind, spec.kind) + ("!" if spec.critical else "")
        if spec.index in graph.skipped:  # loudly: it will not even be checked
            kind = "SKIPPED:" + kind
        tags = one_line(",".join(spec.tags), 200) or "-"
        rows.append(
            (one_line(spec.name, 200), kind, str(spec.tries), f"{spec.retry_delay:g}", _policy(spec), tags,
             _resources(spec, capacity))
        )  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    right = {2, 3}  # numbers

    def line(cells: tuple[str, ...], deps: str) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join([*out, deps])

    out = [line(header, "DEPS")]
    for spec, row in zip(graph.specs, rows, strict=True):
        out.append(line(row, ", ".join(one_line(graph.specs[d].name, 200) for d in graph.deps[spec.index]) or "-"))
    return EXIT_OK if _printed("\n".join(out) + "\n") else _stdout_lost(err)


def _stdout_lost(err: _Err) -> int:
    """What ``dojob list`` and ``dojob graph`` do when standard output cannot take what they print."""
    err("error: cannot write 'standard output'")
    return EXIT_NOT_CONVERGED


def _cmd_graph(ns: argparse.Namespace, err: _Err) -> int:
    from .render import MAX_FANOUT, graph_dot
    from .resources import check_capacity

    if ns.output:
        _check_inputs_apart(ns)
        _check_outputs([("-o", ns.output)])
    fmt = _graph_format(ns.output) if ns.output else "dot"
    preload(("graphviz",))
    roots = _load(ns.targets, err)
    if roots is None:
        return EXIT_USAGE
    graph = _selected_graph(ns, roots)
    check_capacity(graph, dict(ns.capacity) or None)  # a typo is an error here too
    dot = graph_dot(graph, max_fanout=MAX_FANOUT)
    if ns.output:
        _write_graph(ns.output, dot, fmt)
    elif not _printed(dot):
        return _stdout_lost(err)
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
        fh = open_stream(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    try:
        yield fh
    finally:
        try:
            fh.close()
        except OSError:  # flushing at close failed (a full disk): the recap says the file is not written
            pass


@record
class RunFailed(Record):
    """The event-log line of a command that failed before its run could start (bad target, graph error)."""

    stage: str
    error_type: str
    error: str
    time: float = 0.0


compile_inits()


class _GuardedLog:
    """The ``--events`` observer, remembering why it stopped if writing failed (disk full...)."""

    def __init__(self, stream: TextIO) -> None:
        from .eventlog import EventLog

        self.log = EventLog(stream)
        self.stream = stream
        self.error: BaseException | None = None

    def __call__(self, event: Any) -> None:
        if self.error is not None:
            return
        try:
            self.log(event)
        except Exception as exc:
            self.error = exc

    def flush(self) -> None:
        """Write out what is buffered now, so a full disk is one ``not written:`` line, never a lost recap."""
        if self.error is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self.error = exc

    def failed(self, stage: str, exc: BaseException | None, message: str | None = None) -> None:
        """Write why the run could not start (``message``, else the error's text), so the file is never left empty."""
        if message is None:
            message = "no error recorded" if exc is None else display_name(str(exc))
        self(RunFailed(stage, type(exc).__name__ if exc is not None else "Error", message))


def _run_extra(ns: argparse.Namespace) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if ns.timeout is not None:
        extra["timeout"] = ns.timeout
    if ns.executor is not None:
        usable = ("threads", "processes", "processes:fork", "processes:spawn", "processes:forkserver")
        if ns.executor not in usable and not ns.executor.startswith("dask://"):
            where = "threads, processes[:fork|spawn|forkserver] or dask://host:port"
            raise UsageError(f"--executor must be {where}, not {ns.executor!r}")
        extra["executor"] = ns.executor
    if ns.strict:
        extra["strict"] = True
    return extra


def _context(ns: argparse.Namespace) -> dict[str, str]:
    """When, where and how the command ran, for the report and JUnit (``--set``/``--arg`` values hidden)."""
    from .host import hostname, username

    try:
        user = username()
    except Exception:  # no user name in the environment or the password database
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "host": hostname(),
        "user": user,
        "cwd": os.getcwd(),
        "command": command_line(getattr(ns, "argv", None) or []),
        "python": sys.version.split()[0],
    }


def command_line(argv: Sequence[str]) -> str:
    """``dojob ARGS`` as a shell line, with the values of ``--set`` and ``--arg`` replaced by ``…``.

    A URL's password (``--history postgresql://user:PASS@host/db``) is shown
    as ``***``, as the history's own warnings show it.
    """
    from .history import display_location

    def shown(token: str) -> str:
        if "://" not in token:
            return token
        name, sep, value = token.partition("=")
        return f"{name}={display_location(value)}" if sep and name.startswith("-") else display_location(token)

    argv = [shown(token) for token in argv]

    def hides(token: str) -> str | None:
        for option in ("--set", "--arg"):
            if len(token) >= 4 and option.startswith(token):
                return option
        return None

    out = ["dojob"]
    hide_next: str | None = None
    for token in argv:
        if hide_next is not None:
            out.append(_hidden(hide_next, token))
            hide_next = None
            continue
        name, sep, value = token.partition("=")
        option = hides(name)
        if option is not None and sep:
            out.append(f"{shlex.quote(name)}=" + _hidden(option, value))
        elif option is not None:
            out.append(shlex.quote(token))
            hide_next = option
        else:
            out.append(shlex.quote(token))
    return " ".join(out)


def _hidden(option: str, value: str) -> str:
    if option == "--set":
        key, sep, _ = value.partition("=")
        return shlex.quote(key + sep) + "\u2026" if sep else "\u2026"
    return ":=\u2026" if value.startswith(":=") else "\u2026"


class _Prepared:
    """What the command line asks of the run, parsed and checked before anything runs."""

    __slots__ = ("kwargs", "args", "extra", "selection", "history", "show_progress")

    def __init__(
        self,
        kwargs: dict[str, Any],
        args: list[Any],
        extra: dict[str, Any],
        selection: dict[str, Any],
        history: Any,
        show_progress: bool,
    ) -> None:
        self.kwargs, self.args, self.extra, self.selection = kwargs, args, extra, selection
        self.history, self.show_progress = history, show_progress


def _cmd_run(ns: argparse.Namespace, err: _Err, parser: argparse.ArgumentParser, late: Stop) -> int:
    # 1. everything that can be wrong with the command line, before anything runs
    kwargs = parse_sets(ns.sets)
    args = parse_args(ns.args)
    extra = _run_extra(ns)
    selection = _selection(ns)
    _check_outputs(_outputs(ns) + ([("--lock", ns.lock)] if getattr(ns, "lock", None) else []))
    with _opened(ns.events) as events:  # truncated first: whatever stops the command from here on is written in it
        log = None
        try:
            log = _GuardedLog(events) if events is not None else None
            _discard_stale(ns)
            history = history_of(ns, parser)  # None: --no-history (dojob.history)
            show_progress = ns.progress if ns.progress is not None else _isatty(sys.stderr)
            ready = _Prepared(kwargs, args, extra, selection, history, show_progress)
            # what dojob imports after the jobs ran, imported before the target's folder is on sys.path
            from .target import OUTPUT_PRELOAD

            wanted = [name for output, names in OUTPUT_PRELOAD.items() if getattr(ns, output, None) for name in names]
            preload(("dojob.progress", *wanted) if show_progress else tuple(wanted))
            return _load_and_run(ns, err, late, log, events, ready)
        except (KeyboardInterrupt, SystemExit) as exc:  # a signal (or a usage error) before the run started
            if events is not None:
                log = log or _GuardedLog(events)  # (the signal may have landed while the log was made)
                if isinstance(exc, KeyboardInterrupt):
                    log.failed("stopped", exc, _before_start(exc))
                else:
                    log.failed("usage", None, "usage error: see the message on standard error")
            raise


def _load_and_run(ns: argparse.Namespace, err: _Err, late: Stop, log: Any, events: Any, ready: _Prepared) -> int:
    """Stages 2 and 3 of :func:`_cmd_run`: load the targets, run them (or the reconcile loop), conclude."""
    import dojob

    kwargs, args, extra, selection, history = ready.kwargs, ready.args, ready.extra, ready.selection, ready.history
    context = _context(ns)
    # 2. the targets and the graph
    roots = _load(ns.targets, err)
    if roots is None:
        if log is not None:
            log.failed("target", err.last)
        return EXIT_USAGE
    from .loopoptions import wants_loop

    if wants_loop(ns):
        from .reconcile import loop_command  # issue 16: the reconcile loop, in dojob/reconcile.py

        options = dict(args=args, kwargs=kwargs, workers=ns.workers, cleanup=not ns.no_cleanup, **_defaults(ns))
        options.update(capacity=dict(ns.capacity) or None, **_selection(ns))
        options.update(history=history, verify=getattr(ns, "verify", False))

        def write(report: Any, timeline: Any, cleanup_failures: Sequence = ()) -> tuple[list[str], list[Any]]:
            return _write_outputs(ns, report, timeline, log, context, cleanup_failures)

        return loop_command(ns, err, roots, {**options, **extra}, write, events=events)
    observers, progress, timeline = _observers(ns, ready.show_progress, log)
    observers.append(_RunStarted(late))
    warn_through(history, progress)  # a history warning scrolls above the live progress
    # 3. the run: whatever happens from here on ends with a recap and the requested files
    end = _Ending()
    try:
        end.report = dojob.run(
            *roots,
            args=args,
            kwargs=kwargs,
            workers=ns.workers,
            plan=ns.command == "check",
            cleanup=not ns.no_cleanup,
            observers=observers,
            handle_signals=True,
            capacity=dict(ns.capacity) or None,
            history=history,
            verify=getattr(ns, "verify", False),
            **selection,
            **_defaults(ns),
            **extra,
        )
    except (GraphError, OptionError) as exc:
        if log is not None:
            log.failed("graph" if isinstance(exc, GraphError) else "options", exc)
        err(f"graph error: {exc}" if isinstance(exc, GraphError) else f"error: {exc}", exc)
        return EXIT_USAGE
    except CleanupError as exc:
        end.cleanup_error = exc
        end.cleanup_failures = exc.failures
        end.report = exc.report
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        end.stop_status = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        end.stopper, end.report = exc, getattr(exc, "report", None)
        end.cleanup_failures = getattr(exc, "cleanup_failures", [])
    except SystemExit as exc:  # a job called sys.exit(): recap, then exit as it asked
        end.stop_status = exc.code if isinstance(exc.code, int) else EXIT_NOT_CONVERGED
        end.stopper, end.report = exc, getattr(exc, "report", None)
        end.cleanup_failures = getattr(exc, "cleanup_failures", [])
    finally:
        late.interruptible = False  # from now on a signal cuts none of the outputs (exit 130/143 after them)
        if progress is not None:
            progress.stop()
        if log is not None:
            log.flush()
    return _conclude(ns, end, timeline, log, err, context)


def _observers(ns: argparse.Namespace, show_progress: bool, log: Any) -> tuple[list[Any], Any, Any]:
    """The run's observers (event log first), the live progress and the timeline (None when not asked for)."""
    observers: list[Any] = [log] if log is not None else []
    progress = timeline = None
    if ns.report:
        from .timeline import Timeline

        timeline = Timeline()
        observers.append(timeline)
    if show_progress:
        from .progress import Progress

        progress = Progress()
        observers.append(progress)
    stream: Any = progress.writer() if progress else None
    if ns.verbose or ns.debug:
        observers.append(_CauseTrace(debug=ns.debug, stream=stream))
    observers.append(_InterruptNotice(stream))
    return observers, progress, timeline


class _CauseTrace(Trace):
    """DoJobber's trace, with the message of a failing Run too: the cause of the recheck's failure that follows."""

    def __call__(self, event: Any) -> None:
        if type(event) is PhaseEnded and not event.ok and event.phase.value == "run":
            self._write(
                f'{one_line(event.job)}.run: fail "{one_line(event.error_type or "")}: {one_line(event.error or "")}"'
            )
            self._traceback(event.traceback)
            return
        super().__call__(event)


class _Ending:
    """How the run ended, for the recap."""

    __slots__ = ("report", "cleanup_error", "cleanup_failures", "stop_status", "stopper")

    def __init__(self) -> None:
        self.report: Any = None
        self.cleanup_error: CleanupError | None = None
        self.cleanup_failures: list = []
        self.stop_status: int | None = None  # set when Ctrl-C or a job's sys.exit() stopped the run
        self.stopper: BaseException | None = None  # what stopped it (KeyboardInterrupt, Terminated, SystemExit)


def _conclude(ns: argparse.Namespace, end: _Ending, timeline: Any, log: Any, err: _Err, context: dict) -> int:
    """Write the requested files, print the recap, and return the exit status README promises."""
    report = end.report
    if report is None:  # stopped before the run had a report
        stop = end.stopper or KeyboardInterrupt()
        if log is not None:
            log.failed("stopped", stop, _before_start(stop))
        err(_before_start(stop))
        return EXIT_INTERRUPTED if end.stop_status is None else end.stop_status
    written, failures = _write_outputs(ns, report, timeline, log, context, end.cleanup_failures)
    color = use_color(sys.stdout)
    try:
        lines = [report.summary(color=color)]
    except Exception as problem:  # a bug in the recap must not hide how the run ended
        lines = [f"(the recap could not be written: {error_line(problem)})", f"success: {report.success}"]
    lines[0] = with_cleanups_failed(lines[0], end.cleanup_failures)  # the jobs converged, the command failed
    lines.extend(cleanup_lines(end.cleanup_failures))
    if written:
        lines.append(f"written: {one_line(', '.join(written), 1000)}")
    for path, reason in failures:
        lines.append(f"not written: {one_line(path, 300)}: {reason}")
    if not _printed("\n".join(lines) + "\n"):
        failures.append(("standard output", "the recap could not be printed"))
    for path, reason in failures:
        err(f"error: cannot write {path!r}: {reason}")
    if end.stop_status is not None:
        return end.stop_status
    if ns.command == "check":
        would_run = any(j.plan is None or j.plan.startswith("would_run") for j in report.jobs.values())
        status = EXIT_NOT_CONVERGED if would_run or report.stopped else EXIT_OK
    else:
        status = EXIT_OK if report.success and end.cleanup_error is None else EXIT_NOT_CONVERGED
    return EXIT_NOT_CONVERGED if failures and status == EXIT_OK else status


def _removed(stream: Any) -> bool:
    """Whether the open file behind ``stream`` has no name left (a job removed it, or its folder)."""
    try:
        return os.fstat(stream.fileno()).st_nlink == 0
    except (OSError, ValueError, AttributeError):
        return False


def _printed(text: str) -> bool:
    """Print ``text`` on standard output; False if it cannot be (a closed pipe, a full disk, no stdout at all).

    Then stdout is pointed at the null device, so that the interpreter's last
    flush at exit cannot fail again with a traceback.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
        return True
    except (OSError, ValueError, AttributeError):  # (AttributeError: started with stdout closed, sys.stdout None)
        stdout_to_null()
        return False


def _write_outputs(
    ns: argparse.Namespace, report: Any, timeline: Any, log: Any, context: dict, cleanup_failures: Sequence = ()
) -> tuple[list[str], list[tuple[str, str]]]:
    """Write the ``--report``, ``--junit`` and ``--graph`` files; return the paths written, ``(path, why)`` of the rest.

    Each file is written on its own: whatever goes wrong with one (a full disk,
    Graphviz refusing the picture, a bug) is one line, never a lost recap.
    """
    written: list[str] = []
    failures: list[tuple[str, str]] = []

    def attempt(path: str, write: Any) -> None:
        try:
            write()
            written.append(path)
        except Exception as exc:
            failures.append((path, error_line(exc)))

    if ns.report:

        def write_report() -> None:
            page = report.to_html(timeline, context=context).encode("utf-8", "backslashreplace")
            write_file(ns.report, page, getattr(ns, "output_modes", None))

        attempt(ns.report, write_report)
    if ns.junit:

        def write_junit() -> None:
            from .junit import to_junit

            data = to_junit(report, context=context, cleanup_failures=cleanup_failures)
            write_file(ns.junit, data, getattr(ns, "output_modes", None))

        attempt(ns.junit, write_junit)
    if ns.graphs:
        from .render import MAX_FANOUT, graph_dot

        dot: list[str] = []

        def write_graph(path: str) -> None:
            if not dot:
                dot.append(graph_dot(report.graph, report, max_fanout=MAX_FANOUT))
            _write_graph(path, dot[0], _graph_format(path), getattr(ns, "output_modes", None))

        for path in ns.graphs:
            attempt(path, lambda path=path: write_graph(path))
    if ns.events and log is not None:
        if log.error is None and _removed(log.stream):
            failures.append((ns.events, "the file was removed while the run went on (its folder too?)"))
        elif log.error is None:
            written.append(ns.events)
        else:
            failures.append((ns.events, error_line(log.error)))
    return written, failures


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False


def _working_directory_last() -> None:
    """Under ``python -m dojob``, move the working directory (Python puts it first) to the end of ``sys.path``.

    Otherwise a file there named like a standard module (``html.py``) would
    replace the one dojob imports after the jobs ran; modules there stay importable.
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(spec, "name", None) != "dojob.__main__" or not sys.path:
        return
    first = sys.path[0]
    if first in ("", os.getcwd()):
        sys.path.pop(0)
        sys.path.append(first)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dojob`` command; return its exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    _working_directory_last()
    _standard_fds_held()
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets \uXXXX, not a crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = build_parser()
    exiting = argv is None  # the command itself: the process exits right after (see handling_signals)
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(argv)
    ns.argv = argv
    err = _Err(ns.debug)
    with _warnings_to(err):
        return _command(ns, err, parser, exiting)


def _standard_fds_held() -> None:
    """Hold a closed stdin, stdout or stderr on the null device (``dojob run ... >&-``).

    Else the first file the command opens (the run lock, the history) takes that
    number, and a write meant for the closed stream lands in it, or pointing
    stdout at the null device later closes it.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            held = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
            if held != fd:
                os.close(held)


def _command(ns: argparse.Namespace, err: _Err, parser: argparse.ArgumentParser, exiting: bool) -> int:
    """The command ``ns`` names, its errors turned into exit statuses."""
    try:
        if ns.command == "list":
            return _cmd_list(ns, err)
        if ns.command == "graph":
            return _cmd_graph(ns, err)
        if ns.command == "history":
            return history_main(ns, parser)
        from .runlock import command_lock  # issue 16: one run of a target at a time

        _check_inputs_apart(ns)
        late = Stop()  # signals before the run interrupt at once; after it, they wait for the outputs
        late.interruptible = True
        with handling_signals(late, restore=not exiting), command_lock(ns, err) as refused:
            code = refused if refused is not None else _cmd_run(ns, err, parser, late)
        if late.exception is not None and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            code = EXIT_TERMINATED if isinstance(late.exception, Terminated) else EXIT_INTERRUPTED
        return code
    except UsageError as exc:
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except GraphError as exc:
        err(f"graph error: {exc}", exc)
        return EXIT_USAGE
    except DojobError as exc:  # e.g. RenderError while writing a picture
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except (BrokenPipeError, AttributeError) as exc:  # `dojob list ... | head`, or stdout closed
        if isinstance(exc, AttributeError) and sys.stdout is not None:
            raise
        stdout_to_null()
        return EXIT_NOT_CONVERGED  # an output that could not be written, as for a --report
    except OSError as exc:  # an output file that cannot be written
        err(f"error: {exc}", exc)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        err(_before_start(exc))
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
