"""``dojob run --every``: the reconcile loop, driven through the command line with real signals and files."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reconciling import Proc, env_for, write

from dojob.reconcile import FIRST_BACKOFF, HistoryDrift, InMemoryDrift, backoff, parse_interval

MOTD = """\
    import os
    import dojob

    class Dir(dojob.Job):
        def Check(self, *args, **kwargs):
            assert os.path.isdir("out"), "no out/"

        def Run(self, *args, **kwargs):
            os.mkdir("out")

    class Motd(dojob.Job):
        DEPS = [Dir]

        def Check(self, *args, **kwargs):
            assert os.path.exists("out/motd"), "no out/motd"

        def Run(self, *args, **kwargs):
            with open("out/motd", "w") as fh:
                fh.write("hello\\n")

        def Cleanup(self):
            with open("cleanups", "a") as fh:
                fh.write("Motd\\n")

    class Root(dojob.DummyJob):
        DEPS = [Motd]
"""

RUN_LINE = r"^run (\d+) at \d\d:\d\d:\d\d: "


def run_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(RUN_LINE, line)]


def cli(*args: str, cwd: Path, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=env or env_for(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def motd(tmp_path: Path) -> Path:
    write(tmp_path / "motd.py", MOTD)
    return tmp_path


# -- intervals and back-off ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1.5s", 1.5), ("2", 2), ("1d", 86400)],
)
def test_intervals(text, seconds):
    assert parse_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0", "0s", "-1s", "5x", "s", "1h-5m", "inf", "nan", "1e3", "1 h", "5m\n1h"])
def test_bad_intervals_are_refused(text):
    with pytest.raises(Exception, match="must be a duration > 0"):
        parse_interval(text)


@pytest.mark.parametrize("text", ["10000000000", "367d", "9000h"])
def test_an_interval_past_a_year_is_refused_not_a_crash_at_the_first_sleep(text):
    """``--every 10000000000`` was taken, then the loop's first sleep died of an OverflowError."""
    assert parse_interval("366d") == 366 * 86400
    with pytest.raises(Exception, match="--every must be at most 366 days"):
        parse_interval(text)


def test_jitter_may_be_zero_but_not_negative():
    assert parse_interval("0", option="--jitter", zero=True) == 0
    with pytest.raises(Exception, match="--jitter must be a duration >= 0"):
        parse_interval("-1", option="--jitter", zero=True)


def test_backoff_doubles_from_the_first_retry_up_to_the_interval():
    assert FIRST_BACKOFF <= 5  # the first retry comes within a few seconds
    assert [backoff(n, 60) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(1, 0.2) == 0.2  # never longer than the interval
    assert backoff(10_000, 300) == 300  # no overflow after many failures


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "0"], "--every must be a duration > 0"),
        (["--every", "5 parsecs"], "--every must be a duration > 0"),
        (["--every", "1s", "--max-runs", "0"], "expected a whole number >= 1"),
        (["--every", "1s", "--jitter=-2s"], "--jitter must be a duration >= 0"),
        (["--jitter", "1s"], "--jitter needs --every INTERVAL"),
        (["--max-runs", "2"], "--max-runs needs --every INTERVAL"),
        (["--metrics", ":0"], "--metrics needs --every INTERVAL"),
        (["--every", "1s", "--metrics", "localhost:99999"], "--metrics port must be 0-65535"),
        (["--every", "1s", "--metrics", "no port"], "--metrics must be HOST:PORT"),
    ],
)
def test_loop_usage_errors_exit_2_naming_the_problem(motd, args, message):
    out = cli("run", "motd.py:Root", *args, cwd=motd)
    assert out.returncode == 2, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert not (motd / "out").exists()  # nothing ran


def test_check_has_no_loop():
    out = cli("check", "x.py:Root", "--every", "1s", cwd=Path.cwd())
    assert out.returncode == 2 and "unrecognized arguments: --every" in out.stderr


# -- iterations -------------------------------------------------------------------------------------------


