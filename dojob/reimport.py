"""Import a target's module afresh (what a reconcile loop does on SIGHUP).

:func:`dojob.target.load_target` imports a file once per process. A loop that
reloads its target needs the file's *current* text, and must keep the previous
module whole if the new text does not import: so each reload executes the
source under a new module name (``dojob_reload_<n>_<stem>``), read and compiled
here (a stale ``.pyc`` written in the same second cannot be used), and a module
target is imported again by name, the previous module put back if that fails.
Only the target's own module is reloaded, not the modules it imports. Once a
file's new module imported, its previous reload leaves ``sys.modules``: a loop
reloaded a thousand times holds one module per file, not a thousand.
"""

from __future__ import annotations

import importlib
import itertools
import linecache
import os
import re
import sys
import types
from collections.abc import Sequence

from .job import Job
from .target import TargetError, root_in

__all__ = ["reimport_targets"]

_generation = itertools.count(1)
#: File (resolved) -> the name in ``sys.modules`` of its latest reload.
_latest: dict[str, str] = {}


def _is_path(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where or os.path.isfile(where)


def _fresh_file(target: str, path: str, n: int) -> types.ModuleType:
    real = os.path.realpath(path)
    try:
        with open(real, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        raise TargetError(target, f"cannot read {path}: {exc.strerror or exc}") from None
    code = compile(source, real, "exec", dont_inherit=True)  # SyntaxError: the caller keeps the old graph
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(real))[0])
    name = f"dojob_reload_{n}_{stem}"
    module = types.ModuleType(name)
    module.__file__ = real
    folder = os.path.dirname(real)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    linecache.checkcache(real)  # tracebacks show the new text
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    previous = _latest.get(real)
    _latest[real] = name
    if previous is not None:  # (one call per file and reload: never the name just loaded)
        sys.modules.pop(previous, None)  # its classes live on while the old graph holds them
        shipping = sys.modules.get("dojob.shipping")
        if shipping is not None:  # (loaded by a run that shipped jobs to processes)
            shipping.forget(previous)
    return module


def _fresh_module(name: str) -> types.ModuleType:
    old = sys.modules.pop(name, None)
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except BaseException:
        if old is not None:
            sys.modules[name] = old
        else:
            sys.modules.pop(name, None)
        raise


def reimport_targets(targets: Sequence[str]) -> list[type[Job]]:
    """The Job classes of ``targets`` from freshly imported modules (several targets of one file share it).

    Raises:
        TargetError: a target is malformed, its file is unreadable, or it names no Job class.
        Exception: whatever compiling or importing raised (``SyntaxError``, the module's own error).
    """
    n = next(_generation)
    modules: dict[str, types.ModuleType] = {}
    roots: list[type[Job]] = []
    for target in targets:
        where, sep, attr = target.rpartition(":")
        if not sep or not where or not attr:
            raise TargetError(target, "expected path/to/file.py:RootJob or package.module:RootJob")
        key = os.path.realpath(where) if _is_path(where) else where
        module = modules.get(key)
        if module is None:
            module = _fresh_file(target, where, n) if _is_path(where) else _fresh_module(where)
            modules[key] = module
        roots.append(root_in(module, target, where, attr))  # (a bound job too, as load_target takes it)
    return roots
