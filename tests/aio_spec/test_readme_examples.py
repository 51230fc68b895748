"""The asynciojobs README, example by example, run with the README's code.

Durations are the README's own (or scaled down when the README uses 0.5 s
per job); timings are asserted with generous margins.

Reference: /work/shared/seeds/000_eb338ba5950b36a3.txt (rendered README) and
001_1a8486729a59a72f.txt (the same notebook, ``await s.co_run()`` style).
"""

import asyncio
import os
import subprocess
import time

import pytest


def timed(func, *args, **kwds):
    """Returns (result, elapsed seconds)."""
    begin = time.perf_counter()
    result = func(*args, **kwds)
    return result, time.perf_counter() - begin


def by_kind(events):
    """{(arrow, timeout): seconds} from in_out_events()."""
    result = {}
    for seconds, arrow, timeout in events:
        assert (arrow, timeout) not in result, events
        result[(arrow, timeout)] = seconds
    return result


# ---------------------------------------------------------------------------
# Watch
# ---------------------------------------------------------------------------
def test_watch_readme(aio, capsys):
    watch = aio.Watch()
    time.sleep(0.05)
    watch.print_elapsed("some")
    out = capsys.readouterr().out
    # creation prints "000.000 " + " \n"; print_elapsed prints "SSS.MMM some"
    lines = out.splitlines()
    assert lines[0].startswith("000.0")
    assert lines[-1].endswith(" some")
    elapsed = float(lines[-1].split()[0])
    assert 0.04 <= elapsed < 0.5
    # elapsed() is the same 7-character SSS.MMM string, seconds() a float
    assert len(watch.elapsed()) == 7 and watch.elapsed()[3] == "."
    assert 0.04 <= watch.seconds() < 0.5
    watch.reset()
    assert watch.seconds() < 0.04


# ---------------------------------------------------------------------------
# Example A: running in parallel
# ---------------------------------------------------------------------------
def test_example_a_parallel(aio, readme, helpers, capsys):
    Job, Scheduler = aio.Job, aio.Scheduler
    in_out, watch = readme.in_out, readme.watch

    a1, a2, a3 = (
        Job(in_out(0.1)),
        Job(in_out(0.2)),
        Job(in_out(0.25)),
    )

    watch.reset()
    sa = Scheduler(a1, a2, a3)
    assert repr(sa) == "Scheduler with 0 done + 0 ongoing + 3 idle = 3 job(s)"
    assert len(sa) == 3

    ok, elapsed = timed(sa.run)
    assert ok is True
    # total duration is the max (0.25), not the sum (0.55)
    assert 0.24 <= elapsed < 0.45, elapsed

    events = helpers.in_out_events(capsys.readouterr().out)
    assert len(events) == 6
    # all 3 coroutines start at once, before any of them ends
    assert [arrow for _, arrow, _ in events[:3]] == ["->"] * 3
    ends = [(t, arg) for t, arrow, arg in events if arrow == "<-"]
    assert [arg for _, arg in ends] == [0.1, 0.2, 0.25]
    kinds = by_kind(events)
    for arg in (0.1, 0.2, 0.25):
        assert kinds[("->", arg)] < 0.1
        assert arg - 0.01 <= kinds[("<-", arg)] < arg + 0.15

    # retrieving individual results: the README's a1.result() == 100.0
    assert a1.result() == 100.0
    assert [a.result() for a in (a1, a2, a3)] == [100.0, 200.0, 250.0]
    assert repr(sa) == "Scheduler with 3 done + 0 ongoing + 0 idle = 3 job(s)"


