"""One try of a job, as the drivers see it: a re-export of the try protocol and its step loops.

The protocol lives in :mod:`dojob.tryproto` (:func:`attempt`, :func:`cleanups`,
:class:`TryContext`, :class:`TryOutcome`), the one step rule and the step
loops in :mod:`dojob.steps` and :mod:`dojob.onloop`, the executors in :mod:`dojob.executors`. The
helpers below keep the older calling conventions (``execute``,
``execute_bounded``, ``aexecute``) as thin wrappers over those loops.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from .errors import CleanupTimeout, NoActError, PhaseTimeout, RunTimeout
from .events import Phase
from .executors import TryHandle, close_dir, open_dir, returner
from .onloop import OnLoop, Stopped, arun_steps
from .steps import ABANDONED, OnThreads, Steps, Watched, inline, run_steps, settle
from .steps import is_coroutine_function as _is_coroutine_function
from .stopping import STOPPERS
from .tryproto import (
    CHECK,
    CLEANUP,
    INIT,
    RECHECK,
    RUN,
    Step,
    TryContext,
    TryOutcome,
    attempt,
    cleanups,
    describe_error,
)

__all__ = [
    "ABANDONED", "CHECK", "CLEANUP", "INIT", "RECHECK", "RUN", "STOPPERS", "CleanupTimeout", "NoActError",
    "PhaseTimeout", "RunTimeout", "Step", "Stopped", "TryContext", "TryHandle", "TryOutcome", "aexecute", "attempt",
    "cleanups", "close_dir", "describe_error", "execute", "execute_bounded", "open_dir", "returner", "settle",
    "_is_coroutine_function",
]  # fmt: skip


def execute(steps: Steps, go_back: Callable[[], None] | None = None, handle: TryHandle | None = None) -> Any:
    """Run ``steps`` in this thread (watched by ``handle`` if given); return the generator's value."""
    return run_steps(steps, inline(go_back) if handle is None else Watched(handle, "?", go_back))


def execute_bounded(
    steps: Steps,
    timeout: float,
    job: str,
    *,
    wait: Callable[[queue.SimpleQueue, float | None], Any],
    abandoned: Callable[[Phase], None] | None = None,
) -> Any:
    """Run ``steps``, each phase on a daemon thread within ``timeout`` seconds (a job's ``TIMEOUT``).

    For executors without a driver watching the phases (a worker process): a
    phase that overruns is abandoned (its thread runs on) and fails with
    :class:`PhaseTimeout`; ``abandoned(phase)`` is called first.
    """

    def late(phase: Phase, started: bool) -> BaseException:
        if abandoned is not None:
            abandoned(phase)
        return PhaseTimeout(job, phase, timeout, abandoned=True)

    return run_steps(steps, OnThreads(lambda phase: timeout, late, wait))


async def aexecute(
    steps: Steps, cwd: str | None = None, timeout: float | None = None, job: str = "?", *, within: float | None = None
) -> Any:
    """Run ``steps`` on the running loop (see :class:`~dojob.onloop.OnLoop`)."""
    return await arun_steps(steps, OnLoop(cwd, timeout, job, within))
