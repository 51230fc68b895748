"""A process pool that isolates worker deaths: one process per slot, each with its own pipe.

:class:`concurrent.futures.ProcessPoolExecutor` shares one call queue among its
workers, so when one worker dies it cannot tell whose call was lost and fails
every call in flight (``BrokenProcessPool``). Here each slot has a thread that
hands one call at a time to its own process and waits on that process's pipe
and exit sentinel: a death fails only the call that process was running
(:class:`ProcessDied`), and the slot starts a fresh process for its next call.
:meth:`ProcessPool.terminate` kills the processes still busy, so a run that
timed out does not wait for a hung try.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["ProcessDied", "ProcessPool"]


class ProcessDied(Exception):
    """The worker process running a call died (killed, crashed, or ``os._exit``).

    Attributes:
        pid: the process id; exitcode: as :attr:`multiprocessing.Process.exitcode`
        (negative: killed by that signal).
    """

    def __init__(self, pid: int | None, exitcode: int | None) -> None:
        self.pid = pid
        self.exitcode = exitcode
        if exitcode is not None and exitcode < 0:
            try:
                how = f"killed by {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"killed by signal {-exitcode}"
        else:
            how = f"exited with code {exitcode}"
        super().__init__(f"worker process {pid} died ({how})")

    def __reduce__(self) -> tuple:
        return (ProcessDied, (self.pid, self.exitcode))


class _Unpicklable(Exception):
    """Stands for a call's exception that cannot be pickled back."""


