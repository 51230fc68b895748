"""Output files (``--report``, ``--junit``, ``--graph``) named as an adversary would: devices, FIFOs, symlinks."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ONE_JOB = "import dojob\n\nclass A(dojob.Job):\n    def Check(self, *args, **kwargs):\n        pass\n"


def cli(*args: str, cwd: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd`` (history off); ``limit``: the largest file it may write (RLIMIT_FSIZE)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"

    def limited() -> None:  # a write past the limit fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        preexec_fn=limited if limit is not None else None,
    )  # fmt: skip


def test_a_fifo_output_is_written_into_not_replaced(tmp_path):
    """``--junit /dev/null`` (a device) unlinked the node and put a regular file in its place: a FIFO stands in."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    fifo = tmp_path / "junit.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    out = cli("run", "jobs.py:A", "--junit", str(fifo), cwd=tmp_path)
    reader.join(30)
    assert out.returncode == 0, out
    assert fifo.is_fifo()  # still the FIFO, not a file put in its place
    assert got and got[0].startswith(b"<?xml") and b'failures="0"' in got[0]
    assert f"written: {fifo}" in out.stdout


def test_a_symlinked_report_keeps_its_link_and_the_file_it_names_gets_the_page(tmp_path):
    """A ``--report`` symlink (into a web root) was replaced by a plain file, the page it named left stale."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    web = tmp_path / "web"
    web.mkdir()
    (web / "real.html").write_text("old page")
    (tmp_path / "link.html").symlink_to(web / "real.html")
    out = cli("run", "jobs.py:A", "--report", "link.html", cwd=tmp_path)
    assert out.returncode == 0, out
    assert (tmp_path / "link.html").is_symlink()
    page = (web / "real.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "old page" not in page
    assert sorted(p.name for p in web.iterdir()) == ["real.html"]  # no temporary file left beside it


def test_a_full_disk_leaves_no_empty_or_half_output_file(tmp_path):
    """On a full disk the ``not written:`` lines were right but 0-byte files were left, passing for outputs."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    out = cli("run", "jobs.py:A", "--report", "r.html", "--junit", "j.xml", "--graph", "g.dot", cwd=tmp_path, limit=200)
    assert out.returncode == 1, out
    for name in ("r.html", "j.xml", "g.dot"):
        assert f"not written: {name}: " in out.stdout, out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.py"]


def test_a_history_url_password_is_in_no_output_file(tmp_path):
    """The password of ``--history postgresql://u:PASS@...`` was written in clear into the report and JUnit file."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    url = "postgresql://u:s3cr3tpw@127.0.0.1:1/db"
    out = cli(
        "run", "jobs.py:A", "--history", url, "--history=" + url + "?password=zz9",
        "--report", "r.html", "--junit", "j.xml", "--events", "e.jsonl", "-v", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out  # (the history is unreachable: a warning, the run goes on)
    everything = out.stdout + out.stderr + "".join(p.read_text() for p in tmp_path.iterdir())
    assert "s3cr3tpw" not in everything and "zz9" not in everything
    assert "postgresql://u:***@127.0.0.1:1/db" in (tmp_path / "j.xml").read_text()


def test_a_history_database_naming_the_target_file_is_refused_before_anything_is_opened(tmp_path):
    """README promised it; the run went ahead and warned "file is not a database" instead."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    for command in ("run", "check"):
        out = cli(command, "jobs.py:A", "--history", "./jobs.py", cwd=tmp_path)
        assert out.returncode == 2, out
        error = "dojob: error: the --history database './jobs.py' is the target file of 'jobs.py:A'"
        assert out.stderr.startswith(error), out.stderr
    assert (tmp_path / "jobs.py").read_text() == ONE_JOB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.py"]


def _run_with_stdout(tmp_path: Path, args: tuple[str, ...], stdout: Any) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"
    closing = stdout == "closed"
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
        timeout=60, stdin=subprocess.DEVNULL, stdout=None if closing else stdout,
        preexec_fn=(lambda: os.close(1)) if closing else None,
    )  # fmt: skip


def test_a_recap_that_cannot_be_printed_is_one_error_line_and_exit_1_never_2_or_a_traceback(tmp_path):
    """Standard output is an output like ``--report``: a closed pipe, a full disk or no stdout at all gave exit 2
    (a usage error, before any job ran: false) or an AttributeError traceback."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    r, w = os.pipe()
    os.close(r)  # the reader went away before the recap
    targets = [("closed", "closed"), ("/dev/full", open("/dev/full", "w")), ("pipe", w)]  # noqa: SIM115
    for what, stdout in targets:
        out = _run_with_stdout(tmp_path, ("run", "jobs.py:A", "--junit", "j.xml"), stdout)
        assert out.returncode == 1, (what, out)
        lines = [line for line in out.stderr.splitlines() if "defines no Run method" not in line]
        assert lines == ["dojob: error: cannot write 'standard output': the recap could not be printed"], what
        assert (tmp_path / "j.xml").read_bytes().startswith(b"<?xml")  # the other outputs are written
    os.close(w)


def test_list_graph_and_history_into_an_unwritable_stdout_exit_1_with_one_line(tmp_path):
    """Only run/check had it: list and graph exited 2 (a usage error) on a full disk and 1 silently with stdout
    closed; history blamed its database."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    assert cli("run", "jobs.py:A", "--history", "h.db", cwd=tmp_path).returncode == 0
    for args in (("list", "jobs.py:A"), ("graph", "jobs.py:A"), ("history", "--history", "h.db")):
        for stdout in ("closed", open("/dev/full", "w")):  # noqa: SIM115
            out = _run_with_stdout(tmp_path, args, stdout)
            lines = [line for line in out.stderr.splitlines() if "defines no Run method" not in line]
            assert (out.returncode, lines) == (1, ["dojob: error: cannot write 'standard output'"]), (args, out)


