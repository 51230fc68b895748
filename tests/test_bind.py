"""Job.bind: parameterised jobs without type() (issue 15)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import bindjobs
import pytest

import dojob
from dojob import Status
from dojob.bind import BoundJob
from dojob.eventlog import EventLog
from dojob.render import graph_dot

EXECUTORS = [
    pytest.param({}, id="serial"),
    pytest.param({"workers": 3}, id="threads"),
    pytest.param({"workers": 2, "executor": "processes"}, id="processes"),
]

FRIENDS = [("Wendell Bagg", "bagg@example.com"), ("Lawyer Cat", "cat@example.com"), ("Ada", "ada@example.com")]


def party(friends=FRIENDS):
    return type(
        "Party", (dojob.DummyJob,), {"DEPS": tuple(bindjobs.SendInvite.bind(NAME=n, EMAIL=e) for n, e in friends)}
    )


def test_name_is_readable_sorted_and_stable():
    job = bindjobs.SendInvite.bind(NAME="Wendell Bagg", EMAIL="bagg@example.com")
    assert job.__name__ == "SendInvite[EMAIL='bagg@example.com', NAME='Wendell Bagg']"
    assert job.__name__ == bindjobs.SendInvite.bind(EMAIL="bagg@example.com", NAME="Wendell Bagg").__name__
    # the same name in another interpreter (no addresses, no hash seeds)
    code = "import bindjobs; print(bindjobs.SendInvite.bind(NAME='Wendell Bagg', EMAIL='bagg@example.com').__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent, env={"PYTHONHASHSEED": "123", **_env()})  # fmt: skip
    assert out.stdout.strip() == job.__name__


def _env():
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    return env


def test_same_values_same_job_and_deps_dedupe():
    a = bindjobs.SendInvite.bind(NAME="x", EMAIL="y")
    b = bindjobs.SendInvite.bind(EMAIL="y", NAME="x")
    assert a == b and hash(a) == hash(b) and a is not b
    assert a != bindjobs.SendInvite.bind(NAME="x", EMAIL="z")
    assert a != bindjobs.SendInvite.bind(NAME="x", EMAIL="y", EXTRA=1)
    root = type("Root", (dojob.DummyJob,), {"DEPS": (a, b, bindjobs.SendInvite.bind(NAME="x", EMAIL="y"))})
    graph = dojob.build_graph(root)
    assert graph.names == [a.__name__, "Root"]
    assert graph.deps[1] == (0,)


def test_equal_values_of_different_types_are_different_jobs():
    one, true = bindjobs.SendInvite.bind(NAME=1, EMAIL="e"), bindjobs.SendInvite.bind(NAME=True, EMAIL="e")
    assert one != true and one.__name__ != true.__name__


@pytest.mark.parametrize("options", EXECUTORS)
def test_phases_see_the_bound_values(options):
    storage: dict = {}
    report = dojob.run(party(), global_storage=storage, **options)
    assert report.success
    assert {n: storage[f"invited:{n}"] for n, _ in FRIENDS} == dict(FRIENDS)
    names = [f"SendInvite[EMAIL={e!r}, NAME={n!r}]" for n, e in FRIENDS]
    assert list(report.jobs) == [*names, "Party"]
    assert all(report[n].status is Status.CHANGED for n in names)
    assert report[names[0]].result == "bagg@example.com"  # the passing recheck's value
    by_ref = [storage[f"ref:{n}"][0] for n, _ in FRIENDS]
    assert by_ref == [True, True, True]  # in worker processes too: the class itself, not a copy


def test_processes_get_the_class_by_reference():
    storage: dict = {}
    report = dojob.run(party(), global_storage=storage, executor="processes", workers=2)
    assert report.success
    import os

    pids = {storage[f"ref:{n}"][1] for n, _ in FRIENDS}
    assert os.getpid() not in pids  # really in other processes
    bound = bindjobs.SendInvite.bind(NAME="Wendell Bagg", EMAIL="bagg@example.com")
    data = pickle.dumps(bound)  # plain pickle: only by reference is possible
    assert pickle.loads(data) == bound and pickle.loads(data).job is bindjobs.SendInvite
    from dojob.remote import dumps

    assert len(dumps(bound)) < 300 and b"bindjobs" in dumps(bound)


def test_async_driver_runs_bound_jobs():
    seen = []

    class Ping(dojob.Job):
        async def Check(self, *args, **kwargs):
            if self.HOST not in seen:
                raise LookupError(self.HOST)

        async def Run(self, *args, **kwargs):
            seen.append(self.HOST)

    root = type("All", (dojob.DummyJob,), {"DEPS": tuple(Ping.bind(HOST=h) for h in ("a", "b"))})
    report = dojob.run(root)
    assert report.success and seen == ["a", "b"]
    assert list(report.jobs) == ["Ping[HOST='a']", "Ping[HOST='b']", "All"]


def test_bound_job_as_root_and_with_deps_of_its_class():
    log = []

    class Base(dojob.Job):
        def Check(self, *a, **k):
            log.append("base")

        def Run(self, *a, **k):
            pass

    class Deploy(dojob.Job):
        DEPS = (Base,)

        def Check(self, *a, **k):
            log.append(self.HOST)

        def Run(self, *a, **k):
            pass

    report = dojob.run(Deploy.bind(HOST="web1"))
    assert report.success and log == ["base", "web1"]
    assert report.roots == ("Deploy[HOST='web1']",)


def test_name_in_trace_recap_report_graph_and_event_log(capsys, tmp_path):
    class Fails(dojob.Job):
        TRIES = 1

        def Check(self, *a, **k):
            raise RuntimeError(f"cannot reach {self.HOST}")

        def Run(self, *a, **k):
            pass

    job = Fails.bind(HOST="db\n1")  # a hostile value: repr escapes it
    name = "Fails[HOST='db\\n1']"
    assert job.__name__ == name
    events = tmp_path / "events.jsonl"
    with events.open("w") as fh:
        report = dojob.run(job, verbose=True, observers=[EventLog(fh)])
    err = capsys.readouterr().err
    assert f"{name}.check: fail" in err.splitlines()
    assert report[name].status is Status.FAILED
    assert f"FAILED  {name} (1 try): RuntimeError: cannot reach db\\x0a1" in report.summary()
    assert f'label="{name}' in graph_dot(report.graph, report).replace("\\\\", "\\")
    logged = [json.loads(line) for line in events.read_text().splitlines()]
    assert {e.get("job") for e in logged if e["event"] == "JobFinished"} == {name}


def test_name_in_recap_with_bind_name():
    class Invite(dojob.Job):
        BIND_NAME = ("NAME",)

        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

    job = Invite.bind(NAME="Wendell Bagg", EMAIL="bagg@example.com")
    assert job.__name__ == "Invite[NAME='Wendell Bagg']" and job.EMAIL == "bagg@example.com"
    root = type("R", (dojob.DummyJob,), {"DEPS": (job, Invite.bind(NAME="Wendell Bagg", EMAIL="other@example.com"))})
    with pytest.raises(dojob.DuplicateJobError) as info:
        dojob.build_graph(root)
    assert "EMAIL='other@example.com'" in str(info.value)  # the repr shows the hidden value
    with pytest.raises(dojob.JobDefinitionError, match="BIND_NAME shows 'NAME'"):
        Invite.bind(EMAIL="x")


def test_validation_errors_name_the_bound_job():
    class Bad(dojob.Job):
        TRIES = 0

        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

    with pytest.raises(dojob.JobAttributeError) as info:
        dojob.run(type("R", (dojob.DummyJob,), {"DEPS": (Bad.bind(HOST="h1"),)}))
    assert info.value.job == "Bad[HOST='h1']" and "job \"Bad[HOST='h1']\": TRIES" in str(info.value)

    class BadDeps(dojob.Job):
        DEPS = (42,)

        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

    with pytest.raises(dojob.DepsError) as deps:
        dojob.build_graph(BadDeps.bind(HOST="h2"))
    assert deps.value.job == "BadDeps[HOST='h2']"


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "needs at least one value"),
        ({"TRIES": 3}, "cannot bind 'TRIES'"),
        ({"DEPS": ()}, "cannot bind 'DEPS'"),
        ({"storage": 1}, "cannot bind 'storage'"),
        ({"_private": 1}, "cannot bind '_private'"),
        ({"helper": 1}, "would hide the method"),
    ],
)
def test_bind_refuses_names_the_engine_or_the_class_needs(params, message):
    class J(dojob.Job):
        def helper(self):
            pass

        def Check(self, *a, **k):
            pass

        def Run(self, *a, **k):
            pass

    with pytest.raises(dojob.JobDefinitionError, match=message):
        J.bind(**params)


def test_unhashable_value_is_refused_with_the_name():
    with pytest.raises(dojob.JobAttributeError, match="EMAILS must be hashable"):
        bindjobs.SendInvite.bind(NAME="x", EMAILS=["a", "b"])


def test_bound_job_is_immutable_and_rebinds():
    job = bindjobs.SendInvite.bind(NAME="x", EMAIL="y")
    with pytest.raises(AttributeError):
        job.NAME = "z"  # type: ignore[misc]
    other = job.bind(EMAIL="z")
    assert other == bindjobs.SendInvite.bind(NAME="x", EMAIL="z") and job.EMAIL == "y"
    assert (
        isinstance(job, BoundJob) and job.job is bindjobs.SendInvite and job.params == (("EMAIL", "y"), ("NAME", "x"))
    )
    assert repr(job) == "SendInvite.bind(EMAIL='y', NAME='x')"


def test_init_sees_the_bound_values():
    class WithInit(dojob.Job):
        def __init__(self):
            self.greeting = f"hello {self.WHO}"

        def Check(self, *a, **k):
            return self.greeting

        def Run(self, *a, **k):
            pass

    report = dojob.run(WithInit.bind(WHO="Ada"))
    assert report["WithInit[WHO='Ada']"].result == "hello Ada"


def test_deps_written_as_a_single_bound_job_is_refused():
    class P(dojob.DummyJob):
        DEPS = bindjobs.SendInvite.bind(NAME="x", EMAIL="y")

    with pytest.raises(dojob.DepsError, match=r"DEPS = \(X.bind"):
        dojob.build_graph(P)


def test_dojobber_compat_accepts_bound_jobs():
    storage_friends = [("Bob", "bob@example.com")]
    d = dojob.DoJobber()
    d.configure(party(storage_friends))
    d.checknrun()
    assert d.success()
    assert d.nodestatus == {"SendInvite[EMAIL='bob@example.com', NAME='Bob']": True, "Party": True}


def test_the_cli_lists_and_runs_bound_jobs(tmp_path):
    (tmp_path / "fan.py").write_text(textwrap.dedent("""\
        import dojob

        class Ping(dojob.Job):
            TAGS = ("net",)
            def Check(self, *a, **k):
                if self.HOST not in self.global_storage:
                    raise LookupError(self.HOST)
            def Run(self, *a, **k):
                self.global_storage[self.HOST] = True

        class All(dojob.DummyJob):
            DEPS = tuple(Ping.bind(HOST=f"h{i}") for i in range(3))

        ONE = Ping.bind(HOST="solo")
        """))  # fmt: skip
    env = _env()
    env["PYTHONPATH"] = str(Path(dojob.__file__).parent.parent)
    listed = subprocess.run([sys.executable, "-m", "dojob", "list", "fan.py:All"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["Ping[HOST='h0']", "Ping[HOST='h1']",
                                                                            "Ping[HOST='h2']", "All"]  # fmt: skip
    ran = subprocess.run([sys.executable, "-m", "dojob", "run", "fan.py:All", "--only", "Ping[HOST='h1']"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "converged" in ran.stdout and "1 changed" in ran.stdout
    solo = subprocess.run([sys.executable, "-m", "dojob", "run", "fan.py:ONE", "-v"], capture_output=True, text=True,
                          cwd=tmp_path, env=env)  # fmt: skip
    assert solo.returncode == 0, solo.stderr  # a bound job is a target too
    assert "Ping[HOST='solo'].recheck: pass" in solo.stderr.splitlines()


def test_dask_workers_get_bound_jobs_by_reference():
    distributed = pytest.importorskip("distributed", reason="the dask extra is installed by .ci/install")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            storage: dict = {}
            report = dojob.run(party(), global_storage=storage, executor=client, workers=2)
    assert report.success
    assert {n: storage[f"invited:{n}"] for n, _ in FRIENDS} == dict(FRIENDS)
    assert [storage[f"ref:{n}"][0] for n, _ in FRIENDS] == [True, True, True]


def test_two_binds_of_nan_are_refused_with_the_reason():
    """``float('nan')`` equals nothing: two binds of it are two jobs named alike; the error says why."""

    class P(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (P.bind(V=float("nan")), P.bind(V=float("nan")))

    with pytest.raises(dojob.DuplicateJobError, match=r"named 'P\[V=nan\]'.*not equal, such as float\('nan'\)"):
        dojob.run(Root)
