"""Tell a bug in a job from drift in the world, for the recap, the report and JUnit.

A Check that raises says "not done yet"; but a Check that raises ``NameError`` or
``TypeError``, or a job whose ``__init__`` raises, says "this code is wrong", and
running its Run again will not help. :func:`programming_error` names the place
(``"__init__"``, ``"Check"`` or ``"Run"``) of such a failure, so every view can
mark it as a programming error rather than as one more try that did not converge.
"""

from __future__ import annotations

from typing import Any

from .errors import DojobError, PhaseTimeout
from .tryproto import PROGRAMMING_ERRORS

__all__ = ["PROGRAMMING_ERRORS", "failed_in_init", "programming_error"]


def failed_in_init(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised while creating the job's instance (its ``__init__``).

    The frame that caught it is the first of the traceback: for an instance that
    could not be created, :func:`dojob.tryproto.prepare`, whose next frame (if
    any) is not one of dojob's; a phase failure is caught by a step loop.
    """
    tb = getattr(exc, "__traceback__", None)
    if tb is None or isinstance(exc, DojobError):  # dojob's own (a TIMEOUT thrown into the try) never is
        return False
    first = tb.tb_frame
    if first.f_code.co_name != "prepare" or first.f_globals.get("__name__") != "dojob.tryproto":
        return False
    nxt = tb.tb_next
    if nxt is None:
        return True
    module = nxt.tb_frame.f_globals.get("__name__") or ""
    return not (module == "dojob" or module.startswith("dojob."))


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
