"""What ``dojob run`` of a one-job file loads and does at start-up (issue 17: <= 150 ms wall).

Each check runs the command in a fresh interpreter with the history on (the
default), a private state directory, and reports which modules it left loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dojob.digest import sha1_hex, sha256_hex
from dojob.history.record import names_digest
from dojob.host import hostname, username
from dojob.runlock import default_lock_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONE_JOB = (
    "import dojob\n\n\nclass Hello(dojob.Job):\n    def Check(self):\n        pass\n\n"
    "    def Run(self):\n        pass\n"
)


def cli_run(tmp_path: Path, *args: str, modules: tuple[str, ...]) -> tuple[int, list[str], str]:
    """``dojob run onejob.py:Hello ARGS`` in a fresh interpreter: exit code, which of ``modules`` it loaded, stdout."""
    (tmp_path / "onejob.py").write_text(ONE_JOB)
    code = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from dojob.cli import main

        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(["run", "onejob.py:Hello", *sys.argv[1:]])
        print(json.dumps([code, sorted(m for m in sys.modules if m in {modules!r}), out.getvalue()]))
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT, XDG_STATE_HOME=str(tmp_path / "state"))
    env.pop("DOJOB_HISTORY", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    code_, loaded, out = json.loads(proc.stdout.strip().splitlines()[-1])
    return code_, loaded, out


def test_regression_a_one_job_run_loads_neither_socket_nor_openssl(tmp_path: Path) -> None:
    # issue 17: the lock file, the history record and the report read the host name through socket
    # (and selectors), and the lock name and history key were digests through hashlib's OpenSSL
    code, loaded, out = cli_run(tmp_path, modules=("socket", "selectors", "_hashlib", "hashlib"))
    assert code == 0 and "converged" in out and "1 ok" in out
    assert loaded == []
    assert list((tmp_path / "state" / "dojob").iterdir())  # the history was written: it was on


def test_regression_a_one_job_run_does_not_load_getpass(tmp_path: Path) -> None:
    # issue 17: the history record and the report's context read the user name through getpass (and termios)
    code, loaded, out = cli_run(tmp_path, modules=("getpass", "termios"))
    assert code == 0 and "1 ok" in out
    assert loaded == []


def test_regression_a_one_job_run_does_not_load_unicodedata(tmp_path: Path) -> None:
    # issue 17: the recap looked up the Unicode category of every character of every name it showed;
    # no format character is ASCII, so ASCII names need neither the look-ups nor the module
    code, loaded, out = cli_run(tmp_path, modules=("unicodedata",))
    assert code == 0 and "1 ok" in out
    assert loaded == []


def test_format_characters_in_names_are_still_shown() -> None:
    from dojob.recap import invisible_shown, visible

    assert invisible_shown("a\u200bb\u2028c\u115f") == "a\\u200bb\\u2028c\\u115f"
    assert visible("é\u00ad\n") == "é\\u00ad\\x0a" and invisible_shown("plain ascii\n") == "plain ascii\n"


@pytest.mark.parametrize(
    "environ",
    [{}, {"USER": "u\n1"}, {"LOGNAME": "lg", "USER": "us"}, {"USERNAME": "w"}, {"LNAME": "", "USERNAME": "x"}],
)
def test_the_user_name_is_the_one_getpass_gives(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    import getpass

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert username() == getpass.getuser() != ""


def test_the_host_name_is_the_one_socket_gives() -> None:
    assert hostname() == socket.gethostname() != ""


@pytest.mark.parametrize("data", [b"", b"x" * 100_000, "J\n0\x00ü\udc80".encode("utf-8", "surrogatepass")])
def test_digests_are_hashlibs(data: bytes) -> None:
    # lock file names and history keys stay what they were with hashlib
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert sha1_hex(data) == hashlib.sha1(data).hexdigest()


def test_lock_names_and_history_keys_are_stable() -> None:
    # the values the hashlib code gave: a change here would orphan held locks and split histories
    path = default_lock_path(["no.such.module:Root", "/tmp/x y/jobs.py:Root"], environ={"XDG_STATE_HOME": "/s"})
    assert path == "/s/dojob/jobs-Root_no.such.module-Root-dabba2d6154d0ddd.lock"
    assert names_digest(["A", "B"]) == "83ba6f0e923331f201f370a1abea380d046ab3b3"
    assert names_digest(["A", "B\x00C"]) == "399ccad972df326b04bddd40113b7cf8a1f7c754"
    assert names_digest([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


@pytest.mark.parametrize(
    ("module", "needs"),
    [("dojob.events", "dojob"), ("dojob.options", "dojob.graph"), ("dojob.runlock", "dojob.errors, json, re")],
)
def test_regression_the_records_are_compiled_by_one_exec(module: str, needs: str) -> None:
    # issue 17: @dataclass compiled each generated method of each of the 14 event records and of
    # RunOptions (and re-created each class for slots): a large part of dojob run's start-up;
    # each module's inits now come from one exec
    code = textwrap.dedent(
        f"""
        import builtins, json
        import dataclasses, {needs}  # what the module needs, loaded first
        calls = []
        real_exec = builtins.exec
        def counting_exec(source, *args, **kwargs):
            if isinstance(source, str):  # compiling source, not importlib running a module's code
                calls.append(1)
            return real_exec(source, *args, **kwargs)
        builtins.exec = counting_exec
        import {module}
        builtins.exec = real_exec
        print(json.dumps(len(calls)))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == 1


