"""``self.changed_deps``: which of a job's DEPS changed in this run (issue 15)."""

from __future__ import annotations

import bindjobs
import pytest

import dojob
from dojob import ChangedDeps, Status

DRIVERS = [
    pytest.param({}, id="serial"),
    pytest.param({"workers": 3}, id="threads"),
    pytest.param({"workers": 2, "executor": "processes"}, id="processes"),
]


def converge(storage, config, **options):
    return dojob.run(bindjobs.RestartService, kwargs={"config": config}, global_storage=storage, **options)


@pytest.mark.parametrize("options", DRIVERS)
def test_restart_only_when_the_config_changed(options):
    storage: dict = {}
    report = converge(storage, "v1", **options)
    assert report.success and report["WriteConfig"].status is Status.CHANGED
    assert report["RestartService"].status is Status.CHANGED
    assert storage["restarts"] == 1 and storage["changed_seen"] == ["WriteConfig"]
    report = converge(storage, "v1", **options)  # nothing changed: no restart
    assert report["RestartService"].status is Status.OK and storage["restarts"] == 1
    assert storage["changed_seen"] == []
    report = converge(storage, "v2", **options)
    assert report["RestartService"].status is Status.CHANGED and storage["restarts"] == 2


def test_async_phases_see_changed_deps_too():
    seen = []

    class Source(dojob.Job):
        async def Check(self, *a, **k):
            if not self.global_storage.get("src"):
                raise LookupError("no")

        async def Run(self, *a, **k):
            self.global_storage["src"] = True

    class Steady(dojob.Job):
        async def Check(self, *a, **k):
            pass

        async def Run(self, *a, **k):
            pass

    class Sink(dojob.Job):
        DEPS = (Steady, Source)

        async def Check(self, *a, **k):
            seen.append(tuple(self.changed_deps))

        async def Run(self, *a, **k):
            pass

    assert dojob.run(Sink).success
    assert seen == [(Source,)]


def test_bound_dependencies_and_names_in_changed_deps():
    seen = []
    invite = bindjobs.SendInvite.bind(NAME="Ada", EMAIL="ada@example.com")
    already = bindjobs.SendInvite.bind(NAME="Bob", EMAIL="bob@example.com")

    class Welcome(dojob.Job):
        DEPS = (invite, already)

        def Check(self, *a, **k):
            seen.append(self.changed_deps)

        def Run(self, *a, **k):
            pass

    storage = {"invited:Bob": "bob@example.com"}
    assert dojob.run(Welcome, global_storage=storage).success
    changed = seen[0]
    assert isinstance(changed, ChangedDeps)
    assert invite in changed and bindjobs.SendInvite.bind(EMAIL="ada@example.com", NAME="Ada") in changed
    assert invite.__name__ in changed and "SendInvite[EMAIL='bob@example.com', NAME='Bob']" not in changed
    assert already not in changed and 42 not in changed


def test_every_try_and_the_recheck_see_the_same_changes():
    seen = []

    class Changes(dojob.Job):
        def Check(self, *a, **k):
            if not self.global_storage.get("x"):
                raise LookupError("x")

        def Run(self, *a, **k):
            self.global_storage["x"] = True

    class Flaky(dojob.Job):
        DEPS = (Changes,)
        TRIES = 3
        RETRY_DELAY = 0

        def Check(self, *a, **k):
            seen.append(tuple(d.__name__ for d in self.changed_deps))
            if len(seen) < 4:
                raise RuntimeError("not yet")

        def Run(self, *a, **k):
            pass

    report = dojob.run(Flaky)
    assert report.success and report["Flaky"].tries == 2
    assert seen == [("Changes",)] * 4  # check, recheck, check, recheck


def test_outside_a_run_and_without_deps_nothing_changed():
    assert bindjobs.InstallPackage().changed_deps == ()
    seen = []

    class Alone(dojob.Job):
        def Check(self, *a, **k):
            seen.append(self.changed_deps)

        def Run(self, *a, **k):
            pass

    dojob.run(Alone)
    assert seen == [()] and isinstance(seen[0], ChangedDeps)


def test_a_plan_sees_no_changes():
    storage: dict = {}
    report = dojob.run(bindjobs.RestartService, kwargs={"config": "v1"}, global_storage=storage, plan=True)
    assert report["WriteConfig"].plan == "would_run"
    assert storage["changed_seen"] == []  # nothing ran: nothing changed (the plan says upstream will change)
    assert report["RestartService"].plan == "ok_upstream_changes"
