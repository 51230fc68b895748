"""Durations written for people: the one format the recap, the trace, the pictures and the reports share.

Its own module so that printing a recap does not import the drawing code.
"""

from __future__ import annotations

__all__ = ["format_duration"]


def format_duration(seconds: float) -> str:
    """Format a duration for people (labels, recaps, reports).

    Args:
        seconds: Finite, non-negative duration in seconds.

    Returns:
        ``"120 ms"``, ``"1.5 ms"``, ``"1.25 s"``, ``"2 min 05 s"`` or
        ``"1 h 02 min"``.
    """
    millis = seconds * 1000
    if millis < 9.95:
        return f"{millis:.1f} ms".replace(".0 ms", " ms")
    if millis < 999.5:
        return f"{millis:.0f} ms"
    if seconds < 59.995:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
