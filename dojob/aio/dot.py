"""Pictures of a scheduler, drawn by :mod:`dojob.render` like every dojob graph.

The asynciojobs legend holds: critical jobs have a thick red border, forever
jobs a dotted one, and nested schedulers are boxes (clusters) around their
jobs. Nodes are coloured by state (idle white, running yellow, done green,
raised red). Arrows go from a job to the job it requires, as in every dojob
picture.
"""

from __future__ import annotations

from typing import Any

from ..render import ClusterStyle, NodeStyle, to_dot
from .listing import assign_ids, is_scheduler
from .topology import topological_order


def _status(job: Any) -> str | None:
    if job.is_done():
        return "failed" if job.raised_exception() else "ok"
    if job.is_running():
        return "running"
    return None


def dot_format(scheduler: Any) -> str:
    """DOT text of ``scheduler``, nested schedulers as clusters.

    Raises:
        CycleError: the requirements form a cycle.
    """
    assign_ids(scheduler)
    nodes: list[NodeStyle] = []
    clusters: list[ClusterStyle] = []
    edges: list[tuple[str, str]] = []
    stack: list[tuple[Any, str | None]] = [(scheduler, None)]
    while stack:
        owner, parent = stack.pop()
        members = topological_order(owner.jobs)
        inside = set(members)
        for job in members:
            key = job.repr_id()
            tooltip = None
            exc = job.raised_exception()
            if exc:
                tooltip = f"{type(exc).__name__}: {exc}"
            if is_scheduler(job):
                clusters.append(
                    ClusterStyle(
                        key,
                        label=job._get_graph_label(),
                        parent=parent,
                        critical=job.is_critical(),
                        forever=bool(job.forever),
                        status=_status(job),
                    )
                )
                stack.append((job, key))
            else:
                nodes.append(
                    NodeStyle(
                        key,
                        status=_status(job),
                        critical=job.is_critical(),
                        forever=bool(job.forever),
                        tooltip=tooltip,
                        label=job._get_graph_label(),
                        cluster=parent,
                    )
                )
            edges.extend((key, req.repr_id()) for req in job.required if req in inside)
    return to_dot(nodes, edges, clusters=clusters)
