"""Keep a message of the day in place: a small target for ``dojob run --every``.

Three jobs converge a directory, a file with the right text, and its mode, all
under the directory named by ``--set root=...`` (default ``./motd-demo``).
Delete or edit the file while a loop runs and the next run puts it back, and
says it drifted::

    dojob run examples/motd.py:Motd --set root=/tmp/demo --every 30s
"""

from __future__ import annotations

import os
import stat

import dojob

TEXT = "Welcome. This host is kept converged by dojob.\n"


def _root(kwargs: dict) -> str:
    return str(kwargs.get("root") or "motd-demo")


class Folder(dojob.Job):
    """The directory exists."""

    def Check(self, *args, **kwargs):
        assert os.path.isdir(_root(kwargs)), f"no directory {_root(kwargs)}"

    def Run(self, *args, **kwargs):
        os.makedirs(_root(kwargs), exist_ok=True)


class Text(dojob.Job):
    """The file holds the message."""

    DEPS = [Folder]

    def Check(self, *args, **kwargs):
        path = os.path.join(_root(kwargs), "motd")
        with open(path, encoding="utf-8") as fh:
            assert fh.read() == TEXT, f"{path} does not hold the message"

    def Run(self, *args, **kwargs):
        with open(os.path.join(_root(kwargs), "motd"), "w", encoding="utf-8") as fh:
            fh.write(TEXT)


class Mode(dojob.Job):
    """Everyone may read the file; only its owner may write it."""

    DEPS = [Text]

    def Check(self, *args, **kwargs):
        mode = stat.S_IMODE(os.stat(os.path.join(_root(kwargs), "motd")).st_mode)
        assert mode == 0o644, f"mode is {mode:o}, not 644"

    def Run(self, *args, **kwargs):
        os.chmod(os.path.join(_root(kwargs), "motd"), 0o644)


class Motd(dojob.DummyJob):
    """The root: the message of the day is in place."""

    DEPS = [Mode]
