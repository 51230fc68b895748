"""Text views of a scheduler: ``list()``, ``list_safe()``, ``debrief()``, ``stats()``.

These print on request (they are the user's output, not the engine's). Ids
are written into each job's ``_sched_id`` so that ``repr_id()`` and
``requires={...}`` can refer to them, as in asynciojobs.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

from .topology import topological_order


def is_scheduler(job: Any) -> bool:
    """Whether ``job`` is a nested scheduler (a job holding jobs)."""
    return getattr(job, "_dojob_scheduler", False)


def _total(scheduler: Any) -> int:
    """Nodes in ``scheduler``, nested schedulers and their jobs included."""
    total = 0
    stack = [scheduler]
    while stack:
        for job in stack.pop().jobs:
            total += 1
            if is_scheduler(job):
                stack.append(job)
    return total


def assign_ids(scheduler: Any) -> None:
    """Number every job 1..n in topological order, each nested scheduler followed by its jobs.

    Raises:
        CycleError: a scheduler's requirements form a cycle.
    """
    total = _total(scheduler)
    width = 1 if total <= 9 else int(math.log10(total - 1)) + 1
    counter = 0
    stack = [iter(topological_order(scheduler.jobs))]
    while stack:
        job = next(stack[-1], None)
        if job is None:
            stack.pop()
            continue
        counter += 1
        job._sched_id = f"{counter:0{width}d}"
        if is_scheduler(job):
            stack.append(iter(topological_order(job.jobs)))


def ids_of(jobs: Any) -> str:
    """``{id1, id2}`` of ``jobs``, or an empty string."""
    ids = ", ".join(job.repr_id() for job in jobs)
    return "{" + ids + "}" if ids else ""


def list_jobs(scheduler: Any, details: bool = False, silence_done_jobs: bool = False) -> None:
    """Print one line per job in topological order (see ``PureScheduler.list``)."""
    assign_ids(scheduler)
    # (iterator over a scheduler's jobs, depth, the scheduler or None at the top)
    stack: list[tuple[Any, int, Any]] = [(iter(topological_order(scheduler.jobs)), 0, None)]
    while stack:
        jobs, depth, owner = stack[-1]
        job = next(jobs, None)
        if job is None:
            stack.pop()
            if owner is not None:
                print(owner.repr_id(), "--end--", "<" * depth, owner.repr_main(), owner.repr_exits())
            continue
        indent = (">" * depth + " ") if depth else ""
        if is_scheduler(job):
            print(
                f"{job.repr_id()} {job.repr_short()} {indent}{job.repr_main()} "
                f"{job.repr_result()} {job.repr_requires()} -> {job.repr_entries()}"
            )
            stack.append((iter(topological_order(job.jobs)), depth + 1, job))
            continue
        if silence_done_jobs and job.is_done():
            continue
        print(f"{job.repr_id()} {job.repr_short()} {indent}{job.repr_main()} {job.repr_result()} {job.repr_requires()}")
        if details:
            text = job.details()
            if text is not None:
                print(text)


def list_safe(scheduler: Any, silence_done_jobs: bool = False) -> None:
    """Print one line per job in no particular order, ids like ``.1`` or ``3.2``; works on cyclic graphs."""
    stack: list[tuple[Any, str]] = [(scheduler, "")]
    while stack:  # ids first, so that requires={...} can refer to jobs listed later
        owner, root = stack.pop()
        for i, job in enumerate(owner.jobs, 1):
            job._sched_id = f"{root}.{i}"
            if is_scheduler(job):
                stack.append((job, f"{root}.{i}" if root else str(i)))
    walk: list[tuple[Any, Any]] = [(iter(scheduler.jobs), None)]
    while walk:
        jobs, owner = walk[-1]
        job = next(jobs, None)
        if job is None:
            walk.pop()
            if owner is not None:
                print("--end--", owner.repr_id())
            continue
        if is_scheduler(job):
            print(f"{job.repr_short()} {job.repr_id()} {job.repr_main()} {job.repr_requires()}")
            walk.append((iter(job.jobs), job))
            continue
        if silence_done_jobs and job.is_done():
            continue
        print(f"{job.repr_short()} {job.repr_id()} {job.repr_main()} {job.repr_requires()}")


def counts(scheduler: Any) -> tuple[int, int, int, int]:
    """``(done, ongoing, idle, total)``: ongoing is running but not done; idle is not running."""
    done = ongoing = idle = 0
    for job in scheduler.jobs:
        if job.is_done():
            done += 1
        elif job.is_running():
            ongoing += 1
        else:
            idle += 1
    return done, ongoing, idle, done + ongoing + idle


def debrief(scheduler: Any, details: bool = False, silence_done_jobs: bool = False) -> None:
    """Print why the run failed, the listing, then every exception (tracebacks for critical ones)."""
    print(5 * "-", scheduler.why())
    list_jobs(scheduler, details, silence_done_jobs)
    ordered = topological_order(scheduler.jobs)
    failed = [job for job in ordered if job.raised_exception()]
    if not failed:
        return
    critical = [job for job in failed if job.is_critical()]
    print(f"===== {len(failed)} job(s) with an exception, including {len(critical)} critical")
    for job in critical:
        title = f"stack for CRITICAL JOB {job.repr_id()} {job.repr_short()} {job.repr_main()}"
        exc = job.raised_exception()
        sep = 4 * " " + 20 * "*"
        print(sep)
        print(sep, "BEG " + title)
        print(sep)
        for line in traceback.format_exception(type(exc), exc, exc.__traceback__):
            for part in line.rstrip("\n").split("\n"):
                print(4 * " " + part)
        print(sep)
        print(sep, "END " + title)
        print(sep)
    for job in failed:
        if not job.is_critical():
            print(f"non-critical: {job._get_text_label()}: exception {job.raised_exception()}")
