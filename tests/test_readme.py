"""README.rst stays true: its commands are the ones CI and a newcomer use, and its sessions are real runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text()
#: A duration as the recap, the DOT labels and the trace print it; runs differ only there.
DURATION = re.compile(r"\b\d+(?:\.\d+)? (?:ms|s|min|h)\b")
#: A time of day as ``dojob history`` prints it; runs differ there too.
WHEN = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\b")


def _section(title: str, next_title: str) -> str:
    return README.split(title, 1)[1].split(next_title, 1)[0]


def _console_commands(text: str) -> list[str]:
    return [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")]


def _sessions(text: str) -> list[list[tuple[str, list[str]]]]:
    """Each literal block that starts with ``$ ``: its commands (continuation lines joined) and their output."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("    ") and line.strip():
            current.append(line[4:])
        else:
            if current:
                blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    sessions = []
    for block in blocks:
        if not block[0].startswith("$ "):
            continue
        commands: list[tuple[str, list[str]]] = []
        lines = iter(block)
        for line in lines:
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\"):
                    command = command[:-1] + " " + next(lines).strip()
                commands.append((command, []))
            else:
                commands[-1][1].append(line)
        sessions.append(commands)
    return sessions


def _normal(lines: list[str]) -> list[str]:
    return [WHEN.sub("<when>", DURATION.sub("<time>", line.rstrip())) for line in lines]


def _run_session(commands: list[tuple[str, list[str]]], cwd: Path, env: dict[str, str]) -> list[list[str]]:
    """Run the commands in one bash, in order; the output (stdout and stderr) of each."""
    script = []
    for n, (command, _) in enumerate(commands):
        script.append(f"__status=$?; echo '@@@ {n}'; (exit $__status)")  # `echo $?` sees the previous command's
        script.append(f"{command} 2>&1")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    parts = re.split(r"^@@@ \d+\n", done.stdout, flags=re.M)[1:]
    assert len(parts) == len(commands), (done.stdout, done.stderr)
    return [part.splitlines() for part in parts]


@pytest.fixture
def session_dir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder with the examples and a ``dojob`` command on PATH running this checkout's dojob."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dojob = bin_dir / "dojob"
    dojob.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; from dojob.cli import main; sys.exit(main())" "$@"\n'
    )
    dojob.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["DOJOB_HISTORY"] = "off"  # as README says its sessions ran: each as if first (Run history's give --history)
    return tmp_path, env


def test_the_sessions_shown_for_the_dojob_command_are_real_runs(session_dir):
    cwd, env = session_dir
    sessions = _sessions(_section("The ``dojob`` command\n=====", "Keeping it converged\n====="))
    commands = [c for s in sessions for c, _ in s]
    assert len(commands) >= 10, commands  # list, check, runs, -v, outputs, errors, the picture
    assert any("--graph movie.dot" in c for c in commands) and any(c.startswith("grep ") for c in commands)
    for session in sessions:
        outputs = _run_session(session, cwd, env)
        for (command, expected), actual in zip(session, outputs, strict=True):
            assert _normal(actual) == _normal(expected), f"README shows for `{command}`:\n" + "\n".join(expected)


def test_the_options_table_lists_every_option_of_run_and_check():
    from dojob.cli import build_parser

    table = _section("Options\n-------", "Exit status\n-----")
    table += _section("Options of the loop\n-----", "\n\n\n")  # dojob run --every's own table
    shown = set(re.findall(r"``(--?[a-z][a-z-]*)", table))
    parser = build_parser()
    run = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "run")[1]
    options = {s for action in run._actions for s in action.option_strings if s not in ("-h", "--help")}
    assert options - {"--no-progress"} <= shown, sorted(options - shown)
    assert "--executor" in shown and "--junit" in shown and "--strict" in shown


