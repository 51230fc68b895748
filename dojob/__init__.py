"""dojob: idempotent convergence of job graphs.

Write small Job classes with a ``Check`` (is the world as it should be?) and a
``Run`` (make it so), declare their ``DEPS``, and run the graph again and again:
each run gets closer to done, a converged run changes nothing.

``import dojob as dojobber`` is a drop-in for DoJobber scripts; :func:`run`
is the modern call.
"""

from .bind import BoundJob
from .clock import FakeClock, SystemClock
from .compat import DoJobber
from .errors import (
    CleanupError,
    CycleError,
    DepsError,
    DojobError,
    DuplicateJobError,
    GraphError,
    JobAttributeError,
    JobDefinitionError,
    OptionError,
    RootError,
    SelectionError,
)
from .events import Phase, Status
from .graph import JobGraph, JobSpec, build_graph
from .job import ChangedDeps, DummyJob, Job, RunonlyJob
from .observe import Dispatcher, LogObserver, Trace
from .render import RenderError
from .report import JobReport, Report
from .retry import RetryPolicy
from .runner import arun, run
from .select import select
from .storage import SharedStorage

__version__ = "0.1.0"

__all__ = [
    "BoundJob",
    "ChangedDeps",
    "RetryPolicy",
    "SelectionError",
    "select",
    "CleanupError",
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
    "OptionError",
    "Phase",
    "RenderError",
    "Report",
    "RootError",
    "RunonlyJob",
    "SharedStorage",
    "Status",
    "SystemClock",
    "Trace",
    "arun",
    "build_graph",
    "run",
]
