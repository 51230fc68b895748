"""A job's spec keeps its class-decided values in one interned Traits, shared by jobs alike (issue 17, memory)."""

from __future__ import annotations

import copy
import gc
import pickle
import tracemalloc
from typing import Any

import cloudpickle
import pytest

import dojob
import dojob.aio
from dojob import build_graph
from dojob.aio import bridge
from dojob.spec import JobSpec, Traits


def _check(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _run(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def _layered(n: int, base: type = dojob.Job, width: int = 20, **body: Any) -> type:
    """``n`` jobs in layers of ``width``, each needing two of the layer below, and a root over the top layer."""
    layers: list[list[type]] = []
    body = {"Check": _check, "Run": _run, **body}
    for i in range(n):
        layer, pos = divmod(i, width)
        deps: tuple[type, ...] = ()
        if layer:
            below = layers[layer - 1]
            deps = (below[pos], below[(pos + 1) % len(below)])
        if pos == 0:
            layers.append([])
        layers[layer].append(type(f"J{i}", (base,), {"DEPS": deps, **body}))
    return type("Root", (base,), {"DEPS": tuple(layers[-1]), **body})


def test_regression_jobs_alike_share_one_traits_tuple():
    g = build_graph(_layered(500))
    assert len(g.specs) == 501
    assert len({id(s.traits) for s in g.specs}) == 1
    assert g.specs[0].traits == Traits("job", 3, 1.0)  # the defaults: TRIES 3, RETRY_DELAY 1


def test_regression_jobs_of_different_classes_with_equal_values_share_traits():
    """Two bases whose jobs validate to the same values (the memo keys differ): one Traits, interned."""

    def other_check(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    class A(dojob.Job):
        TRIES = 3
        Check, Run = _check, _run

    class B(dojob.Job):
        TRIES = 3
        Check, Run = other_check, _run

    class C(dojob.Job):
        TRIES = 4
        Check, Run = _check, _run

    class Root(dojob.DummyJob):
        DEPS = (A, B, C)

    g = build_graph(Root)
    by_name = {s.name: s for s in g.specs}
    a, b, c = by_name["A"], by_name["B"], by_name["C"]
    assert a.traits is b.traits
    assert a.traits is not c.traits and c.tries == 4 and a.tries == 3


def test_regression_jobs_that_draw_a_warning_still_share_their_traits():
    """A job alike that drew a warning is validated on its own (its own warning), yet shares the Traits."""
    root = _layered(60, Run=None)  # no Run method: one warning per job
    g = build_graph(root)
    assert sum("defines no Run method" in w for w in g.warnings) == 61
    assert len({id(s.traits) for s in g.specs}) == 1


def test_regression_a_build_keeps_under_320_bytes_per_job():
    """What a build of 5 000 jobs alike keeps, per job: 376 bytes with 17-field specs, 272 with shared traits."""
    root = _layered(5000)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        g = build_graph(root)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(g.specs) == 5001
    assert kept / 5001 < 320, kept / 5001


def test_regression_aio_jobs_alike_share_one_traits():
    async def nothing() -> None:
        return None

    jobs = [dojob.aio.Job(nothing(), label=f"j{i}", critical=False) for i in range(50)]
    jobs.append(dojob.aio.Job(nothing(), label="crit", critical=True))
    plan = bridge.prepare(jobs)
    specs = plan.graph.specs
    assert len({id(s.traits) for s in specs[:50]}) == 1
    assert specs[50].traits is not specs[0].traits and specs[50].critical is True
    assert specs[0].critical is False and specs[0].kind == "awaitable" and specs[0].is_async is True
    assert dojob.aio.Scheduler(*jobs, critical=False).run() is True  # (and the coroutines are awaited)


def test_the_old_constructor_keeps_its_signature_and_every_field_reads_back():
    spec = JobSpec("Work", 7, object, "runonly", 3, 0.5, priority=2, critical=True, claims=("db",), tags=("t",))
    assert (spec.name, spec.index, spec.cls) == ("Work", 7, object)
    assert (spec.kind, spec.tries, spec.retry_delay, spec.priority, spec.critical) == ("runonly", 3, 0.5, 2, True)
    assert (spec.is_async, spec.has_cleanup, spec.forever, spec.timeout) == (False, False, False, None)
    assert (spec.claims, spec.uses, spec.fail_blocks, spec.tags, spec.retry) == (("db",), (), True, ("t",), None)
    assert repr(spec) == "<JobSpec 7:Work kind=runonly tries=3>"
    with pytest.raises(TypeError):
        JobSpec("Work", 7, object, "job", 1, 0.0, triess=2)
    with pytest.raises(AttributeError):
        spec.tries = 5  # type: ignore[misc]


class Leaf1(dojob.Job):
    TRIES = 2
    Check, Run = _check, _run


class Leaf2(Leaf1):
    pass


class Top(Leaf1):
    DEPS = (Leaf1, Leaf2)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_specs_survive_pickling_to_a_process_pool(dumps):
    g = build_graph(Top)
    back = pickle.loads(dumps(g.specs))
    assert back == g.specs
    assert all(type(s) is JobSpec and type(s.traits) is Traits for s in back)
    assert [s.tries for s in back] == [2] * 3
    assert len({id(s.traits) for s in back}) == 1  # pickle's memo keeps the sharing
    assert copy.deepcopy(g.specs[2]) == g.specs[2]


def test_replacing_the_index_keeps_the_traits():
    spec = build_graph(_layered(3, TRIES=5)).specs[1]
    moved = spec._replace(index=0)
    assert type(moved) is JobSpec and moved.index == 0 and moved.traits is spec.traits and moved.tries == 5


def test_a_selected_subgraph_runs_with_its_traits():
    """``--tags``-style selection renumbers specs (select.py): the run still honours TRIES of the kept jobs."""
    calls: list[str] = []

    class Flaky(dojob.Job):
        TRIES = 3
        RETRY_DELAY = 0
        TAGS = ("keep",)

        def Check(self, *args: Any, **kwargs: Any) -> None:
            calls.append("check")
            if len(calls) < 3:
                raise RuntimeError("not yet")

        def Run(self, *args: Any, **kwargs: Any) -> None:
            return None

    class Root(dojob.DummyJob):
        DEPS = (Flaky,)

    report = dojob.run(Root, tags=["keep"])
    assert report.success
    assert report["Flaky"].tries == 2