def test_max_runs_runs_n_iterations_each_a_full_run_one_line_each(tmp_path):
    write(
        tmp_path / "fresh.py",
        """\
        import json
        import dojob

        class Seen(dojob.Job):
            def Check(self, *args, **kwargs):
                with open("seen", "a") as fh:
                    fh.write(json.dumps({"storage": sorted(self.global_storage), "instance": id(self)}) + "\\n")
                self.global_storage["left-over"] = True
                Seen.calls = getattr(Seen, "calls", 0) + 1  # (not "checks": the typo check reads it as Check)

            def Run(self, *args, **kwargs):
                pass

        class Root(dojob.DummyJob):
            DEPS = [Seen]
        """,
    )
    t0 = time.monotonic()
    out = cli("run", "fresh.py:Root", "--every", "0.3s", "--max-runs", "3", cwd=tmp_path)
    took = time.monotonic() - t0
    assert out.returncode == 0, out
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and lines == run_lines(lines)  # one line per converged run, nothing else
    assert [re.match(RUN_LINE, line).group(1) for line in lines] == ["1", "2", "3"]
    assert lines[0].endswith("converged in " + lines[0].split("converged in ")[1])
    assert "2 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 0 interrupted; next run in 300 ms" in lines[0]
    assert "next run" not in lines[2]  # the last run says no next one
    seen = [json.loads(line) for line in (tmp_path / "seen").read_text().splitlines()]
    assert [s["storage"] for s in seen] == [[], [], []]  # a fresh global_storage each run
    assert took >= 0.6  # slept the interval twice


def test_the_graph_is_rebuilt_each_run_when_deps_change(tmp_path):
    write(
        tmp_path / "grow.py",
        """\
        import dojob

        class Extra(dojob.Job):
            def Check(self, *args, **kwargs):
                assert self.global_storage.get("ran"), "not yet"

            def Run(self, *args, **kwargs):
                self.global_storage["ran"] = True

        class Root(dojob.DummyJob):
            DEPS = []

            def Cleanup(self):
                if Extra not in Root.DEPS:
                    Root.DEPS.append(Extra)   # the next run's graph has one job more
        """,
    )
    out = cli("run", "grow.py:Root", "--every", "0.1s", "--max-runs", "2", cwd=tmp_path)
    assert out.returncode == 0, out
    lines = run_lines(out.stdout.splitlines())
    assert "1 ok, 0 changed" in lines[0]
    assert "1 ok, 1 changed" in lines[1]
    assert "    changed: Extra" in out.stdout


def test_drift_between_runs_is_reported_in_the_next_recap(motd):
    with Proc("run", "motd.py:Root", "--every", "1s", "--max-runs", "3", cwd=motd) as p:
        p.wait_for(r"^run 1 ")
        (motd / "out" / "motd").unlink()  # someone removed the file between two runs
        code = p.finish()
    assert code == 0, (p.out, p.err)
    out = p.out
    runs = run_lines(out)
    assert len(runs) == 3
    assert "1 ok, 2 changed" in runs[0]
    first_details = out[out.index(runs[0]) + 1 : out.index(runs[1])]
    assert first_details == ["    changed: Dir, Motd"]  # nothing had converged before: no drift
    assert "2 ok, 1 changed" in runs[1]
    second_details = out[out.index(runs[1]) + 1 : out.index(runs[2])]
    assert second_details == ["    drifted: Motd (converged in run 1)", "    changed: Motd"]
    assert out[-1] == runs[2] and "3 ok, 0 changed" in runs[2]  # converged again, quiet
    assert (motd / "cleanups").read_text() == "Motd\n" * 3  # each run's Cleanups ran


def test_in_memory_drift_ignores_interrupted_tries_and_runonly_jobs():
    import dojob

    calls = {"n": 0}

    class Once(dojob.RunonlyJob):
        def Run(self, *args, **kwargs):
            calls["n"] += 1

    class Flag(dojob.Job):
        def Check(self, *args, **kwargs):
            assert self.global_storage.get("set"), "unset"

        def Run(self, *args, **kwargs):
            self.global_storage["set"] = True

    class Root(dojob.DummyJob):
        DEPS = [Once, Flag]

    drift = InMemoryDrift()
    first = drift(dojob.run(Root), 1)
    second = drift(dojob.run(Root), 2)  # Flag changes again (fresh storage), Once runs again
    assert first.drifted == ()
    assert second.drifted == (("Flag", "run 1"),)
    assert calls["n"] == 2


def test_history_findings_on_the_report_are_preferred_to_the_in_memory_ones():
    import dojob
    from dojob.report import Report

    class Flag(dojob.Job):
        def Check(self, *args, **kwargs):
            assert self.global_storage.get("set"), "unset"

        def Run(self, *args, **kwargs):
            self.global_storage["set"] = True

    class Recorded(Report):  # what dojob.run(..., history=...) returns: a Report with .history
        __slots__ = ("history",)

    class StoreFindings:  # the fields the history store's findings have
        run_id, drift_base, drifted, flapping = 41, 17, ["Flag", "Gone"], ["Flag"]

    def recorded(report):
        out = Recorded(report.jobs, elapsed=report.elapsed, roots=report.roots, graph=report.graph)
        object.__setattr__(out, "history", StoreFindings())
        return out

    drift = HistoryDrift()
    assert drift(dojob.run(Flag), 1).drifted == ()
    found = drift(recorded(dojob.run(Flag)), 2)
    assert found.drifted == (("Flag", "history run 17"), ("Gone", "history run 17"))
    assert found.flapping == ("Flag",)
    StoreFindings.run_id = None  # the store could not record this run: compare in memory
    assert drift(recorded(dojob.run(Flag)), 3).drifted == (("Flag", "run 2"),)


