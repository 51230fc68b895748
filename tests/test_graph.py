"""Graph building: introspection order, dynamic DEPS, validation errors that carry their data."""

from __future__ import annotations

import pytest
from conftest import make_job
from hypothesis import given
from hypothesis import strategies as st

import dojob
from dojob import build_graph


def test_post_order_follows_deps_declaration_order():
    a = make_job("A")
    b = make_job("B")
    c = make_job("C", [b, a])
    d = make_job("D", [a])
    root = make_job("Root", [c, d])
    g = build_graph(root)
    assert g.names == ["B", "A", "C", "D", "Root"]
    assert [g.specs[i].name for i in g.deps[g.index["C"]]] == ["B", "A"]
    assert sorted(g.specs[i].name for i in g.dependents[g.index["A"]]) == ["C", "D"]


def test_networkx_graph_has_an_edge_from_each_job_to_each_dependency():
    a = make_job("A")
    b = make_job("B", [a])
    root = make_job("Root", [a, b])
    nx_graph = build_graph(root).nx
    assert set(nx_graph.nodes) == {"A", "B", "Root"}
    assert set(nx_graph.edges) == {("B", "A"), ("Root", "A"), ("Root", "B")}
    assert nx_graph.nodes["B"]["job"] is b


def test_several_roots_share_jobs_once():
    a = make_job("A")
    r1 = make_job("R1", [a])
    r2 = make_job("R2", [a])
    g = build_graph(r1, r2)
    assert g.names == ["A", "R1", "R2"]
    assert g.roots == ("R1", "R2")


def test_duplicate_entries_in_deps_give_one_edge():
    a = make_job("A")
    root = make_job("Root", [a, a])
    assert list(build_graph(root).edges()) == [("Root", "A")]


def test_deps_mutated_before_a_run_are_seen():
    parent = make_job("Parent", base=dojob.DummyJob)
    base = make_job("SendInvite")
    for who in ("Ann", "Bob"):
        parent.DEPS.append(type(f"Invite {who}", (base,), {"NAME": who}))
    g = build_graph(parent)
    assert g.names == ["Invite Ann", "Invite Bob", "Parent"]


def test_long_chain_builds_without_recursion():
    job = make_job("J0")
    for i in range(1, 100_000):
        job = make_job(f"J{i}", [job])
    g = build_graph(job)
    assert len(g) == 100_000
    assert g.names[0] == "J0" and g.names[-1] == "J99999"


def test_tries_and_delay_defaults_and_overrides():
    a = make_job("A", TRIES=10, RETRY_DELAY=0.5)
    b = make_job("B", [a])
    g = build_graph(b, default_tries=1, default_retry_delay=2)
    assert (g["A"].tries, g["A"].retry_delay) == (10, 0.5)
    assert (g["B"].tries, g["B"].retry_delay) == (1, 2.0)


def test_async_jobs_are_detected():
    async def check(self, *a, **k):
        return None

    a = make_job("A", check=check)
    b = make_job("B", [a])
    g = build_graph(b)
    assert g["A"].is_async and not g["B"].is_async and g.has_async


# -- errors ---------------------------------------------------------------


def test_cycle_error_carries_the_cycle():
    a = make_job("A")
    b = make_job("B", [a])
    c = make_job("C", [b])
    a.DEPS = [c]
    root = make_job("Root", [c])
    with pytest.raises(dojob.CycleError) as info:
        build_graph(root)
    assert info.value.cycle == ["C", "B", "A", "C"]
    assert "C -> B -> A -> C" in str(info.value)
    assert isinstance(info.value, dojob.DojobError)


def test_self_dependency_is_a_cycle():
    a = make_job("A")
    a.DEPS = [a]
    with pytest.raises(dojob.CycleError) as info:
        build_graph(a)
    assert info.value.cycle == ["A", "A"]


@pytest.mark.parametrize(
    ("deps", "fragment"),
    [
        (None, "not None"),
        ("Other", "not a string"),
        (42, "must be an iterable"),
        ("CLASS", "not DEPS = X"),
        ("INSTANCE", "not instances"),
        ([1], "only Job classes"),
        ([[1, 2]], "only Job classes"),
        ([dict], "only Job classes"),
    ],
)
def test_bad_deps_name_the_job_and_the_value(deps, fragment):
    other = make_job("Other")
    if deps == "CLASS":
        deps = other
    elif deps == "INSTANCE":
        deps = [other()]
    bad = make_job("Bad")
    bad.DEPS = deps
    root = make_job("Root", [bad])
    with pytest.raises(dojob.DepsError) as info:
        build_graph(root)
    err = info.value
    assert err.job == "Bad"
    assert "'Bad'" in str(err) and fragment in str(err)
    assert isinstance(err, dojob.DojobError)


@pytest.mark.parametrize("value", [0, -1, 0.5, float("inf"), "3", True, None.__class__])
def test_bad_tries(value):
    bad = make_job("Bad", TRIES=value)
    with pytest.raises(dojob.JobAttributeError) as info:
        build_graph(make_job("Root", [bad]))
    assert (info.value.job, info.value.attribute, info.value.value) == ("Bad", "TRIES", value)
    assert "'Bad'" in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), "1", True])
