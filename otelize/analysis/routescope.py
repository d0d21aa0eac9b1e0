"""routescope: what the route-fact passes share while one file is extracted.

`otelize.analysis.routefacts` runs in two passes around the registration calls
(`owners`, then `after_calls`); between them the passes and the path readers of
`otelize.analysis.routepaths` need the qualnames `facts._dedupe` will give, the
file's functions and the parameter names that are owners. They are kept here per
file being extracted (keyed by the facts object, dropped at the end of
`after_calls`), with the enclosing class and functions of a node.
"""

from __future__ import annotations

import bisect

from tree_sitter import Node

from otelize.analysis.parse import text
from otelize.analysis.syntax import FUNCTION_KINDS


FINAL: dict[int, dict[tuple[int, int], str]] = {}


def final_qualname(facts, fn) -> str:  # noqa: ANN001
    """A function's qualname as `facts._dedupe` leaves it."""
    return FINAL.get(id(facts), {}).get((fn.start, fn.end), fn.qualname)


# per file being extracted: its functions (for `template_path`), dropped by `after_calls`
FUNCS: dict[int, tuple[list, list[int]]] = {}


# per file being extracted: the parameter names that are owners somewhere in it
# (filled on first use after `owners`, dropped at the end of `after_calls`)
PARAM_NAMES: dict[int, set[str]] = {}


def class_of(node: Node) -> str | None:
    """The name of the class whose body holds `node`."""
    cur = node.parent
    while cur is not None:
        if cur.type == "class_body":
            cls = cur.parent
            name = cls.child_by_field_name("name") if cls is not None else None
            return text(name) or "default"
        cur = cur.parent
    return None


def enclosing_functions(node: Node, functions, starts):  # noqa: ANN001, ANN202
    """The functions around `node`, innermost first (by the tree's parents: depth, not file size)."""
    out = []
    cur = node.parent
    while cur is not None:
        if cur.type in FUNCTION_KINDS:
            i = bisect.bisect_left(starts, cur.start_byte)
            while i < len(functions) and functions[i].start == cur.start_byte:
                if functions[i].end == cur.end_byte:
                    out.append(functions[i])
                    break
                i += 1
        cur = cur.parent
    return out