def test_a_failed_run_backs_off_and_a_converged_one_waits_the_interval(tmp_path):
    write(
        tmp_path / "later.py",
        """\
        import os
        import time
        import dojob

        class Clock(dojob.Job):
            def Check(self, *args, **kwargs):
                with open("starts", "a") as fh:
                    fh.write(f"{time.monotonic()}\\n")

            def Run(self, *args, **kwargs):
                pass

        class Flaky(dojob.Job):
            TRIES = 1
            DEPS = [Clock]

            def Check(self, *args, **kwargs):
                n = len(open("runs").read().split()) if os.path.exists("runs") else 0
                assert n >= 3, f"not before the third run ({n})"

            def Run(self, *args, **kwargs):
                with open("runs", "a") as fh:
                    fh.write("run\\n")

        class Root(dojob.DummyJob):
            DEPS = [Flaky]
        """,
    )
    out = cli("run", "later.py:Root", "--every", "1.2s", "--max-runs", "4", cwd=tmp_path)
    assert out.returncode == 0, out
    runs = run_lines(out.stdout.splitlines())
    assert runs[0].endswith("; next run in 1 s (back-off after 1 failed run)")
    assert runs[1].endswith("; next run in 1.2 s (back-off after 2 failed runs)")  # 2 s, capped at the interval
    assert runs[2].endswith("; next run in 1.2 s")  # converged: the full interval
    assert "changed" in runs[2] and "3 ok, 0 changed" in runs[3]
    assert "FAILED  Flaky (1 try): AssertionError: not before the third run (1)" in out.stdout
    starts = [float(t) for t in (tmp_path / "starts").read_text().split()]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(gaps) == 3
    assert 0.9 <= gaps[0] < 1.2 + 3.0, gaps  # (generous: a loaded machine)
    assert 1.1 <= gaps[1] < 1.2 + 3.0, gaps
    assert 1.1 <= gaps[2] < 1.2 + 3.0, gaps


