"""dojob.aio behaviours beyond the asynciojobs spec (tests/aio_spec): reruns,
forever-only schedulers, pictures of nested schedulers, verbose output,
shutdown, option checking, the planner's report."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

import dojob
from dojob import aio, runner
from dojob.errors import CycleError, OptionError
from dojob.render import ClusterStyle, NodeStyle, to_dot


async def sleeper(delay: float, result: object = None) -> object:
    await asyncio.sleep(delay)
    return result


def test_bestset_keeps_insertion_order():
    s = aio.BestSet([3, 1, 2])
    s.add(1)
    s.update([5, 3], [4])
    assert list(s) == [3, 1, 2, 5, 4]
    s &= {1, 5, 4, 9}
    assert list(s) == [1, 5, 4] and s == {1, 4, 5} and {1, 4, 5} == s
    s.remove(5)
    with pytest.raises(KeyError):
        s.remove(5)
    assert (s | {7}) == {1, 4, 7} and isinstance(s - {1}, aio.BestSet)


def test_jobs_start_in_insertion_order():
    log = []

    async def note(name):
        log.append(name)

    names = [f"j{i}" for i in range(8)]
    s = aio.Scheduler(*[aio.Job(note(n), label=n) for n in names], jobs_window=1)
    assert s.run() is True
    assert log == names


def test_rerun_with_job_factories():
    counter = {"n": 0}

    async def count():
        counter["n"] += 1
        return counter["n"]

    first = aio.Job(count, label="first")
    second = aio.Job(count, label="second", required=first)
    s = aio.Scheduler(first, second)
    assert s.run() is True and (first.result(), second.result()) == (1, 2)
    assert s.run() is True and (first.result(), second.result()) == (3, 4)


def test_forever_only_scheduler_runs_until_its_jobs_end():
    ended = []

    async def monitor(delay):
        await asyncio.sleep(delay)
        ended.append(delay)

    s = aio.Scheduler(aio.Job(monitor(0.05), forever=True), aio.Job(monitor(0.1), forever=True))
    begin = time.perf_counter()
    assert s.run() is True
    assert 0.09 <= time.perf_counter() - begin < 0.4
    assert ended == [0.05, 0.1]


def test_forever_only_scheduler_with_failing_critical_job():
    async def crash():
        await asyncio.sleep(0.01)
        raise ValueError("monitor crashed")

    s = aio.PureScheduler(aio.Job(crash(), forever=True), aio.Job(sleeper(5), forever=True), timeout=1)
    begin = time.perf_counter()
    assert s.run() is False
    assert time.perf_counter() - begin < 0.5
    assert s.failed_critical() and not s.failed_time_out()


def test_requirement_outside_the_scheduler():
    outside = aio.Job(sleeper(0, "out"), label="outside")
    inside = aio.Job(sleeper(0, "in"), label="inside", required=outside)
    with pytest.raises(ValueError, match="not in this scheduler"):
        aio.Scheduler(inside).run()
    assert aio.Scheduler(outside).run() is True
    # once done elsewhere, an outside requirement is met
    assert aio.Scheduler(inside).run() is True and inside.result() == "in"


def test_cycle_error_carries_the_cycle():
    a, b = aio.PrintJob("a", label="a"), aio.PrintJob("b", label="b")
    a.requires(b)
    b.requires(a)
    with pytest.raises(CycleError) as info:
        aio.Scheduler(a, b, aio.PrintJob("c", label="c")).run()
    assert set(info.value.cycle) == {"a", "b"} and info.value.cycle[0] == info.value.cycle[-1]


def test_options_are_checked():
    with pytest.raises(OptionError):
        aio.Scheduler(aio.PrintJob("x"), jobs_window=-1).run()
    with pytest.raises(OptionError):
        aio.Scheduler(aio.PrintJob("x"), timeout=-1).run()
    with pytest.raises(OptionError):
        aio.Job(lambda: sleeper(0), tries=0)
    with pytest.raises(TypeError):
        aio.Job(42)
    with pytest.raises(TypeError):
        aio.PrintJob("x").requires("not a job")


def test_report_of_the_last_run():
    ko = aio.Job(lambda: sleeper(0), label="ok")
    s = aio.Scheduler(ko, aio.Job(sleeper(0.01, 5), label="five"))
    assert s.run() is True
    assert isinstance(s.report, dojob.Report) and s.report.success
    assert [job.result for job in s.report] == [None, 5]


def test_verbose_prints_starts_ends_and_stops(capsys):
    watch = aio.Watch("start")
    s = aio.Scheduler(
        aio.Job(sleeper(0.01, 1), label="fine"),
        aio.Job(sleeper(1), label="slow"),
        timeout=0.05,
        critical=False,
        verbose=True,
        watch=watch,
    )
    assert s.run() is False
    out = capsys.readouterr().out
    assert "entering co_run() with 2 jobs" in out
    assert out.count("STARTING") == 2
    assert "DONE" in out and "<Job `fine`>" in out
    assert "TIMEOUT occurred" in out and "CANCELLED" in out


def test_set_debug_makes_every_scheduler_verbose(capsys):
    aio.set_debug(True)
    try:
        assert aio.Scheduler(aio.Job(sleeper(0), label="quiet"), aio.Job(sleeper(0.01), critical=False)).run()
    finally:
        aio.set_debug(False)
    assert "STARTING" in capsys.readouterr().out
    assert aio.Scheduler(aio.Job(sleeper(0), label="quiet")).run()
    assert capsys.readouterr().out == ""


def test_shutdown_once_per_run_and_timeout():
    calls = []

    class Holder(aio.AbstractJob):
        def __init__(self, delay, **kwds):
            self.delay = delay
            super().__init__(**kwds)

        async def co_run(self):
            return self.delay

        async def co_shutdown(self):
            calls.append(self.delay)
            await asyncio.sleep(self.delay)

    s = aio.Scheduler(Holder(0), aio.Scheduler(Holder(0.01), label="inner"), shutdown_timeout=0.5)
    assert s.run() is True
    assert sorted(calls) == [0, 0.01]  # shutdown is implicit (asynciojobs 0.21.3's code, not its README)
    assert s.shutdown() is None  # already done by the run
    slow = aio.Scheduler(Holder(1), shutdown_timeout=0.05)
    begin = time.perf_counter()
    assert slow.run() is True  # the shutdown that overruns is cancelled after shutdown_timeout
    assert time.perf_counter() - begin < 0.9
    assert slow.shutdown() is None


# ---------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------
def nested_for_pictures():
    inner = aio.Scheduler(label="inner", critical=False)
    i1 = aio.Job(sleeper(0), label="i1", scheduler=inner)
    aio.Job(sleeper(0), label="i2", scheduler=inner, required=i1)
    empty = aio.Scheduler(label="empty", forever=False)
    deeper = aio.Scheduler(aio.Job(sleeper(0), label="deep"), label="deeper", scheduler=inner, required=i1)
    start = aio.Job(sleeper(0), label="start")
    main = aio.Scheduler(aio.Sequence(start, inner, empty), aio.Job(sleeper(1), forever=True, label="fv"))
    return main, inner, deeper


def test_dot_of_nested_schedulers(tmp_path):
    main, inner, deeper = nested_for_pictures()
    text = main.dot_format()
    assert text.startswith("digraph") and "compound=true" in text
    assert text.count("subgraph cluster_") == 2  # inner and deeper; the empty one is a plain node
    inner_block = text[text.index("subgraph cluster_0") :]
    assert "deep" in inner_block and 'color="red"' not in inner_block.splitlines()[1]
    assert "lhead=cluster_0" in text  # 'empty' requires the inner scheduler ...
    assert "ltail=cluster_0" in text  # ... which requires 'start'
    for label in ("start", "inner", "i1", "i2", "deeper", "deep", "empty", "fv"):
        assert f': {label}"' in text, label
    dotfile = tmp_path / "nested.dot"
    assert main.export_as_dotfile(str(dotfile)) == f"(Over)wrote {dotfile}"
    subprocess.run(["dot", "-Tsvg", str(dotfile), "-o", str(tmp_path / "nested.svg")], check=True)
    png = main.export_as_pngfile(str(tmp_path / "nested"))
    assert png.endswith("nested.png") and (tmp_path / "nested.dot").exists()
    assert main.run() is True
    after = main.dot_format()
    assert 'fillcolor="green"' in after  # done jobs are coloured by state


def test_to_dot_clusters_are_validated():
    nodes = [NodeStyle("a", cluster="c1"), NodeStyle("b")]
    clusters = [ClusterStyle("c1", label="C one", critical=True), ClusterStyle("c2", parent="c1", forever=True)]
    text = to_dot(nodes, [("b", "c1"), ("c2", "b")], clusters=clusters)
    assert "subgraph cluster_0" in text and 'label="C one"' in text and "penwidth=3" in text
    assert "n0 -> n2" not in text and "n1 -> n0 [lhead=cluster_0];" in text
    assert 'style="rounded,filled,dotted"' in text  # the empty cluster c2 became a dotted node
    with pytest.raises(ValueError, match="unknown cluster"):
        to_dot([NodeStyle("a", cluster="nope")], [])
    with pytest.raises(ValueError, match="own ancestor"):
        to_dot([], [], clusters=[ClusterStyle("x", parent="y"), ClusterStyle("y", parent="x")])
    with pytest.raises(ValueError, match="duplicate"):
        to_dot([NodeStyle("x")], [], clusters=[ClusterStyle("x"), ClusterStyle("z", parent="x")])


def test_graph_of_a_cyclic_scheduler_raises():
    a, b = aio.PrintJob("a"), aio.PrintJob("b")
    a.requires(b)
    b.requires(a)
    with pytest.raises(CycleError):
        aio.Scheduler(a, b).graph()


def test_graph_utilities():
    a, b, c, d = (aio.PrintJob(x, label=x) for x in "abcd")
    b.requires(a)
    c.requires(b)
    d.requires(c, a)
    fv = aio.PrintJob("fv", label="fv", required=a)
    fv.forever = True
    s = aio.Scheduler(a, b, c, d, fv)
    assert list(s.entry_jobs()) == [a]
    assert list(s.exit_jobs()) == [d] and set(s.exit_jobs(discard_forever=False)) == {d, fv}
    assert s.predecessors(d) == {a, c} and s.successors(a) == {b, d, fv}
    assert s.predecessors_upstream(d) == {a, b, c} and s.successors_downstream(b) == {c, d}
    assert list(s.topological_order()) == [a, b, c, d, fv]
    assert list(s.iterate_jobs(scan_schedulers=True))[0] is s
    s.bypass_and_remove(c)
    assert c not in s and set(d.required) == {a, b}
    with pytest.raises(ValueError):
        s.bypass_and_remove(c)
    s.keep_only_between(starts=[b], ends=[d])
    assert set(s) == {b, d} and set(d.required) == {b} and not b.required
    s.keep_only([d])
    assert list(s) == [d] and not d.required
    assert s.run() is True


def test_scheduler_renders_as_svg_in_jupyter():
    import xml.etree.ElementTree as ET

    from dojob import aio

    async def nothing():
        return None

    a = aio.Job(nothing(), label="first", critical=True)
    b = aio.Job(nothing(), label="second <b>", required=a)
    try:
        picture = aio.Scheduler(a, b)._repr_svg_()
    finally:
        for job in (a, b):
            job.close_unstarted()
    root = ET.fromstring(picture)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["1: first", "2: second <b>"]  # escaped by the renderer, intact in the picture


def test_the_phase_coroutine_test_agrees_with_inspect():
    """aexecute reads the coroutine flag itself for functions and methods; the answers must not change."""
    import functools
    import inspect

    from dojob.attempt import _is_coroutine_function

    async def coro():
        pass

    def plain():
        pass

    class Holder:
        async def method(self):
            pass

        def plain_method(self):
            pass

        async def __call__(self):
            pass

    holder = Holder()
    cases = [coro, plain, holder.method, holder.plain_method, holder, functools.partial(coro), print, Holder.method]
    assert [_is_coroutine_function(c) for c in cases] == [inspect.iscoroutinefunction(c) for c in cases]
    assert _is_coroutine_function(coro) and _is_coroutine_function(Holder().method)
    assert not _is_coroutine_function(plain) and not _is_coroutine_function(print)


def test_a_scheduler_run_freezes_the_heap_only_while_it_lasts():
    """As ``dojob.run``: frozen during the run (nested schedulers and cycles included), left as found after."""
    import gc

    seen = []

    async def look():
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0))

    assert gc.isenabled() and gc.get_freeze_count() == 0
    inner = aio.Scheduler(aio.Job(look()))
    assert aio.Scheduler(aio.Job(look()), inner).run()
    assert seen == [(True, True), (True, True)]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    a = aio.Job(look, label="a")
    b = aio.Job(look, label="b", required=a)
    a.requires(b)
    with pytest.raises(CycleError):
        aio.Scheduler(a, b).run()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.freeze()  # the application's own freeze is left alone
    try:
        before = gc.get_freeze_count()
        assert aio.Scheduler(aio.Job(look())).run()
        assert gc.get_freeze_count() == before
    finally:
        gc.unfreeze()
        runner._application_freezes = False  # the application unfroze: a new process would know no better
