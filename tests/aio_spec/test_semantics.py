"""Behaviours of asynciojobs that dojob.aio must reproduce, beyond the README
walk-through, plus the known asynciojobs defects that dojob.aio must fix
(``@pytest.mark.dojob_only``, deselected against asynciojobs).

See NOTES.md for the list of behaviours in prose.
"""

import asyncio
import gc
import os
import subprocess
import sys
import time
import warnings

import pytest


class Boom(Exception):
    """A distinctive exception type, to check that exceptions bubble as-is."""


async def sleeper(delay, result=None, log=None, name=None):
    if log is not None:
        log.append(("start", name))
    await asyncio.sleep(delay)
    if log is not None:
        log.append(("end", name))
    return result


async def raiser(delay, message="boom", exc_type=Boom):
    await asyncio.sleep(delay)
    raise exc_type(message)


async def cancellable(delay, flags, name):
    """Records whether it got cancelled, and whether it completed."""
    try:
        await asyncio.sleep(delay)
        flags[name] = "completed"
        return name
    except asyncio.CancelledError:
        flags[name] = "cancelled"
        raise


def timed(func, *args, **kwds):
    begin = time.perf_counter()
    result = func(*args, **kwds)
    return result, time.perf_counter() - begin


# ---------------------------------------------------------------------------
# defaults, labels, lifecycle
# ---------------------------------------------------------------------------
def test_defaults(aio):
    j = aio.Job(sleeper(0))
    assert j.critical is True
    assert j.forever is False
    assert j.label is None
    s = aio.Scheduler()
    assert s.critical is True  # schedulers are critical by default too
    assert s.forever is False
    assert s.timeout is None and not s.jobs_window
    assert isinstance(s, aio.AbstractJob) and isinstance(s, aio.PureScheduler)
    assert not isinstance(aio.PureScheduler(), aio.AbstractJob)
    assert isinstance(j, aio.AbstractJob)
    assert s.run() is True
    assert aio.Scheduler(j).run() is True


def test_default_labels(aio, capsys, helpers):
    async def my_coro():
        return 1

    s = aio.Scheduler(
        aio.Job(my_coro()), aio.Job(my_coro(), label="given"), aio.Scheduler(label="inner", critical=False)
    )
    s.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    # a Job without a label is shown after its coroutine's name
    assert set(jobs) == {"Job[my_coro (...)]", "given", "inner"}
    assert "<Job `Job[my_coro (...)]`>" in jobs["Job[my_coro (...)]"]["line"]
    assert "<Scheduler `inner`>" in jobs["inner"]["line"]
    s.run()


def test_job_repr(aio):
    j = aio.Job(sleeper(0.01, result=7), label="seven")
    text = repr(j)
    assert "<Job `seven`>" in text and "[not done]" in text
    assert "⚠" in text and "⚐" in text
    aio.Scheduler(j).run()
    text = repr(j)
    assert "<Job `seven`>" in text and "[[ -> 7]]" in text and "☓" in text


def test_result_before_completion_raises_value_error(aio):
    j = aio.Job(sleeper(0.01, result=3))
    with pytest.raises(ValueError):
        j.result()
    assert aio.Scheduler(j).run() is True
    assert j.result() == 3


def test_lifecycle_predicates(aio):
    j = aio.Job(sleeper(0.01, result="r"), label="j")
    assert j.is_idle() and not j.is_scheduled()
    assert not j.is_running() and not j.is_done()
    assert not j.raised_exception()
    assert aio.Scheduler(j).run() is True
    assert j.is_done() and j.is_running() and j.is_scheduled() and not j.is_idle()
    assert not j.raised_exception()

    k = aio.Job(raiser(0.01, "bad"), critical=False)
    assert aio.Scheduler(k).run() is True
    assert k.is_done()
    exc = k.raised_exception()
    assert isinstance(exc, Boom) and str(exc) == "bad"


def test_lifecycle_while_running(aio):
    """idle -> scheduled -> running -> done, observed during co_run()."""
    a = aio.Job(sleeper(0.3), label="a")
    b = aio.Job(sleeper(0.3), label="b")
    c = aio.Job(sleeper(0.01), label="c", required=(a, b))
    s = aio.Scheduler(a, b, c, jobs_window=1)

    async def main():
        task = asyncio.create_task(s.co_run())
        await asyncio.sleep(0.1)
        running = [j for j in (a, b) if j.is_running()]
        waiting = [j for j in (a, b) if not j.is_running()]
        assert len(running) == 1 and len(waiting) == 1
        # the other one has its requirements met, but no slot in the window
        assert waiting[0].is_scheduled() and not waiting[0].is_idle()
        assert not waiting[0].is_done()
        assert c.is_idle() and not c.is_scheduled()
        return await task

    ok, elapsed = timed(asyncio.run, main())
    assert ok is True
    assert 0.6 <= elapsed < 0.9