def test_example_a_other_styles_co_run(aio, readme, helpers, capsys):
    """Scheduler first, then Job(..., scheduler=s) and s.add(); run with the
    notebook's ``await sa2.co_run()`` style."""
    Job, Scheduler = aio.Job, aio.Scheduler
    in_out, watch = readme.in_out, readme.watch

    # if it is more to your taste, you can as well
    # create the scheduler first
    sa2 = Scheduler()

    # and then add jobs in it as you create them
    a1, a2 = Job(in_out(0.1), scheduler=sa2), Job(in_out(0.2), scheduler=sa2)

    # or add them later on
    a3 = Job(in_out(0.25))
    sa2.add(a3)
    assert len(sa2) == 3
    assert set(sa2) == {a1, a2, a3}
    assert repr(sa2) == "Scheduler with 0 done + 0 ongoing + 3 idle = 3 job(s)"

    async def main():
        watch.reset()
        return await sa2.co_run()

    ok, elapsed = timed(asyncio.run, main())
    assert ok is True
    assert 0.24 <= elapsed < 0.45, elapsed
    assert [a.result() for a in (a1, a2, a3)] == [100.0, 200.0, 250.0]
    assert len(helpers.in_out_events(capsys.readouterr().out)) == 6


def test_example_a_update_and_constructor_styles(aio, readme):
    """The other ways to populate a scheduler are equivalent."""
    Job, Scheduler, Sequence = aio.Job, aio.Scheduler, aio.Sequence
    in_out = readme.in_out

    j1, j2, j3 = Job(in_out(0.05)), Job(in_out(0.05)), Job(in_out(0.05))
    s = Scheduler()
    # update() takes a collection of jobs or sequences, returns the scheduler
    assert s.update([j1, Sequence(j2, j3)]) is s
    assert len(s) == 3 and set(s) == {j1, j2, j3}
    assert s.run() is True
    assert [j.result() for j in (j1, j2, j3)] == [50.0, 50.0, 50.0]


# ---------------------------------------------------------------------------
# Example B and B': requirements, Sequence
# ---------------------------------------------------------------------------
def check_example_b_timeline(events):
    kinds = by_kind(events)
    assert len(events) == 6
    # b1 (0.1) and b3 (0.25) start right away
    assert kinds[("->", 0.1)] < 0.08
    assert kinds[("->", 0.25)] < 0.08
    # b2 (0.2) only starts once b1 is over
    assert kinds[("->", 0.2)] >= kinds[("<-", 0.1)]
    assert 0.09 <= kinds[("->", 0.2)] < 0.25
    # b3 ends in the middle of b2
    assert kinds[("->", 0.2)] < kinds[("<-", 0.25)] < kinds[("<-", 0.2)]
    assert 0.29 <= kinds[("<-", 0.2)] < 0.5
    # printed order
    order = [(arrow, arg) for _, arrow, arg in events]
    assert order.index(("<-", 0.1)) < order.index(("->", 0.2))
    assert order[-1] == ("<-", 0.2)


def test_example_b_requires(aio, readme, helpers, capsys):
    Job, Scheduler = aio.Job, aio.Scheduler
    in_out, watch = readme.in_out, readme.watch

    b1, b2, b3 = (Job(in_out(0.1), label="b1"), Job(in_out(0.2), label="b2"), Job(in_out(0.25)))

    b2.requires(b1)

    watch.reset()

    # with this setup we are certain that b3 ends in the middle of b2
    sb = Scheduler(b1, b2, b3)
    ok, elapsed = timed(sb.run)
    assert ok is True
    assert 0.29 <= elapsed < 0.5, elapsed
    check_example_b_timeline(helpers.in_out_events(capsys.readouterr().out))

    # inspecting
    assert b1.is_done() is True
    assert not b3.raised_exception()  # README prints None
    assert [b.result() for b in (b1, b2, b3)] == [100.0, 200.0, 250.0]

    # sb.list() - see the README for the expected output:
    # 1 ⚠ ☉ ☓   <Job `b1`> [[ -> 100.0]]
    # 2 ⚠ ☉ ☓   <Job `b2`> [[ -> 200.0]] requires={1}
    # 3 ⚠ ☉ ☓   <Job `Job[in_out (...)]`> [[ -> 250.0]]
    sb.list()
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 3
    jobs = helpers.parse_listing(out)
    assert set(jobs) == {"b1", "b2", "Job[in_out (...)]"}
    assert jobs["b2"]["requires"] == [jobs["b1"]["rank"]]
    assert jobs["b1"]["requires"] == [] and jobs["Job[in_out (...)]"]["requires"] == []
    assert int(jobs["b1"]["rank"]) < int(jobs["b2"]["rank"])
    for label, value in (("b1", "100.0"), ("b2", "200.0"), ("Job[in_out (...)]", "250.0")):
        line = jobs[label]["line"]
        assert f"<Job `{label}`>" in line
        assert f"[[ -> {value}]]" in line
        for symbol in "⚠☉☓":  # critical, went fine, complete
            assert symbol in line, line
        for symbol in "★↺⚐⚑∞":
            assert symbol not in line, line


