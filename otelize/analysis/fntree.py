"""What per-function classification needs from a function's syntax tree, read where the tree is.

`otelize.classify.roles` decides each function's role in the main process, where (with the
process pool) no tree exists: reading one there meant parsing the file a second time.
So the scan (`otelize.analysis.facts.extract`, in the process that parsed the file) records,
for every function with a body, the few tree facts the roles use: whether it awaits
in its own body, its local declarators (name, value kind, value text, the property a
called member names), whether its body only throws, and whether it returns a
decorator (a function whose first parameter is `target`, `constructor`, ...).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from otelize.analysis.parse import captures, query, text

if TYPE_CHECKING:
    from otelize.analysis.records import FunctionFact
    from otelize.analysis.parse import ParsedFile

DECORATOR_TARGET = re.compile(r"^(target|object|constructor|prototype|cls)$")
_FUNCTION_NODES = frozenset({
    "function_declaration", "method_definition", "arrow_function", "function_expression", "function",
    "generator_function_declaration", "generator_function",
})
# one query per file (not three per function): awaits, local declarators, and the first
# parameter of a returned function; each function then takes its share by byte range
_QUERY = """
(await_expression) @await
(variable_declarator name: (identifier) @name value: (_) @value) @decl
(return_statement [(arrow_function parameters: (formal_parameters . (_) @fn_p))
                   (function_expression parameters: (formal_parameters . (_) @fn_p))]) @fn_return
"""
_UNWRAP = ("as_expression", "parenthesized_expression", "await_expression", "non_null_expression")


@cache
def _helper_names() -> tuple[bytes, ...]:
    from otelize.synthesize.wrap import HELPERS

    return tuple(h.encode() for h in HELPERS)


@dataclass(frozen=True)
class FunctionTree:
    own_await: bool
    declarators: tuple[tuple[str, str, str, str], ...]  # (name, value node type, value text, called member's property)
    only_throws: bool
    decorator_factory: bool


def function_trees(pf: ParsedFile, functions: list[FunctionFact], caps: dict | None = None) -> dict[int, FunctionTree]:
    """`function_tree` of every function of the file, keyed by its start, from one query
    (`caps`: the captures of the scan's combined query, which includes this one)."""
    if caps is None:
        caps = captures(query(_QUERY, pf.tsx), pf.root)
    awaits = _sorted_starts(caps.get("await", []))
    decls = _sorted_starts(caps.get("decl", []))
    returns = _sorted_starts(caps.get("fn_return", []))
    enclosing: dict[int, tuple[int, int] | None] = {}  # an await's start -> its innermost function's range
    # an instrumented body calls a span helper, by its name or an alias imported under it:
    # a file that never spells one holds no wrapper
    source = pf.source
    find_wrapper = None
    if any(name in source for name in _helper_names()):
        from otelize.synthesize.unwrap import find_wrapper
    out: dict[int, FunctionTree] = {}
    root = pf.root
    for fn in functions:
        node = root.descendant_for_byte_range(fn.start, fn.end)
        body = root.descendant_for_byte_range(fn.body_start, fn.body_end) if fn.body_start is not None else None
        out[fn.start] = FunctionTree(_own_await(pf, fn, node, body, awaits, enclosing, find_wrapper), _declarators(node, decls),
                                     _only_throws(body), _decorator_factory(body, returns) if returns[0] else False)
    return out


def function_tree(pf: ParsedFile, fn: FunctionFact) -> FunctionTree:
    return function_trees(pf, [fn])[fn.start]


def _sorted_starts(nodes: list[Any]) -> tuple[list[int], list[Any]]:
    nodes = sorted(nodes, key=lambda n: (n.start_byte, -n.end_byte))
    return [n.start_byte for n in nodes], nodes


def _within(index: tuple[list[int], list[Any]], node: Any) -> list[Any]:
    """The indexed nodes inside `node`'s range (what a query run on `node` would find)."""
    starts, nodes = index
    lo, hi = bisect.bisect_left(starts, node.start_byte), bisect.bisect_left(starts, node.end_byte)
    end = node.end_byte
    return [n for n in nodes[lo:hi] if n.end_byte <= end]


def _own_await(pf: ParsedFile, fn: FunctionFact, node: Any, body: Any, awaits: tuple[list[int], list[Any]],
               enclosing: dict[int, tuple[int, int] | None], find_wrapper: Any = None) -> bool:
    """`find_wrapper`: otelize.synthesize.unwrap's, or None where the file holds no wrapper."""
    if node is None:
        return False
    anchors = [fn.body_start if fn.body_start is not None else fn.start]
    if body is not None and find_wrapper is not None:  # already instrumented: the wrapper's arrow is the body
        wrapper = find_wrapper(pf, body)
        if wrapper is not None:
            inner = wrapper.child_by_field_name("arguments").named_children[-1].child_by_field_name("body")
            if inner is not None:
                anchors.append(inner.start_byte)
    starts, nodes = awaits
    lo, hi = bisect.bisect_left(starts, max(fn.start, node.start_byte)), bisect.bisect_left(starts, min(fn.end, node.end_byte))
    for a in nodes[lo:hi]:
        if a.end_byte > node.end_byte:
            continue
        if a.start_byte not in enclosing:
            up = a.parent
            while up is not None and up.type not in _FUNCTION_NODES:
                up = up.parent
            enclosing[a.start_byte] = None if up is None else (up.start_byte, up.end_byte)
        span = enclosing[a.start_byte]
        if span is None or any(span[0] <= anchor < span[1] for anchor in anchors):
            return True
    return False


def _declarators(node: Any, decls: tuple[list[int], list[Any]]) -> tuple[tuple[str, str, str, str], ...]:
    if node is None:
        return ()
    out = []
    for decl in _within(decls, node):
        name, value = decl.child_by_field_name("name"), decl.child_by_field_name("value")
        if name is None or value is None or name.type != "identifier":
            continue
        while value.type in _UNWRAP and value.named_children:
            value = value.named_children[0]
        prop = ""
        if value.type == "call_expression":
            callee = value.child_by_field_name("function")
            if callee is not None and callee.type == "member_expression":
                prop = text(callee.child_by_field_name("property"))
        out.append((text(name), value.type, text(value), prop))
    return tuple(out)


def _only_throws(body: Any) -> bool:
    stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    return len(stmts) == 1 and stmts[0].type == "throw_statement"


def _decorator_factory(body: Any, returns: tuple[list[int], list[Any]]) -> bool:
    if body is None:
        return False
    for ret in _within(returns, body):
        for fn in ret.named_children:
            params = fn.child_by_field_name("parameters") if fn.type in ("arrow_function", "function_expression") else None
            if params is None or params.type != "formal_parameters" or not params.named_children:
                continue
            first = params.named_children[0]
            ident = first.child_by_field_name("pattern") or first
            if DECORATOR_TARGET.match(text(ident)):
                return True
    return False