def test_bad_retry_delay(value):
    bad = make_job("Bad", RETRY_DELAY=value)
    with pytest.raises(dojob.JobAttributeError) as info:
        build_graph(make_job("Root", [bad]))
    assert (info.value.job, info.value.attribute) == ("Bad", "RETRY_DELAY")
    assert "RETRY_DELAY" in str(info.value)


@pytest.mark.parametrize("option, value", [("default_tries", 0), ("default_tries", 0.99), ("default_retry_delay", -1)])
def test_bad_defaults(option, value):
    with pytest.raises(dojob.OptionError) as info:
        build_graph(make_job("A"), **{option: value})
    assert info.value.option == option
    assert isinstance(info.value, dojob.DojobError)


def test_bad_priority():
    with pytest.raises(dojob.JobAttributeError, match="PRIORITY"):
        build_graph(make_job("A", PRIORITY="high"))


def test_two_classes_with_one_name():
    first = make_job("Same")
    second = make_job("Same")
    root = make_job("Root", [first, second])
    with pytest.raises(dojob.DuplicateJobError) as info:
        build_graph(root)
    assert info.value.name == "Same"
    assert info.value.classes == (first, second)


@pytest.mark.parametrize("root", [None, "Root", 3, object, dojob.Job(), int])
def test_root_must_be_a_job_class(root):
    with pytest.raises(dojob.RootError) as info:
        build_graph(root)
    assert info.value.value is root


def test_no_root():
    with pytest.raises(dojob.RootError):
        build_graph()


def test_job_without_check_or_run_is_built_with_a_warning(caplog):
    # DoJobber builds these and lets the missing method fail at run time (see test_compat)
    no_check = type("NoCheck", (dojob.Job,), {"Run": lambda self: None})
    no_run = type("NoRun", (dojob.Job,), {"Check": lambda self: None})
    runonly_with_check = type("RO", (dojob.RunonlyJob,), {"Run": lambda s: 1, "Check": lambda s: 1})
    with caplog.at_level("WARNING", logger="dojob"):
        g = build_graph(make_job("Root", [no_check, no_run, runonly_with_check]))
    assert [w.split(":")[0] for w in g.warnings] == ["job 'NoCheck'", "job 'NoRun'", "job 'RO'"]
    assert "no Check" in g.warnings[0] and "no Run" in g.warnings[1] and "runs as a Job" in g.warnings[2]
    assert [r.getMessage() for r in caplog.records] == list(g.warnings)
    assert g["RO"].kind == "job"


def test_validation_happens_before_any_job_runs():
    ran = []
    good = make_job("Good", check=lambda self, *a, **k: ran.append("good"))
    bad = make_job("Bad", TRIES=0)
    root = make_job("Root", [good, bad])
    with pytest.raises(dojob.JobAttributeError):
        dojob.run(root)
    assert ran == []


def test_validation_memo_tells_apart_classes_made_alike():
    """Classes made alike share validated values; any override, base or bad value still counts."""

    def check(self):
        pass

    class SlowBase(dojob.Job):
        TRIES = 7

    made: list[type] = []
    overrides = [{}, {}, {"TRIES": 2}, {"PRIORITY": -1}, {"CRITICAL": True}, {"TIMEOUT": 4}]
    for i, extra in enumerate(overrides + [{"CLAIMS": ["db"]}, {"USES": ("x",)}]):
        made.append(type(f"Alike{i}", (dojob.Job,), {"Check": check, "Run": check, "DEPS": list(made[-1:]), **extra}))
    other_base = type("OtherBase", (SlowBase,), {"Check": check, "Run": check, "DEPS": [made[-1]]})
    reordered = type("Reordered", (dojob.Job,), {"Run": check, "DEPS": [other_base], "Check": check})
    g = build_graph(reordered, default_tries=3)
    values = {s.name: (s.tries, s.priority, s.critical, s.timeout, s.claims, s.uses) for s in g.specs}
    assert values["Alike0"] == values["Alike1"] == values["Reordered"] == (3, 0, False, None, (), ())
    assert values["Alike2"][0] == 2 and values["Alike3"][1] == -1 and values["Alike4"][2] is True
    assert values["Alike5"][3] == 4.0 and values["Alike6"][4] == ("db",) and values["Alike7"][5] == ("x",)
    assert values["OtherBase"][0] == 7
    assert g.has_locks and g.has_timeouts

    bad = type("Bad", (dojob.Job,), {"Check": check, "Run": check, "DEPS": made[:2], "TRIES": 0})
    with pytest.raises(dojob.JobAttributeError, match="Bad") as info:
        build_graph(bad)
    assert info.value.value == 0


