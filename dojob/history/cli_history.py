"""The ``dojob`` command's history options (``--history``, ``--no-history``, ``--flap-window``, ``--verify``)
and the ``dojob history`` command.

History is on by default for ``dojob run`` and ``dojob check``: the location
is ``--history``, else ``$DOJOB_HISTORY`` (``off`` turns it off), else
:func:`~dojob.history.default_location`. ``dojob history`` reads it back as
plain text (like the recap) or ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ..recap import visible as one_line  # (format characters shown too, as `dojob list` shows them)
from . import DEFAULT_FLAP_WINDOW, History, HistoryError, backend_of, default_location, display_location

__all__ = ["add_history_parser", "add_options", "history_of", "main", "option_names", "warn_through"]

_OFF = {"off", "no", "none", "0", "false"}


def _window(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 2, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 2, got {text!r}")
    return value


def _location_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        metavar="PATH_OR_URL",
        help="the history: a SQLite file or postgresql://... (default: $DOJOB_HISTORY, else "
        "$XDG_STATE_HOME/dojob/history.sqlite3)",
    )


def add_options(parser: argparse.ArgumentParser, *, verify: bool) -> None:
    """``run``'s and ``check``'s history options (``--verify`` for ``run`` only)."""
    _location_option(parser)
    parser.add_argument("--no-history", action="store_true", help="record nothing, compare with nothing")
    parser.add_argument(
        "--flap-window",
        type=_window,
        default=DEFAULT_FLAP_WINDOW,
        metavar="K",
        help=f"flag jobs that changed in each of the last K runs (default {DEFAULT_FLAP_WINDOW})",
    )
    if verify:
        parser.add_argument(
            "--verify",
            action="store_true",
            help="after a converged run, every Check once more: a failing one is unstable (exit 1)",
        )


def option_names(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The options given on the command line, by name (their values are never looked at beyond 'given')."""
    names = []
    for action in parser._actions:  # argparse keeps no public list
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        value = getattr(ns, action.dest, action.default)
        if value is not action.default and value != action.default and value != []:
            if isinstance(action, argparse.BooleanOptionalAction):  # --progress / --no-progress
                names.append(action.option_strings[0 if value else 1])
            else:
                names.append(max(action.option_strings, key=len))
    return names


def location_of(given: str | None, environ: Mapping[str, str] | None = None) -> tuple[str | None, bool]:
    """The history location and whether its folder may be created; (None, False) when turned off."""
    env = os.environ if environ is None else environ
    if given:
        return given, False
    value = env.get("DOJOB_HISTORY", "").strip()
    if value.lower() in _OFF:
        return None, False
    if value:
        return value, False
    return default_location(env), True


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict) and command in choices:
            return choices[command]
    return parser


def warn_through(history: History | None, progress: Any) -> None:
    """Write ``history``'s warning through the live progress display's writer, when there is one."""
    if history is not None and progress is not None:
        writer = progress.writer()
        shown = history.warn

        def warn(line: str) -> None:
            shown(line, writer)  # type: ignore[call-arg]

        history.warn = warn


def history_of(ns: argparse.Namespace, parser: argparse.ArgumentParser, stream: Any = None) -> History | None:
    """The :class:`History` a ``run``/``check`` command line asks for, or None.

    A location of an unknown kind is a usage error (exit 2) before anything runs.
    """
    if ns.no_history:
        return None
    location, create = location_of(ns.history)
    if location is None:
        return None

    def warn(line: str, to: Any = None) -> None:
        out = to or stream or sys.stderr
        out.write(f"dojob: warning: {one_line(line, 1000)}\n")
        out.flush()

    try:
        history = History(
            location,
            targets=ns.targets,
            options=option_names(ns, _subparser(parser, ns.command)),
            flap_window=ns.flap_window,
            warn=warn,
            create_folder=create,
        )
    except HistoryError as exc:
        parser.error(f"--history: {exc}")
    # The hook now, while the process is small: imported after the jobs' classes exist and before the run
    # freezes them for the collector, its allocations can tip a full collection over them all (15-35 ms
    # at 10 000 jobs). The rest of the recording path is imported inside the run (see dojob.history.hook).
    from . import hook  # noqa: F401

    return history


# -- dojob history -----------------------------------------------------------------


def add_history_parser(commands: Any) -> None:
    """The ``history`` command."""
    sub = commands.add_parser(
        "history",
        help="what earlier runs did: runs of a target, one run, one job",
        description="Show recorded runs. 'dojob history [TARGET]': recent runs; "
        "'dojob history show RUN': one run per job (RUN may be 'last'); 'dojob history job NAME': one job across runs.",
    )
    sub.add_argument("words", nargs="*", metavar="show RUN | job NAME | TARGET", help="what to show")
    _location_option(sub)
    sub.add_argument("-n", "--limit", type=int, default=20, metavar="N", help="most runs shown (default 20)")
    sub.add_argument("--json", action="store_true", help="JSON for machines instead of text")
    sub.add_argument("-d", "--debug", action="store_true", help="tracebacks of errors")