def test_outputs_whose_folder_a_job_removed_are_not_claimed_written(tmp_path):
    """``--events`` in a folder a job removed was recapped ``written:`` (into a deleted file), and the history
    kept open since the start was written into its removed file without a word."""
    (tmp_path / "out").mkdir()
    (tmp_path / "jobs.py").write_text(
        "import shutil\nimport dojob\n\nclass A(dojob.Job):\n"
        "    def Check(self, *args, **kwargs):\n        raise RuntimeError('x')\n\n"
        "    def Run(self, *args, **kwargs):\n        shutil.rmtree('out')\n"
    )
    args = (
        "run",
        "jobs.py:A",
        "--tries",
        "1",
        "--history",
        "out/h.db",
        "--events",
        "out/e.jsonl",
        "--report",
        "out/r.html",
    )
    out = cli(*args, cwd=tmp_path)
    assert out.returncode == 1, out
    assert "written:" not in out.stdout.replace("not written:", ""), out.stdout
    assert "not written: out/e.jsonl: the file was removed while the run went on" in out.stdout
    assert f"not written: out/r.html: FileNotFoundError: no such folder '{tmp_path / 'out'}'" in out.stdout
    assert "dojob: warning: history not recorded: out/h.db: no such folder" in out.stderr


def test_dojob_history_on_another_programs_database_changes_nothing(tmp_path):
    """Listing a mistyped path (an application's SQLite file) added dojob's tables to it, or died on its ``runs``."""
    import sqlite3

    for table in ("users", "runs"):
        db = tmp_path / f"{table}.db"
        with sqlite3.connect(db) as conn:
            conn.execute(f"CREATE TABLE {table} (x)")
        conn.close()
        before = db.read_bytes()
        out = cli("history", "--history", str(db), cwd=tmp_path)
        assert out.returncode == 2, out
        assert out.stderr == f"dojob: error: {db} is not a dojob history (its tables: {table})\n"
        assert db.read_bytes() == before
    (tmp_path / "empty.db").write_bytes(b"")
    out = cli("history", "--history", "empty.db", cwd=tmp_path)
    assert (out.returncode, out.stderr) == (1, "dojob: no history at empty.db yet\n")


def test_dojob_history_shows_invisible_characters_in_names_as_dojob_list_does(tmp_path):
    (tmp_path / "jobs.py").write_text(
        "import dojob\n\n"
        "DeployProd = type('Deploy\\u200bProd', (dojob.Job,), {'Check': lambda self, *a, **k: None})\n\n"
        "class Root(dojob.DummyJob):\n    DEPS = (DeployProd,)\n"
    )
    assert cli("run", "jobs.py:Root", "--history", "h.db", cwd=tmp_path).returncode == 0
    out = cli("history", "show", "last", "--history", "h.db", cwd=tmp_path)
    assert out.returncode == 0, out
    assert "Deploy\\u200bProd" in out.stdout and "\u200b" not in out.stdout


# -- found by a second adversarial pass over the fixes above ------------------------------