# ---------------------------------------------------------------------------
# return values of run() / co_run()
# ---------------------------------------------------------------------------
def test_co_run_in_asyncio_run(aio):
    j1, j2 = aio.Job(sleeper(0.05, 1)), aio.Job(sleeper(0.05, 2))
    s = aio.Scheduler(aio.Sequence(j1, j2))

    async def main():
        # co_run() coexists with other tasks of the caller's loop
        other = asyncio.create_task(sleeper(0.05, "other"))
        ok = await s.co_run()
        return ok, await other

    (ok, other), elapsed = timed(asyncio.run, main())
    assert ok is True and other == "other"
    assert (j1.result(), j2.result()) == (1, 2)
    assert 0.09 <= elapsed < 0.3


def test_empty_scheduler_returns_true(aio):
    assert aio.Scheduler().run() is True
    assert asyncio.run(aio.Scheduler().co_run()) is True
    assert aio.PureScheduler().run() is True


def test_non_critical_failures_do_not_fail_the_run(aio):
    j1 = aio.Job(raiser(0.01, "one"), critical=False, label="one")
    j2 = aio.Job(raiser(0.02, "two"), critical=False, label="two")
    j3 = aio.Job(sleeper(0.03, "three"), label="three", required=(j1, j2))
    s = aio.Scheduler(j1, j2, j3)  # a critical scheduler, even
    assert s.run() is True
    assert str(j1.raised_exception()) == "one"
    assert str(j2.raised_exception()) == "two"
    assert j3.result() == "three"
    assert s.why() == "FINE"
    assert not s.failed_critical() and not s.failed_time_out()


def test_critical_job_fails_non_critical_scheduler(aio):
    flags = {}
    crit = aio.Job(raiser(0.05, "crit"), label="crit")
    sibling = aio.Job(cancellable(2, flags, "sibling"), label="sibling", critical=False)
    after = aio.Job(sleeper(0.01), label="after", required=crit)
    s = aio.Scheduler(crit, sibling, after, critical=False)
    ok, elapsed = timed(s.run)
    assert ok is False
    # aborts at once, cancelling running jobs, not starting the others
    assert elapsed < 0.5
    assert flags == {"sibling": "cancelled"}
    assert not sibling.is_done()
    assert not after.is_done() and not after.is_running()
    assert s.failed_critical() and not s.failed_time_out()
    assert s.why() and s.why() != "FINE"


def test_critical_scheduler_raises_the_job_exception(aio):
    crit = aio.Job(raiser(0.02, "bubbles up"), label="crit")
    s = aio.Scheduler(crit, aio.Job(sleeper(1), critical=False))
    begin = time.perf_counter()
    with pytest.raises(Boom, match="bubbles up"):
        s.run()
    assert time.perf_counter() - begin < 0.5
    assert s.failed_critical()
    assert isinstance(crit.raised_exception(), Boom)


def test_critical_scheduler_raises_with_co_run_too(aio):
    s = aio.Scheduler(aio.Job(raiser(0.01, "async too")))
    with pytest.raises(Boom, match="async too"):
        asyncio.run(s.co_run())


def test_pure_scheduler_returns_false_instead_of_raising(aio):
    s = aio.PureScheduler(aio.Job(raiser(0.01)))
    assert s.run() is False
    assert s.failed_critical()
    s = aio.PureScheduler(aio.Job(sleeper(1)), timeout=0.1)
    assert s.run() is False
    assert s.failed_time_out()


def test_timeout_bounds_non_forever_jobs(aio):
    flags = {}
    slow = aio.Job(cancellable(3, flags, "slow"), label="slow")
    fast = aio.Job(sleeper(0.05, "fast"), label="fast")
    s = aio.Scheduler(slow, fast, timeout=0.2, critical=False)
    ok, elapsed = timed(s.run)
    assert ok is False
    assert 0.19 <= elapsed < 0.5, elapsed
    assert fast.result() == "fast"
    # the slow job was cancelled before run() returned
    assert flags == {"slow": "cancelled"}
    assert not slow.is_done()
    with pytest.raises(ValueError):
        slow.result()
    assert s.failed_time_out() and not s.failed_critical()
    assert "time" in s.why().lower()


def test_timeout_critical_scheduler_raises_timeout_error(aio):
    s = aio.Scheduler(aio.Job(sleeper(3)), timeout=0.1)
    with pytest.raises(TimeoutError):
        s.run()
    assert s.failed_time_out()