def test_jobs_made_alike_keep_every_default_when_they_fail():
    """Specs taken from the validation memo carry every field: a failing alike job blocks its dependents."""

    def fail(self):
        raise RuntimeError("no")

    def ok(self):
        pass

    failing = [type(f"Failing{i}", (dojob.Job,), {"Check": fail, "Run": ok, "TRIES": 1}) for i in range(3)]
    waiting = [type(f"Waiting{i}", (dojob.Job,), {"Check": ok, "Run": ok, "DEPS": (f,)}) for i, f in enumerate(failing)]
    root = type("AlikeRoot", (dojob.DummyJob,), {"DEPS": tuple(waiting)})
    report = dojob.run(root, default_retry_delay=0)
    assert [report[f.__name__].status for f in failing] == [dojob.Status.FAILED] * 3
    assert [report[w.__name__].status for w in waiting] == [dojob.Status.BLOCKED] * 3
    assert report["AlikeRoot"].status is dojob.Status.BLOCKED


@given(
    edges=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=30),
    dupes=st.booleans(),
)
def test_the_walk_matches_a_reference_dfs_and_reports_real_cycles(edges, dupes):
    """Post-order, dependency indices and cycles, against a plain recursive DFS over the same DEPS."""
    deps: dict[int, list[int]] = {i: [] for i in range(10)}
    for a, b in edges:
        if dupes or b not in deps[a]:
            deps[a].append(b)
    classes = {i: make_job(f"N{i}") for i in range(10)}
    for i, ds in deps.items():
        classes[i].DEPS = [classes[d] for d in ds]
    root = make_job("Top", [classes[i] for i in range(10)])

    order: list[int] = []
    state: dict[int, str] = {}
    cycle_found = []

    def visit(i: int, path: list[int]) -> None:  # the reference: DoJobber's recursive walk
        if cycle_found or state.get(i) == "done":
            return
        if state.get(i) == "open":
            cycle_found.append(path[path.index(i) :] + [i])
            return
        state[i] = "open"
        for d in dict.fromkeys(deps[i]):
            visit(d, path + [i])
        state[i] = "done"
        order.append(i)

    for i in range(10):
        visit(i, [])
    if cycle_found:
        with pytest.raises(dojob.CycleError) as info:
            build_graph(root)
        cycle = info.value.cycle
        assert cycle == [f"N{i}" for i in cycle_found[0]]
        return
    g = build_graph(root)
    assert g.names == [f"N{i}" for i in order] + ["Top"]
    for i, ds in deps.items():
        assert [g.specs[d].name for d in g.deps[g.index[f"N{i}"]]] == [f"N{d}" for d in dict.fromkeys(ds)]


def test_regression_a_typo_in_a_dependency_is_refused_like_one_in_the_root():
    # The build's inlined copy of the class reading skipped the typo check for every job
    # but the roots: `Tries = 5` on a dependency was silently ignored (it ran with 3 tries).
    dep = make_job("Dep", Tries=5)
    root = make_job("Root", [dep], base=dojob.DummyJob)
    with pytest.raises(dojob.JobDefinitionError, match=r"'Dep'.*'Tries'.*did you mean TRIES\?"):
        build_graph(root)
    deeper = make_job("Deeper", [make_job("Mid", [make_job("Leaf", Deps=())])])
    with pytest.raises(dojob.JobDefinitionError, match=r"'Leaf'.*'Deps'.*did you mean DEPS\?"):
        build_graph(deeper)


def test_regression_equal_bound_jobs_in_a_dependency_give_one_edge():
    # Two equal binds (not the same object) in the DEPS of a job that is not a root were
    # taken as two entries: deps (0, 0), dependents (1, 1) and a doubled edge in the graph.
    leaf = make_job("Leaf")
    mid = make_job("Mid")
    mid.DEPS = (leaf.bind(X=1), leaf.bind(X=1))  # a tuple of two, as most DEPS are
    g = build_graph(make_job("Root", [mid]))
    assert g.names == ["Leaf[X=1]", "Mid", "Root"]
    assert g.deps == ((), (0,), (1,))
    assert g.dependents == ((1,), (2,), ())
    assert list(g.edges()) == [("Mid", "Leaf[X=1]"), ("Root", "Mid")]
    report = dojob.run(make_job("Root", [mid]))
    assert report.success and len(report) == 3


def test_each_kind_of_class_is_validated_once_whatever_the_number_of_jobs():
    """500 bound jobs of one class and 500 type() classes made alike: three validations (and the root's)."""

    def check(self, *args, **kwargs):
        pass

    invite = type("Invite", (dojob.Job,), {"Check": check, "Run": check, "NAME": None, "TRIES": 2})
    bound = [invite.bind(NAME=f"friend {i}") for i in range(500)]
    made = [type(f"Made{i}", (dojob.Job,), {"Check": check, "Run": check, "NAME": i}) for i in range(500)]
    root = type("All", (dojob.DummyJob,), {"DEPS": (*bound, *made)})
    g = build_graph(root, default_tries=4)
    assert len(g) == 1001
    validated = sorted(s.name for s in g._distinct)  # the specs not taken from the memo
    assert validated == ["All", "Invite[NAME='friend 0']", "Made0"]
    assert {s.tries for s in g.specs if s.name.startswith("Invite[")} == {2}
    assert {s.tries for s in g.specs if s.name.startswith("Made")} == {4}
    assert [s.index for s in g.specs] == list(range(1001))