def test_example_b_prime_sequence(aio, readme, helpers, capsys):
    Job, Scheduler, Sequence = aio.Job, aio.Scheduler, aio.Sequence
    in_out, watch = readme.in_out, readme.watch

    sb2 = Scheduler(Sequence(Job(in_out(0.1), label="bp1"), Job(in_out(0.2), label="bp2")), Job(in_out(0.25)))
    assert len(sb2) == 3

    watch.reset()
    ok, elapsed = timed(sb2.run)
    assert ok is True
    assert 0.29 <= elapsed < 0.5, elapsed
    check_example_b_timeline(helpers.in_out_events(capsys.readouterr().out))

    sb2.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    assert jobs["bp2"]["requires"] == [jobs["bp1"]["rank"]]
    assert jobs["bp1"]["requires"] == []


# ---------------------------------------------------------------------------
# Example C: forever jobs
# ---------------------------------------------------------------------------
def test_example_c_forever(aio, readme, helpers, capsys):
    Job, Scheduler = aio.Job, aio.Scheduler
    in_out_bus, monitor_loop, watch = readme.in_out_bus, readme.monitor_loop, readme.watch

    message_bus = asyncio.Queue()

    c1, c2, c3, c4 = (
        Job(in_out_bus(0.2, message_bus), label="c1"),
        Job(in_out_bus(0.4, message_bus), label="c2"),
        Job(in_out_bus(0.3, message_bus), label="c3"),
        Job(monitor_loop(message_bus), forever=True, label="monitor"),
    )

    c3.requires(c1)
    watch.reset()

    sc = Scheduler(c1, c2, c3, c4)
    ok, elapsed = timed(sc.run)
    # run() terminates as soon as all the non-forever jobs are complete
    assert ok is True
    assert 0.49 <= elapsed < 0.75, elapsed

    out = capsys.readouterr().out
    bus = [line.split(None, 2) for line in out.splitlines() if line.startswith("BUS: ")]
    messages = [(float(t), rest) for _, t, rest in bus]
    texts = [rest for _, rest in messages]
    # the monitor received and printed the messages, in order;
    # the very last one may or may not make it before the monitor is cancelled
    expected_first = ["-> in_out(0.2)", "-> in_out(0.4)", "<- in_out(0.2)", "-> in_out(0.3)", "<- in_out(0.4)"]
    assert sorted(texts[:2]) == sorted(expected_first[:2])
    assert texts[2:5] == expected_first[2:5]
    assert texts[5:] in ([], ["<- in_out(0.3)"])
    times = dict((rest, t) for t, rest in messages)
    assert 0.19 <= times["<- in_out(0.2)"] <= times["-> in_out(0.3)"] < 0.3
    assert 0.39 <= times["<- in_out(0.4)"] < 0.5

    assert [c.result() for c in (c1, c2, c3)] == [2.0, 4.0, 3.0]
    # the forever job got cancelled: no return value available
    assert not c4.is_done()
    assert not c4.raised_exception()
    with pytest.raises(ValueError):
        c4.result()

    # 4 ⚠ ☉ ↺ ∞ <Job `monitor`> [not done]
    sc.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    assert set(jobs) == {"c1", "c2", "c3", "monitor"}
    assert jobs["c3"]["requires"] == [jobs["c1"]["rank"]]
    monitor = jobs["monitor"]["line"]
    for symbol in "↺∞":
        assert symbol in monitor, monitor
    assert "☓" not in monitor and "[not done]" in monitor
    for label in ("c1", "c2", "c3"):
        assert "☓" in jobs[label]["line"] and "∞" not in jobs[label]["line"]
    assert "[[ -> 3.0]]" in jobs["c3"]["line"]