def test_report_to_dev_stdout_appended_to_a_log_keeps_the_log(tmp_path):
    """``--report /dev/stdout >> build.log`` unlinked build.log (the real file behind /dev/stdout)."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    log = tmp_path / "build.log"
    log.write_text("EARLIER 1\nEARLIER 2\n")
    for option in ("--report", "--events"):
        with open(log, "a") as out:
            proc = _run_with_stdout(tmp_path, ("run", "jobs.py:A", option, "/dev/stdout"), out)
        assert proc.returncode == 0, proc
    text = log.read_text()
    assert text.startswith("EARLIER 1\nEARLIER 2\n") and "<!DOCTYPE html>" in text and '"event": "RunStarted"' in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.log", "jobs.py"]


def test_the_history_file_is_known_however_it_is_spelled(tmp_path):
    """``--history sqlite:///h.db --junit h.db`` and ``DOJOB_HISTORY='~/h.db'`` got past the clash check."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    out = cli("run", "jobs.py:A", "--history", "sqlite:///h.db", "--junit", "h.db", cwd=tmp_path)
    assert out.returncode == 2 and "--junit 'h.db' is the --history database" in out.stderr, out
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(HOME=str(tmp_path), DOJOB_HISTORY="~/h.db")
    out = subprocess.run(
        [sys.executable, "-m", "dojob", "run", "jobs.py:A", "--junit", str(tmp_path / "h.db")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "is the --history database" in out.stderr, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.py"]


def test_outputs_are_compared_by_file_not_by_name(tmp_path):
    """A hard link to the target as ``--events``, ``dojob graph -o`` through a symlink to the target, and
    ``--lock X --events X`` all got through, and destroyed the file."""
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    os.link(tmp_path / "jobs.py", tmp_path / "hard.jsonl")
    (tmp_path / "soft.dot").symlink_to(tmp_path / "jobs.py")
    for args in (
        ("run", "jobs.py:A", "--events", "hard.jsonl"),
        ("graph", "jobs.py:A", "-o", "soft.dot"),
        ("run", "jobs.py:A", "--lock", "x", "--events", "x"),
    ):
        out = cli(*args, cwd=tmp_path)
        assert out.returncode == 2 and out.stderr.startswith("dojob: error: "), (args, out)
    assert (tmp_path / "jobs.py").read_text() == ONE_JOB


def test_a_history_in_another_programs_database_is_not_written(tmp_path):
    """``dojob run --history app.db`` added dojob's tables to it and switched it to WAL mode."""
    import sqlite3

    (tmp_path / "jobs.py").write_text(ONE_JOB)
    with sqlite3.connect(tmp_path / "app.db") as conn:
        conn.execute("CREATE TABLE schema_version (installed_rank INTEGER, version TEXT)")  # Flyway's, not dojob's
        conn.execute("CREATE TABLE runs (x)")
    conn.close()
    before = (tmp_path / "app.db").read_bytes()
    out = cli("run", "jobs.py:A", "--history", "app.db", cwd=tmp_path)
    assert out.returncode == 0, out
    assert "history not recorded: app.db: not a dojob history (its tables: runs, schema_version)" in out.stderr
    assert (tmp_path / "app.db").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "jobs.py"]


def test_a_planted_temporary_symlink_is_not_written_through_and_modes_are_kept(tmp_path):
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    victim = tmp_path / "victim.txt"
    victim.write_text("PRECIOUS")
    (tmp_path / "r.html").write_text("old")
    os.chmod(tmp_path / "r.html", 0o600)
    proc = subprocess.Popen([sys.executable, "-c", "import os; print(os.getpid())"], stdout=subprocess.PIPE, text=True)
    proc.wait()
    # the pid of the next child is not known: plant a symlink for a range of them
    for pid in range(os.getpid(), os.getpid() + 400):
        (tmp_path / f".r.html.{pid}.tmp").symlink_to(victim)
    out = cli("run", "jobs.py:A", "--report", "r.html", cwd=tmp_path)
    assert out.returncode == 0, out
    assert victim.read_text() == "PRECIOUS"
    assert not (tmp_path / "r.html").is_symlink() and (tmp_path / "r.html").read_text().startswith("<!DOCTYPE")
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o600


def test_a_fifo_nobody_reads_is_not_written_rather_than_waited_for_ever(tmp_path):
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    os.mkfifo(tmp_path / "r.fifo")
    out = cli("run", "jobs.py:A", "--junit", "r.fifo", cwd=tmp_path)
    assert out.returncode == 1, out
    assert "not written: r.fifo: OSError: [Errno 6] nobody reads the FIFO 'r.fifo'" in out.stdout


def test_a_usage_error_with_stderr_closed_still_exits_2(tmp_path):
    """With ``2>&-`` the error line could not be written, and the command exited 1 instead of 2."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["DOJOB_HISTORY"] = "off"
    for command in ("run", "check", "list", "graph"):
        out = subprocess.run(
            [sys.executable, "-m", "dojob", command, "missing.py:A"], cwd=tmp_path, env=env,
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(2), timeout=60,
        )  # fmt: skip
        assert out.returncode == 2, command


def test_two_outputs_on_one_file_are_refused_by_symlink_hard_link_or_stream(tmp_path):
    (tmp_path / "jobs.py").write_text(ONE_JOB)
    (tmp_path / "a.xml").write_text("old")
    os.link(tmp_path / "a.xml", tmp_path / "hard.html")
    (tmp_path / "soft.html").symlink_to(tmp_path / "a.xml")
    for report, other in (("hard.html", "a.xml"), ("soft.html", "a.xml"), ("/dev/stdout", "/dev/fd/1")):
        option = "--events" if report == "/dev/stdout" else "--junit"
        out = cli("run", "jobs.py:A", "--report", report, option, other, cwd=tmp_path)
        assert out.returncode == 2, out
        assert f"dojob: error: {option} '{other}': the same file as --report '{report}'" in out.stderr, out.stderr
    assert (tmp_path / "a.xml").read_text() == "old"
