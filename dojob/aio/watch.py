"""``Watch``: elapsed-time printing for tests, tutorials and verbose output."""

from __future__ import annotations

import time
from datetime import datetime


class Watch:
    """Remembers a starting point and prints the time elapsed since, as ``SSS.MMM``.

    Args:
        message: printed at creation, after the elapsed time (0).
        show_elapsed: print ``000.000  {message}`` at creation.
        show_wall_clock: print the wall clock and the message at creation.

    Example:
        >>> watch = Watch("hello"); time.sleep(1); watch.print_elapsed("done\\n")
        000.000  hello
        001.001 done
    """

    def __init__(self, message: str | None = None, *, show_elapsed: bool = True, show_wall_clock: bool = False) -> None:
        self.start = 0.0
        self.reset()
        message = "" if message is None else message
        if show_elapsed:
            self.print_elapsed(f" {message}\n")
        if show_wall_clock:
            self.print_wall_clock(f" {message}\n")

    def reset(self) -> None:
        """Start counting from now."""
        self.start = time.perf_counter()

    def seconds(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def elapsed(self) -> str:
        """Seconds since the start, as 7 characters: ``SSS.MMM``."""
        return f"{self.seconds():07.3f}"

    def print_elapsed(self, suffix: str = " ") -> None:
        """Print ``{elapsed} {suffix}`` (no newline added)."""
        print(f"{self.elapsed()} {suffix}", end="")

    @staticmethod
    def print_wall_clock(suffix: str = " ") -> None:
        """Print the time of day as ``HH:MM:SS.mmm`` followed by ``suffix`` (no newline added)."""
        now = datetime.now()
        print(f"{now:%H:%M:%S}.{now.microsecond // 1000:03d}{suffix}", end="")
