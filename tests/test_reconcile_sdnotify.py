"""sd_notify: what the loop tells systemd, received on a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time

import pytest
from reconciling import Proc, env_for, write

from dojob.sdnotify import Notifier

JOB = """\
    import dojob

    class Root(dojob.Job):
        def Check(self, *args, **kwargs):
            pass

        def Run(self, *args, **kwargs):
            pass
"""


@pytest.fixture
def notify_socket():
    """A bound datagram socket in a short directory (AF_UNIX paths are short)."""
    folder = tempfile.mkdtemp(prefix="sdn", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def receive(sock: socket.socket, until: str, timeout: float = 30) -> list[list[str]]:
    """Datagrams (each as its lines) until one holds the line ``until``."""
    got: list[list[str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        got.append(data.decode().split("\n"))
        if until in got[-1]:
            return got
    raise AssertionError(f"no {until!r} in {got}")


def test_a_loop_tells_systemd_ready_status_watchdog_and_stopping(tmp_path, notify_socket):
    sock, path = notify_socket
    write(tmp_path / "site.py", JOB)
    env = env_for(tmp_path, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    with Proc("run", "site.py:Root", "--every", "0.5s", "--max-runs", "3", cwd=tmp_path, env=env) as p:
        messages = receive(sock, "STOPPING=1")
        assert p.finish() == 0
    flat = [line for message in messages for line in message]
    ready = [m for m in messages if "READY=1" in m]
    assert len(ready) == 1
    assert any(line.startswith("STATUS=run 1 converged at ") and "next run in 500 ms" in line for line in ready[0])
    statuses = [line for line in flat if line.startswith("STATUS=")]
    assert [s.split()[1] for s in statuses[:3]] == ["1", "2", "3"]
    assert statuses[-1] == "STATUS=stopped after 3 runs"
    assert flat.index("READY=1") < flat.index("STOPPING=1")
    # watched every 0.4 s: pinged during each run and within each 0.5 s sleep
    assert flat.count("WATCHDOG=1") >= 4, messages


def test_sighup_sends_reloading_then_ready(tmp_path, notify_socket):
    sock, path = notify_socket
    write(tmp_path / "site.py", JOB)
    env = env_for(tmp_path, NOTIFY_SOCKET=path)
    with Proc("run", "site.py:Root", "--every", "1h", cwd=tmp_path, env=env) as p:
        receive(sock, "READY=1")
        p.signal(signal.SIGHUP)
        after = receive(sock, "RELOADING=1")
        reloading = after[-1]
        assert any(line.startswith("MONOTONIC_USEC=") and line[15:].isdigit() for line in reloading)
        receive(sock, "READY=1")
        p.wait_for("^run 2 ")
        p.signal(signal.SIGTERM)
        messages = receive(sock, "STOPPING=1")
        assert p.finish() == 143
    assert not any("WATCHDOG=1" in m for m in messages)  # not watched: no pings


def test_notifier_does_nothing_without_a_socket_and_survives_one_that_went_away(tmp_path):
    quiet = Notifier({})
    assert not quiet.enabled and quiet.notify("READY=1") is False and quiet.ping() is False
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.enabled and gone.ready("x") is False  # best effort: no exception


def test_notifier_abstract_socket_and_watchdog_pid():
    name = f"dojob-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
        assert notifier.watchdog == 1.0
        assert notifier.status("line one\nline two") is True
        assert sock.recv(4096) == b"STATUS=line one line two"  # one field cannot smuggle another
        assert notifier.ping() is True and sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.ping() is False  # rate-limited
        notifier.close()
    other = Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    assert other.watchdog is None  # the watchdog is for another process
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "nonsense"}).watchdog is None