def test_forever_jobs_are_cancelled_once_the_rest_is_done(aio):
    flags = {}
    fv = aio.Job(cancellable(10, flags, "forever"), forever=True, label="forever")
    j = aio.Job(sleeper(0.1, "done"), label="regular")
    s = aio.Scheduler(fv, j)
    ok, elapsed = timed(s.run)
    assert ok is True
    assert 0.09 <= elapsed < 0.4
    assert flags == {"forever": "cancelled"}
    assert j.result() == "done"
    assert not fv.is_done() and not fv.raised_exception()
    with pytest.raises(ValueError):
        fv.result()


def test_why(aio):
    s = aio.Scheduler(aio.Job(sleeper(0.01)))
    assert s.run() is True
    assert s.why() == "FINE"
    s = aio.Scheduler(aio.Job(sleeper(1)), timeout=0.05, critical=False)
    assert s.run() is False
    assert isinstance(s.why(), str) and "time" in s.why().lower()
    s = aio.Scheduler(aio.Job(raiser(0.01)), critical=False)
    assert s.run() is False
    assert isinstance(s.why(), str) and "critical" in s.why().lower()


# ---------------------------------------------------------------------------
# requirements and sequences
# ---------------------------------------------------------------------------
def test_requires_forms(aio):
    j1, j2, j3, j4, j5 = (aio.Job(sleeper(0), label=f"j{i}") for i in range(1, 6))
    assert j1.requires(None) is j1
    j1.requires([None])
    j1.requires((None,))
    assert not j1.required
    j1.requires(j1)  # oneself is silently ignored
    assert not j1.required
    j5.requires(j1)
    j5.requires(j2, [j3, (j4,)])
    assert set(j5.required) == {j1, j2, j3, j4}
    j5.requires([j3, j4], remove=True)
    assert set(j5.required) == {j1, j2}
    with pytest.raises(KeyError):
        j5.requires(j3, remove=True)
    # a sequence as a requirement means its last job
    seq = aio.Sequence(j3, j4)
    j1.requires(seq)
    assert set(j1.required) == {j4}
    # required= in the constructor
    j6 = aio.Job(sleeper(0), required=[j1, j2])
    assert set(j6.required) == {j1, j2}
    s = aio.Scheduler(j1, j2, j3, j4, j5, j6)
    assert s.check_cycles()
    assert s.run() is True


def test_sequences(aio):
    log = []

    def job(name, **kwds):
        return aio.Job(sleeper(0.01, name, log, name), label=name, **kwds)

    pre = job("pre")
    a, b, c, d, e = (job(n) for n in "abcde")
    inner = aio.Sequence(a, b)
    # nested sequences are flattened; required= applies to the first job
    outer = aio.Sequence(inner, c, required=pre)
    assert outer.jobs == [a, b, c]
    assert set(a.required) == {pre}
    assert set(b.required) == {a} and set(c.required) == {b}
    # append() chains after the current last job
    outer.append(d)
    assert set(d.required) == {c}
    # sequence.requires() applies to its first job
    s = aio.Scheduler()
    seq2 = aio.Sequence(e, scheduler=s)
    seq2.requires(d)
    assert set(e.required) == {d}
    assert set(s) == {e}
    s.update([pre, outer])
    assert len(s) == 6
    assert s.run() is True
    starts = [name for kind, name in log if kind == "start"]
    assert starts == ["pre", "a", "b", "c", "d", "e"]
    # each one starts after its predecessor ended
    for previous, following in zip(starts, starts[1:]):
        assert log.index(("end", previous)) < log.index(("start", following))


def test_sequence_with_scheduler_append(aio):
    s = aio.Scheduler()
    a, b = aio.Job(sleeper(0.01), label="a"), aio.Job(sleeper(0.01), label="b")
    seq = aio.Sequence(a, scheduler=s)
    seq.append(b)
    assert set(s) == {a, b}
    assert set(b.required) == {a}
    assert s.run() is True


# ---------------------------------------------------------------------------
# the scheduler as a set of jobs
# ---------------------------------------------------------------------------
def test_container_api(aio):
    s = aio.Scheduler()
    j = aio.Job(sleeper(0), label="j")
    # add() returns the job (asynciojobs >= 0.10 source; the rendered README
    # shows an older output)
    assert s.add(j) is j
    assert len(s) == 1 and list(s) == [j] and j in s
    k = aio.Job(sleeper(0), label="k")
    assert s.update([k]) is s
    assert len(s) == 2 and set(s) == {j, k}
    assert s.remove(k) is s
    assert len(s) == 1 and k not in s
    with pytest.raises(KeyError):
        s.remove(k)
    # adding twice is harmless: it is a set
    s.add(j)
    assert len(s) == 1
    assert s.run() is True
    aio.Scheduler(k).run()


