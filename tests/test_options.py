"""One frozen options object and a mode enum behind run(), arun(), Session and DoJobber.configure."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from conftest import make_job

import dojob
from dojob import Mode, RunOptions
from dojob.runner import run_graph
from dojob.session import Session


def test_keywords_become_one_frozen_validated_object():
    options = RunOptions.from_keywords(args=[1], kwargs={"a": 2}, workers=3, plan=True, timeout=5)
    assert options.mode is Mode.PLAN and options.no_act and options.plan
    assert options.args == (1,) and dict(options.kwargs) == {"a": 2} and options.workers == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.kwargs["b"] = 3  # type: ignore[index]
    assert RunOptions.from_keywords(no_act=True).mode is Mode.NO_ACT
    assert RunOptions.from_keywords().mode is Mode.CONVERGE
    with pytest.raises(dojob.OptionError, match="workers"):
        RunOptions.from_keywords(workers=0)
    with pytest.raises(dojob.OptionError, match="timeout"):
        options.replace(timeout=-1)
    with pytest.raises(TypeError):
        RunOptions.from_keywords(worker=2)  # a misspelt option is refused, not ignored


def test_the_public_keyword_api_is_unchanged():
    for fn in (dojob.run, dojob.arun):
        params = inspect.signature(fn).parameters
        for name in ("args", "kwargs", "workers", "no_act", "plan", "verbose", "debug", "cleanup", "timeout",
                     "default_tries", "default_retry_delay", "observers", "clock", "global_storage"):  # fmt: skip
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (fn, name)
    assert "handle_signals" in inspect.signature(dojob.run).parameters


def test_a_run_from_options_is_a_run_from_keywords():
    calls = []
    job = make_job("J", check=lambda self, *a, **k: calls.append((a, k)))
    graph = dojob.build_graph(job)
    run_graph(graph, RunOptions.from_keywords(args=[1], kwargs={"x": 2}))
    run_graph(graph, args=[1], kwargs={"x": 2})
    assert calls == [((1,), {"x": 2})] * 2
    session = Session(graph, RunOptions.from_keywords(plan=True, workers=2))
    assert session.planner.plan and session.ctx.no_act and session.workers == 2
