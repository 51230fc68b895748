"""The checks of single values a job or a run sets: TRIES, RETRY_DELAY, TIMEOUT, CLAIMS/USES, TAGS.

Each returns the value in the form the engine uses, or raises a
:class:`~dojob.errors.DojobError` naming the job (or option) and the
attribute. Shared by the graph build, ``dojob.aio`` and the run options.
"""

from __future__ import annotations

import logging
import math
from numbers import Real
from typing import Any

from .errors import JobAttributeError, OptionError


def check_tries(
    value: Any,
    *,
    option: str | None = None,
    job: str = "",
    attribute: str = "TRIES",
    warnings: list[str] | None = None,
) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool), else raise naming the culprit.

    With ``warnings`` (a list), a finite number >= 1 that is not an int is accepted as
    DoJobber accepts it (``TRIES = 1.1``): it counts ``ceil(value)`` tries, and a
    warning saying so is appended to the list and logged on the ``dojob`` logger.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value)
    if warnings is not None and isinstance(value, Real) and not isinstance(value, bool):
        f = float(value)
        if math.isfinite(f) and f >= 1:
            tries = math.ceil(f)
            where = f"option {option}=" if option else f"job {job!r}: {attribute}="
            warn(warnings, f"{where}{value!r} is not an int: it counts as {tries} tries (DoJobber's countdown)")
            return tries
    if option:
        raise OptionError(option, value, "an int >= 1")
    raise JobAttributeError(job, attribute, value, "an int >= 1")


#: The graph warnings logged so far: each is logged once per process (a graph built again,
#: e.g. by every ``checknrun()``, still lists it in :attr:`JobGraph.warnings`).
_LOGGED: set[str] = set()


def warn(warnings: list[str], message: str) -> None:
    """Keep a graph warning (DoJobber accepted what dojob would refuse) and log it, once."""
    warnings.append(message)
    if message not in _LOGGED:
        if len(_LOGGED) >= 10_000:  # jobs made on the fly, forever: keep the memory bounded
            _LOGGED.clear()
        _LOGGED.add(message)
        logging.getLogger("dojob").warning("%s", message)


def check_delay(value: Any, *, option: str | None = None, job: str = "", attribute: str = "RETRY_DELAY") -> float:
    """Return ``value`` as a float if it is a finite number >= 0 (not a bool), else raise."""
    if isinstance(value, Real) and not isinstance(value, bool):
        f = float(value)
        if math.isfinite(f) and f >= 0:
            return f
    if option:
        raise OptionError(option, value, "a finite number of seconds >= 0")
    raise JobAttributeError(job, attribute, value, "a finite number of seconds >= 0")


def check_resources(name: str, attribute: str, value: Any) -> tuple[str, ...]:
    """Job ``name``'s CLAIMS or USES as a sorted tuple of distinct non-empty strings, else raise."""
    if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
        raise JobAttributeError(name, attribute, value, "a tuple of resource names, e.g. ('db',)")
    for item in value:
        if not isinstance(item, str) or not item:
            raise JobAttributeError(name, attribute, value, "a tuple of non-empty strings")
    return tuple(sorted(set(value)))


def check_tags(name: str, value: Any) -> tuple[str, ...]:
    """Job ``name``'s TAGS as a tuple in their order, duplicates dropped; a tag that could not be
    given on the command line (``--tags a,b``: empty, a comma, edge spaces) is an error."""
    if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
        raise JobAttributeError(name, "TAGS", value, "a tuple of tags, e.g. ('db',)")
    for item in value:
        if not isinstance(item, str) or not item or item != item.strip() or "," in item:
            raise JobAttributeError(name, "TAGS", value, "a tuple of non-empty strings without commas or edge spaces")
    return tuple(dict.fromkeys(value))


def check_timeout(name: str, value: Any) -> float | None:
    """Job ``name``'s TIMEOUT as seconds (a finite float > 0), or None; else raise."""
    if value is None:
        return None
    if isinstance(value, Real) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    raise JobAttributeError(name, "TIMEOUT", value, "None or a finite number of seconds > 0")
