"""Render job graphs as Graphviz DOT text and images.

The drawing code imports nothing from the engine, performs no work at import time and only touches the Graphviz
``dot`` program (through the :mod:`graphviz` package) when :func:`render` or
:func:`svg` is called.

Typical use::

    nodes = [NodeStyle("fetch", status="ok", elapsed=0.12),
             NodeStyle("build", status="failed", tries=3, critical=True)]
    edges = [("build", "fetch")]          # (job, dependency)
    source = to_dot(nodes, edges, title="nightly")
    image = render(source, "png")

Job names are arbitrary text. They never appear in DOT as identifiers (nodes
are called ``n0``, ``n1``, ...); they are escaped into double-quoted
``label`` / ``tooltip`` attributes, with control characters and ANSI escape
sequences neutralised and very long names truncated in the label (the full
text is kept in the tooltip).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .durations import format_duration
from .errors import DojobError

__all__ = [
    "MAX_LABEL_CHARS",
    "MAX_FANOUT",
    "MAX_LABEL_LINES",
    "MAX_TOOLTIP_CHARS",
    "STATUS_STYLES",
    "ClusterStyle",
    "format_duration",
    "NodeStyle",
    "RenderError",
    "render",
    "graph_dot",
    "svg",
    "to_dot",
]

#: Longest name (in characters, after sanitising) shown in a node label.
MAX_LABEL_CHARS = 200
#: Most lines of a (multi-line) name shown in a node label.
MAX_LABEL_LINES = 10
#: Longest full name, and longest message, in a tooltip (characters): Graphviz
#: rejects attributes of about 16 000.
MAX_TOOLTIP_CHARS = 1000
#: Most lines of each of them.
MAX_TOOLTIP_LINES = 25
#: A job with more direct dependencies than this has its simple ones (leaves
#: that only it needs) drawn as one node per status ("38 jobs ok").
MAX_FANOUT = 12

#: Node attributes per status: ``(fillcolor, fontcolor, extra line style)``.
#: ``None`` is the same as ``"pending"``.
STATUS_STYLES: dict[str, tuple[str, str, str | None]] = {
    "pending": ("white", "black", None),
    "not_run": ("white", "black", "dashed"),
    "ok": ("green", "black", None),
    "changed": ("darkgreen", "white", None),
    "failed": ("red", "black", None),
    "blocked": ("grey", "black", None),
    "running": ("yellow", "black", None),
    "would_run": ("orange", "black", None),
    "skipped": ("lightyellow", "black", "dotted"),
    "interrupted": ("gold", "black", "dashed"),
}
#: How a status this module does not know is drawn (with the status written in the label).
UNKNOWN_STYLE = ("lightpink", "black", "dashed")

_RANKDIRS = ("TB", "LR", "BT", "RL")
# Formats whose output is simply the DOT source: no Graphviz binary needed.
_TEXT_FORMATS = frozenset({"dot", "gv", "canon"})
_COMMON_FORMATS = ("svg", "png", "pdf", "dot", "json", "plain")
_ELLIPSIS = "\u2026"
_INSTALL_HINT = (
    "install Graphviz: apt-get install graphviz (macOS: brew install graphviz; others: https://graphviz.org/download/)"
)

# ANSI / VT100 escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or
# ST) and two-character ESC sequences.  Also the 8-bit CSI introducer U+009B.
_ANSI_RE = re.compile(
    r"""
    (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]         # CSI ... final byte
    | \x1b\] .*? (?:\x07|\x1b\\)                # OSC ... BEL or ST
    | \x1b [@-Z\\-_]                            # other 2-char Fe sequences
    """,
    re.VERBOSE | re.DOTALL,
)
_NEWLINES_RE = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
# Bidirectional overrides/isolates could make a label display misleadingly.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class RenderError(DojobError, RuntimeError):
    """Raised when a DOT source cannot be rendered (also a ``RuntimeError``, as in DoJobber).

    Reasons include a missing Graphviz program (the message says how to
    install it), an unknown output format or layout engine, or Graphviz
    rejecting the input.  The original exception, if any, is chained as
    ``__cause__``.
    """


@dataclass(frozen=True)
class NodeStyle:
    """How one job is drawn.

    Callers build these from their own job/result data; this module does not
    know about jobs.

    Attributes:
        name: Job name, arbitrary text.  Also the key used by ``edges``.
        status: One of the keys of :data:`STATUS_STYLES` (``"pending"``,
            ``"not_run"``, ``"ok"``, ``"changed"``, ``"failed"``,
            ``"blocked"``, ``"running"``, ``"would_run"``) or ``None``
            (same as ``"pending"``).  Selects the fill colour.
        tries: Number of attempts; shown in the label when > 0.
        elapsed: Run time in seconds; shown in the label (``"120 ms"``,
            ``"1.25 s"``, ``"2 min 05 s"``) when finite and >= 0.
        critical: Draw a thick red border (``penwidth=3``, ``color=red``).
        forever: Draw a dotted border.
        tooltip: Optional tooltip text, e.g. the last error message.
        detail: Optional extra line shown at the bottom of the label.
        label: Optional text shown instead of ``name`` (which stays the key
            used by ``edges``), for graphs whose names are not unique texts.
        cluster: Optional name of the :class:`ClusterStyle` drawn around it.
    """

    name: str
    status: str | None = None
    tries: int | None = None
    elapsed: float | None = None
    critical: bool = False
    forever: bool = False
    tooltip: str | None = None
    detail: str | None = None
    label: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class ClusterStyle:
    """A box drawn around a group of nodes, e.g. a nested scheduler and its jobs.

    Edges may name a cluster instead of a node: the arrow then starts or ends
    at the cluster's border (Graphviz ``ltail``/``lhead``). A cluster holding
    no node at all is drawn as a plain node.

    Attributes:
        name: Key used by ``NodeStyle.cluster``, ``parent`` and ``edges``;
            unique among nodes and clusters.
        label: Text shown at the top of the box (default: ``name``).
        parent: Name of the enclosing cluster, or None.
        critical: Draw a thick red border.
        forever: Draw a dotted border.
        status: As for :class:`NodeStyle`, used when drawn as a plain node.
    """

    name: str
    label: str | None = None
    parent: str | None = None
    critical: bool = False
    forever: bool = False
    status: str | None = None


def _visible_escape(char: str) -> str:
    r"""Return a printable stand-in for an unprintable character.

    Args:
        char: A single character.

    Returns:
        ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN`` text (literal backslash).
    """
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _sanitize(text: str) -> str:
    r"""Make arbitrary text safe and visible as plain label text.

    ANSI escape sequences are removed; every kind of line break becomes
    ``"\n"``; tabs become a space; other control characters, surrogates,
    XML-invalid noncharacters and bidi overrides become visible escapes
    such as ``\x1b``.

    Args:
        text: Any text.

    Returns:
        Text containing no control characters other than ``"\n"``.
    """
    text = _ANSI_RE.sub("", str(text))
    text = _NEWLINES_RE.sub("\n", text)
    out: list[str] = []
    for char in text:
        if char == "\n":
            out.append(char)
        elif char == "\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cs", "Cf") or char in _BIDI or char in ("\ufffe", "\uffff"):
            out.append(_visible_escape(char))
        else:
            out.append(char)
    return "".join(out)


def _truncate(text: str, max_chars: int, max_lines: int) -> tuple[str, bool]:
    """Shorten sanitised text to at most ``max_chars`` and ``max_lines``.

    Args:
        text: Sanitised text.
        max_chars: Maximum number of characters, including the ellipsis.
        max_lines: Maximum number of lines.

    Returns:
        The possibly shortened text (ending in an ellipsis if shortened) and
        whether it was shortened.
    """
    shortened = False
    lines = text.split("\n")
    if len(lines) > max_lines:
        text = "\n".join(lines[:max_lines])
        shortened = True
    if len(text) > max_chars:
        text = text[: max_chars - 1]
        shortened = True
    if shortened:
        text = text.rstrip("\n") + _ELLIPSIS
    return text, shortened


def _quote(text: str) -> str:
    r"""Quote sanitised text as a DOT double-quoted escString.

    Backslashes are doubled (so Graphviz's ``\N``, ``\l`` ... escapes are
    not triggered), double quotes are backslash-escaped, ``&`` becomes
    ``&amp;`` (Graphviz decodes HTML entities in labels) and newlines become
    the two characters ``\n`` (a centred line break).

    Args:
        text: Text already passed through :func:`_sanitize`.

    Returns:
        The text wrapped in double quotes.
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;").replace("\n", "\\n")
    return f'"{text}"'


