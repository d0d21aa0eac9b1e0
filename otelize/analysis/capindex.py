"""A query's captures over a whole file, indexed by position, for per-node questions.

Asking `captures(query(q), node)` once per function costs a query cursor per call and
a walk over every function's subtree; a worker that asks it of each of a file's twenty
functions walks the file twenty times over. `captures_in(pf, q, name, node)` runs the
query once over the file (kept in `pf.cache`) and answers each node by bisecting the
captures sorted by position: the same nodes, for queries whose capture is the
pattern's root node (a capture inside a pattern rooted outside `node` would differ).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from otelize.analysis.parse import captures, query, source_order

if TYPE_CHECKING:
    from tree_sitter import Node

    from otelize.analysis.parse import ParsedFile


def indexed(pf: ParsedFile, source: str, name: str) -> tuple[list[int], list[Any]]:
    """The captures `name` of `source` over the whole file, in source order, with their starts.

    A source may hold several patterns with distinct capture names (a worker's questions
    asked together): one compile and one run over the file answer them all.
    """
    key = ("capindex", source)
    found = pf.cache.get(key)
    if found is None:
        caps = pf.cache.pop(("prefetched", source), None)
        if caps is None:
            caps = captures(query(source, pf.tsx), pf.root)
        found = pf.cache[key] = {}
        for capture, nodes in caps.items():
            nodes = sorted(nodes, key=source_order)
            found[capture] = ([n.start_byte for n in nodes], nodes)
    return found.get(name, _NONE)


def prefetched(pf: ParsedFile, source: str, caps: dict[str, list[Any]]) -> None:
    """Keep the captures of `source` from `caps` (a query that holds `source` among its
    patterns, run over the whole file), so that `indexed(pf, source, ...)` needs no walk."""
    names = query(source, pf.tsx)
    pf.cache[("prefetched", source)] = {
        n: caps[n] for n in (names.capture_name(i) for i in range(names.capture_count)) if n in caps
    }


_NONE: tuple[list[int], list[Any]] = ([], [])


def captures_in(pf: ParsedFile, source: str, name: str, node: Node) -> list[Node]:
    """What `captures(query(source), node).get(name, [])` finds, from the file-wide index."""
    starts, nodes = indexed(pf, source, name)
    start, end = node.start_byte, node.end_byte
    lo, hi = bisect.bisect_left(starts, start), bisect.bisect_right(starts, end)
    return [n for n in nodes[lo:hi] if n.end_byte <= end and (n.start_byte < end or n.start_byte == start)]
