"""One ``dojob run`` of a target at a time: a lock file that names its holder.

``dojob run`` takes the lock of its target(s) before anything runs, one-shot
runs and ``--every`` loops alike, so a cron job and a reconcile loop of the
same target never converge at once. The lock is ``flock(2)`` on a file in the
state directory (``$XDG_STATE_HOME/dojob/``, ``~/.local/state/dojob/`` by
default) or at ``--lock PATH``. The file holds the holder's pid, host and start
time, so a second run can say who holds it; the holder deletes it when done.

The kernel drops a ``flock`` when its holder dies, so the file of a killed run
is taken over, and the new holder says whose it was. A file that names another
host is not taken over: whether that holder still runs cannot be told from here
(remove the file once you know it does not).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from .digest import sha256_hex
from .errors import DojobError
from .host import hostname
from .records import compile_inits, record

__all__ = [
    "EXIT_LOCKED",
    "Holder",
    "LockError",
    "LockHeld",
    "RunLock",
    "command_lock",
    "default_lock_path",
    "state_dir",
]

#: Exit status of a ``dojob run`` refused because another run holds the lock (EX_TEMPFAIL).
EXIT_LOCKED = 75
#: Seconds between two looks at a lock that ``wait=True`` waits for.
POLL = 0.1


class LockError(DojobError):
    """The lock file cannot be created, opened or locked (not because another run holds it)."""


@record  # a frozen dataclass, without @dataclass's cost at start-up (see dojob.records)
class Holder:
    """Who holds (or held) a lock, as its file says; fields are None when the file does not say."""

    pid: int | None
    host: str | None
    started: str | None = None

    def describe(self) -> str:
        """``pid 1234 on host web1, since 2026-12-01 23:00:01 UTC`` (what the file tells)."""
        if self.pid is None:
            return "a run that has not written its pid yet"
        text = f"pid {self.pid} on host {_clean(self.host or '?')}"
        return text + (f", since {_clean(self.started)}" if self.started else "")


compile_inits()


class LockHeld(DojobError):
    """Another run holds the lock.

    Attributes:
        path: the lock file.
        holder: who holds it, as the file says.
        reason: why it counts as held (blank when its holder holds the ``flock``).
    """

    def __init__(self, path: str, holder: Holder, reason: str = "") -> None:
        self.path = path
        self.holder = holder
        self.reason = reason
        super().__init__(f"another run holds the lock {path!r}: {holder.describe()}{reason}")


def _clean(text: str) -> str:
    """A value read from a lock file, safe to print on one line."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", "?", str(text))[:200]


def _host() -> str:
    return hostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_holder(text: str) -> Holder:
    """The holder a lock file's text names (fields None when missing or malformed)."""
    try:
        data = json.loads(text)
    except ValueError:
        return Holder(None, None)
    if not isinstance(data, dict):
        return Holder(None, None)
    pid = data.get("pid")
    host = data.get("host")
    started = data.get("started")
    return Holder(
        pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
        host if isinstance(host, str) else None,
        started if isinstance(started, str) else None,
    )


class RunLock:
    """An exclusive lock on ``path``, held by this process between :meth:`acquire` and :meth:`release`.

    Args:
        path: the lock file (its directory must exist).
        note: what the file says this run is (the targets), for people who read it.
    """

    def __init__(self, path: str, *, note: str = "") -> None:
        self.path = path
        self.note = note
        self._fd: int | None = None
        #: The holder whose lock this one took over (it had died), or None.
        self.took_over: Holder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open_locked(self) -> tuple[int | None, Holder | None]:
        """Try once: (fd, None) when locked, (None, holder) when another process holds it."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise LockError(f"cannot open the lock file {self.path!r}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise LockError(f"cannot lock {self.path!r}: {exc.strerror or exc}") from None
                holder = self._read(fd)
                os.close(fd)
                return None, holder
            # The previous holder may have deleted the file between our open and our flock:
            # then we hold a lock on a file nobody else will open; start again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                return fd, None
            os.close(fd)

    @staticmethod
    def _read(fd: int) -> Holder:
        for _ in range(20):  # the holder writes its pid right after it locks: give it a moment
            with contextlib.suppress(OSError):
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
                if text.strip():
                    return read_holder(text)
            time.sleep(0.01)
        return Holder(None, None)

    def acquire(
        self,
        *,
        wait: bool = False,
        on_wait: Callable[[Holder], None] | None = None,
        poll: float = POLL,
    ) -> None:
        """Take the lock, or wait for it (``wait=True``), or raise :class:`LockHeld`.

        ``on_wait(holder)`` is called once, when waiting starts. A lock whose file
        names a process of this host that no longer holds it is taken over
        (:attr:`took_over` says whose it was); one whose file names another host
        is held, whatever ``wait`` says, until someone removes the file.

        Raises:
            LockHeld: another run holds it and ``wait`` is False (or the file names another host).
            LockError: the file cannot be opened or locked.
        """
        if self._fd is not None:
            return
        told = False
        while True:
            fd, holder = self._open_locked()
            if fd is not None:
                previous = self._read_own(fd)
                if previous.pid is not None and previous.host not in (None, _host()):
                    os.close(fd)
                    raise LockHeld(
                        self.path,
                        previous,
                        f" (it did not release it, and this host cannot tell whether it still runs: "
                        f"remove {self.path!r} once it does not)",
                    )
                self.took_over = previous if previous.pid is not None else None
                self._fd = fd
                self._write(fd)
                return
            assert holder is not None
            if not wait:
                raise LockHeld(self.path, holder)
            if not told and on_wait is not None:
                on_wait(holder)
                told = True
            time.sleep(poll)

    @staticmethod
    def _read_own(fd: int) -> Holder:
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        except OSError:
            return Holder(None, None)
        return read_holder(text) if text.strip() else Holder(None, None)

    def _write(self, fd: int) -> None:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        data = {"pid": os.getpid(), "host": _host(), "started": started, "run": self.note}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(data) + "\n").encode("utf-8", "backslashreplace"), 0)

    def release(self) -> None:
        """Delete the file and drop the lock (while holding it, so no one sees a half-released lock)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                os.unlink(self.path)
        os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:  # a lock dropped without release(): do not leave the file behind
        with contextlib.suppress(Exception):
            self.release()