def _label_lines(node: NodeStyle) -> tuple[str, str | None]:
    """Build a node's label and tooltip text.

    Args:
        node: The node.

    Returns:
        The sanitised label text and the sanitised tooltip text, or ``None``
        when Graphviz's default tooltip (the label) is good enough.
    """
    full_name = _sanitize(node.name if node.label is None else node.label)
    name, shortened = _truncate(full_name, MAX_LABEL_CHARS, MAX_LABEL_LINES)
    lines = [name]
    facts: list[str] = []
    tries = node.tries
    if tries is not None and not isinstance(tries, bool) and tries > 0:
        facts.append("1 try" if tries == 1 else f"{tries} tries")
    elapsed = node.elapsed
    if elapsed is not None and math.isfinite(elapsed) and elapsed >= 0:
        facts.append(format_duration(elapsed))
    if facts:
        lines.append(", ".join(facts))
    if node.detail:
        detail, _ = _truncate(_sanitize(node.detail), MAX_LABEL_CHARS, 3)
        lines.append(detail)
    tips: list[str] = []  # the full name when the label shortened it, then the tooltip: each bounded
    if shortened:
        tips.append(_truncate(full_name, MAX_TOOLTIP_CHARS, MAX_TOOLTIP_LINES)[0])
    if node.tooltip:
        tips.append(
            _truncate(_sanitize(str(node.tooltip)[: MAX_TOOLTIP_CHARS * 2]), MAX_TOOLTIP_CHARS, MAX_TOOLTIP_LINES)[0]
        )
    return "\n".join(lines), ("\n".join(tips) if tips else None)