def test_creating_an_event_is_not_slower_than_a_frozen_dataclass() -> None:
    # the CLI always has observers, so an event is made per phase: at 10 000 jobs a slower __init__ shows
    import dataclasses
    import timeit

    from dojob.events import Phase, PhaseEnded

    fields = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(PhaseEnded)]
    reference = dataclasses.make_dataclass("PhaseEnded", fields, frozen=True, slots=True)
    ours, theirs = [], []
    for _ in range(9):  # interleaved, best of each: a busy machine slows both alike
        ours.append(timeit.timeit(lambda: PhaseEnded("job", 1, Phase.RUN, True, 0.5), number=20_000))
        theirs.append(timeit.timeit(lambda: reference("job", 1, Phase.RUN, True, 0.5), number=20_000))
    assert min(ours) < min(theirs) * 1.25  # (about 0.6x measured; generous for a loaded machine)


def test_regression_the_escape_table_is_built_when_a_line_needs_it() -> None:
    # issue 17: importing dojob.observe built one_line's table of 2 000+ escapes (a millisecond of every run)
    code = textwrap.dedent(
        """
        import json
        import dojob.cli
        from dojob import observe

        before = len(observe._CONTROL)
        line = observe.one_line("a\\nb\\udc80\\u202e\\x1b[31m\\tc")
        print(json.dumps([before, line, len(observe._CONTROL)]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [0, "a\\x0ab\\udc80\\u202e\\x1b[31m\tc", 2123]


def test_run_options_still_behave_as_a_frozen_dataclass() -> None:
    import dataclasses

    from dojob.errors import OptionError
    from dojob.options import Mode, RunOptions

    options = RunOptions.from_keywords(workers=3, plan=True, timeout=5)
    assert dataclasses.is_dataclass(options) and [f.name for f in dataclasses.fields(options)][:3] == [
        "args",
        "kwargs",
        "workers",
    ]
    assert options == RunOptions.from_keywords(workers=3, plan=True, timeout=5) != options.replace(workers=1)
    assert options.replace(workers=1).workers == 1 and options.timeout == 5.0 and options.mode is Mode.PLAN
    with pytest.raises(OptionError):
        options.replace(workers=0)  # __post_init__ validates a copy too
    with pytest.raises(OptionError):
        RunOptions(mode="plan")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.workers = 2  # type: ignore[misc]
    assert repr(options).startswith("RunOptions(args=(), kwargs=mappingproxy({}), workers=3, mode=<Mode.PLAN: 'plan'>")
    assert RunOptions().kwargs == {}
    with pytest.raises(TypeError):  # the shared default cannot be written to
        RunOptions().kwargs["x"] = 1  # type: ignore[index]


def test_a_lock_holder_is_still_a_frozen_dataclass() -> None:
    import dataclasses

    from dojob.runlock import Holder

    holder = Holder(12, "web\x1b1", started="2026-12-01 23:00:01 UTC")
    assert holder == Holder(12, "web\x1b1", "2026-12-01 23:00:01 UTC") != Holder(12, "web1")
    assert hash(holder) == hash(Holder(12, "web\x1b1", "2026-12-01 23:00:01 UTC"))
    assert holder.describe() == "pid 12 on host web?1, since 2026-12-01 23:00:01 UTC"
    assert Holder(None, None).describe() == "a run that has not written its pid yet"
    assert repr(Holder(1, "h")) == "Holder(pid=1, host='h', started=None)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        holder.pid = 3  # type: ignore[misc]


def test_a_cli_run_makes_no_dataclass_but_the_public_findings(tmp_path) -> None:
    # issue 17: the CLI's RunFailed, _Prepared and _Ending and the history's RunVerified were
    # @dataclasses, 3 ms of each dojob run's start-up; the history's Findings is public API and stays one
    (tmp_path / "one.py").write_text(
        "import dojob\n\nclass Hello(dojob.Job):\n    def Check(self):\n        return None\n"
    )
    code = textwrap.dedent(
        f"""
        import dataclasses, json, sys
        made = []
        real = dataclasses._process_class
        def counting(cls, *args, **kwargs):
            made.append(cls.__qualname__)
            return real(cls, *args, **kwargs)
        dataclasses._process_class = counting
        from dojob.cli import main
        status = main(["run", {str(tmp_path / "one.py")!r} + ":Hello", "--history", {str(tmp_path / "h.sqlite3")!r}])
        print(json.dumps([status, made]), file=sys.stderr)
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    status, made = json.loads(proc.stderr.strip().splitlines()[-1])
    assert status == 0 and made == ["Findings"], proc.stderr


def test_the_command_s_own_events_are_still_frozen_dataclasses() -> None:
    import dataclasses

    from dojob.cli import RunFailed
    from dojob.history.hook import RunVerified

    failed = RunFailed("load", "TargetError", "no such file")
    verified = RunVerified(False, ("A",), None, 1.5)
    assert dataclasses.asdict(failed) == {
        "stage": "load",
        "error_type": "TargetError",
        "error": "no such file",
        "time": 0.0,
    }
    assert [f.name for f in dataclasses.fields(verified)] == ["success", "unstable", "stopped", "time"]
    assert repr(verified) == "RunVerified(success=False, unstable=('A',), stopped=None, time=1.5)"
    assert verified == RunVerified(False, ("A",), None, 1.5) and hash(verified) == hash(
        RunVerified(False, ("A",), None, 1.5)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        failed.stage = "run"  # type: ignore[misc]
