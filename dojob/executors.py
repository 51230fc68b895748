"""Where the sync driver's tries run: inline, on a thread pool, or through a remote adapter.

The driver speaks to one small interface (:class:`Tries`): ``start(index)``
hands a try over, ``collect(seconds)`` returns the tries that ended (waiting
at most that long, or until woken), ``overdue(now, run_timed_out)`` gives up on
tries whose phase overran, ``abandon_all()`` on all of them. From ``start`` on,
the adapter accounts for the try until :meth:`collect` or :meth:`overdue`
hands its outcome back. Remote executors (processes, Dask) plug in through
their ``submit(spec, try_number) -> Future`` (see :mod:`dojob.remote`).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from .clock import SystemClock
from .errors import PhaseTimeout, RunTimeout
from .events import Phase
from .steps import ABANDONED, Watched, inline, run_steps, try_inline
from .stopping import Stop
from .tryproto import TryContext, attempt


class TryHandle:
    """Shared between the sync driver and the thread running one try, to watch phase timeouts.

    The worker records the current phase and its deadline; the driver may mark
    the try abandoned once the deadline passes. Whoever takes the lock first
    decides: a phase that ends in time is never abandoned, one that ends late
    fails (:meth:`end` says ``"late"``).
    """

    __slots__ = ("lock", "phase", "deadline", "abandoned", "worker", "now", "timeout", "wake")

    def __init__(self, now: Callable[[], float], timeout: float | None, wake: Callable[[], None] | None = None) -> None:
        self.lock = threading.Lock()
        self.phase: Phase | None = None
        self.deadline: float | None = None
        self.abandoned = False
        self.worker: str | None = None
        self.now = now
        self.timeout = timeout
        self.wake = wake  # tells the driver a new deadline exists

    def begin(self, phase: Phase) -> None:
        with self.lock:
            self.phase = phase
            self.worker = threading.current_thread().name
            self.deadline = None if self.timeout is None else self.now() + self.timeout
        if self.timeout is not None and self.wake is not None:
            self.wake()

    def end(self) -> str:
        """The phase returned: ``"ok"``, ``"late"`` (past its deadline) or ``"abandoned"`` (by the driver)."""
        with self.lock:
            deadline, self.deadline = self.deadline, None
            if self.abandoned:
                return "abandoned"
            if deadline is not None and self.now() >= deadline:
                return "late"
            return "ok"

    def abandon_if_late(self, now: float, run_deadline_passed: bool = False) -> bool:
        """Mark the try abandoned if its phase overran (or the run's deadline passed)."""
        with self.lock:
            if self.abandoned:
                return False
            if run_deadline_passed or (self.deadline is not None and now >= self.deadline):
                self.abandoned = True
                return True
            return False


class ThreadPool(cf.Executor):
    """A minimal pool of daemon threads that can replace a thread stuck in an abandoned try.

    Unlike :class:`~concurrent.futures.ThreadPoolExecutor`, a thread stuck in
    user code does not hold a slot forever, nor block interpreter exit.
    Threads start on demand (up to ``size``), so a short run starts few.
    """

    def __init__(self, size: int, *, name: str = "dojob") -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._abandoned: set[str] = set()
        self._name = name
        self._size = size
        self._idle = 0
        self._lock = threading.Lock()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        get = self._queue.get
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            item = get()
            with lock:
                self._idle -= 1
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            future.worker = threading.current_thread().name  # for the report
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the driver
                future.set_exception(exc)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        self._queue.put((future, fn, args, kwargs))
        with self._lock:
            spawn = self._queue.qsize() > self._idle and len(self._threads) - len(self._abandoned) < self._size
        if spawn:
            self._spawn()
        return future

    def abandon(self, thread_name: str | None) -> None:
        """The thread ``thread_name`` is stuck in an abandoned try: it no longer counts."""
        if thread_name:
            self._abandoned.add(thread_name)
        if self._queue.qsize():
            self._spawn()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread.name not in self._abandoned:
                    thread.join()


class Overdue(NamedTuple):
    """A try given up on: its exception, and for the events where its phase was and what it holds."""

    job_index: int
    exception: BaseException
    phase: Phase | None
    worker: str | None
    holding: tuple[str, ...]


#: What ``collect`` returns for the end of an abandoned try's thread (its locks are free).
RELEASED: Any = object()


def returner(cwd: str | int | None) -> Callable[[], None] | None:
    """A call that goes back to ``cwd`` (a path, or a descriptor from :func:`open_dir`: 3x cheaper), or None."""
    if cwd is None:
        return None
    if isinstance(cwd, int):
        return partial(os.fchdir, cwd)
    return partial(os.chdir, cwd)


def open_dir(path: str) -> str | int:
    """A descriptor for ``path`` to restore the working directory cheaply, or the path itself."""
    if hasattr(os, "fchdir") and hasattr(os, "O_DIRECTORY"):
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            pass
    return path


def close_dir(cwd: str | int | None) -> None:
    if type(cwd) is int:
        os.close(cwd)


class InlineTries:
    """Tries run in the driver's thread, one at a time, in the order handed out (serial runs)."""

    watching = False
    #: Tries end while the driver does other things (here: never, they run in start_all).
    concurrent = False

    def __init__(self, planner: Any, ctx: TryContext, cwd: str | None, stop: Stop | None) -> None:
        self.specs = planner.specs
        self.tries = planner.tries
        self.ctx = ctx
        self.cwd = None if cwd is None else open_dir(cwd)
        self.go_back = returner(self.cwd)
        self.call = None if stop is None else inline(self.go_back, stop)  # (None: the plain caller, folded in)
        self.done: list[tuple[int, Any]] = []
        self.wakes: queue.SimpleQueue = queue.SimpleQueue()

    def run(self, index: int) -> Any:
        """Run one try here and now: its :class:`TryOutcome`, or the exception its steps raised."""
        try:
            if self.call is None:
                return try_inline(self.specs[index], self.tries[index], self.ctx, self.go_back)
            return run_steps(attempt(self.specs[index], self.tries[index], self.ctx), self.call)
        except BaseException as exc:  # noqa: BLE001 - a stopper or a fault of the protocol: the try's outcome
            return exc

    def start_all(self, indices: list[int]) -> list[tuple[int, Any]]:
        """Run these tries, one after the other; return every try that ended since the last call."""
        done = self.done
        for index in indices:
            done.append((index, self.run(index)))
        self.done = []
        return done

    def known(self) -> set[int]:
        return {index for index, _ in self.done}

    def busy(self) -> bool:
        return bool(self.done)

    def next_deadline(self) -> float | None:
        return None

    def collect(self, clock: SystemClock, seconds: float | None) -> list[tuple[int, Any]]:
        done, self.done = self.done, []
        if not done and seconds is not None:
            clock.idle(self.wakes, seconds)
        return done

    def overdue(self, now: float, run_timed_out: bool) -> list[Overdue]:
        return []

    def abandon_all(self) -> list[int]:
        return []

    def wake(self) -> None:
        self.wakes.put(None)

    def close(self) -> None:
        close_dir(self.cwd)
        self.cwd = None


class PoolTries:
    """Tries submitted to an executor; each ends through its future's done callback.

    (``concurrent``: they end while the driver does other things.)

    Args:
        submit: ``submit(index, handle) -> Future`` of the try's outcome.
        watch: give each try a :class:`TryHandle` (phase TIMEOUTs, a run deadline).
        remote: the tries run elsewhere: on the run's timeout they are let go, not watched.
        pool: the built-in :class:`ThreadPool` (it replaces abandoned threads), if used.
    """

    def __init__(
        self,
        planner: Any,
        submit: Callable[[int, TryHandle | None], cf.Future],
        now: Callable[[], float],
        *,
        watch: bool,
        remote: bool = False,
        pool: ThreadPool | None = None,
    ) -> None:
        self.planner = planner
        self.submit = submit
        self.now = now
        self.watch = watch
        self.remote = remote
        self.pool = pool
        self.running: dict[cf.Future, int] = {}
        self.handles: dict[int, TryHandle] = {}
        self.holding: dict[cf.Future, int] = {}  # abandoned tries whose thread still holds locks
        self.finished: queue.SimpleQueue = queue.SimpleQueue()  # filled by done callbacks, in worker threads
        self.watching = watch or remote
        self.concurrent = True
        #: Called by :meth:`close` (shuts an owned pool down).
        self.closing: Callable[[], None] | None = None

    def start_all(self, indices: list[int]) -> list[tuple[int, Any]]:
        """Submit these tries; they end later (see :meth:`collect`)."""
        for index in indices:
            handle = TryHandle(self.now, None if self.remote else self.planner.specs[index].traits.timeout, self.wake)
            future = self.submit(index, handle if self.watch else None)
            self.running[future] = index
            self.handles[index] = handle
            future.add_done_callback(self.finished.put)
        return []

    def known(self) -> set[int]:
        return set(self.running.values())

    def busy(self) -> bool:
        return bool(self.running or self.holding)

    def next_deadline(self) -> float | None:
        if not self.watch:
            return None
        deadlines = [h.deadline for h in self.handles.values() if h.deadline is not None]
        return min(deadlines) if deadlines else None

    def wake(self) -> None:
        self.finished.put(None)

    def collect(self, clock: SystemClock, seconds: float | None) -> list[tuple[int, Any]]:
        """Every try that ended (waiting up to ``seconds`` for the first): ``(index, future or RELEASED)``."""
        if not self.running and not self.holding:  # nothing can end: wait for the next retry (or a stop)
            if seconds is not None:
                clock.idle(self.finished, seconds)
            while not self.finished.empty():
                self.finished.get()
            return []
        done = clock.get(self.finished, seconds)
        out: list[tuple[int, Any]] = []
        while True:
            if done is not None:
                self._arrived(done, out)
            if self.finished.empty():
                return out
            done = self.finished.get()

    def _arrived(self, future: cf.Future, out: list[tuple[int, Any]]) -> None:
        index = self.running.pop(future, None)
        if index is not None:
            self.handles.pop(index, None)
            if future.cancelled() or future.exception() is not None or future.result() is not ABANDONED:
                out.append((index, future))
            return
        index = self.holding.pop(future, None)
        if index is not None:  # an abandoned try's thread ended at last: its locks are free
            out.append((index, RELEASED))

    def overdue(self, now: float, run_timed_out: bool) -> list[Overdue]:
        """Give up on the tries whose phase overran (all of them once the run timed out), in index order."""
        if not self.watch and not (self.remote and run_timed_out):
            return []
        out = []
        for future, index in sorted(self.running.items(), key=lambda item: item[1]):
            handle = self.handles[index]
            if not handle.abandon_if_late(now, run_timed_out):
                continue
            del self.running[future]
            del self.handles[index]
            spec = self.planner.specs[index]
            holding = () if self.remote else self.planner.holding(index)
            if holding:
                self.holding[future] = index
            if self.remote:
                exc: BaseException = RunTimeout(f"the run timed out while {spec.name} was running remotely")
            elif run_timed_out:
                exc = RunTimeout(f"the run timed out while {spec.name} was running; its thread runs on")
            else:
                exc = PhaseTimeout(spec.name, handle.phase, spec.traits.timeout or 0.0, abandoned=True, holding=holding)
            out.append(Overdue(index, exc, handle.phase, handle.worker, holding))
            if self.pool is not None:
                self.pool.abandon(handle.worker)
        return out

    def abandon_all(self) -> list[int]:
        """Stop waiting for every running try (a second Ctrl-C); their threads run on."""
        out = []
        for future, index in sorted(self.running.items(), key=lambda item: item[1]):
            handle = self.handles.pop(index)
            with handle.lock:
                handle.abandoned = True
            if self.pool is not None:
                self.pool.abandon(handle.worker)
            out.append(index)
            del self.running[future]
        return out

    def close(self) -> None:
        if self.closing is not None:
            self.closing()


def local_submit(
    planner: Any, ctx: TryContext, pool: cf.Executor, go_back: Callable[[], None] | None
) -> Callable[[int, TryHandle | None], cf.Future]:
    """``submit(index, handle)`` for tries on an in-process pool (threads)."""
    specs, tries = planner.specs, planner.tries
    plain = inline(go_back)

    def submit(index: int, handle: TryHandle | None) -> cf.Future:
        spec = specs[index]
        call = plain if handle is None else Watched(handle, spec.name, go_back)
        return pool.submit(run_steps, attempt(spec, tries[index], ctx), call)

    return submit


def remote_submit(planner: Any, remote: Any) -> Callable[[int, TryHandle | None], cf.Future]:
    """``submit(index, handle)`` through a remote adapter's ``submit(spec, try_number) -> Future``."""
    specs, tries = planner.specs, planner.tries

    def submit(index: int, handle: TryHandle | None) -> cf.Future:
        return remote.submit(specs[index], tries[index])

    return submit
