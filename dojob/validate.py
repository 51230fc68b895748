"""Validating job classes once per kind of class, not once per job: the build's memo.

Jobs made alike (from one base class, or ``bind`` of one class) have the same
validated values. :class:`SpecMemo` keys them by what they depend on (the
class's bases and what its own ``__dict__`` overrides; a bound job's class),
so only the first job of a kind pays for the checks; the others cost a
lookup. It also reads each node's ``DEPS`` (validating the container) and
checks each DEPS entry once, when the walk first meets it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from .bind import BoundJob
from .checks import check_delay, check_resources, check_tags, check_timeout, check_tries, warn
from .errors import DepsError, JobAttributeError, JobDefinitionError
from .job import Job
from .retry import check_policy
from .spec import JobSpec, Traits, awaitable_spec, intern_traits, is_awaitable_node, make_spec

#: Class attributes that decide a spec's validated values.
_SPEC_NAMES = frozenset(
    ("_dojob_kind", "TRIES", "RETRY_DELAY", "PRIORITY", "CRITICAL", "TIMEOUT", "CLAIMS", "USES")
    + ("Check", "Run", "Cleanup", "TAGS")
    + ("RETRY_BACKOFF", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_ON", "RETRY_FROM")
)

#: The names a job class may define that dojob reads; a near miss of one is a typo (operator).
_KNOWN_NAMES: tuple[str, ...] = ("DEPS", "TRIES", "RETRY_DELAY", "PRIORITY", "CRITICAL", "TIMEOUT", "CLAIMS", "USES")
_KNOWN_NAMES += ("Check", "Run", "Cleanup", "TAGS", "BIND_NAME")
_KNOWN_NAMES += ("RETRY_BACKOFF", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_ON", "RETRY_FROM")
_KNOWN_FOLDED = {n.casefold().replace("_", ""): n for n in _KNOWN_NAMES}

#: The walk's frame of a node: the node, an iterator over its DEPS, the indices of those placed
#: (filled by the walk), its memo key (None: not memoised), its validated values (None if not yet known)
#: and its DEPS as the walk takes them (a tuple: the class's own if taken as it is).
Frame = tuple[Any, Iterator[Any], list[int], "tuple | None", "tuple | None", Any]


class SpecMemo:
    """One build's memo of validated values, and the reading of each node it walks."""

    def __init__(self, default_tries: int, default_delay: float, warnings: list[str]) -> None:
        self.default_tries = default_tries
        self.default_delay = default_delay
        self.warnings = warnings
        self._values: dict[tuple, Traits] = {}  # memo key -> the spec's traits
        self._traits: dict[Traits, Traits] = {}  # the build's distinct traits (jobs of different keys share them)
        self._getters: dict[tuple, Any] = {}  # class-dict layout -> a getter of the spec attributes it overrides
        self._coro: dict[Any, bool] = {None: False}  # inspect.iscoroutinefunction, per function
        #: The specs validated (not taken from the memo): a spec of each distinct set of
        #: values plus every awaitable node, enough for the graph-wide questions.
        self.distinct: list[JobSpec] = []

    def open(self, node: Any, parent: Any = None) -> Frame:
        """The walk's frame of ``node``, met in ``parent``'s DEPS (checked here) or as a root.

        A class's memo key is its bases and what its own ``__dict__``
        overrides: reading that dict avoids walking the MRO for a dozen names.
        Classes made alike have the same dict keys, so a getter of the values
        they override is memoised by those keys (and the typo check runs once
        per such layout). A bound job's key is its class.
        """
        if type(node) is BoundJob:
            cls = node.job
            key: Any = (BoundJob, cls)
            deps = cls.DEPS
        else:
            if type(node) is not type or not issubclass(node, Job):  # (the common case: one test)
                if parent is not None:
                    check_dep(parent, node)
                if not isinstance(node, type):  # an awaitable node: no DEPS, no memo
                    return node, iter(()), [], None, None, ()
            own = node.__dict__
            layout = tuple(own)
            getter = self._getters.get(layout)
            if getter is None:
                check_typos(node, layout)
                names = tuple(_SPEC_NAMES.intersection(own))
                getter = self._getters[layout] = itemgetter(*names) if names else _no_overrides
            key = (node.__bases__, getter, getter(own))  # (the getter, hashed by identity, stands for the names)
            deps = node.DEPS
        if type(deps) is not tuple or (
            len(deps) > 1 and (len(deps) > 2 or deps[1] is deps[0] or type(deps[0]) is BoundJob)
        ):
            deps = deps_of(node)  # (a tuple of at most two distinct classes is taken as it is)
        try:
            return node, iter(deps), [], key, self._values.get(key), deps
        except TypeError:  # an unhashable attribute value: validate without the memo
            return node, iter(deps), [], None, None, deps

    def spec(self, frame: Frame, index: int) -> JobSpec:
        """The spec of the node of ``frame`` at post-order ``index``; one validated now joins :attr:`distinct`."""
        node, _, _, key, values, _ = frame
        if values is None and key is not None:  # a job alike may have been placed since its frame opened
            values = self._values.get(key)
        if values is not None:
            return make_spec(JobSpec, (node.__name__, index, node, values))
        if not isinstance(node, type) and type(node) is not BoundJob:
            spec = awaitable_spec(node, index, self.default_tries, self.default_delay)
        else:
            warnings = self.warnings
            before = len(warnings)
            values = validate_class(node, self.default_tries, self.default_delay, warnings, self._coro)
            values = intern_traits(values, self._traits)
            if key is not None and len(warnings) == before:  # one that drew a warning: each job alike gets its own
                self._values[key] = values
            spec = make_spec(JobSpec, (node.__name__, index, node, values))
        self.distinct.append(spec)
        return spec


