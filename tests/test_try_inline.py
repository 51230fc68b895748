"""The inline try (:func:`dojob.steps.try_inline`) agrees with the try protocol's steps.

A serial run without signals handled calls a try's first phase without steps,
and a Check without events through lines of its own: a run with an observer
takes the shared functions, one with signals handled the steps. All three
must end alike: outcomes, instance attributes, Cleanup order, events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import dojob
from dojob.events import PhaseEnded

SEEN: list[tuple[str, dict[str, Any]]] = []


def _attrs(job: Any) -> dict[str, Any]:
    out = {}
    for k, v in vars(job).items():
        if k in ("global_storage", "_dojob_changed"):  # (a new closure per run)
            continue
        out[k] = repr(v) if isinstance(v, BaseException) else v
    return out


class Recorded(dojob.Job):
    def Cleanup(self) -> None:
        SEEN.append((f"cleanup {type(self).__name__}", _attrs(self)))


def _graph() -> type:
    class Passes(Recorded):
        def Check(self, *a: Any, **k: Any) -> None:
            self.storage["x"] = 1

    class Returns(Recorded):
        DEPS = (Passes,)

        def Check(self, *a: Any, **k: Any) -> str:
            return "value"

    class Converges(Recorded):
        DEPS = (Returns,)

        def Check(self, *a: Any, **k: Any) -> None:
            if not self.global_storage.get("done"):
                raise LookupError("not yet")

        def Run(self, *a: Any, **k: Any) -> None:
            self.global_storage["done"] = True

    class Wrong(Recorded):
        def Check(self, *a: Any, **k: Any) -> None:
            raise NameError("typo")

        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Missing(dojob.Job):
        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Awaits(dojob.Job):
        def Check(self, *a: Any, **k: Any) -> Any:
            return asyncio.sleep(0)

        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Exits(dojob.Job):
        def Check(self, *a: Any, **k: Any) -> None:
            raise GeneratorExit

        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Only(dojob.RunonlyJob):
        def Run(self, *a: Any, **k: Any) -> int:
            return 3

    class Root(dojob.DummyJob):
        DEPS = (Converges, Wrong, Missing, Awaits, Exits, Only)

    return Root


def _run(way: str, **options: Any) -> tuple[Any, ...]:
    SEEN.clear()
    events: list[Any] = []
    keywords: dict[str, Any] = {"default_retry_delay": 0, "default_tries": 2, **options}
    if way == "observed":
        keywords["observers"] = [events.append]
    elif way == "steps":
        keywords["handle_signals"] = True
    report = dojob.run(_graph(), **keywords)
    jobs = {
        name: (j.status, j.tries, repr(j.result), repr(j.exception), getattr(j, "plan", None))
        for name, j in ((name, report[name]) for name in report.jobs)
    }
    ended = [(e.job, e.phase, e.ok, e.error_type) for e in events if type(e) is PhaseEnded]
    return jobs, list(SEEN), ended


@pytest.mark.parametrize(
    "options", [{}, {"no_act": True}, {"plan": True}, {"strict": True}, {"verbose": True}], ids=repr
)
def test_the_inline_try_agrees_with_the_steps(options: dict[str, Any], capsys: Any) -> None:
    quiet, observed, steps = _run("quiet", **options), _run("observed", **options), _run("steps", **options)
    assert quiet[:2] == observed[:2] == steps[:2]
    assert observed[2] and observed[2] == _run("observed", handle_signals=True, **options)[2]
    assert SEEN or options.get("no_act") or options.get("plan")  # the Cleanups ran, with the attributes seen


@pytest.mark.parametrize("how", ["inline", "observed", "signals", "threads", "processes", "async"])
def test_every_driver_tells_a_failed_init_from_a_failed_check(how: str) -> None:
    """The recap's "cannot start (programming error in __init__)" comes out the same whichever way the
    try ran, a process pool's worker included (the exception comes back pickled, without its frames)."""
    from dojob.diagnose import programming_error

    class BadInit(dojob.Job):
        def __init__(self) -> None:
            raise RuntimeError("init went wrong")

    class Typo(dojob.Job):
        def Check(self, *a: Any, **k: Any) -> None:
            self.nope  # noqa: B018 - an AttributeError in Check

        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Fails(dojob.Job):
        def Check(self, *a: Any, **k: Any) -> None:
            raise RuntimeError("not yet")

        def Run(self, *a: Any, **k: Any) -> None:
            pass

    class Root(dojob.Job):
        DEPS = [BadInit, Typo, Fails]

        def Check(self, *a: Any, **k: Any) -> None:
            pass

    options: dict[str, Any] = {"default_tries": 1}
    if how == "observed":
        options["observers"] = [lambda event: None]
    if how == "signals":
        options["handle_signals"] = True
    if how == "threads":
        options["workers"] = 2
    if how == "processes":
        options.update(workers=2, executor="processes")
    if how == "async":
        report = asyncio.run(dojob.arun(Root, **options))
    else:
        report = dojob.run(Root, **options)
    where = {name: programming_error(job, "job") for name, job in report.jobs.items() if name != "Root"}
    assert where == {"BadInit": "__init__", "Typo": "Check", "Fails": None}