def test_sanitize(aio):
    outside = aio.Job(sleeper(0), label="outside")
    inside = aio.Job(sleeper(0.01, "in"), label="inside", required=outside)
    other = aio.Job(sleeper(0.01), label="other", required=inside)
    s = aio.Scheduler(inside, other)
    # requirements on jobs not in the scheduler are removed
    assert s.sanitize() is False
    assert not inside.required
    assert set(other.required) == {inside}
    # now it is clean
    assert s.sanitize() is True
    assert s.run() is True
    assert inside.result() == "in"
    aio.Scheduler(outside).run()


def test_sanitize_nested(aio):
    outside = aio.Job(sleeper(0), label="outside")
    deep = aio.Job(sleeper(0.01), label="deep", required=outside)
    sub = aio.Scheduler(deep, label="sub")
    s = aio.Scheduler(sub)
    # nested schedulers are sanitized recursively (NB: asynciojobs inverts
    # the nested schedulers' verdict in its return value, so the return value
    # is not pinned down for nested schedulers)
    s.sanitize()
    assert not deep.required
    assert s.run() is True
    aio.Scheduler(outside).run()


def test_check_cycles_and_list_safe(aio, capsys, helpers):
    # PrintJob rather than Job: these jobs hold no coroutine, so whether a
    # failed run() consumes them or not does not matter
    a = aio.PrintJob("a", label="a")
    b = aio.PrintJob("b", label="b", required=a)
    c = aio.PrintJob("c", label="c")
    ok = aio.Scheduler(a, b, c)
    assert ok.check_cycles() is True
    a.requires(b)
    cyclic = aio.Scheduler(a, b, c)
    assert cyclic.check_cycles() is False
    # list() cannot cope with a cycle, list_safe() can
    with pytest.raises(Exception):
        cyclic.list()
    capsys.readouterr()
    cyclic.list_safe()
    out = capsys.readouterr().out
    jobs = helpers.parse_listing(out)
    assert set(jobs) == {"a", "b", "c"}
    assert all(job["cls"] == "PrintJob" for job in jobs.values())
    assert len(out.strip().splitlines()) == 3
    ids = {label: job["safe_id"] for label, job in jobs.items()}
    assert len(set(ids.values())) == 3
    assert jobs["a"]["requires"] == [ids["b"]]
    assert jobs["b"]["requires"] == [ids["a"]]
    assert jobs["c"]["requires"] == []
    # a cyclic scheduler cannot run
    with pytest.raises(Exception):
        aio.Scheduler(a, b).run()
    a.requires(b, remove=True)
    assert aio.Scheduler(a, b, c).check_cycles() is True


def test_check_cycles_nested(aio):
    a = aio.PrintJob("a", label="a")
    b = aio.PrintJob("b", label="b", required=a)
    a.requires(b)
    sub = aio.Scheduler(a, b, label="sub")
    main = aio.Scheduler(aio.PrintJob("x", label="x"), sub)
    assert main.check_cycles() is False
    a.requires(b, remove=True)
    assert main.check_cycles() is True
    assert main.run() is True


# ---------------------------------------------------------------------------
# list(), list_safe(), debrief()
# ---------------------------------------------------------------------------
def test_list_states_while_running(aio, capsys, helpers):
    """⚐ idle, ⚑ scheduled, ↺ running, ☉ fine, ⚠ critical, ∞ forever."""
    a = aio.Job(sleeper(0.3), label="a")
    b = aio.Job(sleeper(0.3), label="b", critical=False)
    c = aio.Job(sleeper(0.01), label="c", required=(a, b))
    s = aio.Scheduler(a, b, c, jobs_window=1)
    snapshot = {}

    async def main():
        task = asyncio.create_task(s.co_run())
        await asyncio.sleep(0.1)
        capsys.readouterr()
        s.list()
        snapshot["list"] = capsys.readouterr().out
        return await task

    assert asyncio.run(main()) is True
    jobs = helpers.parse_listing(snapshot["list"])
    running = [j for j in (a, b) if j.label in jobs and "↺" in jobs[j.label]["line"]]
    scheduled = [j for j in (a, b) if "⚑" in jobs[j.label]["line"]]
    assert len(running) == 1 and len(scheduled) == 1
    assert running[0] is not scheduled[0]
    assert "☉" in jobs[running[0].label]["line"]
    assert "☉" not in jobs[scheduled[0].label]["line"]
    assert "⚐" in jobs["c"]["line"]
    assert "[not done]" in jobs["c"]["line"]
    assert sorted(jobs["c"]["requires"]) == sorted([jobs["a"]["rank"], jobs["b"]["rank"]])
    assert "⚠" in jobs["a"]["line"] and "⚠" not in jobs["b"]["line"]
    for job in jobs.values():
        assert "☓" not in job["line"] and "∞" not in job["line"]