# ---------------------------------------------------------------------------
# Example D: global timeout
# ---------------------------------------------------------------------------
def test_example_d_timeout(aio, readme, capsys):
    Job, Scheduler = aio.Job, aio.Scheduler
    forever, watch = readme.forever, readme.watch

    j = Job(forever(), forever=True)
    watch.reset()
    sd = Scheduler(j, timeout=0.25, critical=False)
    ok, elapsed = timed(sd.run)
    assert ok is False
    assert 0.24 <= elapsed < 0.45, elapsed

    loops = [line for line in capsys.readouterr().out.splitlines() if ": forever " in line]
    # forever 0 at 0.0, forever 1 at 0.1, forever 2 at 0.2
    assert 2 <= len(loops) <= 4, loops
    assert loops[0].endswith("forever 0")

    assert sd.failed_time_out()
    assert not sd.failed_critical()
    why = sd.why()
    assert isinstance(why, str) and why and why != "FINE"
    assert "time" in why.lower()

    # ⚠ ☉ ↺ ∞ <Job `Job[forever (...)]`> [not done]
    text = repr(j)
    assert "<Job `Job[forever (...)]`>" in text
    for symbol in "⚠↺∞":
        assert symbol in text, text
    assert "[not done]" in text
    assert not j.is_done()


def test_example_d_critical_scheduler_raises_timeout_error(aio, readme):
    """ "run() will ... return False or raise TimeoutError if the timeout
    triggers" - the latter for a critical scheduler (the default)."""
    Job, Scheduler = aio.Job, aio.Scheduler
    j = Job(readme.forever(), forever=True)
    sd = Scheduler(j, timeout=0.15)  # critical by default
    begin = time.perf_counter()
    with pytest.raises(TimeoutError):
        sd.run()
    assert 0.14 <= time.perf_counter() - begin < 0.4
    assert sd.failed_time_out()


# ---------------------------------------------------------------------------
# Examples E and F: exceptions in non-critical and critical jobs
# ---------------------------------------------------------------------------
def test_example_e_non_critical(aio, readme, helpers, capsys):
    Job, Scheduler, Sequence = aio.Job, aio.Scheduler, aio.Sequence
    in_out, boom, watch = readme.in_out, readme.boom, readme.watch

    e1 = Job(in_out(0.2), label="begin")
    e2 = Job(boom(0.2), label="boom", critical=False)
    e3 = Job(in_out(0.3), label="end")

    se = Scheduler(Sequence(e1, e2, e3), critical=False)
    # with these settings, jobs 'end' is not hindered
    # by the middle job raising an exception
    watch.reset()
    ok, elapsed = timed(se.run)
    assert ok is True
    assert 0.69 <= elapsed < 1.0, elapsed

    kinds = by_kind(helpers.in_out_events(capsys.readouterr().out))
    # 'end' starts once 'boom' has raised, at ~0.4s
    assert 0.39 <= kinds[("->", 0.3)] < 0.6
    assert kinds[("<-", 0.2)] < kinds[("->", 0.3)]

    assert e3.result() == 300.0
    exc = e2.raised_exception()
    assert isinstance(exc, Exception) and str(exc) == "boom after 0.2s"
    assert not se.failed_critical() and not se.failed_time_out()
    assert se.why() == "FINE"

    # 2   ★ ☓   <Job `boom`> !! exception => Exception:boom after 0.2s!! requires={1}
    # 3 ⚠ ☉ ☓   <Job `end`> [[ -> 300.0]] requires={2}
    se.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    assert jobs["boom"]["requires"] == [jobs["begin"]["rank"]]
    assert jobs["end"]["requires"] == [jobs["boom"]["rank"]]
    boom_line = jobs["boom"]["line"]
    assert "★" in boom_line and "☓" in boom_line and "⚠" not in boom_line
    assert "!! exception => Exception:boom after 0.2s!!" in boom_line
    assert "[[ -> 300.0]]" in jobs["end"]["line"]


