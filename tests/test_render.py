"""Tests for dojob.render, using the real Graphviz ``dot`` binary (no mocks)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow plain `pytest` without installing dojob
    sys.path.insert(0, str(ROOT))

_render = importlib.import_module("dojob.render")
MAX_LABEL_CHARS = _render.MAX_LABEL_CHARS
MAX_TOOLTIP_CHARS = _render.MAX_TOOLTIP_CHARS
STATUS_STYLES = _render.STATUS_STYLES
NodeStyle = _render.NodeStyle
RenderError = _render.RenderError
render = _render.render
svg = _render.svg
to_dot = _render.to_dot

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"

_ATTR_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\]\s]+)')
_NODE_LINE_RE = re.compile(r"^  (n\d+) \[(.*)\];$")
_EDGE_LINE_RE = re.compile(r"^  (n\d+) -> (n\d+);$")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def dot_nodes(dot: str) -> dict[str, dict[str, str]]:
    """Map node id -> attributes (quoted values keep their DOT escaping)."""
    nodes: dict[str, dict[str, str]] = {}
    for line in dot.splitlines():
        match = _NODE_LINE_RE.match(line)
        if match:
            attrs = {k: v.strip('"') for k, v in _ATTR_RE.findall(match.group(2))}
            nodes[match.group(1)] = attrs
    return nodes


def dot_edges(dot: str) -> list[tuple[str, str]]:
    return [m.groups() for m in map(_EDGE_LINE_RE.match, dot.splitlines()) if m]


def svg_nodes(svg_text: str) -> dict[str, ET.Element]:
    """Map node id (the SVG <title>) -> its <g class="node"> element."""
    root = ET.fromstring(svg_text)
    return {g.find(f"{SVG_NS}title").text: g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node"}


def svg_label(node: ET.Element) -> str:
    return "\n".join(t.text or "" for t in node.iter(f"{SVG_NS}text"))


def svg_shape(node: ET.Element) -> ET.Element:
    shape = node.find(f".//{SVG_NS}path")
    return shape if shape is not None else node.find(f".//{SVG_NS}polygon")


def svg_tooltip(node: ET.Element) -> str | None:
    for element in node.iter(f"{SVG_NS}a"):
        return element.get(XLINK_TITLE)
    return None


# --------------------------------------------------------------------------
# to_dot: styling
# --------------------------------------------------------------------------


def test_status_colours_on_the_right_nodes() -> None:
    statuses = [None, *STATUS_STYLES]
    nodes = [NodeStyle(f"job-{s}", status=s) for s in statuses]
    dot = to_dot(nodes, [])
    parsed = dot_nodes(dot)
    rendered = svg_nodes(svg(dot))
    expected_fill = {
        None: "white",
        "pending": "white",
        "not_run": "white",
        "ok": "green",
        "changed": "darkgreen",
        "failed": "red",
        "blocked": "grey",
        "running": "yellow",
        "would_run": "orange",
        "skipped": "lightyellow",
        "interrupted": "gold",
    }
    for index, status in enumerate(statuses):
        node_id = f"n{index}"
        assert parsed[node_id]["label"] == f"job-{status}"
        assert parsed[node_id]["fillcolor"] == expected_fill[status]
        assert svg_label(rendered[node_id]) == f"job-{status}"
        assert svg_shape(rendered[node_id]).get("fill") == expected_fill[status]
    # changed: dark green with white text
    changed = rendered[f"n{statuses.index('changed')}"]
    assert {t.get("fill") for t in changed.iter(f"{SVG_NS}text")} == {"white"}
    # not run: dashed border
    assert "dashed" in parsed[f"n{statuses.index('not_run')}"]["style"]


def test_regression_unknown_status_is_drawn_not_refused() -> None:
    # a status another part of dojob adds (or a report built by hand) must not break a run's picture
    dot = to_dot([NodeStyle("a", status="bogus"), NodeStyle("b", status="ok")], [("a", "b")])
    parsed = dot_nodes(dot)
    assert parsed["n0"]["fillcolor"] == "lightpink" and "dashed" in parsed["n0"]["style"]
    assert parsed["n1"]["fillcolor"] == "green"
    svg_nodes(svg(dot))  # Graphviz accepts it


def test_tries_and_elapsed_in_label() -> None:
    nodes = [
        NodeStyle("a", tries=3, elapsed=1.25),
        NodeStyle("b", tries=1, elapsed=0.12),
        NodeStyle("c", tries=0, elapsed=None),
        NodeStyle("d", elapsed=125.3, detail="exit code 2"),
    ]
    rendered = svg_nodes(svg(to_dot(nodes, [])))
    assert svg_label(rendered["n0"]) == "a\n3 tries, 1.25 s"
    assert svg_label(rendered["n1"]) == "b\n1 try, 120 ms"
    assert svg_label(rendered["n2"]) == "c"
    assert svg_label(rendered["n3"]) == "d\n2 min 05 s\nexit code 2"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 ms"),
        (0.0004, "0.4 ms"),
        (0.0015, "1.5 ms"),
        (0.12, "120 ms"),
        (0.9996, "1.00 s"),
        (1.25, "1.25 s"),
        (59.999, "1 min 00 s"),
        (125.3, "2 min 05 s"),
        (3725, "1 h 02 min"),
    ],
)
def test_elapsed_formatting(seconds: float, text: str) -> None:
    label = dot_nodes(to_dot([NodeStyle("x", elapsed=seconds)], []))["n0"]["label"]
    assert label == f"x\\n{text}"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_nonsense_elapsed_is_omitted(bad: float) -> None:
    assert dot_nodes(to_dot([NodeStyle("x", elapsed=bad)], []))["n0"]["label"] == "x"


def test_critical_has_thick_red_border() -> None:
    dot = to_dot([NodeStyle("crit", critical=True), NodeStyle("plain")], [])
    parsed = dot_nodes(dot)
    assert parsed["n0"]["penwidth"] == "3"
    assert parsed["n0"]["color"] == "red"
    assert "penwidth" not in parsed["n1"]
    assert "color" not in parsed["n1"]
    rendered = svg_nodes(svg(dot))
    assert svg_shape(rendered["n0"]).get("stroke") == "red"
    assert svg_shape(rendered["n0"]).get("stroke-width") == "3"
    assert svg_shape(rendered["n1"]).get("stroke") == "black"


def test_forever_is_dotted() -> None:
    dot = to_dot(
        [
            NodeStyle("loop", forever=True),
            NodeStyle("once"),
            NodeStyle("loop-not-run", forever=True, status="not_run"),
        ],
        [],
    )
    parsed = dot_nodes(dot)
    assert "dotted" in parsed["n0"]["style"].split(",")
    assert "dotted" not in parsed["n1"]["style"].split(",")
    assert "dotted" in parsed["n2"]["style"].split(",")
    rendered = svg_nodes(svg(dot))
    assert svg_shape(rendered["n0"]).get("stroke-dasharray") == "1,5"
    assert svg_shape(rendered["n1"]).get("stroke-dasharray") is None


def test_tooltip() -> None:
    dot = to_dot([NodeStyle("a", tooltip='boom: "x"\nline 2 & <b>')], [])
    node = svg_nodes(svg(dot))["n0"]
    assert svg_tooltip(node) == 'boom: "x"\nline 2 & <b>'


# --------------------------------------------------------------------------
# to_dot: graph structure
# --------------------------------------------------------------------------


def test_edges_point_from_job_to_dependency() -> None:
    nodes = [NodeStyle("app"), NodeStyle("lib"), NodeStyle("base")]
    edges = [("app", "lib"), ("app", "base"), ("lib", "base"), ("app", "lib")]
    dot = to_dot(nodes, edges)
    assert dot_edges(dot) == [("n0", "n1"), ("n0", "n2"), ("n1", "n2")]
    root = ET.fromstring(svg(dot))
    svg_edges = [g.find(f"{SVG_NS}title").text for g in root.iter(f"{SVG_NS}g") if g.get("class") == "edge"]
    assert sorted(svg_edges) == ["n0->n1", "n0->n2", "n1->n2"]


def test_unknown_edge_endpoints_get_default_nodes() -> None:
    dot = to_dot([NodeStyle("a", status="ok")], [("a", "ghost"), ("x", "a")])
    parsed = dot_nodes(dot)
    assert [parsed[n]["label"] for n in ("n0", "n1", "n2")] == ["a", "ghost", "x"]
    assert parsed["n1"]["fillcolor"] == "white"
    assert dot_edges(dot) == [("n0", "n1"), ("n2", "n0")]


def test_node_order_is_stable_and_output_deterministic() -> None:
    names = ["zeta", "alpha", "mu", "beta"]

    def build() -> str:
        return to_dot(
            (NodeStyle(n, status="ok", tries=2, elapsed=0.5) for n in names),
            iter([("zeta", "alpha"), ("mu", "beta")]),
            title="run",
        )

    first = build()
    assert first == build()
    assert [a["label"].split("\\n")[0] for a in dot_nodes(first).values()] == names
    assert list(dot_nodes(first)) == ["n0", "n1", "n2", "n3"]


def test_title_and_rankdir() -> None:
    dot = to_dot([NodeStyle("a")], [], title='Nightly "build"', rankdir="LR")
    assert "rankdir=LR" in dot
    root = ET.fromstring(svg(dot))
    graph = next(g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "graph")
    assert graph.find(f"{SVG_NS}text").text == 'Nightly "build"'
    assert "label=" not in to_dot([NodeStyle("a")], []).splitlines()[1]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="rankdir"):
        to_dot([], [], rankdir="sideways")
    with pytest.raises(ValueError, match="duplicate node name 'a'"):
        to_dot([NodeStyle("a"), NodeStyle("a")], [])


def test_empty_graph_renders() -> None:
    ET.fromstring(svg(to_dot([], [])))


# --------------------------------------------------------------------------
# hostile names
# --------------------------------------------------------------------------

LONG = "x" * 4000 + "y" * 6000

# name -> expected label text in the SVG (None: same as the name)
HOSTILE: dict[str, str | None] = {
    'He said "hi"': None,
    "braces {a; b} [c] -> d": None,
    "<script>alert(1)</script>": None,
    '"]; n0 -> n0; evil [label="pwned': None,
    "back\\slash \\N \\n \\l \\\\ end\\": None,
    "&amp; &lt;script&gt; &#60; &": None,
    "unicode: héllo 日本語 🚀 Ω": None,
    "node": None,  # DOT keywords are harmless as labels
    "graph": None,
    "line one\nline two\r\nline three\rfour": "line one\nline two\nline three\nfour",
    "\x1b[31mred\x1b[0m plain \x1b]0;title\x07": "red plain ",
    "bell\x07 nul\x00 esc\x1b del\x7f": "bell\\x07 nul\\x00 esc\\x1b del\\x7f",
    "tab\there": "tab here",
    "bidi \u202eevil": "bidi \\u202eevil",
    "surrogate \ud800 x": "surrogate \\ud800 x",
    "": None,
    LONG: LONG[: MAX_LABEL_CHARS - 1] + "\u2026",
}


def test_hostile_names_escape_and_round_trip_through_dot_svg() -> None:
    names = list(HOSTILE)
    nodes = [NodeStyle(name, status="failed", tries=2) for name in names]
    edges = [(names[i], names[i + 1]) for i in range(len(names) - 1)]
    dot = to_dot(nodes, edges, title="<script>alert('title')</script>")

    # Only generated ids are used as DOT identifiers; no raw control chars.
    assert [line.split()[0] for line in dot.splitlines()[3 : 3 + len(names)]] == [f"n{i}" for i in range(len(names))]
    assert len(dot_edges(dot)) == len(names) - 1
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in dot.replace("\n", ""))
    dot.encode("utf-8")  # strict: no lone surrogates left

    svg_text = svg(dot)
    assert "<script" not in svg_text.lower()
    assert "\x1b" not in svg_text
    root = ET.fromstring(svg_text)  # well-formed XML
    assert not [e for e in root.iter() if e.tag.split("}")[-1].lower() == "script"]
    assert "He said &quot;hi&quot;" in svg_text

    rendered = svg_nodes(svg_text)
    assert len(rendered) == len(names)
    for index, name in enumerate(names):
        expected = HOSTILE[name] if HOSTILE[name] is not None else name
        # Graphviz emits no <text> for an empty line, hence the lstrip.
        expected_label = f"{expected}\n2 tries".lstrip("\n")
        assert svg_label(rendered[f"n{index}"]) == expected_label, name


def test_long_name_truncated_in_label_full_text_in_tooltip() -> None:
    dot = to_dot([NodeStyle(LONG, tooltip="last error")], [])
    label = dot_nodes(dot)["n0"]["label"]
    assert len(label) == MAX_LABEL_CHARS
    assert label.endswith("\u2026")
    node = svg_nodes(svg(dot))["n0"]
    # the tooltip has the name's beginning, bounded (Graphviz rejects ~16 000-character attributes), then the error
    assert svg_tooltip(node) == LONG[: MAX_TOOLTIP_CHARS - 1] + "\u2026\nlast error"


def test_many_lines_truncated() -> None:
    name = "\n".join(f"l{i}" for i in range(50))
    node = svg_nodes(svg(to_dot([NodeStyle(name)], [])))["n0"]
    lines = svg_label(node).split("\n")
    assert len(lines) == 10
    assert lines[-1] == "l9\u2026"
    assert svg_tooltip(node) == "\n".join(f"l{i}" for i in range(25)) + "\u2026"  # bounded too


# --------------------------------------------------------------------------
# render / svg
# --------------------------------------------------------------------------

SIMPLE = to_dot([NodeStyle("a", status="ok"), NodeStyle("b")], [("a", "b")])


def test_png_output() -> None:
    assert render(SIMPLE, "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_svg_and_other_engine() -> None:
    assert svg(SIMPLE).lstrip().startswith("<?xml")
    ET.fromstring(render(SIMPLE, "svg", engine="neato"))


@pytest.mark.parametrize("fmt", ["dot", "gv", "canon", "DOT"])
def test_text_formats_return_source(fmt: str) -> None:
    assert render(SIMPLE, fmt) == SIMPLE.encode("utf-8")


def test_bad_format() -> None:
    with pytest.raises(RenderError, match=r"'nope'.*svg.*png"):
        render(SIMPLE, "nope")


def test_bad_engine() -> None:
    with pytest.raises(RenderError, match=r"'fancy'.*dot"):
        render(SIMPLE, "svg", engine="fancy")


def test_graphviz_failure_is_wrapped() -> None:
    with pytest.raises(RenderError, match="syntax error") as info:
        render("digraph { a -> }", "svg")
    assert isinstance(info.value.__cause__, subprocess.CalledProcessError)


def test_missing_dot_binary(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    code = textwrap.dedent(
        """
        from dojob.render import NodeStyle, RenderError, render, to_dot

        src = to_dot([NodeStyle("a")], [])
        assert render(src, "dot") == src.encode()  # no binary needed
        try:
            render(src, "svg")
        except RenderError as exc:
            print("CAUSE", type(exc.__cause__).__name__)
            print("MESSAGE", exc)
        else:
            print("NO ERROR")
        """
    )
    env = dict(os.environ)
    env["PATH"] = str(empty)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "CAUSE ExecutableNotFound" in result.stdout
    assert "'dot' not found" in result.stdout
    assert "apt-get install graphviz" in result.stdout