def state_dir(environ: Mapping[str, str] | None = None) -> str:
    """dojob's state directory: ``$XDG_STATE_HOME/dojob``, else ``~/.local/state/dojob``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: a relative value is invalid, ignore it
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "dojob")


def _target_key(target: str) -> tuple[str, str]:
    """(what identifies the target, a readable label): a file by its real path, a module by name."""
    where, _, attr = target.rpartition(":")
    if where.endswith(".py") or "/" in where or os.sep in where or os.path.isfile(where):
        real = os.path.realpath(where)
        return f"file:{real}:{attr}", f"{os.path.splitext(os.path.basename(real))[0]}-{attr}"
    return f"module:{where}:{attr}", f"{where}-{attr}"


def default_lock_path(targets: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The lock file of ``targets`` in the state directory; the same set of targets, the same file.

    The name is readable (``file-Root-<hash>.lock``) and the hash of the targets'
    real paths keeps two files of the same name in different folders apart.
    """
    keys = sorted({_target_key(t) for t in targets})
    digest = sha256_hex("\n".join(k for k, _ in keys).encode("utf-8", "surrogatepass"))[:16]
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", "+".join(label for _, label in keys))[:80].strip("._") or "target"
    return os.path.join(state_dir(environ), f"{label}-{digest}.lock")


def _say(stream: TextIO | None, text: str) -> None:
    stream = stream or sys.stderr
    stream.write(f"dojob: {text}\n")
    stream.flush()


@contextlib.contextmanager
def command_lock(ns: Any, err: Callable[..., None], stream: TextIO | None = None) -> Iterator[int | None]:
    """The lock of a ``dojob run`` command line, held while the block runs.

    Yields None when the block may run (lock held, or not needed: ``dojob
    check`` changes nothing), or the exit status to return instead
    (:data:`EXIT_LOCKED` when another run holds it, 2 when the lock cannot be made).
    A one-shot run whose default state directory cannot be created runs
    unlocked, as it always did; a loop, or an explicit ``--lock``, does not.
    """
    if getattr(ns, "command", None) != "run":
        yield None
        return
    explicit = getattr(ns, "lock", None)
    loop = getattr(ns, "every", None) is not None
    path = explicit or default_lock_path(ns.targets)
    if not explicit:
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        except OSError as exc:
            if not loop:
                yield None
                return
            err(f"error: cannot create the state directory {os.path.dirname(path)!r}: {exc.strerror or exc}", exc)
            yield 2
            return
    lock = RunLock(path, note=" ".join(ns.targets))
    wait = bool(getattr(ns, "lock_wait", False))

    def waiting(holder: Holder) -> None:
        _say(stream, f"waiting for the lock {path!r}, held by {holder.describe()}")

    try:
        lock.acquire(wait=wait, on_wait=waiting)
    except LockHeld as exc:
        hint = "" if wait or exc.reason else " (--lock-wait waits for it)"
        err(f"error: {exc}{hint}", exc)
        yield EXIT_LOCKED
        return
    except LockError as exc:
        err(f"error: {exc}", exc)
        yield 2
        return
    if lock.took_over is not None:
        was = lock.took_over
        gone = "no longer running" if was.pid is not None and not _alive(was.pid) else "it no longer held it"
        _say(stream, f"took over the lock {path!r} from {was.describe()} ({gone})")
    try:
        yield None
    finally:
        lock.release()
