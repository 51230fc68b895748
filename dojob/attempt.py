"""One try of a job (init, check, run, recheck) and the Cleanups, as steps drivers execute.

The logic of a try is written once, as a generator that yields the calls to
make (``(phase, function, args, kwargs)``) and receives their results, or their
exceptions thrown back in. :func:`execute` runs those steps in the calling
thread; :func:`aexecute` runs them on an event loop (coroutine functions
natively, plain functions in a thread). So the sync and async drivers cannot
disagree on what a try is.

Exceptions: any ``BaseException`` raised by a phase fails that phase, except
``KeyboardInterrupt`` and ``SystemExit``, which stop the run and propagate.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import traceback
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from .events import CleanupEnded, CleanupStarted, Phase, PhaseEnded, PhaseStarted
from .graph import JobSpec

INIT, CHECK, RUN, RECHECK, CLEANUP = Phase.INIT, Phase.CHECK, Phase.RUN, Phase.RECHECK, Phase.CLEANUP

#: Exceptions that stop a run instead of failing a phase.
STOPPERS = (KeyboardInterrupt, SystemExit)

Step = tuple[Phase, Callable[..., Any], tuple, dict]


class NoActError(Exception):
    """A RunonlyJob cannot succeed when nothing may be run (``no_act``)."""


class TryOutcome(NamedTuple):
    """How a try ended: ``changed`` is True when it converged through Run."""

    ok: bool
    changed: bool = False
    result: Any = None
    exception: BaseException | None = None


_PASSED = TryOutcome(True, False, None)


class TryContext:
    """What every try of a run shares: arguments, storage, the cleanup stack, the emitter.

    Attributes:
        instances: ``(spec, instance)`` of every job with a Cleanup whose Check
            (or Run, for a RunonlyJob) was called, in call order: the Cleanup stack.
    """

    __slots__ = ("args", "kwargs", "global_storage", "no_act", "cwd", "instances", "emit", "now")

    def __init__(
        self,
        *,
        args: tuple = (),
        kwargs: dict | None = None,
        global_storage: dict | None = None,
        no_act: bool = False,
        cwd: str | None = None,
        emit: Callable[[Any], None] | None = None,
        now: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.global_storage = {} if global_storage is None else global_storage
        self.no_act = no_act
        self.cwd = cwd
        self.instances: list[tuple[JobSpec, Any]] = []
        self.emit = emit
        self.now = now


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """``(type name, message, formatted traceback)`` of an exception, as plain strings."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    try:
        message = str(exc)
    except Exception:  # a hostile __str__ must not break the run
        message = f"<unprintable {type(exc).__name__}>"
    return type(exc).__name__, message, tb


def attempt(spec: JobSpec, try_number: int, ctx: TryContext) -> Generator[Step, Any, TryOutcome]:
    """The steps of one try of ``spec``: create, check, and if that fails run then recheck.

    Each phase is one ``yield``; the executor sends back its value or throws
    its exception in. Events are built only when the run has observers.
    """
    name = spec.name
    emit = ctx.emit
    now = ctx.now
    try:
        obj = yield INIT, spec.cls, (), {}
    except GeneratorExit:
        raise
    except BaseException as exc:
        if emit is not None:
            emit(PhaseEnded(name, try_number, INIT, False, now(), *describe_error(exc)))
        return TryOutcome(False, exception=exc)
    obj.storage = {}
    obj.global_storage = ctx.global_storage
    if spec.has_cleanup:
        ctx.instances.append((spec, obj))
    args, kwargs = ctx.args, ctx.kwargs
    if spec.kind == "runonly":
        if ctx.no_act:  # nothing may run, so the job cannot pass its (implicit) check
            exc = NoActError(f"{name} is a RunonlyJob: it cannot succeed with no_act")
            if emit is not None:
                emit(PhaseEnded(name, try_number, CHECK, False, now(), *describe_error(exc)))
            return TryOutcome(False, exception=exc)
        phases: tuple[Phase, ...] = (RUN,)
    elif ctx.no_act:
        phases = (CHECK,)
    else:
        phases = (CHECK, RUN, RECHECK)
    for phase in phases:
        if phase is RUN:
            fn = obj.Run
        else:
            obj._check_phase = phase.value
            fn = obj.Check
        if emit is not None:
            emit(PhaseStarted(name, try_number, phase, now()))
        try:
            value = yield phase, fn, args, kwargs
        except GeneratorExit:
            raise
        except BaseException as exc:
            if emit is not None:
                emit(PhaseEnded(name, try_number, phase, False, now(), *describe_error(exc)))
            if phase is not RECHECK and len(phases) > 1:
                continue  # a failed Check leads to Run; Run's outcome is ignored, the recheck decides
            return TryOutcome(False, exception=exc)
        if emit is not None:
            emit(PhaseEnded(name, try_number, phase, True, now()))
        if phase is CHECK:
            return _PASSED if value is None else TryOutcome(True, False, value)
        if phase is RUN and len(phases) > 1:
            continue
        return TryOutcome(True, True, value)
    raise AssertionError("unreachable")  # pragma: no cover


