"""The serial step loop (``steps.run_inline``) applies the one step rule exactly as ``run_steps`` does
through the plain inline caller: the same values and exceptions go back into the steps, the same
stoppers end them, and the working directory is restored before every phase."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Generator
from typing import Any

import pytest

from dojob.events import Phase
from dojob.steps import inline, run_inline, run_steps
from dojob.tryproto import Raised


async def _coroutine() -> None:
    return None


def _phases() -> list[Callable[[], Any]]:
    """One phase of each kind of outcome the step rule tells apart."""

    def boom() -> None:
        raise LookupError("boom")

    def exit_() -> None:
        raise GeneratorExit

    return [lambda: None, lambda: 42, boom, _coroutine, exit_, lambda: "last"]


def _steps(log: list[Any], wheres: list[str]) -> Generator[Any, Any, str]:
    for fn in _phases():
        try:
            value = yield Phase.CHECK, fn, (), {}
        except BaseException as exc:  # noqa: BLE001 - recorded for the comparison
            inner = exc.exc if type(exc) is Raised else exc
            log.append(("raised", type(exc).__name__, type(inner).__name__, str(inner)))
        else:
            log.append(("value", value))
        wheres.append(os.getcwd())
        os.chdir("/")  # the next phase must start back where the run started
    return "done"


def _run(loop: str, cwd: str) -> tuple[Any, list[Any], list[str]]:
    log: list[Any] = []
    wheres: list[str] = []
    back = lambda: os.chdir(cwd)  # noqa: E731
    if loop == "inline":
        out = run_inline(_steps(log, wheres), back)
    else:
        out = run_steps(_steps(log, wheres), inline(back))
    return out, log, wheres


def test_run_inline_applies_the_step_rule_like_run_steps(tmp_path: Any) -> None:
    here = os.getcwd()
    try:
        expected = _run("caller", str(tmp_path))
        got = _run("inline", str(tmp_path))
    finally:
        os.chdir(here)
    assert got == expected
    out, log, wheres = got
    assert out == "done" and wheres == [str(tmp_path)] * len(_phases())
    assert ("value", 42) in log and ("raised", "LookupError", "LookupError", "boom") in log
    assert ("raised", "Raised", "GeneratorExit", "") in log  # a phase's GeneratorExit reads as a failure
    assert any(entry[:2] == ("raised", "TypeError") for entry in log)  # a sync phase returned an awaitable


@pytest.mark.parametrize("stopper", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
def test_run_inline_ends_the_steps_on_a_stopper_like_run_steps(stopper: type[BaseException]) -> None:
    def steps(closed: list[bool]) -> Generator[Any, Any, str]:
        try:
            yield Phase.RUN, _raiser(stopper), (), {}
            yield Phase.RECHECK, lambda: None, (), {}
        except GeneratorExit:
            closed.append(True)
            raise
        except BaseException as exc:  # noqa: BLE001 - only a non-stopper comes back in
            return type(exc).__name__
        return "passed"

    outcomes = []
    for loop in (lambda s: run_steps(s, inline()), lambda s: run_inline(s)):
        closed: list[bool] = []
        try:
            outcomes.append(("returned", loop(steps(closed)), closed))
        except BaseException as exc:  # noqa: BLE001 - compared below
            outcomes.append(("raised", type(exc).__name__, closed))
    assert outcomes[0] == outcomes[1]


def _raiser(exc_type: type[BaseException]) -> Callable[[], None]:
    def phase() -> None:
        raise exc_type

    return phase
