"""SHA-256 and SHA-1 hex digests without OpenSSL's start-up.

``hashlib`` loads ``_hashlib``, which initialises OpenSSL: a few milliseconds of
every ``dojob run``, for the lock file's name and the history's graph key. Python's
own implementations give the same digests (``random`` imports ``_sha512`` the same
way); ``hashlib`` remains the fallback where they are missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["sha1_hex", "sha256_hex"]


def _builtin(name: str, *modules: str) -> Callable[[bytes], Any]:
    """The constructor ``name`` from the first of ``modules`` this Python has, else ``hashlib``'s."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except ImportError:  # pragma: no cover - a build without it (3.12 moved sha256 to _sha2)
            pass
    return getattr(importlib.import_module("hashlib"), name)  # pragma: no cover


_sha1 = _builtin("sha1", "_sha1")
_sha256 = _builtin("sha256", "_sha256", "_sha2")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data``, in hex (``hashlib.sha256(data).hexdigest()``)."""
    return _sha256(data).hexdigest()


def sha1_hex(data: bytes) -> str:
    """The SHA-1 of ``data``, in hex (``hashlib.sha1(data).hexdigest()``)."""
    return _sha1(data).hexdigest()