def _node_attrs(node: NodeStyle) -> str:
    """Return the DOT attribute list (without brackets) for a node.

    Args:
        node: The node.

    Returns:
        Text such as ``label="x", fillcolor="green"``.

    Raises:
        ValueError: If the status is unknown.
    """
    status = "pending" if node.status is None else node.status
    # a status this module does not know is drawn, not refused: a picture must not break a run's outputs
    fill, font, line_style = STATUS_STYLES.get(status, UNKNOWN_STYLE)
    if node.forever:
        line_style = "dotted"
    styles = ["rounded", "filled"] + ([line_style] if line_style else [])
    label, tooltip = _label_lines(node)
    attrs = [
        f"label={_quote(label)}",
        f'fillcolor="{fill}"',
        f'fontcolor="{font}"',
        f'style="{",".join(styles)}"',
    ]
    if node.critical:
        attrs += ['color="red"', "penwidth=3"]
    if tooltip is not None:
        attrs.append(f"tooltip={_quote(tooltip)}")
    return ", ".join(attrs)


def to_dot(
    nodes: Iterable[NodeStyle],
    edges: Iterable[tuple[str, str]],
    *,
    title: str | None = None,
    rankdir: str = "TB",
    clusters: Iterable[ClusterStyle] = (),
) -> str:
    """Build Graphviz DOT source for a job graph.

    The output is deterministic: nodes appear in the order given (named
    ``n0``, ``n1``, ...), then edges in the order given.

    Args:
        nodes: How each job looks.  Names must be unique.
        edges: ``(job, dependency)`` name pairs; each is drawn as an arrow
            from the job to its dependency.  Duplicate pairs are drawn once.
            A name may be a cluster's: the arrow then touches the cluster's
            border.  A name not among ``nodes`` or ``clusters`` gets a default
            (pending) node, added after the given nodes in order of first
            appearance.
        title: Optional graph label, shown at the top.
        rankdir: Graphviz layout direction: ``"TB"``, ``"LR"``, ``"BT"`` or
            ``"RL"``.
        clusters: Boxes drawn around nodes (see :class:`ClusterStyle`), e.g.
            nested schedulers; nodes join one through ``NodeStyle.cluster``.

    Returns:
        The DOT source text, ending with a newline.

    Raises:
        ValueError: On a duplicate node or cluster name, an unknown status or
            cluster, a cycle of cluster parents, or an invalid ``rankdir``.
    """
    if rankdir not in _RANKDIRS:
        raise ValueError(f"invalid rankdir {rankdir!r}; expected one of: {', '.join(_RANKDIRS)}")
    nodes = list(nodes)
    boxes, nodes = _layout_clusters(list(clusters), nodes)
    ids: dict[str, str] = {}
    lines = ["digraph dojob {"]
    graph_attrs = [f"rankdir={rankdir}"]
    if boxes:
        graph_attrs.append("compound=true")
    if title is not None:
        text, _ = _truncate(_sanitize(title), MAX_LABEL_CHARS, MAX_LABEL_LINES)
        graph_attrs += [f"label={_quote(text)}", "labelloc=t"]
    lines.append(f"  graph [{', '.join(graph_attrs)}];")
    lines.append('  node [shape=box, style="rounded,filled", fillcolor="white", fontname="Helvetica"];')
    inside: dict[str | None, list[str]] = {None: []}
    first_node: dict[str, str] = {}
    for node in nodes:
        if node.name in ids or node.name in boxes:
            raise ValueError(f"duplicate node name {node.name[:80]!r}")
        ids[node.name] = node_id = f"n{len(ids)}"
        inside.setdefault(node.cluster, []).append(f"{node_id} [{_node_attrs(node)}];")
        if node.cluster is not None:
            first_node.setdefault(node.cluster, node_id)
    lines.extend("  " + line for line in inside[None])
    if boxes:
        lines.extend(_cluster_lines(boxes, inside))

    def anchor(name: str, side: str) -> tuple[str, str]:
        if name in ids:
            return ids[name], ""
        if name in boxes:
            return _first_node(name, boxes, first_node), f"{side}={boxes[name][0]}"
        ids[name] = node_id = f"n{len(ids)}"
        lines.append(f"  {node_id} [{_node_attrs(NodeStyle(name))}];")
        return node_id, ""

    edge_lines: list[str] = []
    seen: set[tuple[str, str]] = set()
    for job, dependency in edges:
        if (job, dependency) in seen:
            continue
        seen.add((job, dependency))
        tail, ltail = anchor(job, "ltail")
        head, lhead = anchor(dependency, "lhead")
        attrs = ", ".join(a for a in (ltail, lhead) if a)
        edge_lines.append(f"  {tail} -> {head}" + (f" [{attrs}];" if attrs else ";"))
    lines.extend(edge_lines)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layout_clusters(
    clusters: list[ClusterStyle], nodes: list[NodeStyle]
) -> tuple[dict[str, tuple[str, ClusterStyle]], list[NodeStyle]]:
    """Validate ``clusters``; return the ones drawn as boxes (name -> (DOT id, style)) and the nodes.

    A cluster with no member (node or sub-cluster) is drawn as a plain node
    in its parent instead, appended to the returned nodes.
    """
    if not clusters:
        for node in nodes:
            if node.cluster is not None:
                raise ValueError(f"node {node.name[:80]!r} is in unknown cluster {node.cluster[:80]!r}")
        return {}, nodes
    by_name: dict[str, ClusterStyle] = {}
    for cluster in clusters:
        if cluster.name in by_name:
            raise ValueError(f"duplicate cluster name {cluster.name[:80]!r}")
        by_name[cluster.name] = cluster
    members: dict[str, int] = dict.fromkeys(by_name, 0)
    for cluster in clusters:
        seen = {cluster.name}
        parent = cluster.parent
        while parent is not None:  # check the parent chain: known, no cycle
            if parent not in by_name:
                raise ValueError(f"cluster {cluster.name[:80]!r} has unknown parent {parent[:80]!r}")
            if parent in seen:
                raise ValueError(f"cluster {cluster.name[:80]!r} is its own ancestor")
            seen.add(parent)
            parent = by_name[parent].parent
        if cluster.parent is not None:
            members[cluster.parent] += 1
    for node in nodes:
        if node.cluster is not None:
            if node.cluster not in by_name:
                raise ValueError(f"node {node.name[:80]!r} is in unknown cluster {node.cluster[:80]!r}")
            members[node.cluster] += 1
    boxes: dict[str, tuple[str, ClusterStyle]] = {}
    extra: list[NodeStyle] = []
    for cluster in clusters:
        if members[cluster.name]:
            boxes[cluster.name] = (f"cluster_{len(boxes)}", cluster)
        else:
            extra.append(
                NodeStyle(
                    cluster.name,
                    status=cluster.status,
                    critical=cluster.critical,
                    forever=cluster.forever,
                    label=cluster.label,
                    cluster=cluster.parent,
                )
            )
    return boxes, nodes + extra


