"""DoJobber's module, served by dojob: ``Job``, ``DummyJob``, ``RunonlyJob``, ``DoJobber``.

``python -m dojob.dojobber script.py ARGS...`` runs ``script.py`` with ``dojobber`` and
``dojobber.dojobber`` resolving to this module, so a DoJobber script runs unchanged
(see :mod:`dojob.dojobber.__main__`). Only that process sees the alias: a real
``dojobber`` installation stays what every other program imports. In your own code,
``from dojob import DoJobber, Job`` is the one-line alternative.
"""

from __future__ import annotations

import sys
from types import ModuleType

from ..compat import DoJobber
from ..job import DummyJob, Job, RunonlyJob

__all__ = ["DoJobber", "DummyJob", "Job", "RunonlyJob", "alias"]

#: DoJobber's package has its classes in a ``dojobber.dojobber`` module too.
dojobber: ModuleType = sys.modules[__name__]

#: The module names a DoJobber script imports.
ALIASES = ("dojobber", "dojobber.dojobber")


def alias() -> None:
    """Make ``import dojobber`` and ``import dojobber.dojobber`` give this module, in this process.

    Raises:
        RuntimeError: another ``dojobber`` (e.g. the real one) was imported already: its
            classes would mix with dojob's.
    """
    me = sys.modules[__name__]
    for name in ALIASES:
        other = sys.modules.get(name)
        if other is not None and other is not me:
            raise RuntimeError(
                f"module {name!r} is already imported from {getattr(other, '__file__', other)!r}: "
                "alias dojobber to dojob before anything imports it"
            )
    for name in ALIASES:
        sys.modules[name] = me
