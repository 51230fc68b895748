"""The DoJobber API does its work once: configure's graph is the one run, statuses are made when read.

``configure`` builds and validates the graph; ``checknrun`` runs that graph as long as
no job's DEPS changed (one pass comparing the DEPS with what the build read), and the
``nodestatus``/``nodeexceptions``/``noderesults`` dicts are made from the report when
first read. These tests pin that each shortcut is taken only when it gives the same answer.
"""

from __future__ import annotations

import gc

import pytest
from conftest import flaky

import dojob
import dojob.runner as runner


def job(name: str, deps: tuple = (), **body: object) -> type:
    body.setdefault("Check", lambda self, *a, **k: f"checked {name}")
    return type(name, (dojob.Job,), {"DEPS": deps, "Run": lambda self, *a, **k: None, **body})


def test_configure_graph_is_the_one_run_while_deps_are_unchanged() -> None:
    a = job("SpeedA")
    root = job("SpeedRoot", (a,))
    dj = dojob.DoJobber()
    dj.configure(root)
    configured = dj._graph
    dj.checknrun()
    assert dj._graph is configured and dj.nodestatus == {"SpeedA": True, "SpeedRoot": True}
    dj.checknrun()  # a second checknrun builds again (configure's graph is used once)
    assert dj._graph is not configured and dj.success()


def test_a_tuple_deps_replaced_by_an_equal_one_or_a_new_one() -> None:
    """The snapshot compares the DEPS read now with those of the build: a replaced tuple is seen."""
    a, b = job("SnapA"), job("SnapB")
    mid = job("SnapMid", (a,))
    root = job("SnapRoot", (mid,))
    dj = dojob.DoJobber()
    dj.configure(root)
    configured = dj._graph
    mid.DEPS = (a,)  # another tuple, the same jobs: nothing to build again
    dj.checknrun()
    assert dj._graph is configured
    dj.configure(root)
    mid.DEPS = (a, b)  # deep below the root
    dj.checknrun()
    assert dj.nodestatus == {"SnapA": True, "SnapB": True, "SnapMid": True, "SnapRoot": True}
    dj.configure(root)
    del mid.DEPS  # inherited from Job again: no DEPS
    dj.checknrun()
    assert dj.nodestatus == {"SnapMid": True, "SnapRoot": True}


def test_a_parent_class_deps_changed_is_seen() -> None:
    a, b = job("ParA"), job("ParB")
    parent = job("ParParent", (a,))
    child = type("ParChild", (parent,), {})  # inherits DEPS
    dj = dojob.DoJobber()
    dj.configure(child)
    parent.DEPS = (b,)
    dj.checknrun()
    assert set(dj.nodestatus) == {"ParB", "ParChild"}


def test_the_snapshot_is_the_builds_own_reading_of_deps() -> None:
    """configure reads no DEPS after the build: the build keeps the objects it read, in post-order."""
    a = job("ReadA")
    parent = job("ReadParent", (a,))
    child = type("ReadChild", (parent,), {})  # inherits DEPS: the parent's tuple is what was read
    root = job("ReadRoot", (child, parent))
    graph = dojob.build_graph(root)
    assert [s.name for s in graph] == ["ReadA", "ReadChild", "ReadParent", "ReadRoot"]
    assert graph.read_deps is not None
    assert [id(d) for d in graph.read_deps] == [id(a.DEPS), id(parent.DEPS), id(parent.DEPS), id(root.DEPS)]
    dj = dojob.DoJobber()
    dj.configure(root)
    assert dj._built is not None and dj._built[2] is dj._graph.read_deps


