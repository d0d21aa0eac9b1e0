"""syntax: small tree-sitter helpers the fact extractors share.

String literal values, member-call chains (`this.db.query` -> ("this", "db",
"query")), module-level declarations, and the innermost function holding a
byte offset.
"""

from __future__ import annotations

import bisect
import re

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


# A callee written as plain dotted names (`a.b.c`, `this.repo.find`): its text is the chain.
# A word that is not an identifier in the grammar (`new.target`, `import.meta`, `true.x`)
# takes the walk below, as does anything else (`a?.b`, `a!.b`, `(a).b`, `#x`, comments).
_DOTTED = re.compile(rb"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_NOT_IDENTIFIERS = frozenset((b"new", b"import", b"true", b"false", b"null", b"undefined"))


def member_chain(node: Node | None) -> tuple[str, ...] | None:
    """`a.b.c` -> ("a", "b", "c"): identifiers, `this`, `super` and property names down
    the member expressions (through `!` and a misparsed `await`), else None."""
    if node is not None and node.type in ("identifier", "member_expression"):
        raw = node.text
        if raw is not None and _DOTTED.fullmatch(raw) and raw.split(b".", 1)[0] not in _NOT_IDENTIFIERS:
            return tuple(raw.decode().split("."))  # ASCII: the pattern admits nothing else
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


def descendants_of_type(node: Node, types: frozenset[str] | tuple[str, ...]) -> list[Node]:
    """The named nodes of `types` in `node`'s subtree (itself included), in source order:
    what a one-capture query `[(a) (b)] @x` over `node` finds, without compiling one
    (~3 ms each) for a subtree of a few nodes."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type in types:
            out.append(n)
        stack.extend(reversed(n.named_children))
    return out