def test_list_forever_and_exceptions(aio, capsys, helpers):
    fv = aio.Job(sleeper(10), forever=True, critical=False, label="fv")
    ok = aio.Job(sleeper(0.02, 12), critical=False, label="ok")
    ko = aio.Job(raiser(0.01, "nope"), critical=False, label="ko")
    s = aio.Scheduler(fv, ok, ko)
    assert s.run() is True
    s.list()
    out = capsys.readouterr().out
    jobs = helpers.parse_listing(out)
    assert len(out.strip().splitlines()) == 3
    line = jobs["fv"]["line"]
    assert "∞" in line and "↺" in line and "⚠" not in line and "[not done]" in line
    line = jobs["ok"]["line"]
    assert "☉" in line and "☓" in line and "[[ -> 12]]" in line
    line = jobs["ko"]["line"]
    assert "★" in line and "☓" in line and "!! exception => Boom:nope!!" in line
    # ranks are 1..n
    assert sorted(int(job["rank"]) for job in jobs.values()) == [1, 2, 3]


def test_list_ranks_are_topological_and_zero_padded(aio, capsys, helpers):
    jobs_ = [aio.Job(sleeper(0), label=f"job{i:02d}") for i in range(12)]
    seq = aio.Sequence(*reversed(jobs_))
    s = aio.Scheduler(seq)
    s.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    ranks = [jobs[f"job{i:02d}"]["rank"] for i in reversed(range(12))]
    # 12 jobs -> 2-digit ids, in topological order
    assert ranks == [f"{i:02d}" for i in range(1, 13)]
    s.run()


def test_list_safe_nested(aio, capsys, helpers):
    sub = aio.Scheduler(aio.Sequence(aio.Job(sleeper(0), label="s1"), aio.Job(sleeper(0), label="s2")), label="sub")
    main = aio.Scheduler(aio.Sequence(aio.Job(sleeper(0), label="m1"), sub))
    main.list_safe()
    out = capsys.readouterr().out
    jobs = helpers.parse_listing(out)
    assert set(jobs) == {"sub", "s1", "s2", "m1"}
    ids = {label: job["safe_id"] for label, job in jobs.items()}
    assert len(set(ids.values())) == 4
    assert jobs["s2"]["requires"] == [ids["s1"]]
    assert jobs["sub"]["requires"] == [ids["m1"]]
    assert main.run() is True


ASCII_SCRIPT = r"""
import asyncio, importlib, sys
aio = importlib.import_module(sys.argv[1])
async def ok():
    await asyncio.sleep(0.01)
    return 1
async def ko():
    await asyncio.sleep(0.01)
    raise RuntimeError("bad")
a = aio.Job(ok(), label="alpha")
b = aio.Job(ko(), label="beta", critical=False, required=a)
c = aio.Job(ok(), label="gamma", required=b)
f = aio.Job(asyncio.sleep(10), label="delta", forever=True)
s = aio.Scheduler(a, b, c, f, critical=False)
assert s.run() is True
s.list()
print("-----")
s.list_safe()
"""


