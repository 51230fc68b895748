"""``dojob.aio``: an asynciojobs-compatible API run by dojob's planner and async driver.

``from dojob.aio import Scheduler, Job, Sequence`` replaces
``from asynciojobs import ...`` for code that follows asynciojobs' README.
Differences: ``jobs_window`` never leaks a slot, jobs that never start leave
no un-awaited coroutine, the timeout also bounds nested schedulers' jobs, jobs
can retry (``Job(coroutine_function, tries=3, retry_delay=1)``), and dojob's
class-based graphs nest both ways (:class:`Converge`, and aio jobs in ``DEPS``).

The async driver itself is :func:`dojob.async_driver.adrive`.
"""

from .bestset import BestSet
from .converge import Converge, ConvergeError
from .feedback import set_debug
from .jobs import AbstractJob, Job, PrintJob
from .scheduler import PureScheduler, Scheduler
from .sequence import Sequence
from .watch import Watch

__all__ = [
    "AbstractJob",
    "BestSet",
    "Converge",
    "ConvergeError",
    "Job",
    "PrintJob",
    "PureScheduler",
    "Scheduler",
    "Sequence",
    "Watch",
    "set_debug",
]