def test_a_loop_whose_last_run_failed_exits_1(tmp_path):
    write(
        tmp_path / "never.py",
        """\
        import dojob

        class Never(dojob.Job):
            TRIES = 1

            def Check(self, *args, **kwargs):
                raise RuntimeError("still broken")

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    out = cli("run", "never.py:Never", "--every", "0.2s", "--max-runs", "2", cwd=tmp_path)
    assert out.returncode == 1, out
    lines = out.stdout.splitlines()
    assert lines[0].startswith("run 1 at ") and "not converged in" in lines[0]
    assert lines[0].endswith("next run in 200 ms (back-off after 1 failed run)")
    assert lines[1] == "    FAILED  Never (1 try): RuntimeError: still broken"  # the full recap, indented


def test_jitter_lengthens_converged_sleeps_at_random(motd):
    out = cli("run", "motd.py:Root", "--every", "0.1s", "--jitter", "0.3s", "--max-runs", "5", cwd=motd)
    assert out.returncode == 0, out
    delays = [int(m) for m in re.findall(r"next run in (\d+) ms", out.stdout)]
    assert len(delays) == 4
    assert all(100 <= d <= 400 for d in delays), delays
    assert len(set(delays)) > 1, delays


def test_a_graph_error_exits_2_at_once(tmp_path):
    write(
        tmp_path / "cycle.py",
        """\
        import dojob

        class A(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

        class B(dojob.Job):
            DEPS = [A]
            def Check(self, *args, **kwargs):
                pass

        A.DEPS = [B]
        """,
    )
    out = cli("run", "cycle.py:B", "--every", "1h", cwd=tmp_path, timeout=30)
    assert out.returncode == 2, out
    assert "graph error: dependency cycle" in out.stderr


def test_events_accumulate_across_runs_and_the_report_is_the_last_run(motd):
    out = cli(
        "run",
        "motd.py:Root",
        "--every",
        "0.1s",
        "--max-runs",
        "3",
        "--events",
        "ev.jsonl",
        "--report",
        "r.html",
        cwd=motd,
    )
    assert out.returncode == 0, out
    events = [json.loads(line) for line in (motd / "ev.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("RunStarted") == 3
    assert [e["event"] for e in events].count("RunFinished") == 3
    assert "converged" in (motd / "r.html").read_text()


def test_regression_a_report_that_cannot_be_written_is_an_error_line_even_with_debug(tmp_path):
    # the loop passed the reason (a str) where an exception goes: with -d, formatting its "traceback"
    # crashed the loop (AttributeError: 'str' object has no attribute '__traceback__', exit 1)
    write(
        tmp_path / "gone.py",
        """\
        import shutil
        import dojob

        class Gone(dojob.Job):  # the report's folder disappears during the run
            def Check(self, *args, **kwargs):
                shutil.rmtree("out", ignore_errors=True)

        class Root(dojob.DummyJob):
            DEPS = [Gone]
        """,
    )
    (tmp_path / "out").mkdir()
    out = cli("run", "gone.py:Root", "--every", "0.1s", "--max-runs", "2", "-d", "--report", "out/r.html", cwd=tmp_path)
    assert out.returncode == 0, out
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("dojob: error: cannot write 'out/r.html': ") == 2, out.stderr


# -- signals ------------------------------------------------------------------------------------------------


def test_sigterm_during_the_sleep_exits_143_at_once(motd):
    with Proc("run", "motd.py:Root", "--every", "1h", cwd=motd) as p:
        p.wait_for(r"^run 1 .*; next run in 1 h 00 min$")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        code = p.finish()
        took = time.monotonic() - t0
    assert code == 143, (p.out, p.err)
    assert took < 5
    assert p.err[-1] == "dojob: terminated (SIGTERM) after 1 run"
    assert (motd / "cleanups").read_text() == "Motd\n"
    assert "Traceback" not in "\n".join(p.err)


def test_sigint_during_the_sleep_exits_130_at_once(motd):
    with Proc("run", "motd.py:Root", "--every", "1h", cwd=motd) as p:
        p.wait_for(r"^run 1 ")
        p.signal(signal.SIGINT)
        code = p.finish(timeout=10)
    assert code == 130, (p.out, p.err)
    assert p.err[-1] == "dojob: interrupted (SIGINT) after 1 run"


SLEEPY = """\
    import os
    import time
    import dojob

    class Prepare(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass

        def Cleanup(self):
            with open("cleaned-up", "a") as fh:
                fh.write("Prepare\\n")

    class Sleeper(dojob.Job):
        DEPS = (Prepare,)

        def Check(self, *args, **kwargs):
            n = len(open("cleaned-up").read().split()) if os.path.exists("cleaned-up") else 0
            if n + 1 >= int(os.environ.get("SLEEP_IN_RUN", "1")):
                open("started", "w").close()
                time.sleep(60)

        def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = (Sleeper,)
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_during_a_run_stops_it_like_ctrl_c_cleans_up_and_exits_143(tmp_path, workers):
    write(tmp_path / "sleepy.py", SLEEPY)
    env = env_for(tmp_path, SLEEP_IN_RUN="2")  # the second run sleeps
    with Proc("run", "sleepy.py:Root", "--every", "0.1s", "-j", workers, cwd=tmp_path, env=env) as p:
        p.wait_until((tmp_path / "started").exists, what="the second run's sleeping Check")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        if workers != "1":  # running tries are waited for, like a first Ctrl-C; again abandons them
            p.wait_for("terminated: waiting for 1 running try to finish", stream="err")
            # (a second stop sent the instant the notice is out can be lost in the engine, one-shot
            # runs too: reported to the engine's issue; an operator's second Ctrl-C comes later)
            time.sleep(0.3)
            p.signal(signal.SIGTERM)
        code = p.finish()
        took = time.monotonic() - t0
    assert code == 143, (p.out, p.err)
    assert took < 10
    assert (tmp_path / "cleaned-up").read_text() == "Prepare\nPrepare\n"  # run 2's Cleanups ran too
    runs = run_lines(p.out)
    assert len(runs) == 2 and "not converged" in runs[1] and " 0 interrupted" not in runs[1]
    assert "    INTERRUPTED  Sleeper during try 1 (Terminated: stopped by signal 15)" in "\n".join(p.out)
    assert "next run" not in runs[1]
    assert p.err[-1] == "dojob: terminated (SIGTERM) after 2 runs"
    assert "Traceback" not in "\n".join(p.err)


def test_ctrl_c_during_a_run_cleans_up_and_exits_130(tmp_path):
    write(tmp_path / "sleepy.py", SLEEPY)
    with Proc("run", "sleepy.py:Root", "--every", "1h", cwd=tmp_path) as p:
        p.wait_until((tmp_path / "started").exists, what="the sleeping Check")
        p.signal(signal.SIGINT)
        code = p.finish()
    assert code == 130, (p.out, p.err)
    assert (tmp_path / "cleaned-up").read_text() == "Prepare\n"
    assert "run stopped: interrupted (Ctrl-C)" in "\n".join(p.out)
    assert p.err[-1] == "dojob: interrupted (SIGINT) after 1 run"


def test_sigterm_during_an_async_run_cancels_it_cleans_up_and_exits_143(tmp_path):
    write(
        tmp_path / "aio.py",
        """\
        import asyncio
        import dojob

        class Prepare(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

            def Cleanup(self):
                open("cleaned-up", "w").close()

        class Wait(dojob.Job):
            DEPS = [Prepare]

            async def Check(self, *args, **kwargs):
                open("started", "w").close()
                await asyncio.sleep(60)

            async def Run(self, *args, **kwargs):
                pass
        """,
    )
    with Proc("run", "aio.py:Wait", "--every", "1h", cwd=tmp_path) as p:
        p.wait_until((tmp_path / "started").exists, what="the async Check")
        p.signal(signal.SIGTERM)
        code = p.finish()
    assert code == 143, (p.out, p.err)
    assert (tmp_path / "cleaned-up").exists()
    assert "1 interrupted" in run_lines(p.out)[0]
    assert p.err[-1] == "dojob: terminated (SIGTERM) after 1 run"


# -- SIGHUP: reload the target -------------------------------------------------------------------------------

V1 = """\
    import dojob

    class Hello(dojob.Job):
        def Check(self, *args, **kwargs):
            with open("checks", "a") as fh:
                fh.write("Hello\\n")

        def Run(self, *args, **kwargs):
            pass

    class Root(dojob.DummyJob):
        DEPS = [Hello]
"""

V2 = """\
    import os
    import dojob

    class Hello(dojob.Job):
        def Check(self, *args, **kwargs):
            with open("checks", "a") as fh:
                fh.write("Hello2\\n")

        def Run(self, *args, **kwargs):
            pass

    class World(dojob.Job):
        def Check(self, *args, **kwargs):
            assert os.path.exists("world"), "no world"

        def Run(self, *args, **kwargs):
            open("world", "w").close()

    class Root(dojob.DummyJob):
        DEPS = [Hello, World]
"""


def test_sighup_reloads_the_target_and_runs_the_new_graph_at_once(tmp_path):
    write(tmp_path / "site.py", V1)
    with Proc("run", "site.py:Root", "--every", "1h", cwd=tmp_path) as p:
        p.wait_for(r"^run 1 .*2 ok, 0 changed")
        write(tmp_path / "site.py", V2)
        p.signal(signal.SIGHUP)
        p.wait_for(r"^dojob: reloaded site\.py:Root: 3 jobs$", stream="err")
        p.wait_for(r"^run 2 .*2 ok, 1 changed")
        p.signal(signal.SIGTERM)
        code = p.finish()
    assert code == 143, (p.out, p.err)
    assert (tmp_path / "world").exists()
    assert (tmp_path / "checks").read_text() == "Hello\nHello2\n"
    assert "    changed: World" in p.out


@pytest.mark.parametrize(
    ("broken", "error"),
    [
        ("import dojob\nclass Root(dojob.DummyJob:\n", "SyntaxError"),
        ("import dojob\nraise RuntimeError('half-edited')\n", "RuntimeError: half-edited"),
        ("import dojob\n", "site.py has no attribute 'Root'"),
        (
            "import dojob\nclass A(dojob.DummyJob): pass\n"
            "class Root(dojob.DummyJob):\n    DEPS = [A]\nA.DEPS = [Root]\n",
            "CycleError",
        ),
    ],
    ids=["syntax", "raises", "no-root", "cycle"],
)
def test_a_reload_that_fails_keeps_the_previous_graph_and_says_so(tmp_path, broken, error):
    write(tmp_path / "site.py", V1)
    with Proc("run", "site.py:Root", "--every", "1h", cwd=tmp_path) as p:
        p.wait_for(r"^run 1 ")
        (tmp_path / "site.py").write_text(broken)
        p.signal(signal.SIGHUP)
        failed = p.wait_for(r"^dojob: reload failed, keeping the previous graph: site\.py:Root: (.*)$", stream="err")
        p.wait_for(r"^run 2 .*2 ok, 0 changed")  # the old graph ran again, at once
        write(tmp_path / "site.py", V2)  # fixed: the next SIGHUP takes it
        p.signal(signal.SIGHUP)
        p.wait_for(r"^run 3 .*2 ok, 1 changed")
        p.signal(signal.SIGTERM)
        code = p.finish()
    assert code == 143, (p.out, p.err)
    assert error in failed.group(1)
    assert (tmp_path / "checks").read_text() == "Hello\nHello\nHello2\n"


def test_sighup_during_a_run_reloads_after_it(tmp_path):
    write(
        tmp_path / "site.py",
        """\
        import os
        import time
        import dojob

        class Slow(dojob.Job):
            def Check(self, *args, **kwargs):
                open("started", "w").close()
                while not os.path.exists("go"):
                    time.sleep(0.02)

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    with Proc("run", "site.py:Slow", "--every", "1h", cwd=tmp_path) as p:
        p.wait_until((tmp_path / "started").exists, what="the slow Check")
        write(tmp_path / "site.py", V1.replace("Root", "Slow"))
        p.signal(signal.SIGHUP)  # the run goes on: SIGHUP is not a stop
        time.sleep(0.2)
        (tmp_path / "go").touch()
        p.wait_for(r"^run 1 .*converged")
        p.wait_for(r"^dojob: reloaded", stream="err")
        p.wait_for(r"^run 2 .*2 ok")
        p.signal(signal.SIGTERM)
        assert p.finish() == 143
    assert "0 interrupted" in run_lines(p.out)[0]  # SIGHUP did not stop run 1


def test_the_live_progress_works_across_iterations(tmp_path):
    from reconciling import run_on_a_terminal

    write(
        tmp_path / "slow.py",
        """\
        import time
        import dojob

        class Slow(dojob.Job):
            def Check(self, *args, **kwargs):
                time.sleep(0.4)

            def Run(self, *args, **kwargs):
                pass

        class Root(dojob.DummyJob):
            DEPS = [Slow]
        """,
    )
    args = ["run", "slow.py:Root", "--every", "0.1s", "--max-runs", "3", "-v"]
    status, stdout, lines = run_on_a_terminal(args, tmp_path, env_for(tmp_path))
    assert status == 0, lines
    assert len(run_lines(stdout.splitlines())) == 3 and "\x1b" not in stdout
    trace = [line for line in lines if re.fullmatch(r"\w+\.(check|run|recheck): .*", line)]
    assert trace == ["Slow.check: pass", "Root.check: pass"] * 3  # each run's trace, whole
    assert any(re.search(r"\b0/2 done\b", line) for line in lines), lines
    assert any("running (1): Slow (check, try 1)" in line for line in lines), lines


def test_a_job_calling_sys_exit_ends_the_loop_after_its_recap(tmp_path):
    write(
        tmp_path / "quit.py",
        """\
        import os
        import sys
        import dojob

        class Quit(dojob.Job):
            def Check(self, *args, **kwargs):
                if os.path.exists("quit"):
                    sys.exit(7)
                open("quit", "w").close()

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    out = cli("run", "quit.py:Quit", "--every", "0.1s", "--max-runs", "5", cwd=tmp_path)
    assert out.returncode == 7, out
    runs = run_lines(out.stdout.splitlines())
    assert len(runs) == 2 and "next run" not in runs[1]


def test_regression_a_reload_sees_an_edit_of_the_same_size_in_the_same_second(tmp_path):
    # A plain re-import would trust __pycache__/site.*.pyc, keyed on the source's mtime in whole
    # seconds and its size: an edit that keeps the size within that second would be missed.
    write(tmp_path / "site.py", V1)
    env = env_for(tmp_path)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode is written, as on a user's machine
    with Proc("run", "site.py:Root", "--every", "1h", cwd=tmp_path, env=env) as p:
        p.wait_for(r"^run 1 ")
        assert list((tmp_path / "__pycache__").glob("site.*.pyc"))  # the stale copy a naive reload would use
        source = (tmp_path / "site.py").read_text()
        edited = source.replace('fh.write("Hello', 'fh.write("Hallo')
        assert len(edited) == len(source) and edited != source
        stat = (tmp_path / "site.py").stat()
        (tmp_path / "site.py").write_text(edited)
        import os

        os.utime(tmp_path / "site.py", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime too
        p.signal(signal.SIGHUP)
        p.wait_for(r"^run 2 ")
        p.signal(signal.SIGTERM)
        assert p.finish() == 143
    assert (tmp_path / "checks").read_text() == "Hello\nHallo\n"


def test_sighup_reloads_a_module_target_too(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    write(tmp_path / "pkg" / "site.py", V1)
    with Proc("run", "pkg.site:Root", "--every", "1h", cwd=tmp_path) as p:
        p.wait_for(r"^run 1 .*2 ok, 0 changed")
        (tmp_path / "pkg" / "site.py").write_text("import dojob\nclass Root(dojob.DummyJob:\n")
        p.signal(signal.SIGHUP)
        p.wait_for(r"^dojob: reload failed, keeping the previous graph: pkg\.site:Root: SyntaxError", stream="err")
        p.wait_for(r"^run 2 .*2 ok, 0 changed")
        write(tmp_path / "pkg" / "site.py", V2)
        p.signal(signal.SIGHUP)
        p.wait_for(r"^run 3 .*2 ok, 1 changed")
        p.signal(signal.SIGTERM)
        assert p.finish() == 143
    assert (tmp_path / "checks").read_text() == "Hello\nHello\nHello2\n"


def test_readme_shows_the_example_unit_file():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.rst").read_text()
    section = readme.split("Keeping it converged\n====", 1)[1].split("\nArchitecture\n====", 1)[0]
    shown = section.split("``examples/dojob-reconcile.service``::\n", 1)[1].split("\n(the file has", 1)[0]
    shown_lines = [line[4:] for line in shown.splitlines() if line.strip()]
    unit = (root / "examples" / "dojob-reconcile.service").read_text()
    unit_lines = [line for line in unit.splitlines() if line.strip() and not line.startswith("#")]
    assert shown_lines == unit_lines
    assert "Type=notify" in unit_lines and "ExecReload=/bin/kill -HUP $MAINPID" in unit_lines
    assert "SuccessExitStatus=143" in unit_lines


def test_the_motd_example_converges_and_repairs_drift(tmp_path):
    root = Path(__file__).resolve().parent.parent
    target = str(root / "examples" / "motd.py") + ":Motd"
    with Proc(
        "run", target, "--set", f"root={tmp_path / 'site'}", "--every", "1s", "--max-runs", "3", cwd=tmp_path
    ) as p:
        p.wait_for(r"^run 1 .*converged")
        (tmp_path / "site" / "motd").chmod(0o600)
        assert p.finish() == 0
    assert "    drifted: Mode (converged in run 1)" in p.out
    assert ((tmp_path / "site" / "motd").stat().st_mode & 0o777) == 0o644


def test_a_stop_that_says_it_came_from_sigterm_ends_the_loop_with_143(tmp_path):
    # The engine's own SIGTERM handling raises a KeyboardInterrupt subclass carrying .signum
    # (dojob.errors.Terminated); the loop must read it as SIGTERM, not as Ctrl-C.
    write(
        tmp_path / "term.py",
        """\
        import signal
        import dojob

        class Terminated(KeyboardInterrupt):
            signum = signal.SIGTERM

        class Prepare(dojob.Job):
            def Check(self, *args, **kwargs):
                pass

            def Run(self, *args, **kwargs):
                pass

            def Cleanup(self):
                open("cleaned-up", "w").close()

        class Stop(dojob.Job):
            DEPS = [Prepare]

            def Check(self, *args, **kwargs):
                raise Terminated()

            def Run(self, *args, **kwargs):
                pass
        """,
    )
    out = cli("run", "term.py:Stop", "--every", "1h", cwd=tmp_path, timeout=30)
    assert out.returncode == 143, out
    assert out.stderr.splitlines()[-1] == "dojob: terminated (SIGTERM) after 1 run"
    assert (tmp_path / "cleaned-up").exists()


def test_a_storm_of_sighups_reloads_and_the_loop_lives_on(tmp_path):
    write(tmp_path / "site.py", V1)
    with Proc("run", "site.py:Root", "--every", "1h", cwd=tmp_path) as p:
        p.wait_for(r"^run 1 ")
        for _ in range(30):
            p.signal(signal.SIGHUP)
        p.wait_for(r"^dojob: reloaded site\.py:Root: 2 jobs$", stream="err")
        p.wait_for(r"^run 2 ")
        time.sleep(0.5)  # whatever the storm left pending has run by now
        assert p.proc.poll() is None
        done = len(run_lines(p.out))
        p.signal(signal.SIGTERM)
        assert p.finish() == 143
    reloads = [line for line in p.err if line.startswith("dojob: reloaded")]
    assert 1 <= len(reloads) <= 30
    assert len(run_lines(p.out)) == done  # SIGTERM ran nothing more
    assert len(run_lines(p.out)) == len(reloads) + 1  # each reload starts one run, no more
    assert "Traceback" not in "\n".join(p.err)


def test_hooks_get_fresh_observers_and_each_iteration_and_a_failing_hook_never_stops_the_loop(motd, monkeypatch):
    import argparse
    import io
    import os

    from dojob.reconcile import Loop
    from dojob.reimport import reimport_targets

    monkeypatch.chdir(motd)
    (root,) = reimport_targets(["motd.py:Root"])

    class Hook:
        def __init__(self):
            self.seen, self.events = [], []

        def observers(self, number):
            return [lambda event, n=number: self.events.append((n, type(event).__name__))]

        def finished(self, iteration):
            self.seen.append((iteration.number, iteration.verdict, iteration.findings.drifted))
            if iteration.number == 1:
                os.remove("out/motd")

    class Broken:
        def observers(self, number):
            raise RuntimeError("store down")

        def finished(self, iteration):
            raise RuntimeError("store down")

    ns = argparse.Namespace(
        every=0.05, jitter=None, max_runs=3, progress=False, report=None, verbose=False, debug=False, targets=["x"]
    )
    errors = []
    hook = Hook()
    loop = Loop(ns, [root], {}, err=lambda message, exc=None: errors.append(message), hooks=[Broken(), hook])
    out = io.StringIO()
    loop.out = out
    assert loop.run() == 0
    assert [(n, v) for n, v, _ in hook.seen] == [(1, "converged"), (2, "converged"), (3, "converged")]
    assert hook.seen[1][2] == (("Motd", "run 1"),)
    assert [n for n, kind in hook.events if kind == "RunStarted"] == [1, 2, 3]
    assert errors.count("warning: Broken.finished failed: RuntimeError: store down") == 3
    assert errors.count("warning: Broken.observers failed: RuntimeError: store down") == 3
    assert "    drifted: Motd (converged in run 1)" in out.getvalue()


def test_reloads_keep_one_module_per_file_in_sys_modules_and_a_failed_one_keeps_the_last(tmp_path, monkeypatch):
    """Each SIGHUP reload imports the target under a new name; the one before leaves sys.modules once
    the new one imported (a loop reloaded all day held every generation), and stays when it did not."""
    import sys

    from test_readme_promises import readme_says

    from dojob.reimport import reimport_targets

    readme_says("The previous reload's module leaves ``sys.modules`` once the new one imported")
    target = tmp_path / "site.py"
    monkeypatch.chdir(tmp_path)

    def reload(version):
        target.write_text(f"import dojob\n\nclass Root(dojob.Job):\n    VERSION = {version}\n    Check = print\n")
        (root,) = reimport_targets([f"{target}:Root"])
        return root

    def generations():
        return sorted(name for name in sys.modules if name.startswith("dojob_reload_") and name.endswith("_site"))

    roots = [reload(v) for v in range(20)]
    assert [r.VERSION for r in roots] == list(range(20))
    (latest,) = generations()
    assert sys.modules[latest] is sys.modules[roots[-1].__module__]
    target.write_text("import dojob\n\nclass Root(dojob.Job):\n    def Check(self):\n        raise nope(\n")
    with pytest.raises(SyntaxError):
        reimport_targets([f"{target}:Root"])
    target.write_text("import dojob\n\nraise RuntimeError('half way')\n")
    with pytest.raises(RuntimeError, match="half way"):
        reimport_targets([f"{target}:Root"])
    assert generations() == [latest]  # a reload that failed leaves the last good one
    assert reload(99).VERSION == 99
    assert generations() != [latest] and len(generations()) == 1


def test_a_reload_forgets_how_the_previous_module_was_shipped_to_worker_processes(tmp_path, monkeypatch):
    import dojob
    from dojob import shipping
    from dojob.reimport import reimport_targets

    target = tmp_path / "shipped.py"
    monkeypatch.chdir(tmp_path)
    names = []
    for version in range(3):
        target.write_text(f"import dojob\n\nclass Root(dojob.Job):\n    def Check(self):\n        return {version}\n")
        (root,) = reimport_targets([f"{target}:Root"])
        report = dojob.run(root, executor="processes", workers=2)
        assert report.success and report.results()["Root"] == version  # by value: no worker can import it
        names.append(root.__module__)
    kept = [name for name in shipping._modules if name.endswith("_shipped")]
    assert kept == names[-1:]
