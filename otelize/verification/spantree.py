"""spantree: received spans as trees, and their one-line-per-span text.

`build_trees` groups spans by trace and links children to parents (a span whose
parent never arrived is a root; a parent cycle is broken); `format_tree` renders
a tree as ``NAME [KIND] [HTTP_STATUS] [key=value ...]`` lines. Plain data in,
text out: nothing here decodes OTLP or opens a socket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelize.verification.otlp import ReceivedSpan


@dataclass(eq=False)
class SpanNode:
    span: ReceivedSpan
    children: list[SpanNode] = field(default_factory=list)

    def walk(self) -> Iterable[tuple[int, SpanNode]]:
        """Depth-first (depth, node) pairs, this node first at depth 0."""
        stack: list[tuple[int, SpanNode]] = [(0, self)]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, c) for c in reversed(node.children))


def _order(s: ReceivedSpan) -> tuple[int, str]:
    return (s.start_ns, s.span_id)


def build_trees(spans: Iterable[ReceivedSpan]) -> dict[str, list[SpanNode]]:
    """Group spans by trace and link children to parents.

    Returns ``{trace_id: [root nodes]}``. A span whose parent was not received
    is treated as a root, so nothing is dropped. Roots and children are sorted
    by (start_ns, span_id); traces appear in order of their first root.
    """
    by_trace: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)

    result: dict[str, list[SpanNode]] = {}
    for trace_id, items in by_trace.items():
        items.sort(key=_order)
        nodes = [SpanNode(s) for s in items]
        by_id: dict[str, SpanNode] = {}
        for n in nodes:
            by_id.setdefault(n.span.span_id, n)
        roots: list[SpanNode] = []
        for n in nodes:
            parent = by_id.get(n.span.parent_span_id) if n.span.parent_span_id else None
            if parent is None or parent is n:
                roots.append(n)
            else:
                parent.children.append(n)  # already in start order
        # Spans caught in a parent cycle are unreachable from any root:
        # detach each such span from its parent and make it a root.
        reached = {id(n) for r in roots for _, n in r.walk()}
        for n in nodes:
            if id(n) not in reached:
                parent = by_id[n.span.parent_span_id]
                parent.children = [c for c in parent.children if c is not n]
                roots.append(n)
                reached.update(id(m) for _, m in n.walk())
        roots.sort(key=lambda n: _order(n.span))
        result[trace_id] = roots
    return dict(sorted(result.items(), key=lambda kv: _order(kv[1][0].span)))


DEFAULT_TREE_ATTRIBUTES: tuple[str, ...] = (
    "db.system",
    "db.operation",
    "db.operation.name",
    "messaging.system",
    "rpc.method",
    "peer.service",
    "server.address",
)

_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code")


def _fmt_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and re.fullmatch(r"[\w./:@-]+", v) else json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"))


def _span_line(s: ReceivedSpan, attributes: Sequence[str], durations: bool) -> str:
    parts = [s.name or "<unnamed>", f"[{s.kind}]"]
    for key in _HTTP_STATUS_KEYS:
        if key in s.attributes:
            parts.append(str(s.attributes[key]))
            break
    for key in attributes:
        if key in s.attributes:
            parts.append(f"{key}={_fmt_value(s.attributes[key])}")
    if durations:
        parts.append(f"({s.duration_ns / 1e6:.1f} ms)")
    if s.status_code == "ERROR":
        parts.append(f"ERROR {json.dumps(s.status_message)}" if s.status_message else "ERROR")
    return " ".join(parts)


def format_tree(
    root: SpanNode,
    *,
    attributes: Sequence[str] = DEFAULT_TREE_ATTRIBUTES,
    durations: bool = False,
) -> str:
    """Render a span tree, one line per span, children indented by two spaces.

    Line format: ``NAME [KIND] [HTTP_STATUS] [key=value ...] [(D ms)] [ERROR "msg"]``,
    e.g. ``POST /api/orders [SERVER] 201``. ``attributes`` selects which span
    attributes are shown as ``key=value``; ``durations`` adds the span duration.
    """
    return "\n".join(
        "  " * depth + _span_line(node.span, attributes, durations)
        for depth, node in root.walk()
    )
