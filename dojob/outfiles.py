"""The output files (``--report``, ``--junit``, ``--graph``, ``--events``): what a path names, how it is written.

A path may name a regular file (written beside its place, then renamed onto
it: whole or not at all, a symlink keeps pointing at the new content), a device
or FIFO (written into as it is, never removed), or one of the command's own
streams (``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N``): then the open stream
is written, never reopened (reopening would truncate a ``>> build.log``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from typing import TextIO

__all__ = ["discard_stale", "identity", "open_stream", "real_path", "stdout_to_null", "stream_fd", "write_file"]

_OWN_FD = re.compile(r"/(?:proc/self|dev)/fd/(\d+)")
_STD = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def stream_fd(path: str) -> int | None:
    """The file descriptor of this process that ``path`` names through symlinks (``/dev/stdout``: 1), or None."""
    here = os.path.abspath(path)
    for _ in range(40):  # (a symlink loop ends here)
        if here in _STD:
            return _STD[here]
        match = _OWN_FD.fullmatch(here)
        if match:
            return int(match.group(1))
        try:
            target = os.readlink(here)
        except OSError:
            return None
        here = os.path.normpath(os.path.join(os.path.dirname(here), target))
    return None


def real_path(path: str) -> str:
    """``path`` with its symlinks resolved: what it names on disk."""
    return os.path.realpath(path)


def identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of the file ``path`` names (a hard link and a symlink share it), or None."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def discard_stale(paths: list[str]) -> dict[str, int]:
    """Empty the regular files an earlier command left at ``paths`` (removed; truncated where the folder
    forbids removing); return the permission bits of each, by real path, for :func:`write_file` to keep.

    A device, a FIFO or one of the command's streams is left as it is.
    """
    modes: dict[str, int] = {}
    for path in paths:
        if stream_fd(path) is not None:
            continue
        real = real_path(path)
        try:
            st = os.lstat(real)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        modes[real] = stat.S_IMODE(st.st_mode)
        try:
            os.unlink(real)
        except PermissionError:  # a writable file in a folder we may not remove from: empty it instead
            with contextlib.suppress(OSError):
                os.truncate(real, 0)
        except FileNotFoundError:
            pass
    return modes


def write_file(path: str, data: bytes, modes: dict[str, int] | None = None) -> None:
    """Write ``data`` as the file ``path`` names (see the module's docstring); ``modes``: from :func:`discard_stale`.

    Raises:
        OSError: it cannot be written (a full disk, its folder gone, a FIFO nobody reads...).
    """
    fd = stream_fd(path)
    if fd is not None:
        with open(os.dup(fd), "wb") as fh:
            fh.write(data)
        return
    real = real_path(path)
    folder, name = os.path.split(real)
    try:
        st: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISFIFO(st.st_mode):
        try:  # (a FIFO nobody reads would block here for ever, past every signal)
            out = os.open(real, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise OSError(errno.ENXIO, f"nobody reads the FIFO {path!r}") from None
            raise
        os.set_blocking(out, True)
        with open(out, "wb") as fh:
            fh.write(data)
        return
    if st is not None and (not stat.S_ISREG(st.st_mode) or not os.access(folder, os.W_OK | os.X_OK)):
        with open(real, "wb") as fh:  # a device; or a writable file in a folder we may not create files in
            fh.write(data)
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else (modes or {}).get(real, 0o666)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        try:
            out = os.open(temp, flags, mode)
        except FileExistsError:  # left by a killed command (or planted): never written through
            os.unlink(temp)
            out = os.open(temp, flags, mode)
    except FileNotFoundError:  # (its folder went away while the jobs ran)
        raise FileNotFoundError(f"no such folder {folder!r}") from None
    try:
        with open(out, "wb") as fh:
            fh.write(data)
        if modes and real in modes:
            os.chmod(temp, mode)  # (the umask narrowed it at creation)
        os.replace(temp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def open_stream(path: str) -> TextIO:
    """``path`` opened for the event log: one of the command's streams is duplicated, not reopened."""
    fd = stream_fd(path)
    if fd is not None:
        return open(os.dup(fd), "w", encoding="utf-8")
    return open(path, "w", encoding="utf-8")


def stdout_to_null() -> None:
    """Point standard output at the null device once it cannot be written (a closed pipe, a full disk):
    the interpreter's last flush at exit then cannot fail again with a traceback."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.close(fd)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
