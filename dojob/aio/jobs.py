"""The asynciojobs job classes: :class:`AbstractJob`, :class:`Job` and :class:`PrintJob`.

A job is an object with a ``co_run()`` coroutine method; a scheduler awaits it
once its requirements are done. Jobs hold no scheduling logic: their life-cycle
state (idle, scheduled, running, done) is recorded by the scheduler that runs
them (see :mod:`dojob.aio.bridge`) and only read here.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any

from ..graph import check_delay, check_tries
from .bestset import BestSet

#: Badge symbols: (unicode, ASCII fallback).
_SYMBOLS = {
    "done": ("\u2613", "x"),  # ☓
    "running": ("\u21ba", "o"),  # ↺
    "scheduled": ("\u2691", "."),  # ⚑
    "idle": ("\u2690", ">"),  # ⚐
    "critical": ("\u26a0", "!"),  # ⚠
    "raised": ("\u2605", ":("),  # ★
    "fine": ("\u2609", ":)"),  # ☉
    "forever": ("\u221e", "8"),  # ∞
}
_unicode_ok: bool | None = None


def unicode_ok() -> bool:
    """Whether ``sys.stdout`` can print the badge symbols; detected once, then cached."""
    global _unicode_ok
    if _unicode_ok is None:
        try:
            _SYMBOLS["done"][0].encode(getattr(sys.stdout, "encoding", None) or "utf-8")
            _unicode_ok = True
        except (UnicodeEncodeError, LookupError):
            _unicode_ok = False
    return _unicode_ok


def _all_jobs(items: tuple) -> bool:
    for item in items:
        if not isinstance(item, AbstractJob):
            return False
    return True


def _set_of_jobs(value: Any) -> bool:
    return isinstance(value, (tuple, list, set, frozenset, BestSet))


class AbstractJob:
    """The base class of every job a scheduler runs: subclasses define ``co_run()``.

    Args:
        forever: the job never returns (a monitor, a server): a scheduler does
            not wait for it, and cancels it once every other job is done.
        critical: if the job raises, its scheduler stops at once (running jobs
            are cancelled) and fails. Jobs are critical by default.
        label: how listings and pictures show the job (default: :meth:`text_label`).
        required: a job, a :class:`~dojob.aio.Sequence` (its last job), or any
            nesting of tuples, lists and sets of them, that must be done first.
        scheduler: a scheduler to add the job to.

    Life cycle, as seen by the predicates: idle, then scheduled (its
    requirements are done), then running (it got a slot in the window), then
    done (it returned or raised; a cancelled job is not done).

    Attributes:
        tries: how many times a scheduler may try ``co_run()`` (default 1).
        retry_delay: minimum seconds between the starts of two tries.
    """

    tries: int = 1
    retry_delay: float = 0.0

    def __init__(
        self,
        *,
        forever: bool = False,
        critical: bool = True,
        label: str | None = None,
        required: Any = None,
        scheduler: Any = None,
    ) -> None:
        self.forever = forever
        self.critical = critical
        self.label = label
        # the common case, a tuple of jobs, in one call (10 000 jobs: -5% of Job objects + run)
        fast = required.__class__ is tuple and _all_jobs(required) and self not in required
        self.required: BestSet = BestSet(required if fast else ())
        # life-cycle state, written by the scheduler running the job
        self._running = False
        self._done = False
        self._result: Any = None
        self._exception: BaseException | None = None
        self._scheduled = False
        #: While a run is live: the job's requirements in that run (for is_scheduled()).
        self._deps: tuple[AbstractJob, ...] | None = None
        self._sched_id: str | None = None
        if required is not None and not fast:
            self.requires(required)
        if scheduler is not None:
            scheduler.add(self)

    # -- the job itself ------------------------------------------------------
    async def co_run(self) -> Any:
        """What the job does; its return value is the job's result."""
        raise NotImplementedError(f"{type(self).__name__} must define co_run()")

    async def co_shutdown(self) -> Any:
        """Release what the job holds; awaited when its scheduler's run ends. Does nothing here."""

    def details(self) -> str | None:
        """Extra text for ``list(details=True)``, or None."""
        return None

    def text_label(self) -> str | None:
        """A one-line description for listings when ``label`` is not set."""
        return None

    def graph_label(self) -> str | None:
        """The label for pictures, or None to use ``"{id}: {text label}"``."""
        return None

    def standalone_run(self) -> Any:
        """Run ``co_run()`` alone on a new event loop and return its value (for debugging)."""
        return _run_blocking(self.co_run())

    def close_unstarted(self) -> None:
        """Release what a job that will not run holds, so nothing is left un-awaited.

        Schedulers call this on every job that did not start in a run; a
        :class:`Job` closes its coroutine if it was never started. Does nothing here.
        """

    def dojob_finished(self, job: Any) -> None:
        """Record how this job ended in a class-based run that listed it in a ``DEPS``.

        Args:
            job: its :class:`~dojob.report.JobReport`. A job that never started
                is closed (:meth:`close_unstarted`) and stays idle.
        """
        if not job.tries:
            self.close_unstarted()
            return
        if job.status.ok or job.status.value == "failed":
            self._done = True
            self._result = job.result if job.status.ok else None
            self._exception = None if job.status.ok else job.exception

    # -- requirements ----------------------------------------------------------
    def requires(self, *requirements: Any, remove: bool = False) -> AbstractJob:
        """Add (or with ``remove=True`` drop) requirements; return the job.

        Accepts jobs, sequences (meaning their last job), None (ignored) and
        nested tuples, lists or sets of these. Requiring oneself is ignored.

        Raises:
            KeyError: ``remove=True`` and a requirement is absent.
            TypeError: an item is not a job, a sequence or a collection.
        """
        for requirement in requirements:
            if requirement is None:
                continue
            if isinstance(requirement, AbstractJob):
                if remove:
                    self.required.remove(requirement)
                elif requirement is not self:
                    self.required.add(requirement)
            elif _set_of_jobs(requirement):
                for item in requirement:
                    self.requires(item, remove=remove)
            else:
                from .sequence import Sequence

                if isinstance(requirement, Sequence):
                    if requirement.jobs:
                        self.requires(requirement.jobs[-1], remove=remove)
                elif isinstance(requirement, (str, bytes)) or not hasattr(requirement, "__iter__"):
                    raise TypeError(f"a job can only require jobs or sequences, not {requirement!r}")
                else:
                    self.requires(list(requirement), remove=remove)
        return self

    # -- life cycle --------------------------------------------------------------
    def is_idle(self) -> bool:
        """Not scheduled yet: some requirement is not done (or no run started)."""
        return not self.is_scheduled()

    def is_scheduled(self) -> bool:
        """Its requirements are done in the current (or last) run; it may wait for a window slot."""
        if self._running or self._scheduled:
            return True
        deps = self._deps
        if deps is None:
            return False
        for dep in deps:
            if not dep._done:
                return False
        return True

    def is_running(self) -> bool:
        """It got a slot in the window; stays True once done (or cancelled)."""
        return self._running

    def is_done(self) -> bool:
        """It returned or raised (a cancelled job is not done)."""
        return self._done

    def is_critical(self) -> bool:
        return bool(self.critical)

    def result(self) -> Any:
        """The value ``co_run()`` returned (None if it raised).

        Raises:
            ValueError: the job is not done.
        """
        if not self._done:
            raise ValueError("job not finished")
        return self._result

    def raised_exception(self) -> BaseException | bool | None:
        """False before the job is scheduled, None if it did not raise, else the exception."""
        if not self.is_scheduled():
            return False
        return self._exception

    # -- text ----------------------------------------------------------------------
    def _get_text_label(self) -> str:
        if self.label is not None:
            return self.label
        text = self.text_label()
        return "NOLABEL" if text is None else text

    def _get_graph_label(self) -> str:
        label = self.graph_label()
        if label is not None:
            return label
        return f"{self.repr_id()}: {self._get_text_label()}"

    def repr_id(self) -> str:
        """The job's id in the last listing or picture of its scheduler, or '??'."""
        return self._sched_id or "??"

    def repr_short(self) -> str:
        """A 7-character badge: critical, raised/fine, life-cycle state, forever."""
        k = 0 if unicode_ok() else 1
        if self._done:
            state = "done"
        elif self._running:
            state = "running"
        elif self.is_scheduled():
            state = "scheduled"
        else:
            state = "idle"
        crit = _SYMBOLS["critical"][k] if self.is_critical() else " "
        if self.raised_exception():
            boom = _SYMBOLS["raised"][k]
        elif self._running:
            boom = _SYMBOLS["fine"][k]
        else:
            boom = "  " if k else " "
        forever = _SYMBOLS["forever"][k] if self.forever else " "
        return f"{crit} {boom} {_SYMBOLS[state][k]} {forever}"

    def repr_main(self) -> str:
        return f"<{type(self).__name__} `{self._get_text_label()}`>"

    def repr_result(self) -> str:
        exception = self.raised_exception()
        if exception:
            kind = "CRIT. EXC." if self.is_critical() else "exception"
            return f"!! {kind} => {type(exception).__name__}:{exception}!!"
        if self._done:
            return f"[[ -> {self._result}]]"
        return "[not done]"

    def repr_requires(self) -> str:
        if not self.required:
            return ""
        return "requires={" + ", ".join(req.repr_id() for req in self.required) + "}"

    def __repr__(self) -> str:
        return f"{self.repr_short()} {self.repr_main()} {self.repr_result()} {self.repr_requires()}"

    # -- run state, for the scheduler ------------------------------------------------
    def _reset_state(self) -> None:
        self._running = False
        self._done = False
        self._result = None
        self._exception = None
        self._scheduled = False