def test_list_falls_back_to_ascii(aio):
    """ "if your locale/terminal cannot output these, the code will tentatively
    resort to pure ASCII output" - checked in a subprocess whose stdout is
    ASCII-only (any non-ASCII character would make print() raise)."""
    module = aio.__name__
    env = dict(os.environ, PYTHONIOENCODING="ascii", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env.pop("PYTHONUTF8", None)
    proc = subprocess.run([sys.executable, "-c", ASCII_SCRIPT, module], capture_output=True, env=env, timeout=20)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("ascii")
    listing, safe = out.split("-----\n")
    for text in (listing, safe):
        lines = [line for line in text.splitlines() if "`" in line]
        assert len(lines) == 4, text
        for label in ("alpha", "beta", "gamma", "delta"):
            assert sum(f"`{label}`" in line for line in lines) == 1


def test_debrief_non_critical(aio, capsys):
    ko = aio.Job(raiser(0.01, "the non-critical failure"), critical=False, label="ko")
    s = aio.Scheduler(ko, aio.Job(sleeper(0.01), label="fine"))
    assert s.run() is True
    capsys.readouterr()
    s.debrief()
    out = capsys.readouterr().out
    assert "the non-critical failure" in out
    assert "`ko`" in out and "`fine`" in out


def test_debrief_critical(aio, capsys):
    ko = aio.Job(raiser(0.01, "the critical failure"), label="ko")
    after = aio.Job(sleeper(0.01), label="after", required=ko)
    s = aio.Scheduler(ko, after, critical=False)
    assert s.run() is False
    capsys.readouterr()
    s.debrief()
    out = capsys.readouterr().out
    assert "the critical failure" in out
    assert "Boom" in out
    assert s.why() in out
    assert "`ko`" in out and "`after`" in out


# ---------------------------------------------------------------------------
# nested schedulers
# ---------------------------------------------------------------------------
def nested(aio, nested_critical, outer_critical, flags=None):
    sub = aio.Scheduler(
        aio.Sequence(
            aio.Job(sleeper(0.02), label="s1"),
            aio.Job(raiser(0.02, "deep"), label="sboom"),
            aio.Job(sleeper(0.02), label="s3"),
        ),
        label="nested",
        critical=nested_critical,
    )
    end = aio.Job(sleeper(0.02, "end"), label="main-end")
    main = aio.Scheduler(aio.Sequence(aio.Job(sleeper(0.02), label="main-start"), sub, end), critical=outer_critical)
    return main, sub, end


def test_nested_critical_scheduler_bubbles_up(aio):
    main, sub, end = nested(aio, True, True)
    with pytest.raises(Boom, match="deep"):
        main.run()
    assert not end.is_done() and not end.is_running()
    assert main.failed_critical() and sub.failed_critical()
    assert isinstance(sub.raised_exception(), Boom)


def test_nested_critical_scheduler_in_non_critical_main(aio):
    main, sub, end = nested(aio, True, False)
    assert main.run() is False
    assert main.failed_critical()
    assert not end.is_done()
    assert isinstance(sub.raised_exception(), Boom)


@pytest.mark.parametrize("outer_critical", [True, False])
def test_nested_non_critical_scheduler(aio, outer_critical):
    """A non-critical nested scheduler that fails is just a job that returned
    False: the main scheduler proceeds."""
    main, sub, end = nested(aio, False, outer_critical)
    assert main.run() is True
    assert end.result() == "end"
    assert sub.is_done() and not sub.raised_exception()
    assert sub.result() is False
    assert sub.failed_critical()
    assert main.why() == "FINE"


def test_nested_timeout(aio):
    # a critical nested scheduler that times out raises TimeoutError ...
    sub = aio.Scheduler(aio.Job(sleeper(2), label="long"), timeout=0.1, label="sub")
    main = aio.Scheduler(sub, critical=False)
    ok, elapsed = timed(main.run)
    assert ok is False and elapsed < 0.5
    assert main.failed_critical()
    assert isinstance(sub.raised_exception(), TimeoutError)
    # ... a non-critical one just returns False
    sub = aio.Scheduler(aio.Job(sleeper(2), label="long"), timeout=0.1, label="sub", critical=False)
    after = aio.Job(sleeper(0.01, "after"), required=sub)
    main = aio.Scheduler(sub, after)
    ok, elapsed = timed(main.run)
    assert ok is True and elapsed < 0.5
    assert sub.result() is False and sub.failed_time_out()
    assert after.result() == "after"


def test_nested_window_applies_to_its_jobs_only(aio):
    state = dict(current=0, peak=0)

    async def counted(delay):
        state["current"] += 1
        state["peak"] = max(state["peak"], state["current"])
        try:
            await asyncio.sleep(delay)
        finally:
            state["current"] -= 1

    sub = aio.Scheduler(*[aio.Job(counted(0.05)) for _ in range(4)], jobs_window=1, label="sub")
    free = [aio.Job(sleeper(0.1)) for _ in range(3)]
    main = aio.Scheduler(sub, *free)
    ok, elapsed = timed(main.run)
    assert ok is True
    assert state["peak"] == 1
    assert 0.19 <= elapsed < 0.4


# ---------------------------------------------------------------------------
# jobs_window
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("window", [None, 0, 2])
def test_jobs_window_limits(aio, window):
    state = dict(current=0, peak=0)

    async def counted(delay):
        state["current"] += 1
        state["peak"] = max(state["peak"], state["current"])
        try:
            await asyncio.sleep(delay)
        finally:
            state["current"] -= 1

    s = aio.Scheduler(*[aio.Job(counted(0.1)) for _ in range(6)], jobs_window=window)
    ok, elapsed = timed(s.run)
    assert ok is True
    if window:
        assert state["peak"] == window
        assert 0.29 <= elapsed < 0.5
    else:
        assert state["peak"] == 6
        assert 0.09 <= elapsed < 0.3


# ---------------------------------------------------------------------------
# custom jobs, PrintJob, shutdown
# ---------------------------------------------------------------------------
def test_abstract_job_subclass_and_shutdown(aio, capsys, helpers):
    calls = []

    class MyJob(aio.AbstractJob):
        def __init__(self, value, **kwds):
            self.value = value
            super().__init__(**kwds)

        async def co_run(self):
            calls.append(("run", self.value))
            await asyncio.sleep(0.01)
            return self.value * 2

        async def co_shutdown(self):
            calls.append(("shutdown", self.value))

        def text_label(self):
            return f"my job {self.value}"

    j1, j2 = MyJob(1), MyJob(2, label="explicit", critical=False)
    s = aio.Scheduler(j1, MyJob(3, required=j1), j2)
    assert s.run() is True
    assert sorted(c for c in calls if c[0] == "run") == [("run", 1), ("run", 2), ("run", 3)]
    assert j1.result() == 2 and j2.result() == 4
    s.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    # label overrides text_label(); the class name is shown
    assert set(jobs) == {"my job 1", "my job 3", "explicit"}
    assert all(job["cls"] == "MyJob" for job in jobs.values())
    # every job receives co_shutdown() exactly once by the time shutdown()
    # returns (asynciojobs already sends it at the end of co_run())
    s.shutdown()
    assert sorted(c for c in calls if c[0] == "shutdown") == [("shutdown", 1), ("shutdown", 2), ("shutdown", 3)]


def test_job_coshutdown(aio):
    calls = []

    async def on_shutdown():
        calls.append("shutdown")

    j = aio.Job(sleeper(0.01, 5), coshutdown=on_shutdown())
    s = aio.Scheduler(j)
    assert s.run() is True
    s.shutdown()
    assert j.result() == 5
    assert calls == ["shutdown"]


def test_print_job(aio, capsys):
    p = aio.PrintJob("hello", "world", sleep=0.05, label="printer")
    q = aio.PrintJob("after", required=p)
    s = aio.Scheduler(p, q)
    capsys.readouterr()
    ok, elapsed = timed(s.run)
    assert ok is True
    assert 0.05 <= elapsed < 0.3
    out = capsys.readouterr().out
    assert "hello world" in out and "after" in out
    assert out.index("hello world") < out.index("after")
    assert p.result() is None


# ===========================================================================
# Known asynciojobs defects that dojob.aio must fix.
# These run only against dojob (deselected when DOJOB_AIO_IMPL=asynciojobs).
# ===========================================================================


# (1) jobs_window leaks a slot when a job raises ---------------------------
@pytest.mark.dojob_only
@pytest.mark.parametrize("window", [1, 2])
def test_window_slot_is_released_when_a_job_raises(aio, window):
    """asynciojobs: with jobs_window=1, one failing non-critical job keeps its
    slot forever, so the rest stalls until the timeout (or forever)."""
    booms = [aio.Job(raiser(0.01, f"boom{i}"), critical=False, label=f"boom{i}") for i in range(window)]
    rest = [aio.Job(sleeper(0.02, i), critical=False, label=f"j{i}", required=booms) for i in range(3)]
    s = aio.Scheduler(*booms, *rest, jobs_window=window, timeout=1.0, critical=False)
    ok, elapsed = timed(s.run)
    assert ok is True
    assert elapsed < 0.4, elapsed  # << timeout
    assert [j.result() for j in rest] == [0, 1, 2]
    assert all(isinstance(b.raised_exception(), Boom) for b in booms)


@pytest.mark.dojob_only
def test_window_slot_is_released_in_a_sequence(aio):
    boom = aio.Job(raiser(0.01), critical=False, label="boom")
    after = [aio.Job(sleeper(0.01, i), label=f"j{i}") for i in range(3)]
    s = aio.Scheduler(aio.Sequence(boom, *after), jobs_window=1, timeout=1.0)
    ok, elapsed = timed(s.run)
    assert ok is True and elapsed < 0.4, elapsed
    assert [j.result() for j in after] == [0, 1, 2]


# (2) no "coroutine ... was never awaited" for jobs that never start --------
def never_awaited_warnings(scenario):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scenario()
        gc.collect()
        gc.collect()
    return [
        str(w.message) for w in caught if issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message)
    ]


