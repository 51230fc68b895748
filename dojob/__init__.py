"""dojob: idempotent convergence of job graphs.

Write small Job classes with a ``Check`` (is the world as it should be?) and a
``Run`` (make it so), declare their ``DEPS``, and run the graph again and again:
each run gets closer to done, a converged run changes nothing.

``import dojob as dojobber`` is a drop-in for DoJobber scripts; :func:`run`
is the modern call.

``import dojob`` loads the job classes and the errors only; every other name
(``run``, ``DoJobber``, ``Report``, ...) and every submodule (``dojob.events``,
...) is imported on first use, so a command or a cron run pays only for what
it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .bind import BoundJob
from .errors import (
    CleanupError,
    CleanupTimeout,
    CycleError,
    DepsError,
    DojobError,
    DuplicateJobError,
    GraphError,
    JobAttributeError,
    JobDefinitionError,
    NoActError,
    OptionError,
    PhaseTimeout,
    RemoteError,
    RootError,
    RunTimeout,
    SelectionError,
    StoppedBeforeRun,
    Terminated,
    WorkerLost,
)
from .job import ChangedDeps, DummyJob, Job, RunonlyJob
from .select import select  # eager: importing the submodule dojob.select would hide a lazy name of the same name

if TYPE_CHECKING:
    from .clock import FakeClock, SystemClock
    from .compat import DoJobber
    from .events import Phase, Status
    from .graph import JobGraph, JobSpec, build_graph
    from .observe import Dispatcher, LogObserver, Trace
    from .options import Mode, RunOptions
    from .render import RenderError
    from .report import JobReport, Report
    from .retry import RetryPolicy
    from .runner import arun, run
    from .storage import SharedStorage

__version__ = "0.1.0"

#: public name -> the submodule that defines it, imported on first access (a name must
#: not be a submodule's too: importing that submodule would set the attribute first)
_LAZY = {
    "FakeClock": "clock",
    "SystemClock": "clock",
    "DoJobber": "compat",
    "Phase": "events",
    "Status": "events",
    "JobGraph": "graph",
    "JobSpec": "graph",
    "build_graph": "graph",
    "Dispatcher": "observe",
    "LogObserver": "observe",
    "Trace": "observe",
    "Mode": "options",
    "RunOptions": "options",
    "RenderError": "render",
    "JobReport": "report",
    "Report": "report",
    "RetryPolicy": "retry",
    "arun": "runner",
    "run": "runner",
    "SharedStorage": "storage",
}


def __getattr__(name: str) -> Any:
    """Import a lazy public name, or a submodule (``dojob.events``), on first access."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists and failed to import something
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BoundJob",
    "ChangedDeps",
    "RetryPolicy",
    "SelectionError",
    "select",
    "CleanupError",
    "CleanupTimeout",
    "CycleError",
    "DepsError",
    "Dispatcher",
    "DoJobber",
    "DojobError",
    "DummyJob",
    "DuplicateJobError",
    "FakeClock",
    "GraphError",
    "Job",
    "JobAttributeError",
    "JobDefinitionError",
    "JobGraph",
    "JobReport",
    "JobSpec",
    "LogObserver",
    "Mode",
    "NoActError",
    "OptionError",
    "Phase",
    "PhaseTimeout",
    "RemoteError",
    "RenderError",
    "Report",
    "RootError",
    "RunOptions",
    "RunTimeout",
    "RunonlyJob",
    "SharedStorage",
    "Status",
    "StoppedBeforeRun",
    "SystemClock",
    "Terminated",
    "Trace",
    "WorkerLost",
    "arun",
    "build_graph",
    "run",
]
