"""The job graph: introspection of ``DEPS`` from the root(s) into an immutable :class:`JobGraph`.

:func:`build_graph` walks ``DEPS`` iteratively (a 100 000-job chain is fine),
has every node checked before any job runs (:mod:`dojob.validate`: once per
kind of class, not per job) and returns one :class:`~dojob.spec.JobSpec` per
job in DFS post-order (DEPS in declaration order), which is also the serial
run order and DoJobber's.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .bind import BoundJob
from .checks import check_delay, check_tries
from .errors import CycleError, DuplicateJobError, RootError
from .job import Job
from .spec import JobSpec, is_awaitable_node, is_job_class, make_spec, node_name
from .validate import Frame, SpecMemo

if TYPE_CHECKING:
    import networkx

# (check_delay, check_tries, JobSpec, is_awaitable_node and node_name are imported from here by other modules)
__all__ = ["JobGraph", "JobSpec", "build_graph", "check_delay", "check_tries", "is_awaitable_node", "node_name"]


class JobGraph:
    """An immutable, validated job graph.

    Attributes:
        specs: the jobs in post-order (every job after all its dependencies);
            ``specs[i].index == i``.
        deps: ``deps[i]`` holds the indices of job ``i``'s dependencies, in DEPS order.
        dependents: ``dependents[i]`` holds the indices of the jobs that depend on job ``i``.
        roots: the root jobs' names.
        names: the jobs' names in post-order (do not mutate).
        warnings: what the build accepted for DoJobber's sake and would otherwise
            refuse (a job without Check or Run, a float TRIES...), one sentence each;
            also logged on the ``dojob`` logger.
    """

    __slots__ = ("specs", "deps", "dependents", "roots", "names", "_index", "_distinct", "__dict__")

    #: The indices of the jobs a selection skips (``--skip``): satisfied without a try.
    skipped: frozenset[int] = frozenset()
    #: Of a graph from :func:`build_graph`: each job's DEPS as the walk took them, in post-order (a tuple:
    #: the class's own when taken as it is; a new one for a list or duplicates; ``()`` for an awaitable
    #: node), so that a caller can tell cheaply whether the DEPS changed since (DoJobber API).
    read_deps: list[Any] | None = None

    def __init__(
        self,
        specs: list[JobSpec],
        deps: list[tuple[int, ...]],
        roots: tuple[str, ...],
        index: dict[str, int] | None = None,
        distinct: list[JobSpec] | None = None,
        names: list[str] | None = None,
        warnings: tuple[str, ...] | list[str] = (),
        dependents: list[list[int]] | None = None,
    ) -> None:
        """``distinct``, if given, holds a spec of each distinct set of validated
        values plus every awaitable node: enough to answer the graph-wide
        questions (:attr:`has_async`, :attr:`forever`...) without a pass over
        all jobs. ``names``, if given, are the specs' names (see :attr:`names`);
        ``dependents``, if given, the lists :attr:`dependents` is made of."""
        self.specs: tuple[JobSpec, ...] = tuple(specs)
        self.deps: tuple[tuple[int, ...], ...] = tuple(deps)
        if dependents is None:
            dependents = [[] for _ in specs]
            # (the specs' own index ints: enumerate would make a new int per job past 256)
            for i, ds in zip(map(attrgetter("index"), self.specs), deps, strict=True):
                for d in ds:
                    dependents[d].append(i)
        lists: list[Any] = dependents
        for i, ds in enumerate(lists):  # one list at a time, to keep the peak low
            lists[i] = tuple(ds)
        self.dependents: tuple[tuple[int, ...], ...] = tuple(lists)
        self.roots = roots
        if index is None:
            index = dict(zip([s.name for s in specs], range(len(specs)), strict=True))
        self._index = index
        self._distinct = self.specs if distinct is None else tuple(distinct)
        self.warnings: tuple[str, ...] = tuple(warnings)
        self.names: list[str] = list(map(attrgetter("name"), self.specs)) if names is None else names

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self.specs)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> JobSpec:
        """The spec of the job called ``name``."""
        return self.specs[self._index[name]]

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
    for root in roots:
        if not is_job_class(root):
            raise RootError(root)
    memo = SpecMemo(default_tries, default_delay, warnings)
    # Building allocates a few containers per job and frees none: pausing the
    # collector meanwhile saves its futile passes (~6% at 4 000 jobs).
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _build(roots, memo)
    finally:
        if paused:
            gc.enable()


def _build(roots: tuple[Any, ...], memo: SpecMemo) -> JobGraph:
    """The graph of the nodes reachable from ``roots``, their names checked for uniqueness."""
    specs, dep_lists, dependents, read_deps = _walk(roots, memo)
    # Names are checked for uniqueness once, here: a name -> index map built in
    # C costs less than a lookup per job during the walk.
    names = list(map(attrgetter("name"), specs))
    by_name = dict(zip(names, map(attrgetter("index"), specs), strict=True))  # (the specs' ints: no new ones)
    if len(by_name) != len(names):
        _raise_duplicate(specs)
    root_names = tuple(dict.fromkeys(r.__name__ for r in roots))
    graph = JobGraph(specs, dep_lists, root_names, by_name, memo.distinct, names, memo.warnings, dependents)
    graph.read_deps = read_deps
    return graph


def _walk(
    roots: tuple[Any, ...], memo: SpecMemo
) -> tuple[list[JobSpec], list[tuple[int, ...]], list[list[int]], list[Any]]:
    """DFS over DEPS from each root: the specs in post-order, each job's DEPS indices, its dependents'
    and its DEPS as taken.

    Each node on the path has a frame (see :meth:`SpecMemo.open`) on a stack;
    the top frame goes through its DEPS, skipping (and noting the index of)
    those already placed, and enters the first one never met; a node whose
    DEPS are exhausted takes the next post-order index. On a big graph every
    access to a table keyed by node misses the caches, so there are few: a
    node is read when it is entered, one table marks both the placed nodes
    and those on the path, and the indices of the DEPS are collected as they
    are met.
    """
    specs: list[JobSpec] = []
    dep_lists: list[tuple[int, ...]] = []
    dependents: list[list[int]] = []
    read_deps: list[Any] = []
    seen: dict[Any, int] = {}  # the post-order index of each node placed; -1 while it is on the path
    open_frame, validated = memo.open, memo.spec
    for root in roots:
        if root in seen:
            continue
        seen[root] = -1
        stack: list[Frame] = [open_frame(root)]
        while stack:
            frame = stack[-1]
            got = frame[2]
            for dep in frame[1]:
                try:
                    index = seen.get(dep)
                except TypeError:  # unhashable: certainly not a job
                    open_frame(dep, frame[0])
                    raise
                if index is None or index < 0:
                    break
                got.append(index)
            else:  # all its DEPS placed: place the node
                stack.pop()
                node = frame[0]
                index = seen[node] = len(specs)
                values = frame[4]
                if values is None:  # the first job of its kind, or one met before it was placed
                    specs.append(validated(frame, index))
                else:  # a spec from all its fields (measured: 10% of a build of 4 000 jobs less than JobSpec())
                    specs.append(make_spec(JobSpec, (node.__name__, index, node, values)))
                dep_lists.append(tuple(got) if got else ())
                dependents.append([])
                read_deps.append(frame[5])
                for d in got:
                    dependents[d].append(index)
                if stack:
                    stack[-1][2].append(index)
                continue
            if index is not None:  # on the path: a cycle
                path = [f[0] for f in stack]
                raise CycleError([node_name(node) for node in path[path.index(dep) :]] + [node_name(dep)])
            seen[dep] = -1
            stack.append(open_frame(dep, frame[0]))
    return specs, dep_lists, dependents, read_deps


def _raise_duplicate(specs: list[JobSpec]) -> None:
    """Raise :class:`DuplicateJobError` for the first name shared by two jobs (in post-order)."""
    first: dict[str, Any] = {}
    for spec in specs:
        other = first.setdefault(spec.name, spec.cls)
        if other is not spec.cls:
            raise DuplicateJobError(spec.name, other, spec.cls)
    raise AssertionError("no duplicate name")  # pragma: no cover