def test_a_list_deps_or_a_bound_job_is_compared_job_by_job() -> None:
    """A list DEPS was taken as a new tuple (the list may change in place): the check goes job by job."""
    a, b = job("ListA"), job("ListB")
    root = job("ListRoot", ())
    root.DEPS = [a]
    dj = dojob.DoJobber()
    dj.configure(root)
    assert dj._built is not None and dj._built[2] is not None and dj._built[2][-1] == (a,)
    configured = dj._graph
    dj.checknrun()  # unchanged: configure's graph, checked job by job
    assert dj._graph is configured
    dj.configure(root)
    root.DEPS.append(b)
    dj.checknrun()
    assert dj.nodestatus == {"ListA": True, "ListB": True, "ListRoot": True}
    bound = job("BoundDep").bind(x=1)
    top = job("BoundTop", (bound,))
    dj.configure(top)
    configured = dj._graph
    dj.checknrun()
    assert dj._graph is configured and dj.success()


def test_statuses_are_made_when_read_and_agree_with_success() -> None:
    bad = flaky("LazyBad", None, TRIES=1, RETRY_DELAY=0)
    good = job("LazyGood")
    root = job("LazyRoot", (bad, good))
    dj = dojob.DoJobber()
    dj.configure(root)
    dj.checknrun()
    assert dj._views == {}  # nothing made yet
    assert dj.success() is False and dj.partial_success() is True and dj.failure() is True
    assert dj._views == {}  # success() reads the statuses without making the dict
    assert dj.nodestatus == {"LazyBad": False, "LazyGood": True, "LazyRoot": None}
    assert dj.nodestatus is dj.nodestatus  # made once
    assert set(dj.nodeexceptions) == {"LazyBad"} and dj.noderesults == {"LazyGood": "checked LazyGood"}


def test_statuses_set_by_the_caller_are_kept_and_read_by_success() -> None:
    dj = dojob.DoJobber()
    dj.configure(job("SetRoot"))
    dj.checknrun()
    assert dj.success() is True
    dj.nodestatus = {"SetRoot": False}  # DoJobber's statuses are plain attributes: scripts may write them
    assert dj.nodestatus == {"SetRoot": False} and dj.success() is False and dj.partial_success() is False
    dj.noderesults = {"x": 1}
    dj.nodeexceptions = {"y": ValueError("z")}
    assert dj.noderesults == {"x": 1} and list(dj.nodeexceptions) == ["y"]
    dj.checknrun()  # a new run: the statuses are the run's again
    assert dj.nodestatus == {"SetRoot": True} and dj.noderesults == {"SetRoot": "checked SetRoot"}


def test_statuses_are_empty_during_a_run_and_before_any() -> None:
    seen = []
    dj = dojob.DoJobber()
    assert dj.nodestatus == {} and dj.nodeexceptions == {} and dj.noderesults == {}
    first = job("DuringFirst")
    dj.configure(first)
    dj.checknrun()

    def check(self, *args, **kwargs):
        seen.append(dict(dj.nodestatus))

    dj.configure(job("DuringRoot", Check=check))
    dj.checknrun()
    assert seen == [{}] and dj.nodestatus == {"DuringRoot": True}


@pytest.mark.parametrize("frozen_by_app", [False, True])
def test_configure_leaves_the_collector_as_it_found_it(frozen_by_app: bool) -> None:
    if frozen_by_app:
        gc.freeze()
    try:
        before = gc.get_freeze_count()
        dj = dojob.DoJobber()
        dj.configure(job("GcRoot", (job("GcDep"),)))
        assert gc.isenabled() and gc.get_freeze_count() == before
        dj.checknrun()
        assert gc.isenabled() and gc.get_freeze_count() == before and dj.success()
        gc.disable()
        try:
            dj.configure(job("GcOff"))
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        gc.unfreeze()
        runner._application_freezes = False  # the application unfroze: a new process would know no better


def test_the_dojobber_api_loads_no_drawing_code_until_a_graph_is_asked_for() -> None:
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import json, sys, dojob\n"
        "d = dojob.DoJobber()\n"
        "d.configure(type('FreshRoot', (dojob.Job,), {'Check': lambda self, *a, **k: None}))\n"
        "d.checknrun()\n"
        "ran = sorted(m for m in ('dojob.render', 'graphviz', 'networkx') if m in sys.modules)\n"
        "d.dot()\n"
        "print(json.dumps([d.success(), ran, 'dojob.render' in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [True, [], True]
