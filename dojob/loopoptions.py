"""The reconcile loop's options (``--every``, ``--jitter``, ``--max-runs``, ``--metrics``, ``--lock``).

Apart from :mod:`dojob.reconcile`, so that building the command line and
telling a loop from a single run import none of the loop itself.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from .errors import DojobError
from .observe import one_line

__all__ = ["LoopError", "add_options", "parse_interval", "wants_loop"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The longest interval the loop takes (seconds): a year and a day.
MAX_INTERVAL = 366 * 86400.0
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")


class LoopError(DojobError):
    """A bad loop option (``--every``, ``--jitter``, ``--max-runs``, ``--metrics`` without ``--every``)."""


def parse_interval(text: str, *, option: str = "--every", zero: bool = False) -> float:
    """Seconds in ``30s``, ``5m``, ``1h``, ``1h30m``, ``250ms``, ``1.5s`` or a bare number of seconds.

    Raises:
        LoopError: anything else, or 0 unless ``zero`` (an interval must be > 0).
    """
    value = text.strip().lower()
    seconds: float | None = None
    if re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", value):
        seconds = float(value)
    elif value and _PART.sub("", value) == "":
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    if seconds is None or not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not zero):
        least = ">= 0" if zero else "> 0"
        raise LoopError(f"{option} must be a duration {least} such as 30s, 5m, 1h or 1h30m, got {one_line(text, 80)!r}")
    if seconds > MAX_INTERVAL:  # (a sleep that long overflows the OS's timers)
        raise LoopError(f"{option} must be at most 366 days, got {one_line(text, 80)!r}")
    return seconds


def _interval(option: str, zero: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            return parse_interval(text, option=option, zero=zero)
        except LoopError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _runs(text: str) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {one_line(text, 80)!r}")
    return int(text)


def add_options(parser: argparse.ArgumentParser) -> None:
    """``dojob run``'s options for the loop and the run lock."""
    group = parser.add_argument_group("keeping it converged")
    group.add_argument(
        "--every",
        type=_interval("--every"),
        metavar="INTERVAL",
        help="converge, sleep INTERVAL (30s, 5m, 1h), converge again... in this process",
    )
    group.add_argument(
        "--jitter",
        type=_interval("--jitter", zero=True),
        metavar="INTERVAL",
        help="with --every: sleep up to INTERVAL more, at random, after each converged run",
    )
    group.add_argument("--max-runs", type=_runs, metavar="N", help="with --every: stop after N runs")
    group.add_argument(
        "--metrics", metavar="HOST:PORT", help="with --every: serve Prometheus metrics at /metrics (host 127.0.0.1)"
    )
    group.add_argument(
        "--lock", metavar="PATH", help="the run lock file (default: one per target in $XDG_STATE_HOME/dojob/)"
    )
    group.add_argument(
        "--lock-wait", action="store_true", help="wait for the lock when another run holds it (default: refuse)"
    )


def wants_loop(ns: argparse.Namespace) -> bool:
    """Whether the command line asks for the loop (or gives a loop-only option, a usage error without it)."""
    return ns.command == "run" and any(
        getattr(ns, name, None) is not None for name in ("every", "jitter", "max_runs", "metrics")
    )
