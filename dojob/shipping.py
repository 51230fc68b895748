"""How job classes and their code travel to worker processes: by reference or by value.

A class (or function) goes **by reference** (module name and qualified name;
the worker imports it) when the import system would find its module under its
own name in a fresh interpreter with this ``sys.path``, and the name leads back
to that very object. Otherwise it goes **by value** (cloudpickle copies its
code): classes of ``__main__``, classes made in functions or with ``type()``,
and every module no worker can import by name, which includes the files the
``dojob`` command loads as targets (``dojob_target_<n>_<stem>``, see
:mod:`dojob.target`) and the neighbour modules found only because the command
put a target's folder on ``sys.path``. The decision is made per class
(:func:`how`) and per module (:func:`importable`), once each.

cloudpickle is imported on first use, never by ``import dojob``.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import threading
from types import FunctionType, ModuleType
from typing import Any, Literal

__all__ = ["dumps", "forget", "how", "importable"]

_MAIN = ("__main__", "__mp_main__")

#: module name -> (module object, importable by workers?)
_modules: dict[str, tuple[ModuleType, bool]] = {}
_lock = threading.Lock()
_pickler_class: Any = None


def _after_fork_in_child() -> None:
    """A child forked while another thread held a pickling lock gets fresh ones (else it could deadlock)."""
    global _lock
    _lock = threading.Lock()
    cp = sys.modules.get("cloudpickle.cloudpickle")
    if cp is not None and hasattr(cp, "_DYNAMIC_CLASS_TRACKER_LOCK"):  # (a private name: only if it is there)
        setattr(cp, "_DYNAMIC_CLASS_TRACKER_LOCK", threading.Lock())  # noqa: B010


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _real(path: str | None) -> str | None:
    return os.path.realpath(path) if path else None


def _fresh_spec(name: str) -> Any:
    """The spec the import system would find for top-level ``name``, ignoring ``sys.modules``."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, None)
        except Exception:  # a broken finder must not break a run
            continue
        if spec is not None:
            return spec
    return None


def _cli_folders() -> tuple[str, ...]:
    """Folders the ``dojob`` command put on ``sys.path`` for its file targets."""
    target = sys.modules.get("dojob.target")
    return tuple(getattr(target, "added_paths", ())) if target is not None else ()


def _decide(module: ModuleType) -> bool:
    name = module.__name__
    if name in _MAIN:
        return False
    spec = getattr(module, "__spec__", None)
    origin = _real(getattr(module, "__file__", None))
    if spec is None and origin is None:  # made with types.ModuleType: nothing to import it from
        return False
    if spec is not None and spec.origin in ("built-in", "frozen"):
        return True
    top = name.partition(".")[0]
    found = _fresh_spec(top)
    if found is None:  # e.g. a CLI target file, imported from its path under a private name
        return False
    if top == name and origin is not None and found.origin not in (None, "built-in", "frozen"):
        if _real(found.origin) != origin:  # that name would import another file
            return False
    if origin is not None:
        for folder in _cli_folders():
            if origin.startswith(os.path.realpath(folder) + os.sep):  # a neighbour of a CLI target: not installed
                return False
    return True


def importable(module: ModuleType) -> bool:
    """Can a worker import ``module`` by its name (so that its classes travel by reference)?"""
    name = module.__name__
    known = _modules.get(name)
    if known is not None and known[0] is module:
        return known[1]
    verdict = _decide(module)
    with _lock:
        if not verdict and name not in _MAIN and sys.modules.get(name) is module:
            import cloudpickle

            cloudpickle.register_pickle_by_value(module)  # its functions and classes are copied
        _modules[name] = (module, verdict)
    return verdict


def forget(name: str) -> None:
    """Drop what is known of the module ``name`` (a reload replaced it: its verdict would hold it alive)."""
    with _lock:
        known = _modules.pop(name, None)
        cp = sys.modules.get("cloudpickle")
        if known is not None and cp is not None and name in getattr(cp, "list_registry_pickle_by_value", set)():
            cp.unregister_pickle_by_value(known[0])


def _resolves(obj: Any) -> bool:
    """Does ``obj.__module__`` + ``obj.__qualname__`` lead back to ``obj`` itself?"""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    qualname = getattr(obj, "__qualname__", None)
    if module is None or not qualname or "<locals>" in qualname:
        return False
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return False
    return found is obj


def how(obj: type | FunctionType) -> Literal["reference", "value"]:
    """How the class or function ``obj`` travels to a worker: ``"reference"`` or ``"value"``."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    if module is None or module.__name__ in _MAIN or not _resolves(obj) or not importable(module):
        return "value"
    return "reference"


def _by_value_if_needed(obj: Any) -> None:
    """Make cloudpickle copy the module of ``obj`` (or the module ``obj``) by value if no worker can import it."""
    name = obj.__name__ if isinstance(obj, ModuleType) else getattr(obj, "__module__", None)
    if not isinstance(name, str) or name in _MAIN:
        return
    module = sys.modules.get(name)
    if module is None:
        return
    known = _modules.get(name)
    if known is None or known[0] is not module:
        importable(module)  # registers it with cloudpickle to go by value, if need be


def _make_pickler() -> Any:
    import cloudpickle

    from .job import Job

    class TryPickler(cloudpickle.Pickler):
        """cloudpickle, with per-module by-value decisions, minus the DEPS of Job classes sent by value."""

        def reducer_override(self, obj: Any) -> Any:
            if type(obj) is FunctionType or isinstance(obj, (type, ModuleType)):
                _by_value_if_needed(obj)
            reduced = super().reducer_override(obj)
            if (
                reduced is not NotImplemented
                and isinstance(obj, type)
                and issubclass(obj, Job)
                and isinstance(reduced, tuple)
                and len(reduced) >= 3
                and isinstance(reduced[2], tuple)
                and reduced[2]
                and isinstance(reduced[2][0], dict)
                and "DEPS" in reduced[2][0]
            ):
                state = ({**reduced[2][0], "DEPS": ()}, *reduced[2][1:])
                reduced = (*reduced[:2], state, *reduced[3:])
            return reduced

    return TryPickler


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for a worker: classes and functions by reference or by value as :func:`how` says."""
    global _pickler_class
    if _pickler_class is None:
        _pickler_class = _make_pickler()
    buffer = io.BytesIO()
    _pickler_class(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()