def cleanups(ctx: TryContext) -> Generator[Step, Any, list[tuple[str, BaseException]]]:
    """The steps of the Cleanups: every instance on the stack, newest first, each once.

    Every Cleanup runs even if others raise; returns the ``(job name, exception)`` failures.
    """
    failures = []
    emit = ctx.emit
    stack = ctx.instances
    while stack:
        spec, obj = stack.pop()
        if emit is not None:
            emit(CleanupStarted(spec.name, ctx.now()))
        try:
            yield CLEANUP, obj.Cleanup, (), {}
        except GeneratorExit:
            raise
        except BaseException as exc:
            failures.append((spec.name, exc))
            if emit is not None:
                emit(CleanupEnded(spec.name, False, ctx.now(), *describe_error(exc)))
            continue
        if emit is not None:
            emit(CleanupEnded(spec.name, True, ctx.now()))
    return failures


def execute(steps: Generator[Step, Any, Any], cwd: str | None = None) -> Any:
    """Run ``steps`` in this thread; return the generator's value.

    Args:
        steps: from :func:`attempt` or :func:`cleanups`.
        cwd: if set, ``os.chdir`` there before every phase (serial runs).
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                phase, fn, args, kwargs = steps.send(value)
            else:
                phase, fn, args, kwargs = steps.throw(error)
        except StopIteration as stop:
            return stop.value
        error = None
        try:
            if cwd is not None and phase is not INIT:
                os.chdir(cwd)
            value = fn(*args, **kwargs)
            if value is not None and inspect.isawaitable(value):
                close = getattr(value, "close", None)
                if close is not None:
                    close()
                raise TypeError(
                    f"{phase.value} returned an awaitable; run jobs with coroutines through the async driver"
                )
        except STOPPERS:
            steps.close()
            raise
        except BaseException as exc:
            error = exc
            value = None


def _in_dir(cwd: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        os.chdir(cwd)
        return fn(*args, **kwargs)

    return call


async def aexecute(steps: Generator[Step, Any, Any], cwd: str | None = None) -> Any:
    """Run ``steps`` on the running loop: coroutine functions natively, plain ones in a thread.

    Creating the instance (``__init__``) runs on the loop. Cancellation closes
    the steps and propagates.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            if error is None:
                phase, fn, args, kwargs = steps.send(value)
            else:
                phase, fn, args, kwargs = steps.throw(error)
        except StopIteration as stop:
            return stop.value
        error = None
        try:
            if phase is INIT:
                value = fn(*args, **kwargs)
            elif inspect.iscoroutinefunction(fn):
                if cwd is not None:
                    os.chdir(cwd)
                value = await fn(*args, **kwargs)
            else:
                value = await asyncio.to_thread(_in_dir(cwd, fn) if cwd else fn, *args, **kwargs)
            if value is not None and inspect.isawaitable(value):
                value = await value
        except (asyncio.CancelledError, *STOPPERS):
            steps.close()
            raise
        except BaseException as exc:
            error = exc
            value = None