def _cluster_lines(boxes: dict[str, tuple[str, ClusterStyle]], inside: dict[str | None, list[str]]) -> list[str]:
    """The ``subgraph cluster_k { ... }`` blocks, nested, iteratively."""
    children: dict[str | None, list[str]] = {}
    for name, (_, cluster) in boxes.items():
        children.setdefault(cluster.parent, []).append(name)
    out: list[str] = []
    # a stack of (cluster name, depth, opening?) so that nesting needs no recursion
    stack: list[tuple[str, int, bool]] = [(name, 1, True) for name in reversed(children.get(None, []))]
    while stack:
        name, depth, opening = stack.pop()
        pad = "  " * depth
        if not opening:
            out.append(pad + "}")
            continue
        dot_id, cluster = boxes[name]
        text, _ = _truncate(_sanitize(cluster.name if cluster.label is None else cluster.label), MAX_LABEL_CHARS, 3)
        attrs = [f"label={_quote(text)}", f'style="{"dotted" if cluster.forever else "solid"}"']
        if cluster.critical:
            attrs += ['color="red"', "penwidth=3"]
        out.append(f"{pad}subgraph {dot_id} {{")
        out.append(f"{pad}  graph [{', '.join(attrs)}];")
        out.extend(f"{pad}  {line}" for line in inside.get(name, []))
        stack.append((name, depth, False))
        stack.extend((child, depth + 1, True) for child in reversed(children.get(name, [])))
    return out