def test_example_f_critical(aio, readme, helpers, capsys):
    Job, Scheduler, Sequence = aio.Job, aio.Scheduler, aio.Sequence
    in_out, boom, watch = readme.in_out, readme.boom, readme.watch

    f1 = Job(in_out(0.2), label="begin")
    f2 = Job(boom(0.2), label="boom", critical=True)
    f3 = Job(in_out(0.3), label="end")

    sf = Scheduler(Sequence(f1, f2, f3), critical=False)
    # with this setup, orchestration stops immediately
    # when the exception triggers in boom()
    # and the last job does not run at all
    watch.reset()
    ok, elapsed = timed(sf.run)
    assert ok is False
    assert 0.39 <= elapsed < 0.6, elapsed

    events = helpers.in_out_events(capsys.readouterr().out)
    assert [(arrow, arg) for _, arrow, arg in events] == [("->", 0.2), ("<-", 0.2)]

    assert sf.failed_critical()
    assert not sf.failed_time_out()
    why = sf.why()
    assert isinstance(why, str) and why and why != "FINE"
    assert "critical" in why.lower()
    assert str(f2.raised_exception()) == "boom after 0.2s"
    # 'end' has not even started
    assert not f3.is_done() and not f3.is_running()
    assert not f3.raised_exception()

    # 2 ⚠ ★ ☓   <Job `boom`> !! CRIT. EXC. => Exception:boom after 0.2s!! requires={1}
    # 3 ⚠   ⚐   <Job `end`> [not done] requires={2}
    sf.list()
    jobs = helpers.parse_listing(capsys.readouterr().out)
    boom_line = jobs["boom"]["line"]
    assert "⚠" in boom_line and "★" in boom_line and "☓" in boom_line
    assert "!! CRIT. EXC. => Exception:boom after 0.2s!!" in boom_line
    end_line = jobs["end"]["line"]
    assert "⚐" in end_line and "[not done]" in end_line and "☓" not in end_line
    assert jobs["end"]["requires"] == [jobs["boom"]["rank"]]


# ---------------------------------------------------------------------------
# Limiting the number of simultaneous jobs
# ---------------------------------------------------------------------------
def test_jobs_window(aio, readme, capsys):
    Job, Scheduler = aio.Job, aio.Scheduler
    aprint, watch = readme.aprint, readme.watch

    # the README's code, with 0.1s jobs instead of 0.5s
    s = Scheduler(jobs_window=4)
    for i in range(1, 9):
        s.add(Job(aprint("{} {}-th job".format(watch.elapsed(), i), 0.1)))
    # so running them with a window of 4 means approx. 0.2 second
    watch.reset()
    ok, elapsed = timed(s.run)
    assert ok is True
    assert 0.19 <= elapsed < 0.4, elapsed
    out = capsys.readouterr().out
    assert sorted(line.split()[1] for line in out.splitlines() if "-th job" in line) == sorted(
        f"{i}-th" for i in range(1, 9)
    )

    # and now measuring how many run at once
    state = dict(current=0, peak=0, count=0)

    async def counted(delay):
        state["current"] += 1
        state["count"] += 1
        state["peak"] = max(state["peak"], state["current"])
        try:
            await asyncio.sleep(delay)
        finally:
            state["current"] -= 1

    s = Scheduler(jobs_window=4)
    for _ in range(8):
        s.add(Job(counted(0.1)))
    ok, elapsed = timed(s.run)
    assert ok is True
    assert state["count"] == 8
    assert state["peak"] == 4
    assert 0.19 <= elapsed < 0.4, elapsed


