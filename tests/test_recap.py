"""The end-of-run recap (``Report.summary``) and when it is coloured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import flaky, make_job

import dojob
from dojob import FakeClock
from dojob.recap import format_seconds, use_color

ESC = "\x1b["


def _fail(message: str):
    def check(self, *args, **kwargs):
        raise RuntimeError(message)

    return check


def test_summary_lists_failures_with_their_blocked_jobs_and_counts():
    clock = FakeClock()
    bad = make_job("Database", check=_fail("connection refused"), TRIES=3, RETRY_DELAY=2)
    also_bad = make_job("Dns", check=_fail("NXDOMAIN"), TRIES=1)
    web = make_job("Web", [bad])
    api = make_job("Api", [bad, also_bad])
    retried = flaky("Cache", 3, TRIES=3, RETRY_DELAY=1)  # Check passes on its 3rd call: 2nd try's check
    changed = flaky("Certs", 2)  # fails its check, passes the recheck
    root = make_job("Site", [web, api, retried, changed])
    report = dojob.run(root, clock=clock)
    text = report.summary()
    assert "\x1b" not in text
    # Dns fails at once and blocks Api and Site; Database fails its last try at t=4 and blocks Web.
    assert text.splitlines() == [
        "FAILED  Database (3 tries): RuntimeError: connection refused",
        "        blocked: Web",
        "        also blocks: Api, Site",  # listed under Dns, but fixing Dns alone would not unblock them
        "FAILED  Dns (1 try): RuntimeError: NXDOMAIN",
        "        blocked: Api, Site",
        "changed: Certs",
        "not converged in 4.00 s: 1 ok (1 needed retries), 1 changed (0 needed retries), "
        "2 failed, 3 blocked, 0 interrupted",
    ]
    assert report.summary() == dojob.recap.summary(report)


def test_changed_jobs_that_needed_retries_are_counted():
    jobs = [flaky(f"J{i}", passes_on, TRIES=3, RETRY_DELAY=0) for i, passes_on in enumerate([2, 4, 4, None])]
    report = dojob.run(make_job("Root", jobs), clock=FakeClock())
    last = report.summary().splitlines()[-1]
    # J0 converged in its first try (its recheck passed), J1 and J2 in their second.
    assert last.endswith(": 0 ok, 3 changed (2 needed retries), 1 failed, 1 blocked, 0 interrupted")


def test_a_critical_stop_says_why_and_which_job():
    boom = make_job("Boom", check=_fail("disk on fire"), TRIES=1, CRITICAL=True)
    later = make_job("Later")
    report = dojob.run(make_job("Root", [boom, later]))
    lines = report.summary().splitlines()
    assert "run stopped: a critical job failed: Boom" in lines
    assert lines[-1].endswith("1 failed, 1 blocked, 1 interrupted")


def test_an_interrupted_run_is_recapped_from_the_exception():
    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    first = make_job("First")
    stop = make_job("Stop", [first], check=interrupt)
    with pytest.raises(KeyboardInterrupt) as caught:
        dojob.run(make_job("Root", [stop, make_job("Other")]))
    report = caught.value.report
    lines = report.summary().splitlines()
    assert lines[0] == "INTERRUPTED  Stop during try 1 (KeyboardInterrupt)"
    assert lines[1] == "             not started: Root"  # interrupted with it: nothing failed, nothing is blocked
    assert lines[2] == "run stopped: interrupted (Ctrl-C)"
    assert lines[3] == "not started: Other"  # every interrupted job is named
    assert lines[4].endswith("1 ok, 0 changed (0 needed retries), 0 failed, 0 blocked, 3 interrupted")


def test_hostile_names_and_messages_stay_on_one_line_without_escapes():
    name = "Evil\n\x1b[2J\x1b]0;title\x07Job"
    bad = make_job(name, check=_fail("multi\nline \x1b[31mred\x1b[0m\r\nmessage"), TRIES=1)
    report = dojob.run(make_job("Root", [bad]))
    text = report.summary()
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    first = text.splitlines()[0]
    assert first.startswith("FAILED  Evil\\x0a\\x1b[2J")
    assert first.endswith("multi\\x0aline \\x1b[31mred\\x1b[0m\\x0d\\x0amessage")
    assert len(text.splitlines()) == 3


def test_long_lists_are_shortened():
    bad = make_job("Bad", check=_fail("x" * 5000), TRIES=1)
    dependents = [make_job(f"Dep{i:02d}", [bad]) for i in range(25)]
    report = dojob.run(make_job("Root", dependents))
    lines = report.summary().splitlines()
    assert len(lines[0]) < 400 and lines[0].endswith("...")
    assert lines[1].strip().startswith("blocked: Dep00, Dep01") and lines[1].endswith("... and 16 more")


def test_plan_summary_words():
    needs = flaky("Needs", None)
    fine = make_job("Fine", [needs])
    report = dojob.run(make_job("Top", [fine], check=_fail("not yet")), plan=True)
    lines = report.summary().splitlines()
    assert lines[0].split() == ["Needs", "would", "run", "(RuntimeError:", "Needs", "not", "ready", "(1))"]
    assert lines[1].split(None, 1) == ["Fine", "ok now, upstream will change"]
    assert lines[2].split(None, 1)[1].startswith("would run, upstream will change  (RuntimeError: not yet)")
    assert lines[3].startswith("changes needed (") and lines[3].endswith(
        "0 ok, 2 would run, 1 ok now, upstream will change"
    )
    ok = dojob.run(make_job("Fine"), plan=True)
    assert ok.summary().splitlines()[-1].startswith("nothing would run (")


def test_color_is_opt_in():
    report = dojob.run(make_job("Root", [make_job("Bad", check=_fail("no"), TRIES=1)]))
    plain, colored = report.summary(), report.summary(color=True)
    assert ESC not in plain
    assert f"{ESC}31;1mFAILED" in colored and f"{ESC}31;1mnot converged" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


def test_use_color_respects_no_color_and_terminals():
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty, open(os.devnull, "w") as not_tty:
            assert use_color(tty, {"TERM": "xterm"})
            assert use_color(tty, {"TERM": "xterm", "NO_COLOR": ""})  # empty: not set
            assert not use_color(tty, {"TERM": "xterm", "NO_COLOR": "1"})
            assert not use_color(tty, {"TERM": "xterm", "NO_COLOR": "yes", "FORCE_COLOR": "1"})
            assert not use_color(tty, {"TERM": "dumb"})
            assert not use_color(not_tty, {"TERM": "xterm"})
            assert use_color(not_tty, {"FORCE_COLOR": "1"})
            assert not use_color(None, {})
    finally:
        os.close(master)
        os.close(slave)


def test_cli_recap_colour_follows_no_color(tmp_path):
    (tmp_path / "jobs.py").write_text(
        textwrap.dedent(
            """\
            import dojob

            class Bad(dojob.Job):
                TRIES = 1

                def Check(self, *args, **kwargs):
                    raise RuntimeError("no")

                def Run(self, *args, **kwargs):
                    pass
            """
        )
    )

    def recap(**env: str) -> str:
        environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        out = subprocess.run(
            [sys.executable, "-m", "dojob", "run", "jobs.py:Bad"],
            cwd=tmp_path,
            env={**environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 1
        return out.stdout

    assert ESC not in recap()  # stdout is a pipe
    assert ESC in recap(FORCE_COLOR="1")
    assert ESC not in recap(FORCE_COLOR="1", NO_COLOR="1")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0004, "0.4 ms"), (0.12, "120 ms"), (1.254, "1.25 s"), (125, "2 min 05 s"), (3720, "1 h 02 min"), (None, "?")],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