@pytest.mark.dojob_only
def test_no_never_awaited_warning_after_critical_abort(aio):
    def scenario():
        f1 = aio.Job(sleeper(0.01), label="begin")
        f2 = aio.Job(raiser(0.01), label="boom")
        f3 = aio.Job(sleeper(0.01), label="end")
        s = aio.Scheduler(aio.Sequence(f1, f2, f3), critical=False)
        assert s.run() is False
        assert not f3.is_running() and not f3.is_done()

    assert never_awaited_warnings(scenario) == []


@pytest.mark.dojob_only
def test_no_never_awaited_warning_after_timeout(aio):
    def scenario():
        # with a window of 1, one of the two entry jobs is still waiting for
        # a slot when the timeout triggers, and 'last' never gets started
        long1 = aio.Job(sleeper(1), label="long1")
        long2 = aio.Job(sleeper(1), label="long2")
        last = aio.Job(sleeper(0), label="last", required=(long1, long2))
        s = aio.Scheduler(long1, long2, last, jobs_window=1, timeout=0.05, critical=False)
        assert s.run() is False

    assert never_awaited_warnings(scenario) == []


@pytest.mark.dojob_only
def test_no_never_awaited_warning_with_critical_scheduler(aio):
    def scenario():
        s = aio.Scheduler(aio.Sequence(aio.Job(raiser(0.01)), aio.Job(sleeper(0))))
        with pytest.raises(Boom):
            s.run()

    assert never_awaited_warnings(scenario) == []


