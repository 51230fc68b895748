"""Live progress on a terminal: done/total, running jobs, retries waiting.

:class:`Progress` is an observer drawn with `rich <https://rich.readthedocs.io>`_'s
:class:`~rich.live.Live` on standard error. It starts at ``RunStarted`` and stops
at ``RunFinished``. Lines that must stay (the ``-v``/``-d`` trace) go through
the same console with :meth:`Progress.writer`, so they scroll above the live
display instead of tearing it::

    progress = Progress()
    trace = Trace(stream=progress.writer())
    with progress:
        report = dojob.run(Root, observers=[progress, trace])

Events come from worker threads (serialised by the
:class:`~dojob.observe.Dispatcher`) while rich redraws from its own thread, so
the state is kept under a lock and drawn from a snapshot.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .recap import format_seconds
from .recap import visible as one_line

__all__ = ["ConsoleWriter", "Progress"]

#: Running jobs named on the display; the rest are counted.
MAX_NAMES = 6


class ConsoleWriter:
    """A minimal text stream that prints whole lines through a rich console, as they are.

    No markup, emoji or highlighting is applied, lines are not wrapped or cropped:
    what :class:`~dojob.observe.Trace` writes arrives unchanged, above any live display.

    Args:
        console: the console to print through.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            if "\n" in self._buffer:
                done, _, self._buffer = self._buffer.rpartition("\n")
                for line in done.split("\n"):
                    self.console.out(line, highlight=False)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                self.console.out(self._buffer, highlight=False)
                self._buffer = ""

    def isatty(self) -> bool:
        return self.console.is_terminal


class Progress:
    """An observer that shows a run's progress live on a terminal.

    Args:
        console: where to draw; default a new console on standard error.
        refresh_per_second: how often the display is redrawn.
        transient: erase the display when the run finishes (the recap follows).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        refresh_per_second: float = 8,
        transient: bool = True,
    ) -> None:
        self.console = console or Console(stderr=True)
        self._lock = threading.RLock()
        self._live: Live | None = None
        self._refresh = refresh_per_second
        self._transient = transient
        self._spinner = Spinner("dots", style="cyan")
        self.total = 0
        self.done = 0
        self.failed = 0
        self.blocked = 0
        self.retried = 0
        self.cleaning: str | None = None
        self.running: dict[str, str] = {}  # job -> "phase, try n"
        self.waiting: dict[str, float] = {}  # job -> retry at (run time)
        self._t0 = time.monotonic()
        self._stopping: str | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Start drawing (done on ``RunStarted``); does nothing if already started."""
        with self._lock:
            if self._live is not None:
                return
            self._t0 = time.monotonic()
            self._live = Live(
                get_renderable=self._render,
                console=self.console,
                refresh_per_second=self._refresh,
                transient=self._transient,
                redirect_stdout=_isatty(sys.stdout),
                redirect_stderr=True,
            )
            live = self._live
        live.start(refresh=True)

    def stop(self) -> None:
        """Stop drawing (done on ``RunFinished``); safe to call more than once."""
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def writer(self) -> ConsoleWriter:
        """A stream whose lines print above the live display (for :class:`~dojob.observe.Trace`)."""
        return ConsoleWriter(self.console)

    # -- events ------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        kind = type(event).__name__
        with self._lock:
            if kind == "RunStarted":
                self.total = event.jobs
            elif kind == "TryStarted":
                self.waiting.pop(event.job, None)
                self.running[event.job] = f"try {event.try_number}"
                if event.try_number == 2:
                    self.retried += 1
            elif kind == "PhaseStarted":
                phase = getattr(event.phase, "value", event.phase)
                self.running[event.job] = f"{phase}, try {event.try_number}"
            elif kind == "TryEnded":
                self.running.pop(event.job, None)
                if event.retry_at is not None:
                    self.waiting[event.job] = event.retry_at
            elif kind == "JobFinished":
                self.done += 1
                if getattr(event.status, "value", event.status) == "failed":
                    self.failed += 1
            elif kind == "JobBlocked":
                self.done += 1
                self.blocked += 1
            elif kind == "RunStopping":
                self._stopping = event.reason
            elif kind == "CleanupStarted":
                self.cleaning = event.job
            elif kind == "CleanupEnded":
                self.cleaning = None
        if kind == "RunStarted":
            self.start()
        elif kind == "RunFinished":
            self.stop()

    # -- drawing -------------------------------------------------------------------
    def _render(self) -> Group:
        with self._lock:
            total, done, failed, blocked = self.total, self.done, self.failed, self.blocked
            running = list(self.running.items())
            waiting = list(self.waiting)
            stopping = self._stopping
            retried = self.retried
        elapsed = time.monotonic() - self._t0
        head = Table.grid(padding=(0, 1))
        head.add_row(
            self._spinner,
            ProgressBar(total=max(total, 1), completed=done, width=30),
            Text(f"{done}/{total} done", style="bold"),
            Text(format_seconds(elapsed), style="dim"),
            Text.assemble(
                (f"{failed} failed", "red" if failed else "dim"),
                ", ",
                (f"{blocked} blocked", "dim"),
                ", ",
                (f"{retried} retried", "yellow" if retried else "dim"),
            ),
        )
        lines: list[Any] = [head]
        if stopping:
            lines.append(Text(f"stopping: {stopping}; waiting for running tries", style="yellow"))
        if running:
            lines.append(_names_line(f"running ({len(running)}): ", [f"{n} ({what})" for n, what in running], "cyan"))
        if waiting:
            lines.append(_names_line(f"retries waiting ({len(waiting)}): ", waiting, "yellow"))
        return Group(*lines)


def _names_line(label: str, names: list[str], style: str) -> Text:
    shown = ", ".join(one_line(n, 80) for n in names[:MAX_NAMES])
    if len(names) > MAX_NAMES:
        shown += f", ... {len(names) - MAX_NAMES} more"
    text = Text.assemble((label, style), shown)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (OSError, ValueError):
        return False
