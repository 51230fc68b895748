"""Tell a bug in a job from drift in the world, for the recap, the report and JUnit.

A Check that raises says "not done yet"; but a Check that raises ``NameError`` or
``TypeError``, or a job whose ``__init__`` raises, says "this code is wrong", and
running its Run again will not help. :func:`programming_error` names the place
(``"__init__"``, ``"Check"`` or ``"Run"``) of such a failure, so every view can
mark it as a programming error rather than as one more try that did not converge.
"""

from __future__ import annotations

from typing import Any

from .errors import PhaseTimeout
from .tryproto import INIT_FAILURE, PROGRAMMING_ERRORS

__all__ = ["PROGRAMMING_ERRORS", "failed_in_init", "programming_error"]


def failed_in_init(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised while creating the job's instance (its ``__init__``): the try marked it
    so (:func:`dojob.tryproto.mark_init_failure`), wherever it ran."""
    try:
        return getattr(exc, INIT_FAILURE, False) is True
    except Exception:  # noqa: BLE001 - a hostile __getattr__
        return False


def programming_error(job: Any, kind: str | None = None) -> str | None:
    """Where a failed job's code is at fault: ``"__init__"``, ``"Check"``, ``"Run"``, or None.

    Args:
        job: a :class:`~dojob.report.JobReport`.
        kind: the job's kind (``"job"``, ``"dummy"``, ``"runonly"``, ...), if known.
    """
    exc = job.exception
    if exc is None or getattr(job.status, "ok", None):
        return None
    if failed_in_init(exc):
        return "__init__"
    if isinstance(exc, PROGRAMMING_ERRORS) and not isinstance(exc, PhaseTimeout):
        return "Run" if kind in ("runonly", "awaitable") else "Check"
    cause = getattr(job, "cause", None)
    if cause is not None and isinstance(cause, PROGRAMMING_ERRORS):
        return "Run"
    return None
