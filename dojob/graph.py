"""Building the job graph: introspection of ``DEPS`` from the root(s), validation, specs.

:func:`build_graph` walks ``DEPS`` iteratively (a 100 000-job chain is fine),
checks every class and value before any job runs, and returns an immutable
:class:`JobGraph`: one :class:`JobSpec` per job in DFS post-order (DEPS in
declaration order), which is also the serial run order and DoJobber's.
"""

from __future__ import annotations

import gc
import inspect
import logging
import math
from collections.abc import Callable, Iterator
from functools import cached_property
from numbers import Real
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from .bind import BoundJob
from .errors import (
    CycleError,
    DepsError,
    DuplicateJobError,
    JobAttributeError,
    JobDefinitionError,
    OptionError,
    RootError,
)
from .job import Job
from .retry import RetryPolicy, check_policy

if TYPE_CHECKING:
    import networkx


class JobSpec(NamedTuple):
    """Everything the planner and drivers need to know about one job, fixed for a run.

    ``kind`` is "job", "dummy", "runonly" (Job classes) or "awaitable" (an
    object whose ``co_run()`` coroutine is the job, e.g. a ``dojob.aio`` job;
    then ``cls`` holds that object). ``fail_blocks`` False makes DEPS mere
    ordering, as in asynciojobs: dependents of a failed job still run.

    A named tuple: the build makes one per job without a Python-level
    ``__init__`` (``tuple.__new__`` on memoised values).
    """

    name: str
    index: int  # type: ignore[assignment]  # a field shadowing tuple.index(): the public name of the spec's position
    cls: Any
    kind: str
    tries: int
    retry_delay: float
    priority: int = 0
    critical: bool = False
    is_async: bool = False
    has_cleanup: bool = False
    forever: bool = False
    timeout: float | None = None
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    fail_blocks: bool = True
    tags: tuple[str, ...] = ()
    retry: RetryPolicy | None = None

    def __repr__(self) -> str:
        return f"<JobSpec {self.index}:{self.name} kind={self.kind} tries={self.tries}>"


class JobGraph:
    """An immutable, validated job graph.

    Attributes:
        specs: the jobs in post-order (every job after all its dependencies);
            ``specs[i].index == i``.
        deps: ``deps[i]`` holds the indices of job ``i``'s dependencies, in DEPS order.
        dependents: ``dependents[i]`` holds the indices of the jobs that depend on job ``i``.
        roots: the root jobs' names.
        warnings: what the build accepted for DoJobber's sake and would otherwise
            refuse (a job without Check or Run, a float TRIES...), one sentence each;
            also logged on the ``dojob`` logger.
    """

    __slots__ = ("specs", "deps", "dependents", "roots", "_index", "_distinct", "__dict__")

    #: The indices of the jobs a selection skips (``--skip``): satisfied without a try.
    skipped: frozenset[int] = frozenset()

    def __init__(
        self,
        specs: list[JobSpec],
        deps: list[tuple[int, ...]],
        roots: tuple[str, ...],
        index: dict[str, int] | None = None,
        distinct: list[JobSpec] | None = None,
        names: list[str] | None = None,
        warnings: tuple[str, ...] | list[str] = (),
    ) -> None:
        """``distinct``, if given, holds a spec of each distinct set of validated
        values plus every awaitable node: enough to answer the graph-wide
        questions (:attr:`has_async`, :attr:`forever`...) without a pass over
        all jobs. ``names``, if given, are the specs' names (see :attr:`names`)."""
        self.specs: tuple[JobSpec, ...] = tuple(specs)
        self.deps: tuple[tuple[int, ...], ...] = tuple(deps)
        dependents: list[Any] = [[] for _ in specs]
        # (the specs' own index ints: enumerate would make a new int per job past 256)
        for i, ds in zip(map(attrgetter("index"), self.specs), deps, strict=True):
            for d in ds:
                dependents[d].append(i)
        for i, ds in enumerate(dependents):  # one list at a time, to keep the peak low
            dependents[i] = tuple(ds) if ds else ()
        self.dependents: tuple[tuple[int, ...], ...] = tuple(dependents)
        self.roots = roots
        if index is None:
            index = dict(zip([s.name for s in specs], range(len(specs)), strict=True))
        self._index = index
        self._distinct = self.specs if distinct is None else tuple(distinct)
        self.warnings: tuple[str, ...] = tuple(warnings)
        if names is not None:
            self.__dict__["names"] = names  # the cached property, already known

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> JobSpec:
        """The spec of the job called ``name``."""
        return self.specs[self._index[name]]

    @cached_property
    def names(self) -> list[str]:
        """Job names in post-order (do not mutate)."""
        return list(map(attrgetter("name"), self.specs))

    @property
    def index(self) -> dict[str, int]:
        """Job name -> position in :attr:`specs` (do not mutate)."""
        return self._index

    def edges(self) -> Iterator[tuple[str, str]]:
        """``(job, dependency)`` name pairs."""
        specs = self.specs
        for i, ds in enumerate(self.deps):
            for d in ds:
                yield specs[i].name, specs[d].name

    @cached_property
    def has_async(self) -> bool:
        """Whether any job needs an event loop."""
        return any(map(attrgetter("is_async"), self._distinct))

    @cached_property
    def awaitables(self) -> tuple[JobSpec, ...]:
        """The specs of awaitable nodes (e.g. ``dojob.aio`` jobs in DEPS)."""
        return tuple(s for s in self._distinct if s.kind == "awaitable")

    @cached_property
    def forever(self) -> list[int]:
        """The indices of forever jobs (awaitable monitors), in order."""
        return [s.index for s in self._distinct if s.forever]

    @cached_property
    def has_timeouts(self) -> bool:
        """Whether any job has a phase TIMEOUT."""
        return any(s.timeout is not None for s in self._distinct)

    @cached_property
    def has_locks(self) -> bool:
        """Whether any job CLAIMS or USES a resource."""
        return any(s.claims or s.uses for s in self._distinct)

    @cached_property
    def nx(self) -> networkx.DiGraph:
        """The graph as a ``networkx.DiGraph``: a node per job, an edge job -> dependency.

        Built on first access (a large graph costs memory), then kept.
        Node attributes: ``job`` (the class), ``tries``, ``retry_delay``, ``priority``.
        """
        import networkx

        g = networkx.DiGraph()
        for s in self.specs:
            g.add_node(s.name, job=s.cls, tries=s.tries, retry_delay=s.retry_delay, priority=s.priority)
        g.add_edges_from(self.edges())
        return g


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
            _warn(warnings, f"{where}{value!r} is not an int: it counts as {tries} tries (DoJobber's countdown)")
            return tries
    if option:
        raise OptionError(option, value, "an int >= 1")
    raise JobAttributeError(job, attribute, value, "an int >= 1")