# ---------------------------------------------------------------------------
# Nesting schedulers
# ---------------------------------------------------------------------------
def build_nested_readme(aio, aprint):
    Job, Scheduler, Sequence = aio.Job, aio.Scheduler, aio.Sequence
    delay = 0.05  # the README uses aprint's default of 0.5s

    # we start with the creation of an internal scheduler
    # that has a simple diamond structure
    sub_sched = Scheduler(label="critical nested", critical=True)
    subj1 = Job(aprint("subj1", delay), label="subj1", scheduler=sub_sched)
    subj2 = Job(aprint("subj2", delay), label="subj2", required=subj1, scheduler=sub_sched)
    subj3 = Job(aprint("subj3", delay), label="subj3", required=subj1, scheduler=sub_sched)
    Job(aprint("subj4", delay), label="subj4", required=(subj2, subj3), scheduler=sub_sched)

    # the main scheduler
    main_sched = Scheduler(
        Sequence(
            Job(aprint("main-start", delay), label="main-start"),
            # the way to graft the low-level logic in this main workflow
            # is to just use the ShcdulerJob instance as a job
            sub_sched,
            Job(aprint("main-end", delay), label="main-end"),
        )
    )
    return main_sched, sub_sched


def test_nested_schedulers_readme(aio, readme, helpers, capsys, tmp_path):
    main_sched, sub_sched = build_nested_readme(aio, readme.aprint)
    capsys.readouterr()
    assert len(main_sched) == 3 and len(sub_sched) == 4
    assert isinstance(sub_sched, aio.AbstractJob)

    # list() shows the contents of sub-schedulers
    # 1 ⚠   ⚐   <Job `main-start`> [not done]
    # 2 ⚠   ⚐   <Scheduler `critical nested`> [not done] requires={1} -> entries={3}
    # 3 ⚠   ⚐   > <Job `subj1`> [not done]
    # 4 ⚠   ⚐   > <Job `subj2`> [not done] requires={3}
    # 5 ⚠   ⚐   > <Job `subj3`> [not done] requires={3}
    # 6 ⚠   ⚐   > <Job `subj4`> [not done] requires={4, 5}
    # 2 --end-- < <Scheduler `critical nested`> exits={6}
    # 7 ⚠   ⚐   <Job `main-end`> [not done] requires={2}
    main_sched.list()
    out = capsys.readouterr().out
    jobs = helpers.parse_listing(out)
    assert set(jobs) == {"main-start", "critical nested", "subj1", "subj2", "subj3", "subj4", "main-end"}
    assert jobs["critical nested"]["cls"] == "Scheduler"
    rank = {label: job["rank"] for label, job in jobs.items()}
    assert len(set(rank.values())) == 7
    assert jobs["critical nested"]["requires"] == [rank["main-start"]]
    assert jobs["main-end"]["requires"] == [rank["critical nested"]]
    assert jobs["subj2"]["requires"] == [rank["subj1"]]
    assert jobs["subj3"]["requires"] == [rank["subj1"]]
    assert sorted(jobs["subj4"]["requires"]) == sorted([rank["subj2"], rank["subj3"]])
    # nested jobs are shown indented with '>', and the nested scheduler is
    # closed by an --end-- line
    for label in ("subj1", "subj2", "subj3", "subj4"):
        assert "> <Job" in jobs[label]["line"]
    for label in ("main-start", "critical nested", "main-end"):
        assert "> <" not in jobs[label]["line"]
    end_lines = [line for line in out.splitlines() if "--end--" in line]
    assert len(end_lines) == 1 and "critical nested" in end_lines[0]
    assert len(out.strip().splitlines()) == 8
    # all idle, all critical
    for job in jobs.values():
        assert "⚐" in job["line"] and "⚠" in job["line"], job["line"]

    # a png can be produced out of the dot file
    dotfile = tmp_path / "readme-nested.dot"
    main_sched.export_as_dotfile(str(dotfile))
    pngfile = tmp_path / "readme-nested.png"
    subprocess.run(["dot", "-Tpng", str(dotfile), "-o", str(pngfile)], check=True)
    assert pngfile.stat().st_size > 0

    ok, elapsed = timed(main_sched.run)
    assert ok is True
    # 4 levels: main-start, subj1, subj2 || subj3, subj4, main-end
    assert 0.24 <= elapsed < 0.5, elapsed
    printed = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line in ("main-start", "subj1", "subj2", "subj3", "subj4", "main-end")
    ]
    assert printed[:2] == ["main-start", "subj1"]
    assert sorted(printed[2:4]) == ["subj2", "subj3"]
    assert printed[4:] == ["subj4", "main-end"]
    # a nested scheduler is a job whose result is its own run() outcome
    assert sub_sched.is_done() and sub_sched.result() is True