# (3) the timeout bounds all non-forever jobs, nested ones included --------
@pytest.mark.dojob_only
def test_timeout_bounds_jobs_in_nested_schedulers(aio):
    """asynciojobs: when the outer scheduler times out, the jobs of a nested
    scheduler are left running in the background (and complete later)."""
    flags = {}
    inner = aio.Scheduler(aio.Job(cancellable(0.4, flags, "inner"), label="inner"), label="nested", critical=False)
    outer = aio.Scheduler(inner, aio.Job(cancellable(0.4, flags, "outer"), label="outer"), timeout=0.15, critical=False)

    async def main():
        begin = time.perf_counter()
        ok = await outer.co_run()
        elapsed = time.perf_counter() - begin
        at_return = dict(flags)
        await asyncio.sleep(0.45)  # past the jobs' natural end
        return ok, elapsed, at_return, dict(flags)

    ok, elapsed, at_return, later = asyncio.run(main())
    assert ok is False
    assert 0.14 <= elapsed < 0.4, elapsed
    assert outer.failed_time_out()
    assert at_return == {"inner": "cancelled", "outer": "cancelled"}
    assert later == at_return


# (4) retries: Job(coroutine_function, tries=..., retry_delay=...) ----------
def flaky(name, failures, log, result, duration=0.01):
    """A zero-argument function returning a fresh awaitable at each call;
    the first `failures` attempts raise Boom."""
    calls = []

    def factory():
        calls.append(name)
        attempt = len(calls)

        async def one_attempt():
            log.append((name, attempt, time.perf_counter()))
            await asyncio.sleep(duration)
            if attempt <= failures:
                raise Boom(f"{name} attempt {attempt}")
            return result

        return one_attempt()

    return factory, calls


@pytest.mark.dojob_only
def test_retries_round_robin(aio):
    log = []
    fa, calls_a = flaky("a", 2, log, "A")
    fb, calls_b = flaky("b", 2, log, "B")
    a = aio.Job(fa, tries=3, retry_delay=0.05, label="a")
    b = aio.Job(fb, tries=3, retry_delay=0.05, label="b")
    s = aio.Scheduler(a, b)
    ok, elapsed = timed(s.run)
    assert ok is True
    assert (a.result(), b.result()) == ("A", "B")
    assert not a.raised_exception() and not b.raised_exception()
    assert len(calls_a) == 3 and len(calls_b) == 3
    # round-robin: every job's k-th try comes before any (k+1)-th try
    attempts = [attempt for _, attempt, _ in sorted(log, key=lambda x: x[2])]
    assert attempts == [1, 1, 2, 2, 3, 3]
    # retry_delay is honoured between the tries of one job
    for name in "ab":
        starts = [t for n, _, t in log if n == name]
        assert all(later - earlier >= 0.05 for earlier, later in zip(starts, starts[1:]))
    assert 0.1 <= elapsed < 0.5


@pytest.mark.dojob_only
def test_retries_round_robin_with_window_of_one(aio):
    """With a single slot, a failed job does not get retried before the other
    retrying job has had its turn."""
    log = []
    fa, calls_a = flaky("a", 2, log, "A")
    fb, calls_b = flaky("b", 2, log, "B")
    a = aio.Job(fa, tries=3, retry_delay=0.05, label="a")
    b = aio.Job(fb, tries=3, retry_delay=0.05, label="b")
    s = aio.Scheduler(a, b, jobs_window=1)
    assert s.run() is True
    assert (a.result(), b.result()) == ("A", "B")
    ordered = sorted(log, key=lambda x: x[2])
    assert [attempt for _, attempt, _ in ordered] == [1, 1, 2, 2, 3, 3]
    names = [name for name, _, _ in ordered]
    assert all(n1 != n2 for n1, n2 in zip(names, names[1:]))


@pytest.mark.dojob_only
def test_retries_exhausted(aio):
    log = []
    fa, calls_a = flaky("a", 99, log, "never")
    a = aio.Job(fa, tries=2, retry_delay=0.02, critical=False, label="a")
    after = aio.Job(sleeper(0.01, "after"), label="after", required=a)
    s = aio.Scheduler(a, after)
    assert s.run() is True  # a is not critical
    assert len(calls_a) == 2
    exc = a.raised_exception()
    assert isinstance(exc, Boom) and str(exc) == "a attempt 2"
    assert after.result() == "after"


@pytest.mark.dojob_only
def test_job_from_coroutine_function_without_retries(aio):
    log = []
    fa, calls_a = flaky("a", 0, log, "once")
    a = aio.Job(fa, label="a")
    assert aio.Scheduler(a).run() is True
    assert a.result() == "once" and len(calls_a) == 1