def _no_overrides(own: Any) -> tuple:
    return ()


def validate_class(
    cls: Any, default_tries: int, default_delay: float, warnings: list[str], coro: dict[Any, bool]
) -> Traits:
    """Check every attribute of Job class ``cls`` (or a bound job's class) dojob reads: its spec's traits.

    Raises:
        JobAttributeError: an attribute has a bad value (the error names the job).
    """
    name = cls.__name__
    tries, delay, priority, critical, timeout = _numbers(cls, name, default_tries, default_delay, warnings)
    claims, uses = _locks(cls, name)
    kind, is_async, has_cleanup = _phases(cls, name, warnings, coro)
    tags = check_tags(name, cls.TAGS) if cls.TAGS else ()
    retry = check_policy(name, cls)
    # forever False and fail_blocks True: a Job class's
    return Traits(
        kind, tries, delay, priority, critical, is_async, has_cleanup, False, timeout, claims, uses, True, tags, retry
    )


def _numbers(cls: Any, name: str, default_tries: int, default_delay: float, warnings: list[str]) -> tuple:
    """TRIES, RETRY_DELAY, PRIORITY, CRITICAL and TIMEOUT, checked (the defaults for None)."""
    tries = cls.TRIES
    if tries is None:
        tries = default_tries
    elif type(tries) is not int or tries < 1:
        tries = check_tries(tries, job=name, warnings=warnings)
    delay = cls.RETRY_DELAY
    delay = default_delay if delay is None else check_delay(delay, job=name)
    priority = cls.PRIORITY
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise JobAttributeError(name, "PRIORITY", priority, "an int")
    critical = cls.CRITICAL
    if critical is not False and critical is not True:
        raise JobAttributeError(name, "CRITICAL", critical, "True or False")
    timeout = cls.TIMEOUT
    if timeout is not None:
        timeout = check_timeout(name, timeout)
    return tries, delay, priority, critical, timeout