def _which(target: str) -> dict[str, str]:
    """The runs a TARGET word names: ``file.py:Root`` (or ``package.module:Root``; several joined by
    commas) as ``dojob run`` records it, its file resolved; a plain name: runs of that root job."""
    from .record import resolve

    if ":" in target and "://" not in target and not target.endswith("]"):  # (a bound job's name ends with ])
        return {"target": ",".join(resolve(part) for part in target.split(","))}
    return {"roots": target}


def _shown_target(target: str) -> str:
    """A run's target as printed: a file under the current folder by its relative path."""
    parts = []
    for part in target.split(","):
        where, sep, attr = part.rpartition(":")
        if sep and os.path.isabs(where):
            try:
                rel = os.path.relpath(where)
            except ValueError:  # another drive (Windows)
                rel = where
            if not rel.startswith(".."):
                part = f"{rel}:{attr}"
        parts.append(part)
    return ",".join(parts)


def _counts_text(run: dict[str, Any]) -> str:
    c = run["counts"]
    if run["kind"] == "plan":
        would = c.get("would_run", 0) + c.get("would_run_upstream_changes", 0)
        parts = [f"{c.get('ok', 0)} ok", f"{would} would run"]
        if c.get("ok_upstream_changes"):
            parts.append(f"{c['ok_upstream_changes']} ok now, upstream will change")
        if c.get("not_checked"):
            parts.append(f"{c['not_checked']} not checked")
        return ", ".join(parts)
    parts = [f"{c.get(k, 0)} {k}" for k in ("ok", "changed", "failed", "blocked")]
    for key, word in (
        ("interrupted", "interrupted"),
        ("not_run", "not run"),
        ("skipped", "skipped"),
        ("unstable", "unstable"),
    ):
        if c.get(key):
            parts.append(f"{c[key]} {word}")
    return ", ".join(parts)


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(one_line(n, 200) for n in names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def _run_lines(run: dict[str, Any]) -> list[str]:
    from ..recap import format_seconds
    from .findings import flap_words, when

    check = "check: " if run["kind"] == "plan" else ""
    stopped = f" (stopped: {one_line(run['stopped'], 40)})" if run["stopped"] else ""
    head = (
        f"run {run['id']}  {when(run['started'])}  {one_line(_shown_target(run['target']), 200)}  "
        f"{check}{run['verdict']}{stopped} in {format_seconds(run['elapsed'])}: {_counts_text(run)}"
    )
    pad = " " * (len(f"run {run['id']}") + 2)
    lines = [head]
    if run["changed"]:
        lines.append(f"{pad}changed: {_names(run['changed'])}")
    if run["drifted"]:
        since = f"{when(run['drift_since'])} (run {run['drift_base']})"
        lines.append(f"{pad}drifted since {since}: {_names(run['drifted'])}")
    if run["flapping"]:
        lines.append(f"{pad}{flap_words(run['flap_window'])} {_names(run['flapping'])}")
    if run["unstable"]:
        lines.append(f"{pad}unstable (Check fails after the run): {_names(list(run['unstable']))}")
    return lines


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


def _notes(job: dict[str, Any]) -> str:
    notes = []
    if job.get("error"):
        notes.append(job["error"])
    if job.get("drifted"):
        notes.append("drifted")
    if job.get("flapping"):
        notes.append("changed in each run of the window: is it idempotent?")
    if job.get("unstable"):
        notes.append(f"unstable: {job['unstable']}")
    return "; ".join(notes)


def _elapsed(seconds: float | None) -> str:
    from ..recap import format_seconds

    return "-" if seconds is None else format_seconds(seconds)


def _show(store: Any, words: list[str], ns: argparse.Namespace, out: TextIO) -> int:
    if not words:
        runs = store.runs(None, ns.limit)
    elif words[0] == "show":
        if len(words) != 2:
            raise _Usage("usage: dojob history show RUN (a run number, or 'last')")
        if words[1] == "last":
            run_id = store.last_id()
        else:
            try:
                run_id = int(words[1].lstrip("#"))
            except ValueError:
                raise _Usage(f"RUN must be a run number or 'last', not {one_line(words[1], 100)!r}") from None
        run = store.run(run_id) if run_id is not None else None
        if run is None:
            raise _Missing(f"no run {one_line(words[1], 100)} in {store.location}")
        if ns.json:
            out.write(json.dumps(run, indent=2) + "\n")
            return 0
        lines = _run_lines(run)
        lines.append(
            f"host {one_line(run['host'], 100)}, user {one_line(run['user'], 100)}, cwd {one_line(run['cwd'], 300)}, "
            f"dojob {run['version']}, targets: {_names(run['targets'])}, "
            f"options: {', '.join(run['options']) or 'none'}"
        )
        rows = [
            [one_line(j["name"], 200), j["status"], str(j["tries"]), _elapsed(j["elapsed"]), one_line(_notes(j), 500)]
            for j in run["jobs"]
        ]
        lines.extend(_table(["JOB", "STATUS", "TRIES", "ELAPSED", "NOTES"], rows, {2, 3}))
        out.write("\n".join(lines) + "\n")
        return 0
    elif words[0] == "job":
        if len(words) not in (2, 3):
            raise _Usage("usage: dojob history job NAME [TARGET]")
        which = _which(words[2]) if len(words) == 3 else {}
        rows_ = store.job(words[1], limit=ns.limit, **which)
        if not rows_:
            raise _Missing(f"no run of job {one_line(words[1], 200)!r} in {store.location}")
        if ns.json:
            out.write(json.dumps(rows_, indent=2) + "\n")
            return 0
        from .findings import when

        rows = [
            [str(r["run"]), when(r["started"]), r["status"], str(r["tries"]), _elapsed(r["elapsed"])]
            + [one_line(_notes(r), 500)]
            for r in rows_
        ]
        out.write("\n".join(_table(["RUN", "WHEN", "STATUS", "TRIES", "ELAPSED", "NOTES"], rows, {0, 3, 4})) + "\n")
        return 0
    elif len(words) == 1:
        runs = store.runs(limit=ns.limit, **_which(words[0]))
    else:
        raise _Usage("usage: dojob history [TARGET] | show RUN | job NAME [TARGET]")
    if ns.json:
        out.write(json.dumps(runs, indent=2) + "\n")
        return 0
    if not runs:
        out.write(f"no runs recorded in {store.location}\n")
        return 0
    lines = [line for run in runs for line in _run_lines(run)]
    out.write("\n".join(lines) + "\n")
    return 0


def _foreign(path: str) -> str | None:
    """Why the SQLite file at ``path`` is not a dojob history, read without writing a byte (nor a -wal or
    -shm file beside it); None if it is one, empty, or cannot be read so (opening it then says why)."""
    import pathlib
    import sqlite3

    from .sqlite import foreign

    try:
        conn = sqlite3.connect(pathlib.Path(path).absolute().as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            return foreign(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return None


class _Usage(Exception):
    pass


class _Missing(Exception):
    pass


def main(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``dojob history``: 0 shown, 1 no such run or job (or no history yet), 2 usage or unreadable history."""
    from . import open_store, path_of

    location, _ = location_of(ns.history)
    if location is None:
        sys.stderr.write("dojob: error: history is off (DOJOB_HISTORY); give --history PATH_OR_URL\n")
        return 2
    shown = display_location(location)
    if ns.limit < 1:
        parser.error("-n/--limit must be >= 1")
    try:
        if backend_of(location) == "sqlite":
            path = os.path.expanduser(path_of(location))
            empty = os.path.exists(path) and os.path.getsize(path) == 0 and not os.path.exists(path + "-wal")
            if empty or not os.path.exists(path):  # (a history's runs may all be in its -wal file yet)
                sys.stderr.write(f"dojob: no history at {one_line(shown, 500)} yet\n")
                return 1
            why = _foreign(path)
            if why is not None:  # another program's database: listing it must not change it
                sys.stderr.write(f"dojob: error: {one_line(shown, 500)} is {why}\n")
                return 2
        store = open_store(location)
    except HistoryError as exc:
        sys.stderr.write(f"dojob: error: {one_line(str(exc), 1000)}\n")
        return 2
    try:
        shown_text = io.StringIO()  # written out at the end: a database error is told apart from a closed stdout
        code = _show(store, ns.words, ns, shown_text)
    except _Usage as exc:
        parser.error(str(exc))
    except _Missing as exc:
        sys.stderr.write(f"dojob: {one_line(str(exc), 1000)}\n")
        return 1
    except Exception as exc:  # a database error while reading
        sys.stderr.write(f"dojob: error: {shown}: {one_line(f'{type(exc).__name__}: {exc}', 1000)}\n")
        return 2
    finally:
        store.close()
    try:
        sys.stdout.write(shown_text.getvalue())
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # a closed pipe, a full disk, no stdout at all
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write("dojob: error: cannot write 'standard output'\n")
        from ..outfiles import stdout_to_null

        stdout_to_null()
        return 1
    return code
