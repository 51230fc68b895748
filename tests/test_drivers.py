"""One semantics, two drivers: the same graph gives the same events under both."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import Recorder, flaky, make_job

from dojob import FakeClock, build_graph
from dojob.runner import arun_graph, run_graph


def _without_times(events):
    out = []
    for e in events:
        fields = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
        for name in ("time", "retry_at", "traceback", "driver"):
            fields.pop(name, None)
        out.append((type(e).__name__, fields))
    return out


def _graphs():
    log = []
    a = flaky("A", 3, TRIES=3, RETRY_DELAY=2)
    b = flaky("B", None, TRIES=2, RETRY_DELAY=1)
    c = flaky("C", 1, [a])
    d = flaky("D", 2, [b, c])
    e = make_job("E", [c], Cleanup=lambda self: log.append("E"))
    yield "mixed", make_job("Root", [d, e, flaky("F", 4, TRIES=4, RETRY_DELAY=0)])
    chain = make_job("L0")
    for i in range(1, 20):
        chain = flaky(f"L{i}", 1 + i % 3, [chain], TRIES=3, RETRY_DELAY=0.5)
    yield "chain", chain
    yield "wide", make_job("Wide", [flaky(f"W{i}", 1 + i % 4, TRIES=2, RETRY_DELAY=1) for i in range(15)])


@pytest.mark.parametrize("name, root", list(_graphs()))
def test_sync_and_async_drivers_emit_the_same_events(name, root):
    graph = build_graph(root)
    sync_rec, async_rec = Recorder(), Recorder()
    sync_report = run_graph(graph, observers=[sync_rec], clock=FakeClock())
    async_report = asyncio.run(arun_graph(graph, observers=[async_rec], clock=FakeClock()))
    assert sync_report.statuses() == async_report.statuses()
    assert _without_times(sync_rec.events) == _without_times(async_rec.events)
    assert len(sync_rec.events) > 3 * len(graph)
    # on a fake clock even the times agree
    assert [getattr(e, "time", None) for e in sync_rec.events] == [getattr(e, "time", None) for e in async_rec.events]