def _first_node(name: str, boxes: dict[str, tuple[str, ClusterStyle]], first_node: dict[str, str]) -> str:
    """A node inside cluster ``name`` (directly, or in its first sub-cluster), for ``lhead``/``ltail``."""
    while name not in first_node:
        name = next(child for child, (_, c) in boxes.items() if c.parent == name)
    return first_node[name]


def render(dot_source: str, fmt: str = "svg", *, engine: str = "dot") -> bytes:
    """Render DOT source with Graphviz.

    The formats ``"dot"``, ``"gv"`` and ``"canon"`` return ``dot_source``
    encoded as UTF-8 without running Graphviz.  Everything else is rendered
    by the Graphviz program ``engine`` via the :mod:`graphviz` package.

    Args:
        dot_source: DOT text, e.g. from :func:`to_dot`.
        fmt: Output format, e.g. ``"svg"``, ``"png"``, ``"pdf"``.
        engine: Graphviz layout program, e.g. ``"dot"``, ``"neato"``.

    Returns:
        The rendered output.

    Raises:
        RenderError: If the format or engine is unknown, the Graphviz program
            or the ``graphviz`` package is missing, or Graphviz fails.
    """
    fmt_key = fmt.lower() if isinstance(fmt, str) else fmt
    if fmt_key in _TEXT_FORMATS:
        return dot_source.encode("utf-8")
    try:
        import graphviz
    except ImportError as exc:
        raise RenderError(
            "the 'graphviz' Python package is required to render: pip install graphviz; and " + _INSTALL_HINT
        ) from exc
    if fmt_key not in graphviz.FORMATS:
        raise RenderError(
            f"unknown output format {fmt!r}; valid formats include "
            f"{', '.join(_COMMON_FORMATS)} (all: {', '.join(sorted(graphviz.FORMATS))})"
        )
    if engine not in graphviz.ENGINES:
        raise RenderError(f"unknown Graphviz engine {engine!r}; expected one of: {', '.join(sorted(graphviz.ENGINES))}")
    try:
        data = dot_source.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RenderError(f"DOT source is not encodable as UTF-8: {exc}") from exc
    try:
        return graphviz.pipe(engine, fmt_key, data, quiet=True)
    except graphviz.ExecutableNotFound as exc:
        raise RenderError(f"Graphviz program {engine!r} not found on PATH; {_INSTALL_HINT}") from exc
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode("utf-8", "replace")
        raise RenderError(
            f"Graphviz {engine!r} failed to render format {fmt!r} (exit status {exc.returncode}): {stderr.strip()}"
        ) from exc


def svg(dot_source: str) -> str:
    """Render DOT source as SVG text.

    Args:
        dot_source: DOT text, e.g. from :func:`to_dot`.

    Returns:
        The SVG document.

    Raises:
        RenderError: As for :func:`render`.
    """
    return render(dot_source, "svg").decode("utf-8")


