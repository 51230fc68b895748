"""The engine's layout keeps its promises: small modules with one job each, all listed in README.

Issue 10 asks for no engine module over ~450 lines and no function over ~60;
README's Architecture section must show every engine module; and the split
must not make a plain run load the async step loop (nor asyncio), nor the
Cleanup loop when no Cleanup is due.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOJOB = ROOT / "dojob"

#: the engine: the planner, the try protocol, the step loops, the executors, the drivers, the session
ENGINE = (
    "plan.py", "outcomes.py", "resources.py", "tryproto.py", "steps.py", "onloop.py", "executors.py",
    "stopping.py", "sync.py", "async_driver.py", "cleanup.py", "session.py", "runner.py",
)  # fmt: skip


def _architecture() -> str:
    readme = (ROOT / "README.rst").read_text()
    return readme.split("\nArchitecture\n============\n", 1)[1].split("\n* **", 1)[0]


@pytest.mark.parametrize("module", ENGINE)
def test_regression_every_engine_module_is_small_and_listed_in_readme(module: str) -> None:
    source = (DOJOB / module).read_text()
    assert len(source.splitlines()) <= 450, module
    assert ast.get_docstring(ast.parse(source)), module  # says what it is for
    listed = [line.split()[0] for line in _architecture().splitlines() if line.startswith("    ") and line.split()]
    assert module in listed, f"README's Architecture section does not list {module}"


@pytest.mark.parametrize("module", ENGINE)
def test_regression_no_engine_function_is_over_sixty_lines(module: str) -> None:
    tree = ast.parse((DOJOB / module).read_text())
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert long == [], module


def test_every_module_of_the_package_named_in_the_architecture_exists() -> None:
    listed = {line.split()[0] for line in _architecture().splitlines() if line.startswith("    ") and line.split()}
    for name in listed:
        for part in name.rstrip(",").split(","):
            if part.endswith(".py"):
                assert (DOJOB / part).exists(), f"README names {part}, which does not exist"


def _loaded_after(code: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    probe = "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules)))\n"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_plain_run_loads_neither_the_async_step_loop_nor_the_cleanup_loop_it_does_not_need() -> None:
    loaded = _loaded_after(
        """
        import dojob

        class A(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

        assert dojob.run(A, workers=2).success
        """
    )
    assert "dojob.session" in loaded and "dojob.outcomes" in loaded
    assert [m for m in ("dojob.onloop", "asyncio", "contextvars", "dojob.cleanup") if m in loaded] == []


def test_a_first_async_run_loads_the_async_driver_without_the_asynciojobs_api() -> None:
    loaded = _loaded_after(
        """
        import asyncio
        import dojob

        class A(dojob.Job):
            async def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

        assert asyncio.run(dojob.arun(A)).success
        assert dojob.run(A).success  # a coroutine Check under dojob.run: the async driver too
        """
    )
    assert "dojob.async_driver" in loaded and "dojob.onloop" in loaded
    assert [m for m in loaded if m == "dojob.aio" or m.startswith("dojob.aio.")] == []


def test_a_run_with_a_cleanup_due_loads_the_cleanup_loop_and_calls_it() -> None:
    loaded = _loaded_after(
        """
        import dojob

        calls = []

        class A(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

            def Cleanup(self):
                calls.append("A")

        assert dojob.run(A).success and calls == ["A"]
        """
    )
    assert "dojob.cleanup" in loaded and "dojob.onloop" not in loaded
