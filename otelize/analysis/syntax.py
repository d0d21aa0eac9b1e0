"""syntax: small tree-sitter helpers the fact extractors share.

String literal values, member-call chains (`this.db.query` -> ("this", "db",
"query")), module-level declarations, and the innermost function holding a
byte offset.
"""

from __future__ import annotations

import bisect

from tree_sitter import Node

from otelize.analysis.parse import text
from otelize.analysis.records import FunctionFact


FUNCTION_KINDS = (
    "function_declaration",
    "generator_function_declaration",
    "function_expression",
    "generator_function",
    "arrow_function",
    "method_definition",
    "method_signature",
    "abstract_method_signature",
    "function_signature",
)


def string_value(node: Node | None) -> str | None:
    if node is None or node.type not in ("string", "template_string"):
        return None
    if node.type == "template_string" and any(c.type == "template_substitution" for c in node.children):
        return None
    raw = text(node)
    return raw[1:-1] if len(raw) >= 2 else None


def is_module_level(node: Node) -> bool:
    decl = node.parent
    if decl is None:
        return False
    holder = decl.parent
    if holder is not None and holder.type == "export_statement":
        holder = holder.parent
    return holder is not None and holder.type == "program"


def member_chain(node: Node | None) -> tuple[str, ...] | None:
    parts: list[str] = []
    while node is not None:
        if node.type == "member_expression":
            parts.append(text(node.child_by_field_name("property")))
            node = node.child_by_field_name("object")
        elif node.type in ("identifier", "this", "super"):
            parts.append(text(node))
            return tuple(reversed(parts))
        elif node.type in ("non_null_expression", "await_expression"):
            # tree-sitter parses `await a.f<T>()` as call(await(a.f), <T>, ())
            node = node.named_children[0] if node.named_children else None
        else:
            return None
    return None


def innermost(functions: list[FunctionFact], starts: list[int], pos: int) -> FunctionFact | None:
    """The innermost function whose range contains pos (functions sorted by start)."""
    # walking back from the last function starting at or before pos, the first one that
    # contains pos is the innermost (ranges nest; equal starts sort outer first)
    i = bisect.bisect_right(starts, pos) - 1
    while i >= 0:
        fn = functions[i]
        if fn.start <= pos < fn.end:
            return fn
        i -= 1
    return None
