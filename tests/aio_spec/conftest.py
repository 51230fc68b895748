"""Executable specification of ``dojob.aio`` (the asynciojobs drop-in).

Which implementation is under test is chosen once, at import time, by the
environment variable ``DOJOB_AIO_IMPL``:

* ``dojob`` (the default): our re-implementation, ``dojob.aio``;
* ``asynciojobs``: the reference library, asynciojobs 0.21.3.

Tests get the module through the ``aio`` fixture and only use its public
names (``aio.Scheduler``, ``aio.Job``, ``aio.Sequence``, ``aio.PrintJob``,
``aio.Watch``, ``aio.PureScheduler``, ``aio.AbstractJob``).

Tests marked ``@pytest.mark.dojob_only`` pin down known asynciojobs defects
that dojob must fix; they are *deselected* (not skipped) when the
implementation under test is asynciojobs.
"""

import asyncio
import gc
import importlib
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

_MODULES = {"asynciojobs": "asynciojobs", "dojob": "dojob.aio"}

IMPL = os.environ.get("DOJOB_AIO_IMPL", "dojob").strip() or "dojob"
if IMPL not in _MODULES:
    raise pytest.UsageError(f"DOJOB_AIO_IMPL={IMPL!r}: expected one of {sorted(_MODULES)}")
MODULE_NAME = _MODULES[IMPL]
# Set DOJOB_AIO_KEEP_DOJOB_ONLY=1 to run the dojob_only tests against
# asynciojobs anyway, to watch them reproduce the defects (they fail there).
KEEP_DOJOB_ONLY = os.environ.get("DOJOB_AIO_KEEP_DOJOB_ONLY", "") not in ("", "0")

_HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "dojob_only: pins a known asynciojobs defect that dojob.aio must fix; "
        "deselected when DOJOB_AIO_IMPL=asynciojobs",
    )


def pytest_report_header(config):
    return f"aio_spec: implementation under test = {MODULE_NAME} (DOJOB_AIO_IMPL={IMPL})"


# asynciojobs leaves the coroutines of jobs that never started un-awaited,
# so CPython emits "coroutine ... was never awaited" RuntimeWarnings at
# garbage-collection time, in whatever test happens to be running then.
# That is known defect (2), checked explicitly by a dojob_only test (which
# records warnings itself); for the reference implementation we hide the noise.
_NEVER_AWAITED = "ignore:coroutine .* was never awaited:RuntimeWarning"


def pytest_collection_modifyitems(config, items):
    if IMPL != "asynciojobs":
        return
    kept, deselected = [], []
    for item in items:
        in_here = _HERE in Path(str(item.fspath)).resolve().parents
        if not in_here:
            kept.append(item)
        elif item.get_closest_marker("dojob_only") is not None and not KEEP_DOJOB_ONLY:
            deselected.append(item)
        else:
            item.add_marker(pytest.mark.filterwarnings(_NEVER_AWAITED))
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _collect_garbage_within_the_test():
    """Collect leftovers (e.g. never-awaited coroutines) while the test's own
    warning filters are still active, so that any warning is attributed to
    the test that caused it."""
    yield
    gc.collect()


def load_aio():
    """The module under test (asynciojobs or dojob.aio)."""
    return importlib.import_module(MODULE_NAME)


@pytest.fixture
def aio():
    return load_aio()


@pytest.fixture
def impl_name():
    """'asynciojobs' or 'dojob'."""
    return IMPL


# ---------------------------------------------------------------------------
# helpers shared by the test modules (exposed as fixtures)
# ---------------------------------------------------------------------------


def make_readme(aio):
    """The helper coroutines of the README, verbatim but for the global."""
    watch = aio.Watch()

    # just print a message when entering and exiting, and sleep in the middle
    async def in_out(timeout):
        watch.print_elapsed("-> in_out({})\n".format(timeout))
        await asyncio.sleep(timeout)
        watch.print_elapsed("<- in_out({})\n".format(timeout))
        # return something easy to recognize: the number of milliseconds
        return 1000 * timeout

    async def monitor_loop(bus):
        while True:
            message = await bus.get()
            print("BUS: {}".format(message))

    async def in_out_bus(timeout, bus):
        await bus.put("{} -> in_out({})".format(watch.elapsed(), timeout))
        await asyncio.sleep(timeout)
        await bus.put("{} <- in_out({})".format(watch.elapsed(), timeout))
        # return something easy to recognize
        return 10 * timeout

    async def forever():
        for i in range(100000):
            print("{}: forever {}".format(watch.elapsed(), i))
            await asyncio.sleep(0.1)

    async def boom(n):
        await asyncio.sleep(n)
        raise Exception("boom after {}s".format(n))

    async def aprint(message, delay=0.5):
        print(message)
        await asyncio.sleep(delay)

    return SimpleNamespace(
        watch=watch,
        in_out=in_out,
        monitor_loop=monitor_loop,
        in_out_bus=in_out_bus,
        forever=forever,
        boom=boom,
        aprint=aprint,
    )


_INOUT = re.compile(r"(\d{3}\.\d{3}) (->|<-) in_out\(([0-9.]+)\)")


def in_out_events(text):
    """Parse what the README's in_out() printed.

    Returns a list of (seconds, '->' or '<-', timeout) in printed order.
    """
    return [(float(t), arrow, float(arg)) for t, arrow, arg in _INOUT.findall(text)]


_MAIN = re.compile(r"<(\w+) `([^`]*)`>")
_REQ = re.compile(r"requires=\{([^}]*)\}")


def parse_listing(text):
    """Parse the output of list() or list_safe().

    Returns {label: {"id": str, "line": str, "cls": str, "requires": [ids]}}
    for each job line (the '--end--' lines of nested schedulers are skipped).
    For list(), "id" is the first token of the line (the rank); for
    list_safe(), it is the token right before ``<Class `label`>``.
    """
    jobs = {}
    for line in text.splitlines():
        if "--end--" in line:
            continue
        match = _MAIN.search(line)
        if not match:
            continue
        cls, label = match.groups()
        before = line[: match.start()].split()
        req = _REQ.search(line)
        requires = [r.strip() for r in req.group(1).split(",") if r.strip()] if req else []
        assert label not in jobs, f"job {label!r} listed twice:\n{text}"
        jobs[label] = dict(
            line=line,
            cls=cls,
            requires=requires,
            rank=before[0] if before else None,
            safe_id=before[-1] if before else None,
        )
    return jobs


@pytest.fixture
def readme(aio):
    return make_readme(aio)


@pytest.fixture
def helpers():
    return SimpleNamespace(in_out_events=in_out_events, parse_listing=parse_listing, make_readme=make_readme)