def _is_unstarted_coroutine(value: Any) -> bool:
    return inspect.iscoroutine(value) and inspect.getcoroutinestate(value) == inspect.CORO_CREATED


class Job(AbstractJob):
    """A job made of a coroutine, or of a function returning a fresh awaitable at each try.

    Args:
        corun: a coroutine (or other awaitable), awaited once; or a callable
            taking no argument and returning an awaitable, called once per try.
        coshutdown: an optional awaitable, awaited by :meth:`co_shutdown`.
        tries: how many tries (>= 1); more than 1 needs a callable ``corun``.
        retry_delay: minimum seconds between the starts of two tries.
        forever, critical, label, required, scheduler: :class:`AbstractJob`'s options.

    Raises:
        ValueError: ``tries > 1`` with a coroutine, which can only run once.
        TypeError: ``corun`` is neither awaitable nor callable.

    Example:
        >>> Job(aprint("hello", 1), label="hello")
        >>> Job(lambda: fetch(url), tries=3, retry_delay=1, critical=False)
    """

    def __init__(
        self,
        corun: Awaitable[Any] | Callable[[], Awaitable[Any]],
        *,
        coshutdown: Awaitable[Any] | None = None,
        tries: int = 1,
        retry_delay: float = 0.0,
        forever: bool = False,
        critical: bool = True,
        label: str | None = None,
        required: Any = None,
        scheduler: Any = None,
    ) -> None:
        awaitable = type(corun) is CoroutineType or inspect.isawaitable(corun)
        if awaitable:
            if tries != 1:
                _close(corun)
                raise ValueError(
                    "a coroutine can only run once: pass a function returning a fresh awaitable to retry "
                    f"(tries={tries!r})"
                )
        elif not callable(corun):
            raise TypeError(f"Job() needs a coroutine or a function returning one, not {corun!r}")
        self.corun = corun
        self.coshutdown = coshutdown
        self._factory = not awaitable
        if tries != 1:
            self.tries = check_tries(tries, option="tries")
        if retry_delay:
            self.retry_delay = check_delay(retry_delay, option="retry_delay")
        # named, not **kwds: no dict packed and unpacked per job (10 000 Jobs built: 305M -> 279M instructions)
        super().__init__(forever=forever, critical=critical, label=label, required=required, scheduler=scheduler)

    def text_label(self) -> str:
        try:
            return f"Job[{self.corun.__name__} (...)]"  # type: ignore[union-attr]
        except Exception:
            return "Job instance"

    async def co_run(self) -> Any:
        if self._factory:
            return await self.corun()  # type: ignore[operator]
        return await self.corun  # type: ignore[misc]

    async def co_shutdown(self) -> Any:
        if self.coshutdown is not None:
            return await self.coshutdown
        return None

    def close(self) -> None:
        """Close the coroutines this job holds (so none is left un-awaited)."""
        _close(self.corun)
        if self.coshutdown is not None:
            _close(self.coshutdown)

    def close_unstarted(self) -> None:
        if _is_unstarted_coroutine(self.corun):
            self.corun.close()  # type: ignore[union-attr]


