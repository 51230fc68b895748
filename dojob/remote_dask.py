"""Tries on a Dask cluster, each run at most once: dojob, not the scheduler, decides retries.

When a worker dies while it runs a task, Dask's scheduler runs that task again
elsewhere, up to ``distributed.scheduler.allowed-failures`` times (default 3):
a job's Check could then run several times for one try. :class:`DaskExecutor`
submits each try under a ``dojob-try-`` key and installs a scheduler plugin
(:func:`_one_try_plugin`) that marks those tasks as already suspicious up to
the scheduler's own limit, so the first death of their worker ends them with
``KilledWorker``, which dojob reports as one failed try (``WorkerLost``). Other
tasks of the cluster, and its configuration, are left alone.

``distributed`` is imported only when a Dask executor is asked for.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["KEY_PREFIX", "DaskExecutor"]

#: The key prefix of every task dojob submits (the plugin acts on these only).
KEY_PREFIX = "dojob-try-"
_PLUGIN = "dojob-one-run-per-try"


def _one_try_plugin() -> Any:
    """A scheduler plugin that stops the scheduler from re-running dojob's tasks after a worker death.

    Defined in a function so that cloudpickle sends it by value: the scheduler
    need not be able to import dojob.
    """
    from distributed.diagnostics.plugin import SchedulerPlugin

    prefix = KEY_PREFIX

    class OneRunPerTry(SchedulerPlugin):
        idempotent = True
        name = _PLUGIN

        def update_graph(self, scheduler: Any, *, keys: Any = (), tasks: Any = (), **kwargs: Any) -> None:
            limit = scheduler.allowed_failures
            for key in tasks or keys:
                if isinstance(key, str) and key.startswith(prefix):
                    ts = scheduler.tasks.get(key)
                    if ts is not None and ts.suspicious < limit:
                        ts.suspicious = limit  # the next death of its worker errs it (KilledWorker)

    return OneRunPerTry()


class DaskExecutor(cf.Executor):
    """Runs calls on a ``distributed.Client``, each at most once.

    Args:
        client: the cluster's client.
        owned: close the client on :meth:`shutdown` (the run made it).
    """

    def __init__(self, client: Any, *, owned: bool = False) -> None:
        self.client = client
        self.owned = owned
        self._pending: dict[str, Any] = {}  # key -> distributed.Future not finished yet
        self._lock = threading.Lock()
        client.register_plugin(_one_try_plugin(), name=_PLUGIN)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        outer: cf.Future = cf.Future()
        key = f"{KEY_PREFIX}{uuid.uuid4().hex}"
        future = self.client.submit(fn, *args, key=key, pure=False, **kwargs)
        with self._lock:
            self._pending[key] = future

        def done(finished: Any) -> None:  # on a thread of the client
            with self._lock:
                self._pending.pop(key, None)
            try:
                if finished.status == "finished":
                    outer.set_result(finished.result())
                elif finished.status == "cancelled":
                    outer.cancel()
                else:
                    outer.set_exception(finished.exception())
            except BaseException as exc:  # noqa: BLE001 - e.g. the result could not be fetched
                if not outer.done():
                    outer.set_exception(exc)

        future.add_done_callback(done)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel the calls not finished, at the scheduler, before returning (a running one runs on in its
        worker thread: Dask cannot stop it); close an owned client."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        if pending:
            self.client.cancel(pending)
        if self.owned:
            self.client.close()
