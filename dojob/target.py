"""Finding the root jobs the ``dojob`` command is asked to run.

A target is ``path/to/file.py:RootJob`` or ``package.module:RootJob``; the
attribute may be dotted (``module:Outer.Inner``). A file is imported under a
unique module name (``dojob_target_<n>_<stem>``) with its directory first on
``sys.path`` while it is imported, so it can import its neighbours; then that
directory moves to the end of ``sys.path``, so a neighbour named like a
standard module (``html.py``, ``colorsys.py``) cannot replace the one dojob
imports later, after the jobs changed the world. dojob also imports what it
needs itself before the file (:func:`preload`). A file named by several
targets is imported once, so their jobs are the same classes.
:func:`display_name` turns the internal module name back into the file's path
for messages.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Any

from .bind import BoundJob
from .errors import DojobError
from .job import Job

__all__ = ["TargetError", "display_name", "load_target", "load_targets", "preload"]

_loaded_files: dict[str, ModuleType] = {}
#: Folders put on ``sys.path`` for file targets (their modules travel to workers by value, see dojob.shipping).
added_paths: list[str] = []
#: internal module name -> the path the user gave, for messages
_display: dict[str, str] = {}

#: Modules dojob may import after the target's code ran (outputs, drivers, pictures).
PRELOAD = (
    "dojob.recap",
    "dojob.diagnose",
    "traceback",
    "difflib",
    "concurrent.futures.thread",
)
#: What each output needs besides (imported only when that output is asked for: start-up stays cheap).
OUTPUT_PRELOAD = {
    "report": ("dojob.render", "dojob.timeline", "dojob.htmlreport", "html", "graphviz", "socket", "getpass"),
    "junit": ("dojob.junit", "xml.etree.ElementTree", "xml.dom.minidom", "socket", "getpass"),
    "events": ("dojob.eventlog", "json"),
    "graphs": ("dojob.render", "graphviz", "html"),
}


def preload(extra: tuple[str, ...] = ()) -> None:
    """Import the modules dojob needs later (and ``extra``) now, before a target's folder is on ``sys.path``."""
    for name in (*PRELOAD, *extra):
        try:
            importlib.import_module(name)
        except ImportError:  # an optional dependency that is missing: its feature says so when used
            pass


def display_name(text: str) -> str:
    """``text`` with internal module names (``dojob_target_0_movie``) replaced by the files' paths."""
    if "dojob_target_" not in text:
        return text
    for module, path in sorted(_display.items(), key=lambda item: -len(item[0])):
        text = text.replace(module + ".", path + ":").replace(module, path)
    return text


class TargetError(DojobError):
    """A target cannot be loaded: bad syntax, missing file or module, import failure, not a Job class.

    Attributes:
        target: the target as given.
    """

    def __init__(self, target: str, problem: str) -> None:
        self.target = target
        super().__init__(f"target {target!r}: {problem}")


def _split(target: str) -> tuple[str, str]:
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise TargetError(target, "expected path/to/file.py:RootJob or package.module:RootJob")
    return where, attr


def _is_path(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where or os.path.isfile(where)


def _import_file(target: str, path: str) -> ModuleType:
    real = os.path.realpath(path)
    module = _loaded_files.get(real)
    if module is not None:
        return module
    if not os.path.isfile(real):
        raise TargetError(target, f"no such file: {path}")
    preload()
    folder = os.path.dirname(real)
    inserted = folder not in sys.path
    if inserted:
        sys.path.insert(0, folder)
        added_paths.append(folder)
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(real))[0])
    name = f"dojob_target_{len(_loaded_files)}_{stem}"
    spec = importlib.util.spec_from_file_location(name, real)
    if spec is None or spec.loader is None:
        raise TargetError(target, f"cannot import {path} (not a Python file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _display[name] = path
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        if inserted and folder in sys.path:  # neighbours stay importable, but after the standard library
            sys.path.remove(folder)
            sys.path.append(folder)
    _loaded_files[real] = module
    return module


def _import_module(target: str, name: str) -> ModuleType:
    preload()
    cwd = os.getcwd()
    inserted = "" not in sys.path and cwd not in sys.path
    if inserted:
        sys.path.insert(0, cwd)  # as `python -m` would, while the module is imported
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(target, f"no module named {exc.name!r}") from exc
        raise
    finally:
        if inserted and cwd in sys.path:
            sys.path.remove(cwd)
            sys.path.append(cwd)


def root_in(module: Any, target: str, where: str, attr: str) -> Any:
    """The Job class (or bound job) ``attr`` (dotted) of ``module``, the root ``target`` names.

    Raises:
        TargetError: no such attribute, or not a job.
    """
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(target, f"{where} has no attribute {attr!r}") from None
    if not (isinstance(obj, type) and issubclass(obj, Job)) and type(obj) is not BoundJob:
        raise TargetError(target, f"{attr} is not a Job class (it is a {type(obj).__name__})")
    return obj


def load_target(target: str) -> type[Job] | BoundJob:
    """The Job class (or bound job, see :meth:`Job.bind`) named by ``target``.

    Raises:
        TargetError: the target is malformed, its file or module is missing, or
            it does not name a Job class.
        Exception: whatever importing the file or module raised (its own bug);
            the caller reports it.
    """
    where, attr = _split(target)
    module = _import_file(target, where) if _is_path(where) else _import_module(target, where)
    obj = root_in(module, target, where, attr)
    return obj


def load_targets(targets: list[str]) -> list[type[Job] | BoundJob]:
    """The Job classes named by ``targets``, in order (see :func:`load_target`)."""
    return [load_target(t) for t in targets]