def _status_of(job: Any) -> tuple[str, str | None]:
    """How a job of a report is drawn: its status key and a word for the label (None when the colour says it)."""
    plan = getattr(job, "plan", None)
    if plan is not None:
        if plan.startswith("would_run"):
            return "would_run", "would run" + (", upstream will change" if plan.endswith("_upstream_changes") else "")
        return "ok", ("ok now, upstream will change" if plan == "ok_upstream_changes" else None)
    status = getattr(job.status, "value", job.status)
    status = str(status)
    return status, (None if status in STATUS_STYLES else status.replace("_", " "))


def graph_dot(graph: Any, report: Any = None, *, title: str | None = None, max_fanout: int | None = None) -> str:
    """DOT text of a :class:`~dojob.graph.JobGraph`, coloured by a run's report if given.

    Every picture of a class-based run (``write_graph``, reports, the CLI) is drawn here.
    A plan run (``dojob check``) is drawn as a plan: jobs that would run are
    orange and say so, never red. A failed job's tooltip gives the Run's error
    before the recheck's; a programming error says so in the label. With
    ``max_fanout`` (the CLI and the HTML report pass :data:`MAX_FANOUT`), a job
    with more dependencies than that has its simple ones (leaves that only it
    needs, not failed) drawn as one node per status.
    """
    from .recap import failure_text

    specs = graph.specs
    kinds = {spec.name: spec.kind for spec in specs}
    styles: dict[int, NodeStyle] = {}
    for spec in specs:
        job = report.jobs.get(spec.name) if report is not None else None
        if job is None:
            skipped = "skipped" if spec.index in getattr(graph, "skipped", ()) else None  # (a selection's --skip)
            styles[spec.index] = NodeStyle(spec.name, status=skipped, critical=spec.critical)
            continue
        status, word = _status_of(job)
        tooltip = None
        detail = word
        if job.exception is not None and not job.status.ok:
            tooltip = failure_text(job, kinds.get(spec.name))
            if tooltip.startswith("programming error"):
                status = "failed"
                detail = tooltip.split(":", 1)[0]
        elif job.blocked_by:
            waited = "not started, waited for" if status == "interrupted" else "blocked by"  # (the recap's words)
            tooltip = f"{waited} {job.blocked_by}"
        styles[spec.index] = NodeStyle(
            spec.name,
            status=status,
            tries=job.tries or None,
            elapsed=job.elapsed,
            critical=spec.critical,
            tooltip=tooltip,
            detail=detail,
        )
    hidden, summaries, summary_edges = _fanouts(graph, styles, max_fanout) if max_fanout else (set(), [], [])
    nodes = [styles[spec.index] for spec in specs if spec.index not in hidden] + summaries
    names = [spec.name for spec in specs]
    edges = [
        (names[i], names[d]) for i, deps in enumerate(graph.deps) for d in deps if d not in hidden and i not in hidden
    ]
    return to_dot(nodes, edges + summary_edges, title=title)


def _fanouts(
    graph: Any, styles: dict[int, NodeStyle], max_fanout: int
) -> tuple[set[int], list[NodeStyle], list[tuple[str, str]]]:
    """The jobs folded into summary nodes, the summary nodes, and their edges."""
    hidden: set[int] = set()
    summaries: list[NodeStyle] = []
    edges: list[tuple[str, str]] = []
    deps, dependents, specs = graph.deps, graph.dependents, graph.specs
    for i, own in enumerate(deps):
        if len(own) <= max_fanout:
            continue
        groups: dict[str, list[int]] = {}
        for d in own:
            if deps[d] or len(dependents[d]) != 1 or specs[d].critical:
                continue  # not a simple leaf: drawn as itself
            status = styles[d].status or "pending"
            if status == "failed":
                continue  # failures stay visible one by one
            groups.setdefault(status, []).append(d)
        folded = sum(len(g) for g in groups.values())
        if len(own) - folded + len(groups) >= len(own):
            continue  # folding would not make the picture smaller
        for status, members in groups.items():
            if len(members) < 2:
                continue
            hidden.update(members)
            shown = [specs[m].name for m in members[:30]]
            more = f"\n... and {len(members) - 30} more" if len(members) > 30 else ""
            name = f"\x00fanout {specs[i].name} {status}"
            word = status.replace("_", " ")
            summaries.append(
                NodeStyle(
                    name,
                    status=status,
                    label=f"{len(members)} jobs {word}",
                    detail=f"needed by {specs[i].name} only",
                    tooltip="\n".join(shown) + more,
                )
            )
            edges.append((specs[i].name, name))
    return hidden, summaries, edges
