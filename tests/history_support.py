"""Helpers of the history tests: the ``dojob`` command in a temp home, job files, a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Three jobs whose world is a JSON file next to them (it outlives a run), and one whose
# world is the run's global_storage (forgotten after each run: it changes every time).
WORLD = """\
    import json, os, threading
    import dojob

    LOCK = threading.Lock()

    STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "world.json")

    def world():
        try:
            with open(STATE) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def put(key):
        with LOCK:  # -j 2: two Runs at once
            w = world()
            w[key] = True
            with open(STATE + ".tmp", "w") as fh:
                json.dump(w, fh)
            os.replace(STATE + ".tmp", STATE)

    class Stable(dojob.Job):
        def Check(self, *a, **k):
            if not world().get("stable"):
                raise RuntimeError("not set up yet")
        def Run(self, *a, **k):
            put("stable")

    class Drifty(dojob.Job):
        def Check(self, *a, **k):
            if not world().get("drifty"):
                raise RuntimeError("someone undid it\\nsecond line of the error")
        def Run(self, *a, **k):
            put("drifty")

    class Flappy(dojob.Job):
        def Check(self, *a, **k):
            if not self.global_storage.get("flappy"):
                raise RuntimeError("forgotten again")
        def Run(self, *a, **k):
            self.global_storage["flappy"] = True

    class Unstable(dojob.Job):
        def Check(self, *a, **k):
            n = self.global_storage["checks"] = self.global_storage.get("checks", 0) + 1
            if n != 2:
                raise RuntimeError(f"check {n}: the change did not hold")
        def Run(self, *a, **k):
            pass

    class Broken(dojob.Job):
        TRIES = 1
        def Check(self, *a, **k):
            raise ValueError("\\x1b[31mred\\x1b[0m " + "x" * 1000 + "\\nnot this line")
        def Run(self, *a, **k):
            pass

    class Root(dojob.DummyJob):
        DEPS = [Stable, Drifty, Flappy]

    class Shaky(dojob.DummyJob):
        DEPS = [Stable, Unstable]

    class Bad(dojob.DummyJob):
        DEPS = [Stable, Broken]
"""


def write_world(folder: Path) -> Path:
    path = folder / "world.py"
    path.write_text(textwrap.dedent(WORLD), encoding="utf-8")
    return path


def home_env(home: Path, **more: str) -> dict[str, str]:
    """An environment whose HOME and XDG_STATE_HOME are ``home`` (never the real home)."""
    env = dict(os.environ, HOME=str(home), XDG_STATE_HOME=str(home / "state"), PYTHONPATH=str(ROOT))
    for name in ("DOJOB_HISTORY", "NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    env.update(more)
    return env


def cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m dojob ARGS`` in ``cwd``, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "dojob", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# -- PostgreSQL -----------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: bash .ci/install installs it (apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


class PostgresServer:
    """A throw-away PostgreSQL server on 127.0.0.1, in a temp folder, trusting local connections."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="dojob-pg-")
        self.port = _free_port()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        data = os.path.join(self.dir, "data")
        subprocess.run(
            _as_server_user([_pg_bin("initdb"), "-D", data, "-U", "dojob", "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_server_user(
                [_pg_bin("pg_ctl"), "-D", data, "-o", options, "-l", os.path.join(self.dir, "log"), "-w", "start"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.data = data

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://dojob@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(
                _as_server_user([_pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty history: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite3")
    return request.getfixturevalue("postgres_server").new_database()


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