def _serve(conn: Any) -> None:
    """A worker process: run the calls received on ``conn`` until told to stop (or the parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run's process to handle
    parent = multiprocessing.parent_process()
    watch = [conn] if parent is None else [conn, parent.sentinel]
    while True:
        if conn not in multiprocessing.connection.wait(watch):
            return  # the parent died: nobody will read our answers
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        fn, args, kwargs = item
        try:
            reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable value or exception
            text = "".join(traceback.format_exception(exc)).rstrip()
            conn.send((False, _Unpicklable(f"cannot send the call's outcome back: {text}")))


class _Slot:
    """One worker process (started on demand) and the thread that feeds it."""

    def __init__(self, pool: ProcessPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.process: Any = None
        self.conn: Any = None
        self.busy = False
        self.lock = threading.Lock()  # around starting and reaping the process
        self.thread = threading.Thread(target=self.loop, name=f"dojob-pool-{number}", daemon=True)
        self.thread.start()

    def ensure(self) -> None:
        """Have a live process: reap one that died (while idle, or in its last call) and start a fresh one.

        :meth:`ProcessPool.submit` calls this in the submitting thread, so that a
        ``fork`` happens there (as ``ProcessPoolExecutor`` does) and not on this
        slot's thread while another thread of the run may hold a lock the child
        would need (cloudpickle's, while it pickles the next try).
        """
        with self.lock:
            if self.process is not None and not self.process.is_alive():  # not the next call's loss
                self.process.join()
                self.conn.close()
                self.process = self.conn = None
            if self.process is None and not self.pool.closing:
                self.start()

    def start(self) -> None:
        ctx = self.pool.context
        parent_end, child_end = ctx.Pipe()
        process = ctx.Process(target=_serve, args=(child_end,), name=f"dojob-worker-{self.number}")
        process.start()
        child_end.close()
        self.process, self.conn = process, parent_end

    def stop(self) -> None:
        """Tell an idle process to exit, and wait for it (briefly)."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if process is None:
            return
        try:
            conn.send(None)
        except (OSError, ValueError):
            pass
        process.join(1)
        if process.is_alive():  # e.g. a thread the job started keeps it from exiting
            process.kill()
            process.join()
        conn.close()

    def loop(self) -> None:
        calls = self.pool.calls
        while True:
            item = calls.get()
            if item is None:
                self.stop()
                return
            future, fn, args, kwargs = item
            try:
                if future.set_running_or_notify_cancel():
                    self.busy = True
                    self.run(future, fn, args, kwargs)
            finally:
                self.busy = False
                self.pool.settled()

    def run(self, future: cf.Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        process = conn = None
        try:
            self.ensure()  # (started by submit() already, unless it died since)
            with self.lock:
                process, conn = self.process, self.conn
            if process is None:
                raise RuntimeError("the ProcessPool is shutting down")
            future.pid = process.pid  # type: ignore[attr-defined]
            conn.send((fn, args, kwargs))
        except BaseException as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled
            if process is not None and not process.is_alive():
                self.died(future, process, conn)
            else:
                future.set_exception(exc)
            return
        ready = multiprocessing.connection.wait([conn, process.sentinel])
        if conn in ready:
            try:
                ok, value = conn.recv()
            except (EOFError, OSError):
                self.died(future, process, conn)
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
            return
        self.died(future, process, conn)

    def died(self, future: cf.Future, process: Any, conn: Any) -> None:
        """``process`` died running the call of ``future``: fail that call (only), forget the process."""
        with self.lock:
            if self.process is process:  # (unless ensure() already replaced it)
                self.process = self.conn = None
                conn.close()
        process.join()
        future.set_exception(ProcessDied(process.pid, process.exitcode))


def _kill(slots: list[_Slot]) -> None:
    for slot in slots:
        process = slot.process
        if process is not None and process.is_alive():
            process.kill()


class ProcessPool(cf.Executor):
    """A pool of ``size`` worker processes in which a worker's death fails only its own call.

    Processes start on demand and run one call at a time. Under every start
    method (``"fork"``, ``"spawn"``, ``"forkserver"``; None: multiprocessing's
    default) the callable and its arguments are pickled to the worker.

    Args:
        size: how many calls run at once.
        start_method: how worker processes are started.
    """

    def __init__(self, size: int, *, start_method: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"a ProcessPool needs at least 1 process, not {size}")
        self.context: Any = multiprocessing.get_context(start_method)
        self.start_method = self.context.get_start_method()
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self._size = size
        self._slots: list[_Slot] = []
        self._shutdown = False
        self.closing = False  # no process starts once terminate() began
        self._outstanding = 0  # calls submitted and not settled
        self._lock = threading.Lock()
        # kill what is still running when the interpreter exits (before multiprocessing joins its children)
        self._finalizer = multiprocessing.util.Finalize(self, _kill, args=(self._slots,), exitpriority=10)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a ProcessPool after shutdown")
            future: cf.Future = cf.Future()
            self.calls.put((future, fn, args, kwargs))
            self._outstanding += 1
            if self._outstanding > len(self._slots) < self._size:
                self._slots.append(_Slot(self, len(self._slots)))
            for slot in self._slots[: self._outstanding]:
                slot.ensure()  # fork here, in the caller's thread
        return future

    def settled(self) -> None:
        """A slot is done with a call (ran, failed or cancelled)."""
        with self._lock:
            self._outstanding -= 1

    def pids(self) -> list[int]:
        """The ids of the worker processes alive now."""
        return [s.process.pid for s in list(self._slots) if s.process is not None and s.process.is_alive()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting calls; idle processes exit once the queued calls ran (or were cancelled)."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self.calls.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in self._slots:
            self.calls.put(None)
        if wait:
            for slot in self._slots:
                slot.thread.join()

    def terminate(self, wait: float = 5.0) -> None:
        """Shut down now: cancel queued calls, kill (SIGKILL) the processes still running one.

        Their calls fail with :class:`ProcessDied`; idle processes are told to
        exit. Waits up to ``wait`` seconds for the slots to finish.
        """
        self.closing = True
        self.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + wait
        for slot in self._slots:
            while slot.thread.is_alive() and time.monotonic() < deadline:
                if slot.busy:
                    _kill([slot])
                slot.thread.join(0.05)
