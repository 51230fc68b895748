"""Start-up cost: ``import dojob`` loads nothing heavy, and a run loads nothing it does not use.

Each check runs in a fresh interpreter, since this test process has imported
everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import dojob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: never needed to define jobs: the drawing, the live display, remote execution, the engine itself
HEAVY = ("networkx", "rich", "graphviz", "cloudpickle", "distributed", "asyncio", "concurrent.futures", "logging")
ENGINE = ("dojob.runner", "dojob.attempt", "dojob.sync", "dojob.plan", "dojob.remote", "dojob.compat", "dojob.graph")
#: not used by a plain (sync, local, no picture) run, from the API or the CLI
NOT_FOR_A_RUN = ("networkx", "rich", "graphviz", "distributed", "asyncio", "cloudpickle", "dojob.remote")


def fresh(code: str, *args: str) -> Any:
    """Run ``code`` in a new interpreter (this checkout first on the path); it prints one JSON line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loaded_after(code: str, names: tuple[str, ...], *args: str) -> list[str]:
    """The modules among ``names`` and dojob's own that ``code`` left loaded, in a fresh interpreter."""
    report = (
        f"import json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m in {names!r} or m[:5] == 'dojob')))\n"
    )
    return fresh(textwrap.dedent(code) + report, *args)


def test_regression_import_dojob_loads_no_heavy_module() -> None:
    # issue 17: `import dojob` took 75-150 ms, loading asyncio, cloudpickle, the whole engine
    loaded = loaded_after("import dojob\n", HEAVY + ENGINE)
    assert [m for m in loaded if m in HEAVY + ENGINE] == []
    assert loaded == ["dojob", "dojob.bind", "dojob.errors", "dojob.job", "dojob.select"]


def test_a_job_file_defines_its_jobs_with_import_dojob_alone() -> None:
    code = """
        import dojob

        class A(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

        class B(dojob.DummyJob):
            DEPS = (A,)
    """
    loaded = loaded_after(code, HEAVY + ENGINE)
    assert loaded == ["dojob", "dojob.bind", "dojob.errors", "dojob.job", "dojob.select"]


def test_a_run_from_the_api_loads_nothing_it_does_not_use() -> None:
    code = """
        import dojob

        class A(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

        report = dojob.run(A)
        assert report.success and report["A"].status is dojob.Status.OK
    """
    loaded = loaded_after(code, HEAVY)
    assert "dojob.runner" in loaded
    assert [m for m in NOT_FOR_A_RUN if m in loaded] == []


def test_regression_a_plain_run_loads_neither_asyncio_nor_remote_execution() -> None:
    # issue 17: every run loaded asyncio (~30 ms) and dojob.remote with cloudpickle; a job that fails,
    # a Cleanup that raises and a thread pool still load neither; a coroutine job loads asyncio
    code = """
        import dojob

        class Boom(dojob.Job):
            TRIES = 1

            def Check(self, *args, **kwargs):
                raise RuntimeError("no")

            def Cleanup(self):
                raise ValueError("cleanup")

        class Root(dojob.DummyJob):
            DEPS = (Boom,)

        try:
            dojob.run(Root, workers=4)
        except dojob.CleanupError as exc:
            assert exc.report["Boom"].status is dojob.Status.FAILED
        else:
            raise AssertionError("no CleanupError")
    """
    loaded = loaded_after(code, HEAVY)
    assert [m for m in ("asyncio", "cloudpickle", "dojob.remote") if m in loaded] == []
    code = """
        import dojob

        class Async(dojob.Job):
            async def Check(self, *args, **kwargs):
                pass

        assert dojob.run(Async).success
    """
    assert "asyncio" in loaded_after(code, HEAVY)


def test_a_run_from_the_cli_loads_nothing_it_does_not_use(tmp_path) -> None:
    jobs = tmp_path / "onejob.py"
    marker = tmp_path / "ran"
    jobs.write_text(
        "import dojob\n\n\nclass Hello(dojob.RunonlyJob):\n    def Run(self, *args, **kwargs):\n"
        f"        open({str(marker)!r}, 'w').close()\n"
    )
    code = """
        import contextlib, io, sys
        from dojob.cli import main

        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["run", sys.argv[1]])
        assert code == 0, out.getvalue()
    """
    loaded = loaded_after(code, HEAVY, f"{jobs}:Hello")
    assert marker.exists() and "dojob.runner" in loaded
    assert [m for m in NOT_FOR_A_RUN if m in loaded] == []


@pytest.mark.parametrize("name", dojob.__all__)
def test_every_public_name_resolves_in_a_fresh_process(name: str) -> None:
    # a lazy name is the very object its submodule defines; an eager one is already there
    code = """
        import importlib, json, sys
        import dojob

        name = sys.argv[1]
        lazy = name not in vars(dojob)
        value = getattr(dojob, name)
        module = dojob._LAZY.get(name)
        same = module is not None and getattr(importlib.import_module(f"dojob.{module}"), name) is value
        print(json.dumps([lazy, module, same, name in dir(dojob)]))
    """
    lazy, module, same, listed = fresh(code, name)
    assert listed
    if lazy:
        assert module is not None and same
    else:
        assert module is None


def test_regression_a_lazy_name_is_not_hidden_by_a_submodule_of_the_same_name() -> None:
    # dojob.select (the function) became the module dojob.select once anything imported the submodule
    code = """
        import importlib, json, pkgutil
        import dojob

        for info in pkgutil.walk_packages(dojob.__path__, "dojob."):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional dependency (prometheus_client, ...)
                pass
        wrong = []
        for name in dojob.__all__:
            value = getattr(dojob, name)
            module = dojob._LAZY.get(name)
            if module is not None and getattr(importlib.import_module(f"dojob.{module}"), name) is not value:
                wrong.append(name)
            if type(value).__name__ == "module":
                wrong.append(name)
        print(json.dumps(wrong))
    """
    assert fresh(code) == []


def test_submodules_are_attributes_and_unknown_names_are_attribute_errors() -> None:
    code = """
        import json
        import dojob

        phase_ended = dojob.events.PhaseEnded.__name__
        try:
            dojob.no_such_thing
        except AttributeError as exc:
            message = str(exc)
        print(json.dumps([phase_ended, message, hasattr(dojob, "__path__"), hasattr(dojob, "__wrapped__")]))
    """
    assert fresh(code) == ["PhaseEnded", "module 'dojob' has no attribute 'no_such_thing'", True, False]


def test_a_submodule_that_fails_to_import_is_not_hidden_as_a_missing_attribute(tmp_path) -> None:
    # a broken dependency inside a lazily imported module must surface as itself, not as "no attribute"
    code = """
        import json, sys
        import dojob

        sys.modules["rich"] = None  # makes `import rich` fail inside dojob.progress
        try:
            dojob.progress
        except ImportError as exc:
            print(json.dumps([type(exc).__name__, exc.name.split(".")[0]]))
    """
    assert fresh(code) == ["ModuleNotFoundError", "rich"]