#: The graph warnings logged so far: each is logged once per process (a graph built again,
#: e.g. by every ``checknrun()``, still lists it in :attr:`JobGraph.warnings`).
_LOGGED: set[str] = set()


def _warn(warnings: list[str], message: str) -> None:
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


def _is_job_class(value: Any) -> bool:
    return (isinstance(value, type) and issubclass(value, Job)) or type(value) is BoundJob


def is_awaitable_node(value: Any) -> bool:
    """Whether ``value`` is a job object run by awaiting its ``co_run()`` (e.g. a ``dojob.aio`` job)."""
    return not isinstance(value, type) and callable(getattr(value, "co_run", None))


def node_name(value: Any) -> str:
    """The graph name of a Job class, a bound job or an awaitable node."""
    if isinstance(value, type) or type(value) is BoundJob:
        return value.__name__
    label = getattr(value, "label", None)
    if isinstance(label, str) and label and label != "NOLABEL":
        return label
    return f"{type(value).__name__}@{id(value):x}"


def _deps_of(cls: Any) -> tuple[Any, ...]:
    """The DEPS of ``cls`` as a tuple, duplicates dropped; the container is validated here.

    Elements are validated when first met (see :func:`_check_dep`), once per class.
    An awaitable node has no DEPS (its own requirements live in its scheduler);
    a bound job has its class's.
    """
    if not isinstance(cls, type) and type(cls) is not BoundJob:
        return ()
    raw = cls.DEPS  # type: ignore[union-attr]  # (a BoundJob reads its class's)
    kind = type(raw)
    if kind is tuple:
        deps = raw
    elif kind is list:
        deps = tuple(raw)
    else:
        name = cls.__name__
        if raw is None:
            raise DepsError(name, raw, "must be an iterable of Job classes, not None")
        if isinstance(raw, (str, bytes)):
            raise DepsError(name, raw, "must be an iterable of Job classes, not a string")
        if isinstance(raw, type):
            raise DepsError(name, raw, "must be an iterable of Job classes (write DEPS = (X,), not DEPS = X)")
        if type(raw) is BoundJob:
            raise DepsError(
                name, raw, "must be an iterable of jobs (write DEPS = (X.bind(...),), not DEPS = X.bind(...))"
            )
        try:
            deps = tuple(raw)
        except TypeError:
            raise DepsError(name, raw, "must be an iterable of Job classes") from None
    n = len(deps)
    if n == 2:  # the common small case, without building a set
        if deps[0] is deps[1] or (type(deps[0]) is BoundJob and deps[0] == deps[1]):
            deps = deps[:1]
    elif n > 2 and len(set(deps)) != n:
        deps = tuple(dict.fromkeys(deps))
    return deps


