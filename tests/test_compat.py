"""``dojob.DoJobber``: DoJobber 0.6's API, as scripts use it (``import dojob as dojobber``)."""

from __future__ import annotations

import io
import logging
import os
import shutil

import networkx
import pytest
from conftest import flaky, make_job

import dojob as dojobber


def _graph(log=None):
    a = flaky("A", 3, TRIES=2, RETRY_DELAY=0)
    bad = flaky("Bad", None, TRIES=2, RETRY_DELAY=0)
    up = make_job("Up", [bad])
    cleaned = make_job("Cleaned", [a], Cleanup=lambda self: log.append("Cleaned") if log is not None else None)
    return make_job("Root", [up, cleaned])


def test_configure_set_args_checknrun_and_statuses():
    seen = []
    root = make_job("Root", check=lambda self, *a, **k: seen.append((a, k)) or "res")
    dj = dojobber.DoJobber()
    dj.configure(root, verbose=False)
    dj.set_args("x", movie="Alien")
    dj.checknrun()
    assert seen == [(("x",), {"movie": "Alien"})]
    assert dj.nodestatus == {"Root": True} and dj.noderesults == {"Root": "res"}
    assert dj.success() and dj.partial_success() and not dj.failure()


def test_partial_failure_and_exceptions():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    assert dj.nodestatus == {"Bad": False, "Up": None, "A": True, "Cleaned": True, "Root": None}
    assert not dj.success() and dj.partial_success() and dj.failure()
    assert set(dj.nodeexceptions) == {"Bad", "A"}  # A failed once before passing
    assert str(dj.nodeexceptions["Bad"]) == "Bad not ready (4)"
    assert dj.report["Bad"].tries == 2


def test_checknrun_can_be_called_again_and_sees_new_deps():
    root = make_job("Root", base=dojobber.DummyJob)
    dj = dojobber.DoJobber()
    dj.configure(root)
    dj.checknrun()
    assert dj.nodestatus == {"Root": True}
    root.DEPS.append(flaky("Late", None, TRIES=1))
    dj.checknrun()
    assert dj.nodestatus == {"Late": False, "Root": None}


def test_cleanup_false_then_cleanup():
    log = []
    dj = dojobber.DoJobber()
    dj.configure(_graph(log), cleanup=False)
    dj.checknrun()
    assert log == []
    dj.cleanup()
    dj.cleanup()
    assert log == ["Cleaned"]


def test_configure_validates_the_graph_at_once():
    bad = make_job("Bad")
    bad.DEPS = bad
    with pytest.raises(dojobber.DepsError):
        dojobber.DoJobber().configure(bad)
    with pytest.raises(dojobber.DojobError, match="configure"):
        dojobber.DoJobber().checknrun()


def test_workers_and_defaults_reach_the_run():
    dj = dojobber.DoJobber()
    dj.configure(make_job("Root", [flaky("A", None)]), default_tries=4, default_retry_delay=0, workers=3)
    dj.checknrun()
    assert dj.report["A"].tries == 4


def test_graph_is_networkx_with_statuses():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    g = dj.graph
    assert isinstance(g, networkx.DiGraph) and ("Up", "Bad") in g.edges
    dj.checknrun()
    assert dj.graph.nodes["Bad"]["status"] is False and dj.graph.nodes["A"]["status"] is True


def test_write_graph_png_and_dot():
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    png = io.BytesIO()
    dj.write_graph(png)
    assert png.getvalue().startswith(b"\x89PNG")
    text = io.StringIO()
    dj.write_graph(text, fmt="dot")
    dot = text.getvalue()
    assert dot.startswith("digraph") and 'label="Bad' in dot and "red" in dot


def test_loglevel_sets_the_dojob_logger_level():
    logger = logging.getLogger("dojob")
    old = logger.level
    try:
        dojobber.DoJobber(dojobber_loglevel=logging.DEBUG)
        assert logger.level == logging.DEBUG and logger.handlers == []
    finally:
        logger.setLevel(old)


def test_module_exposes_dojobbers_names():
    for name in ("DoJobber", "Job", "DummyJob", "RunonlyJob"):
        assert hasattr(dojobber, name)


def test_display_graph_opens_the_png_in_a_viewer(tmp_path, monkeypatch):
    seen = tmp_path / "seen.png"
    viewer = tmp_path / "bin" / "display"
    viewer.parent.mkdir()
    viewer.write_text(f'#!/bin/sh\ncp "$1" {seen}\n')
    viewer.chmod(0o755)
    dj = dojobber.DoJobber()
    dj.configure(_graph())
    dj.checknrun()
    dot_dir = os.path.dirname(shutil.which("dot"))  # Graphviz renders the PNG; cp is there too
    monkeypatch.setenv("PATH", f"{viewer.parent}:{dot_dir}")
    dj.display_graph()
    assert seen.read_bytes().startswith(b"\x89PNG")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(dojobber.DojobError, match="image viewer"):
        dj.display_graph()