def _close(value: Any) -> None:
    close = getattr(value, "close", None)
    if inspect.iscoroutine(value) and close is not None:
        close()


class PrintJob(AbstractJob):
    """A job that prints its messages, then optionally sleeps; for tests and tutorials.

    Args:
        *messages: passed to ``print``.
        sleep: seconds to sleep after printing.
        banner: text printed (with a space, no newline) before the messages.
        **kwds: :class:`AbstractJob`'s options (``label``, ``required``, ``scheduler``, ...).
    """

    def __init__(self, *messages: Any, sleep: float | None = None, banner: str | None = None, **kwds: Any) -> None:
        self.messages = messages
        self.sleep = sleep
        self.banner = banner
        super().__init__(**kwds)

    async def co_run(self) -> None:
        if self.banner:
            print(self.banner + " ", end="")
        print(*self.messages)
        if self.sleep:
            print(f"Sleeping for {self.sleep}s")
            await asyncio.sleep(self.sleep)

    def details(self) -> str:
        text = f"[+ sleep {self.sleep}s] " if self.sleep else ""
        first = self.messages[0] if self.messages else ""
        return f"{text}msg= {first}" + ("..." if len(self.messages) > 1 else "")


def _shuts_down(job: Any) -> bool:
    """Whether ``job.co_shutdown()`` may do anything: not the inherited no-op, nor a Job's without ``coshutdown``."""
    method = getattr(type(job), "co_shutdown", None)
    if method is _NOTHING_TO_SHUT_DOWN:
        return False
    return method is not _JOB_SHUTDOWN or job.coshutdown is not None


