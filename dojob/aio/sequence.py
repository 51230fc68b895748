"""``Sequence``: a helper that chains jobs, each requiring the previous one."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from .jobs import AbstractJob


def flatten(jobs_or_sequences: Iterable[Any]) -> list[AbstractJob]:
    """The jobs of ``jobs_or_sequences``, sequences expanded in place, None skipped.

    Raises:
        TypeError: an item is neither a job, a sequence nor None.
    """
    out: list[AbstractJob] = []
    for item in jobs_or_sequences:
        if item is None:
            continue
        if isinstance(item, AbstractJob):
            out.append(item)
        elif isinstance(item, Sequence):
            out.extend(item.jobs)
        else:
            raise TypeError(f"expected a job or a Sequence, got {item!r}")
    return out


class Sequence:
    """Jobs in a row: each requires the previous one. Not a job itself.

    Args:
        *jobs_or_sequences: jobs and sequences (flattened, in order).
        required: requirements of the first job.
        scheduler: a scheduler to add all the jobs to.

    A sequence can be used where a job is expected: in a scheduler (its jobs
    are added), as a requirement (its last job), and it can require things
    (its first job does).

    Example:
        >>> Scheduler(Sequence(Job(fetch()), Job(build()), Job(deploy())))
    """

    def __init__(self, *jobs_or_sequences: Any, required: Any = None, scheduler: Any = None) -> None:
        self.jobs: list[AbstractJob] = flatten(jobs_or_sequences)
        for previous, job in pairwise(self.jobs):
            job.requires(previous)
        if self.jobs and required is not None:
            self.jobs[0].requires(required)
        self.scheduler = scheduler
        if scheduler is not None:
            scheduler.update(self.jobs)

    def append(self, *jobs_or_sequences: Any) -> None:
        """Chain more jobs or sequences after the current last job (and add them to ``scheduler``)."""
        new = flatten(jobs_or_sequences)
        if not new:
            return
        if self.jobs:
            new[0].requires(self.jobs[-1])
        for previous, job in pairwise(new):
            job.requires(previous)
        self.jobs.extend(new)
        if self.scheduler is not None:
            self.scheduler.update(new)

    def requires(self, *requirements: Any) -> None:
        """Add requirements to the first job."""
        if self.jobs:
            self.jobs[0].requires(*requirements)

    def close_idle_jobs(self) -> None:
        """Close the coroutines of the jobs that are still idle."""
        for job in self.jobs:
            if job.is_idle():
                job.close_unstarted()
