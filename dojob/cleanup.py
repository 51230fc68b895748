"""The Cleanups: a loop no interrupt leaves early.

Every instance whose first phase was called is cleaned up once, newest first
(see :func:`~dojob.tryproto.cleanups`). An interrupt (a signal, a stopper
landing in an observer or between two Cleanups) ends at most the Cleanup it
lands in; the others still run, and the stop is raised by the run afterwards.
With a run ``timeout``, the Cleanups together get that many seconds again: one
still running then is abandoned, the rest are not started (each fails with
:class:`~dojob.errors.CleanupTimeout`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import CleanupError, CleanupTimeout
from .executors import returner
from .steps import OnThreads, inline, run_steps
from .stopping import STOPPERS, Stop
from .tryproto import TryContext, cleanups


def run_cleanups(
    ctx: TryContext,
    stop: Stop,
    clock: Any,
    now: Callable[[], float],
    timeout: float | None,
    signals: bool,
    *,
    on_loop: bool = False,
    earlier: list[tuple[str, BaseException]] | None = None,
) -> None:
    """Run every Cleanup due, in this thread (on a new event loop if ``on_loop``).

    Raises:
        KeyboardInterrupt, SystemExit: the first one a Cleanup raised, once all ran.
        CleanupError: the ``earlier`` failures (remote workers) and these, if any.
    """
    end = None if timeout is None else now() + timeout
    while ctx.instances:
        try:
            if on_loop:
                import asyncio  # (only here: a plain run never loads asyncio)

                asyncio.run(_on_loop(ctx, stop, now, end, signals))
            else:
                run_steps(cleanups(ctx), _caller(ctx, stop, clock, now, end, timeout, signals))
        except STOPPERS as exc:  # landed between two Cleanups: the others still run
            stop.request(exc)
    raise_failures([*(earlier or []), *ctx.cleanup_failures])


async def arun_cleanups(
    ctx: TryContext, stop: Stop, now: Callable[[], float], timeout: float | None, signals: bool
) -> None:
    """:func:`run_cleanups` on the running loop."""
    await _on_loop(ctx, stop, now, None if timeout is None else now() + timeout, signals)
    raise_failures(list(ctx.cleanup_failures))


async def _on_loop(ctx: TryContext, stop: Stop, now: Callable[[], float], end: float | None, signals: bool) -> None:
    import asyncio

    from .onloop import OnLoop, arun_steps

    while ctx.instances:
        within = None if end is None else end - now()
        try:
            await arun_steps(cleanups(ctx), OnLoop(ctx.cwd, within=within, stop=stop if signals else None))
        except (asyncio.CancelledError, *STOPPERS) as exc:  # between two Cleanups, or cancelled
            stop.request(exc)


def _caller(
    ctx: TryContext,
    stop: Stop,
    clock: Any,
    now: Callable[[], float],
    end: float | None,
    within: float | None,
    signals: bool,
) -> Any:
    """How each Cleanup is called: inline, or on a thread of its own within the Cleanups' bound."""
    watch = stop if signals else None
    go_back = returner(ctx.cwd)
    if end is None:
        return inline(go_back, watch, cleanups=True)

    def late(phase: Any, started: bool) -> BaseException:
        if started:
            return CleanupTimeout(f"still running when the Cleanups' bound of {within:g}s passed; its thread runs on")
        return CleanupTimeout(f"not started: the Cleanups' bound of {within:g}s had passed")

    return OnThreads(lambda phase: end - now(), late, clock.get, go_back, watch)


def raise_failures(failures: list[tuple[str, BaseException]]) -> None:
    """Raise the first stopper a Cleanup raised, else :class:`CleanupError` if any Cleanup failed."""
    for _, exc in failures:
        if isinstance(exc, STOPPERS):
            raise exc
    if failures:
        raise CleanupError(failures)