def _check_dep(cls: type[Job], dep: Any) -> None:
    """Raise :class:`DepsError` unless ``dep``, listed in ``cls.DEPS``, is a Job class, bound job or awaitable job."""
    if type(dep) is BoundJob:
        return
    if is_awaitable_node(dep):
        if getattr(dep, "forever", False):
            raise DepsError(cls.__name__, dep, "cannot list a forever job (it never completes)")
        return
    if not _is_job_class(dep):
        if isinstance(dep, Job):
            raise DepsError(cls.__name__, dep, "must list Job classes, not instances")
        raise DepsError(cls.__name__, dep, "must contain only Job classes")


#: ``inspect.iscoroutinefunction`` of the functions met during one build (cleared after it).
_CORO_CACHE: dict[Any, bool] = {None: False}

#: Class attributes that decide a spec's validated values.
_SPEC_NAMES = frozenset(
    ("_dojob_kind", "TRIES", "RETRY_DELAY", "PRIORITY", "CRITICAL", "TIMEOUT", "CLAIMS", "USES")
    + ("Check", "Run", "Cleanup", "TAGS")
    + ("RETRY_BACKOFF", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_ON", "RETRY_FROM")
)


def _is_coroutine_function(fn: Any) -> bool:
    """``inspect.iscoroutinefunction``, memoised per function (many jobs share methods)."""
    if fn is None:
        return False
    try:
        return _CORO_CACHE[fn]
    except KeyError:
        result = _CORO_CACHE[fn] = inspect.iscoroutinefunction(fn)
        return result
    except TypeError:  # unhashable callable
        return inspect.iscoroutinefunction(fn)


def _check_resources(name: str, attribute: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
        raise JobAttributeError(name, attribute, value, "a tuple of resource names, e.g. ('db',)")
    for item in value:
        if not isinstance(item, str) or not item:
            raise JobAttributeError(name, attribute, value, "a tuple of non-empty strings")
    return tuple(sorted(set(value)))


def _check_tags(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (tuple, list, set, frozenset)):
        raise JobAttributeError(name, "TAGS", value, "a tuple of tags, e.g. ('db',)")
    for item in value:
        if not isinstance(item, str) or not item or item != item.strip() or "," in item:
            raise JobAttributeError(name, "TAGS", value, "a tuple of non-empty strings without commas or edge spaces")
    return tuple(dict.fromkeys(value))


def _check_timeout(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Real) and not isinstance(value, bool):
        seconds = float(value)
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    raise JobAttributeError(name, "TIMEOUT", value, "None or a finite number of seconds > 0")


def _awaitable_spec(node: Any, index: int, default_tries: int, default_delay: float) -> JobSpec:
    name = node_name(node)
    tries = getattr(node, "tries", None)
    tries = default_tries if tries is None else check_tries(tries, job=name, attribute="tries")
    delay = getattr(node, "retry_delay", None)
    delay = default_delay if delay is None else check_delay(delay, job=name, attribute="retry_delay")
    return JobSpec(
        name, index, node, "awaitable", tries, delay,
        critical=bool(getattr(node, "critical", False)),
        is_async=True,
        forever=bool(getattr(node, "forever", False)),
    )  # fmt: skip


#: The names a job class may define that dojob reads; a near miss of one is a typo (operator).
_KNOWN_NAMES: tuple[str, ...] = ("DEPS", "TRIES", "RETRY_DELAY", "PRIORITY", "CRITICAL", "TIMEOUT", "CLAIMS", "USES")
_KNOWN_NAMES += ("Check", "Run", "Cleanup", "TAGS", "BIND_NAME")
_KNOWN_NAMES += ("RETRY_BACKOFF", "RETRY_MAX_DELAY", "RETRY_JITTER", "RETRY_ON", "RETRY_FROM")
_KNOWN_FOLDED = {n.casefold().replace("_", ""): n for n in _KNOWN_NAMES}


def _check_typos(cls: type, names: tuple[str, ...]) -> None:
    """Refuse a class attribute that is a near miss of one dojob reads (``Tries``, ``deps``, ``def check``).

    Such a name would be silently ignored (``TRIES`` stays the default, the
    DEPS are not run); so it is an error that suggests the right spelling.
    """
    import difflib

    for name in names:
        if name.startswith("__") or name in _KNOWN_NAMES:
            continue
        folded = name.casefold().replace("_", "")
        known = _KNOWN_FOLDED.get(folded)
        if known is None and len(folded) >= 4:
            close = difflib.get_close_matches(folded, _KNOWN_FOLDED, n=1, cutoff=0.84)
            known = _KNOWN_FOLDED[close[0]] if close else None
        if known is not None:
            raise JobDefinitionError(
                cls.__name__, f"defines {name!r}, which dojob does not read: did you mean {known}?"
            )


def _no_overrides(own: Any) -> tuple:
    return ()


def _override_picker(own: Any) -> tuple[tuple[str, ...], Callable[[Any], Any]]:
    """The spec attributes a class dict with these keys overrides, and a getter of their values."""
    names = tuple(_SPEC_NAMES.intersection(own))
    return names, (itemgetter(*names) if names else _no_overrides)


def _spec_key(cls: Any, pickers: dict[tuple, tuple]) -> tuple | None:
    """What a class's validated values depend on within one build, as a memo key (None if not hashable).

    That is its bases and what its own ``__dict__`` overrides: reading that
    dict avoids walking the MRO for a dozen names (the type attribute cache
    thrashes on big graphs). Jobs made from one base class (the common case,
    e.g. dynamic jobs) share the key, so only the first of them pays for the
    checks. ``pickers`` memoises :func:`_override_picker` by the dict's keys
    (classes made alike have the same keys).
    """
    if type(cls) is BoundJob:  # its values are its class's
        return (BoundJob, cls.job)
    if not isinstance(cls, type):
        return None
    own = cls.__dict__
    layout = tuple(own)
    picker = pickers.get(layout)
    if picker is None:
        _check_typos(cls, layout)  # operator: once per class-dict layout, like the picker
        picker = pickers[layout] = _override_picker(own)
    key = (cls.__bases__, picker[0], picker[1](own))
    try:
        hash(key)
    except TypeError:  # an unhashable attribute value: validate without the memo
        return None
    return key


def _new_spec(
    cls: Any, index: int, default_tries: int, default_delay: float, memo: dict, key: tuple | None, warnings: list[str]
) -> JobSpec:
    """Validate ``cls`` (or an awaitable node) into its spec, and remember its values under ``key``.

    A class that drew a warning is not remembered: each job alike gets its own warning.
    """
    if not isinstance(cls, type) and type(cls) is not BoundJob:
        return _awaitable_spec(cls, index, default_tries, default_delay)
    before = len(warnings)
    spec = _validate_spec(cls, index, default_tries, default_delay, warnings)
    if key is not None and len(warnings) == before:
        memo[key] = (  # every field after cls: tuple.__new__ knows no defaults
            spec.kind, spec.tries, spec.retry_delay, spec.priority, spec.critical, spec.is_async,
            spec.has_cleanup, False, spec.timeout, spec.claims, spec.uses, True, spec.tags, spec.retry,
        )  # fmt: skip
    return spec


def _validate_spec(cls: Any, index: int, default_tries: int, default_delay: float, warnings: list[str]) -> JobSpec:
    name = cls.__name__
    kind = cls._dojob_kind
    tries = cls.TRIES
    if tries is None:
        tries = default_tries
    elif type(tries) is not int or tries < 1:
        tries = check_tries(tries, job=name, warnings=warnings)
    delay = cls.RETRY_DELAY
    if delay is None:
        delay = default_delay
    else:
        delay = check_delay(delay, job=name)
    priority = cls.PRIORITY
    if type(priority) is not int and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise JobAttributeError(name, "PRIORITY", priority, "an int")
    critical = cls.CRITICAL
    if critical is not False and critical is not True:
        raise JobAttributeError(name, "CRITICAL", critical, "True or False")
    timeout = cls.TIMEOUT
    if timeout is not None:
        timeout = _check_timeout(name, timeout)
    claims = cls.CLAIMS
    if claims:
        claims = _check_resources(name, "CLAIMS", claims)
    uses = cls.USES
    if uses:
        uses = _check_resources(name, "USES", uses)
        if claims and set(claims) & set(uses):
            uses = tuple(u for u in uses if u not in claims)  # an exclusive lock covers the shared one
    check = getattr(cls, "Check", None)
    run = getattr(cls, "Run", None)
    cleanup = getattr(cls, "Cleanup", None)
    # DoJobber builds any of these and lets the missing method fail its phase at run
    # time (AttributeError): dojob runs them alike, with a warning instead of a refusal.
    if kind == "job":
        if not callable(check):
            _warn(
                warnings,
                f"job {name!r}: defines no Check method: every try fails (use RunonlyJob for a job without Check)",
            )
        if not callable(run):
            _warn(warnings, f"job {name!r}: defines no Run method: its Check alone decides")
    elif kind == "runonly":
        if callable(check):
            kind = "job"  # as in DoJobber, its own Check replaces the implicit one
            _warn(warnings, f"job {name!r}: is a RunonlyJob that defines Check: it runs as a Job (check, run, recheck)")
        elif not callable(run):
            _warn(warnings, f"job {name!r}: is a RunonlyJob but defines no Run method: every try fails")
    tags = cls.TAGS
    if tags:
        tags = _check_tags(name, tags)
    retry = check_policy(name, cls)
    cache = _CORO_CACHE
    try:
        is_async = cache[check] or cache[run] or cache[cleanup]
    except (KeyError, TypeError):
        iscoro = _is_coroutine_function
        is_async = iscoro(check) or iscoro(run) or iscoro(cleanup)
    return JobSpec(
        name, index, cls, kind, tries, delay, priority, critical, is_async, callable(cleanup),
        False, timeout, tuple(claims) if claims else (), tuple(uses) if uses else (), True,
        tuple(tags) if tags else (), retry,
    )  # fmt: skip


def build_graph(*roots: type[Job] | BoundJob, default_tries: int = 3, default_retry_delay: float = 1) -> JobGraph:
    """Introspect ``DEPS`` from ``roots`` and return the validated :class:`JobGraph`.

    Args:
        *roots: one or more Job classes (or bound jobs); jobs reachable from several roots appear once.
        default_tries: TRIES of jobs that set none.
        default_retry_delay: RETRY_DELAY of jobs that set none.

    Raises:
        RootError: a root is not a Job class.
        DepsError: a DEPS is not an iterable of Job classes.
        CycleError: the DEPS form a cycle; ``.cycle`` lists it.
        DuplicateJobError: two different classes share a name.
        JobAttributeError: TRIES, RETRY_DELAY, PRIORITY, CRITICAL, TIMEOUT, CLAIMS, USES, TAGS or a
            RETRY_* attribute has a bad value.
        OptionError: a default is invalid.
    """
    warnings: list[str] = []
    default_tries = check_tries(default_tries, option="default_tries", warnings=warnings)
    default_delay = check_delay(default_retry_delay, option="default_retry_delay")
    if not roots:
        raise RootError(None)
    # Building allocates a few containers per job and frees none: pausing the
    # collector meanwhile saves its futile passes (~6% at 4 000 jobs).
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _build(roots, default_tries, default_delay, warnings)
    finally:
        # the memo lives for one build: kept, it would hold every job function ever seen (and
        # all their closures hold) for the life of the process
        _CORO_CACHE.clear()
        _CORO_CACHE[None] = False
        if paused:
            gc.enable()


def _build(roots: tuple[Any, ...], default_tries: int, default_delay: float, warnings: list[str]) -> JobGraph:
    """The walk behind :func:`build_graph`: the hot loop of a build, hence the helpers inlined for plain classes."""
    specs: list[JobSpec] = []
    dep_lists: list[tuple[int, ...]] = []
    seen: dict[Any, int] = {}  # the post-order index of each node placed
    on_path: set[Any] = set()  # the nodes being walked
    memo: dict[tuple, tuple] = {}
    distinct: list[JobSpec] = []  # the specs not taken from the memo (see JobGraph)
    seen_get = seen.get
    memo_get = memo.get
    new_spec = tuple.__new__
    pickers: dict[tuple, tuple] = {}
    pickers_get = pickers.get

    def enter(node: Any) -> tuple[Any, tuple[Any, ...], Iterator[Any], tuple | None, tuple | None, list[int]]:
        """Mark ``node`` as on the DFS path; its frame (see below)."""
        on_path.add(node)
        deps = _deps_of(node)
        key = _spec_key(node, pickers)
        return node, deps, iter(deps), key, None if key is None else memo_get(key), []

    for root in roots:
        if not _is_job_class(root):
            raise RootError(root)
        if root in seen:
            continue
        # A frame is (node, its DEPS, an iterator over them, its memo key, the
        # memoised values if any, the indices of its DEPS placed so far): the
        # current one lives in locals, its ancestors' on a stack. Each frame
        # skips the DEPS already placed; the first one never met is entered,
        # and a node whose DEPS are exhausted takes the next post-order index.
        # On a big graph every access to the tables keyed by class misses the
        # caches, so they are few: a class is read when it is entered (not
        # again when placed, after a whole subtree went through), the path is
        # a small set of its own, and the indices of the DEPS are collected as
        # they are met.
        cls, deps, pending, key, fields, got = enter(root)
        stack: list[tuple[Any, tuple[Any, ...], Iterator[Any], tuple | None, tuple | None, list[int]]] = []
        while True:
            for dep in pending:
                try:
                    mark = seen_get(dep)
                except TypeError:  # unhashable: certainly not a job
                    _check_dep(cls, dep)
                    raise
                if mark is None:
                    if dep in on_path:
                        path = [frame[0] for frame in stack] + [cls]
                        raise CycleError([node_name(node) for node in path[path.index(dep) :]] + [node_name(dep)])
                    break
                got.append(mark)
            else:
                index = len(specs)
                seen[cls] = index
                on_path.discard(cls)
                if fields is None and key is not None:  # a job alike may have been placed since
                    fields = memo_get(key)
                if fields is None:
                    spec = _new_spec(cls, index, default_tries, default_delay, memo, key, warnings)
                    specs.append(spec)
                    distinct.append(spec)
                else:
                    specs.append(new_spec(JobSpec, (cls.__name__, index, cls, *fields)))
                dep_lists.append(tuple(got) if got else ())
                if not stack:
                    break
                cls, deps, pending, key, fields, got = stack.pop()
                got.append(index)
                continue
            stack.append((cls, deps, pending, key, fields, got))
            if type(dep) is type and issubclass(dep, Job):  # the common case, inlined
                on_path.add(dep)
                raw = dep.DEPS  # _deps_of, inlined for a tuple of at most two distinct classes
                if type(raw) is tuple and (len(raw) < 2 or (len(raw) == 2 and raw[0] is not raw[1])):
                    deps = raw
                else:
                    deps = _deps_of(dep)
                own = dep.__dict__  # _spec_key, inlined
                layout = tuple(own)
                picker = pickers_get(layout)
                if picker is None:
                    picker = pickers[layout] = _override_picker(own)
                key = (dep.__bases__, picker[0], picker[1](own))
                try:
                    fields = memo_get(key)
                except TypeError:
                    fields = key = None
                cls = dep
                pending = iter(deps)
                got = []
            elif type(dep) is BoundJob:  # a bound job: its class's DEPS and values
                on_path.add(dep)
                base = dep.job
                deps = base.DEPS
                if type(deps) is not tuple or len(deps) > 1:
                    deps = _deps_of(dep)
                key = (BoundJob, base)
                fields = memo_get(key)
                cls = dep
                pending = iter(deps)
                got = []
            else:
                _check_dep(cls, dep)
                cls, deps, pending, key, fields, got = enter(dep)
    root_names = tuple(dict.fromkeys(r.__name__ for r in roots))
    seen.clear()  # free the DFS table before the graph's own tables are built
    # Names are checked for uniqueness once, here: a name -> index map built in
    # C costs less than a lookup per job during the walk (a 100 000-entry table
    # misses the caches on every random access).
    names = list(map(attrgetter("name"), specs))
    by_name = dict(zip(names, map(attrgetter("index"), specs), strict=True))  # (the specs' ints: no new ones)
    if len(by_name) != len(names):
        _raise_duplicate(specs)
    return JobGraph(specs, dep_lists, root_names, by_name, distinct, names, warnings)


def _raise_duplicate(specs: list[JobSpec]) -> None:
    """Raise :class:`DuplicateJobError` for the first name shared by two jobs (in post-order)."""
    first: dict[str, Any] = {}
    for spec in specs:
        other = first.setdefault(spec.name, spec.cls)
        if other is not spec.cls:
            raise DuplicateJobError(spec.name, other, spec.cls)
    raise AssertionError("no duplicate name")  # pragma: no cover