def _locks(cls: Any, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """CLAIMS and USES, checked; a resource both claimed and used is only claimed (the exclusive lock covers it)."""
    claims = check_resources(name, "CLAIMS", cls.CLAIMS) if cls.CLAIMS else ()
    uses = check_resources(name, "USES", cls.USES) if cls.USES else ()
    if claims and uses:
        uses = tuple(u for u in uses if u not in claims)
    return claims, uses


def _phases(cls: Any, name: str, warnings: list[str], coro: dict[Any, bool]) -> tuple[str, bool, bool]:
    """The job's kind, whether a phase is ``async def``, whether it has a Cleanup.

    DoJobber builds a job without Check or Run and lets the missing method fail
    its phase at run time (AttributeError): dojob runs it alike, with a warning
    instead of a refusal.
    """
    kind = cls._dojob_kind
    check = getattr(cls, "Check", None)
    run = getattr(cls, "Run", None)
    cleanup = getattr(cls, "Cleanup", None)
    if kind == "job":
        if not callable(check):
            warn(
                warnings,
                f"job {name!r}: defines no Check method: every try fails (use RunonlyJob for a job without Check)",
            )
        if not callable(run):
            warn(warnings, f"job {name!r}: defines no Run method: its Check alone decides")
    elif kind == "runonly":
        if callable(check):
            kind = "job"  # as in DoJobber, its own Check replaces the implicit one
            warn(warnings, f"job {name!r}: is a RunonlyJob that defines Check: it runs as a Job (check, run, recheck)")
        elif not callable(run):
            warn(warnings, f"job {name!r}: is a RunonlyJob but defines no Run method: every try fails")
    is_async = _is_coroutine(check, coro) or _is_coroutine(run, coro) or _is_coroutine(cleanup, coro)
    return kind, is_async, callable(cleanup)


def _is_coroutine(fn: Any, coro: dict[Any, bool]) -> bool:
    """``inspect.iscoroutinefunction``, memoised per function (many jobs share methods)."""
    try:
        return coro[fn]
    except KeyError:
        result = coro[fn] = inspect.iscoroutinefunction(fn)
        return result
    except TypeError:  # unhashable callable
        return inspect.iscoroutinefunction(fn)


def check_typos(cls: type, names: tuple[str, ...]) -> None:
    """Refuse a class attribute that is a near miss of one dojob reads (``Tries``, ``deps``, ``def check``).

    Such a name would be silently ignored (``TRIES`` stays the default, the
    DEPS are not run); so it is an error that suggests the right spelling.
    """
    for name in names:
        if name.startswith("__") or name in _KNOWN_NAMES:
            continue
        folded = name.casefold().replace("_", "")
        known = _KNOWN_FOLDED.get(folded)
        if known is None and len(folded) >= 4:
            import difflib

            close = difflib.get_close_matches(folded, _KNOWN_FOLDED, n=1, cutoff=0.84)
            known = _KNOWN_FOLDED[close[0]] if close else None
        if known is not None:
            raise JobDefinitionError(
                cls.__name__, f"defines {name!r}, which dojob does not read: did you mean {known}?"
            )


def deps_of(node: Any) -> tuple[Any, ...]:
    """The DEPS of ``node`` as a tuple, duplicates dropped; the container is validated here.

    Entries are checked when the walk first meets them (:func:`check_dep`).
    An awaitable node has no DEPS (its own requirements live in its
    scheduler); a bound job has its class's.
    """
    if not isinstance(node, type) and type(node) is not BoundJob:
        return ()
    raw = node.DEPS  # type: ignore[union-attr]  # (a bound job reads its class's)
    if type(raw) is tuple:
        deps = raw
    elif type(raw) is list:
        deps = tuple(raw)
    else:
        deps = _odd_deps(node.__name__, raw)
    n = len(deps)
    if n == 2:  # the common small case, without building a set
        if deps[0] is deps[1] or (type(deps[0]) is BoundJob and deps[0] == deps[1]):
            deps = deps[:1]
    elif n > 2 and len(set(deps)) != n:
        deps = tuple(dict.fromkeys(deps))
    return deps


def _odd_deps(name: str, raw: Any) -> tuple[Any, ...]:
    """A DEPS that is neither a tuple nor a list: as a tuple if it is an iterable of jobs, else the error."""
    if raw is None:
        raise DepsError(name, raw, "must be an iterable of Job classes, not None")
    if isinstance(raw, (str, bytes)):
        raise DepsError(name, raw, "must be an iterable of Job classes, not a string")
    if isinstance(raw, type):
        raise DepsError(name, raw, "must be an iterable of Job classes (write DEPS = (X,), not DEPS = X)")
    if type(raw) is BoundJob:
        raise DepsError(name, raw, "must be an iterable of jobs (write DEPS = (X.bind(...),), not DEPS = X.bind(...))")
    try:
        return tuple(raw)
    except TypeError:
        raise DepsError(name, raw, "must be an iterable of Job classes") from None


def check_dep(parent: Any, dep: Any) -> None:
    """Raise :class:`DepsError` unless ``dep``, listed in ``parent.DEPS``, is a Job class, bound or awaitable job."""
    if type(dep) is BoundJob or (isinstance(dep, type) and issubclass(dep, Job)):
        return
    if is_awaitable_node(dep):
        if getattr(dep, "forever", False):
            raise DepsError(parent.__name__, dep, "cannot list a forever job (it never completes)")
        return
    if isinstance(dep, Job):
        raise DepsError(parent.__name__, dep, "must list Job classes, not instances")
    raise DepsError(parent.__name__, dep, "must contain only Job classes")