def test_dojob_check_calls_the_cleanups_as_readme_says(tmp_path):
    assert "It does call the\n``Cleanup`` of every job whose Check it called" in README
    (tmp_path / "jobs.py").write_text(
        textwrap.dedent(
            """\
            import dojob

            class Conn(dojob.Job):
                def Check(self, *args, **kwargs):
                    raise RuntimeError("not there")
                def Run(self, *args, **kwargs):
                    open("run-called", "w").close()
                def Cleanup(self):
                    open("cleaned", "w").close()
            """
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "dojob", "check", "jobs.py:Conn"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 1
    assert (tmp_path / "cleaned").exists() and not (tmp_path / "run-called").exists()


def test_ci_runs_install_then_exactly_the_readme_test_command():
    quick_start = _section("Quick start\n=====", "A job\n=====")
    first, test_command = _console_commands(quick_start)[:2]
    assert first.startswith("python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/dojob run examples/")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert test_command == "bash .ci/test"
    assert ci[-2:] == ["bash .ci/install", test_command]
    assert "``bash .ci/test`` runs the test-suite" in README  # Development says the same


def test_the_test_command_says_what_is_missing(tmp_path):
    # a Python without pytest, and no dot on PATH: .ci/test names both and how to get them, runs nothing
    env = {"PATH": "/nonexistent", "PYTHON": sys.executable, "HOME": str(tmp_path)}
    out = subprocess.run(
        ["/bin/bash", str(ROOT / ".ci" / "test")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "the tests need what is missing here (bash .ci/install installs all of it):" in out.stderr
    assert "Graphviz's dot (pictures): sudo apt-get install graphviz" in out.stderr
    assert "Chromium" in out.stderr


def _tracked_copy(destination: Path) -> None:
    """The files a clean clone would have (git's tracked files, as they are in this checkout)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    assert listed.returncode == 0, "the README test needs a git checkout"
    for name in filter(None, listed.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_quick_start_first_command_works_in_a_fresh_venv_from_a_clean_clone(tmp_path):
    quick_start = _section("Quick start\n=====", "A job\n=====")
    (session,) = [s for s in _sessions(quick_start) if s[0][0].startswith("python3 -m venv")][:1]
    command, expected = session[0]
    clone = tmp_path / "clone"
    _tracked_copy(clone)
    assert not (clone / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "NO_COLOR", "FORCE_COLOR")}
    done = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _normal(done.stdout.splitlines()) == _normal(expected)
    # the command installed dojob into the new environment, not this checkout's copy
    where = subprocess.run(
        [str(clone / ".venv/bin/python"), "-c", "import dojob; print(dojob.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(clone / ".venv")), where.stdout


def test_readme_mentions_every_public_name():
    import dojob

    important = ["run", "arun", "DoJobber", "Job", "DummyJob", "RunonlyJob", "FakeClock", "CycleError", "CleanupError"]
    for name in important:
        assert name in dojob.__all__
        assert re.search(rf"\b{name}\b", README), name


def test_the_back_off_session_of_the_loop_is_a_real_run(session_dir):
    """The failing loop shown under "Keeping it converged" (about 4 s: backs off 1 s, then 2 s)."""
    cwd, env = session_dir
    shutil.copy(cwd / "examples" / "motd.py", cwd / "motd.py")
    section = _section("Keeping it converged\n=====", "Options of the loop\n-----")
    (session,) = [s for s in _sessions(section) if "--max-runs 3" in s[0][0]]
    assert [c for c, _ in session] == [
        "dojob run motd.py:Motd --set root=/proc/motd --every 5m --max-runs 3 --retry-delay 0.1",
        "echo $?",
    ]
    clock = re.compile(r"^run (\d+) at \d\d:\d\d:\d\d: ")
    outputs = _run_session(session, cwd, env)
    for (command, expected), actual in zip(session, outputs, strict=True):
        shown = [clock.sub(r"run \1 at <clock>: ", line) for line in _normal(expected)]
        assert [clock.sub(r"run \1 at <clock>: ", line) for line in _normal(actual)] == shown, command


def _excerpt_matches(actual: list[str], expected: list[str]) -> bool:
    """Whether ``expected`` (``...`` lines standing for any lines left out) is ``actual`` in part, in order."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    at = 0
    for n, segment in enumerate(segments):
        if not segment:
            continue
        found = next(
            (i for i in range(at, len(actual) - len(segment) + 1) if actual[i : i + len(segment)] == segment), None
        )
        if found is None or (n == 0 and found != 0):  # an excerpt starts where the output starts
            return False
        at = found + len(segment)
    return True


def test_the_history_job_and_show_excerpts_are_real_runs(session_dir):
    cwd, env = session_dir
    history = _section("Run history\n-----", "Secrets\n-----")
    runs = _sessions(history)[0]
    assert [c.count("--history movie-history.sqlite3") for c, _ in runs] == [1, 1, 1]
    _run_session(runs, cwd, env)
    excerpt = history.split("one job across its runs and one run job by job (excerpts)::", 1)[1]
    excerpt = excerpt.split("\n\n", 2)[1]  # the literal block
    commands: list[tuple[str, list[str]]] = []
    for line in textwrap.dedent(excerpt).splitlines():
        if line.startswith("(dojob "):
            commands.append((line[1:-1], []))
        else:
            commands[-1][1].append(line)
    assert [c.split(" --history")[0] for c, _ in commands] == ["dojob history job PickMovie", "dojob history show 2"]

    def normal(lines: list[str]) -> list[str]:
        lines = [" ".join(line.split()) for line in _normal(lines)]
        where = re.compile(r"^host \S+, user \S+, cwd \S+, dojob \S+,")
        return [where.sub("host <host>, user <user>, cwd <cwd>, dojob <version>,", line) for line in lines]

    for (command, expected), actual in zip(commands, _run_session(commands, cwd, env), strict=True):
        assert _excerpt_matches(normal(actual), normal(expected)), (
            f"README shows for `{command}`:\n" + "\n".join(expected) + "\n\nthe command printed:\n" + "\n".join(actual)
        )