_NOTHING_TO_SHUT_DOWN = AbstractJob.co_shutdown
_JOB_SHUTDOWN = Job.co_shutdown


def _run_blocking(coroutine: Any) -> Any:
    """Run ``coroutine`` on a new event loop (``asyncio.Runner`` where available)."""
    runner_class = getattr(asyncio, "Runner", None)
    if runner_class is None:  # Python 3.10
        return asyncio.run(coroutine)
    with runner_class() as runner:
        return runner.run(coroutine)


async def shutdown_jobs(jobs: Any, timeout: float | None, *, warn: Callable[[str], None] | None = None) -> bool:
    """Await every job's ``co_shutdown()`` at once, for at most ``timeout`` seconds (None: no bound).

    Those still running then are cancelled. True iff every one returned in time
    without raising. ``warn``, if given, is told how many were too late.
    """
    jobs = list(jobs)
    if not jobs:
        return True
    busy = [job for job in jobs if _shuts_down(job)]
    if not busy:  # (a task per job that has nothing to shut down: a fifth of a 10 000-job run)
        return True
    tasks = [asyncio.ensure_future(job.co_shutdown()) for job in busy]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        if warn is not None:
            warn(f"WARNING: {len(pending)}/{len(jobs)} co_shutdown() methods have not returned within timeout")
        await asyncio.wait(pending, timeout=timeout)
    ok = not pending
    for task in done:
        if task.cancelled() or task.exception() is not None:  # (retrieved: no "never retrieved" noise)
            ok = False
    return ok