# ---------------------------------------------------------------------------
# Graphical representation
# ---------------------------------------------------------------------------
def test_graph_and_dotfile_readme(aio, readme, tmp_path):
    Job, Scheduler = aio.Job, aio.Scheduler
    aprint = readme.aprint

    # and a simple scheduler with an initialization and 2 concurrent tasks
    s = Scheduler()
    j1 = Job(aprint("j1", 0.01), label="init", critical=False, scheduler=s)
    Job(aprint("j2", 0.01), label="critical job", critical=True, scheduler=s, required=j1)
    Job(aprint("j3", 0.01), label="forever job", critical=False, forever=True, scheduler=s, required=j1)

    g = s.graph()
    import graphviz

    # the README says graphviz.Digraph; asynciojobs 0.21.3 returns a
    # graphviz.Source; both carry the DOT text and can be rendered
    assert isinstance(g, (graphviz.Digraph, graphviz.Source))
    assert "digraph" in g.source
    for label in ("init", "critical job", "forever job"):
        assert label in g.source

    # export_as_dotfile() does not need graphviz
    dotname = str(tmp_path / "readme-dotfile.dot")
    message = s.export_as_dotfile(dotname)
    assert isinstance(message, str) and dotname in message
    with open(dotname) as feed:
        dot_text = feed.read()
    assert dot_text.lstrip().startswith("digraph")
    # 2 requirement edges, labels shown
    assert dot_text.count("->") == 2
    for label in ("init", "critical job", "forever job"):
        assert label in dot_text

    # legend: critical jobs have a red border, forever jobs a dotted/dashed one
    def node_line(label):
        lines = [line for line in dot_text.splitlines() if label in line and "->" not in line]
        assert len(lines) == 1, dot_text
        return lines[0]

    assert "red" in node_line("critical job")
    assert "red" not in node_line("init") and "red" not in node_line("forever job")
    assert "dash" in node_line("forever job") or "dott" in node_line("forever job")
    assert "dash" not in node_line("init") and "dott" not in node_line("init")

    # which the dot program accepts
    pngname = str(tmp_path / "readme-dotfile.png")
    assert os.system(f"dot -Tpng {dotname} -o {pngname}") == 0
    assert os.path.getsize(pngname) > 0

    # a trick to produce a png file on a box that has graphviz pip-installed
    g.format = "png"
    rendered = g.render(str(tmp_path / "readme"))
    assert rendered.endswith("readme.png") and os.path.getsize(rendered) > 0

    # and the scheduler still runs fine afterwards
    assert s.run() is True
