"""What per-function classification needs from a function's syntax tree, read where the tree is.

`otelize.classify.engine` decides each function's role in the main process, where (with the
process pool) no tree exists: reading one there meant parsing the file a second time.
So the scan (`otelize.analysis.facts.extract`, in the process that parsed the file) records,
for every function with a body, the few tree facts the roles use: whether it awaits
in its own body, its local declarators (name, value kind, value text, the property a
called member names), whether its body only throws, and whether it returns a
decorator (a function whose first parameter is `target`, `constructor`, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from otelize.analysis.parse import captures, query, text

if TYPE_CHECKING:
    from otelize.analysis.records import FunctionFact
    from otelize.analysis.parse import ParsedFile

DECORATOR_TARGET = re.compile(r"^(target|object|constructor|prototype|cls)$")
_AWAIT = "(await_expression) @a"
_FUNCTION_NODES = frozenset({
    "function_declaration", "method_definition", "arrow_function", "function_expression", "function",
    "generator_function_declaration", "generator_function",
})
_DECLARATORS = "(variable_declarator name: (identifier) @name value: (_) @value)"
_RETURNED_FUNCTION = """(return_statement [(arrow_function parameters: (formal_parameters . (_) @p))
                                           (function_expression parameters: (formal_parameters . (_) @p))])"""
_UNWRAP = ("as_expression", "parenthesized_expression", "await_expression", "non_null_expression")


@dataclass(frozen=True)
class FunctionTree:
    own_await: bool
    declarators: tuple[tuple[str, str, str, str], ...]  # (name, value node type, value text, called member's property)
    only_throws: bool
    decorator_factory: bool


def function_tree(pf: ParsedFile, fn: FunctionFact) -> FunctionTree:
    node = pf.root.descendant_for_byte_range(fn.start, fn.end)
    body = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end) if fn.body_start is not None else None
    return FunctionTree(_own_await(pf, fn, node, body), _declarators(pf, node), _only_throws(body),
                        _decorator_factory(pf, body))


def _own_await(pf: ParsedFile, fn: FunctionFact, node: object, body: object) -> bool:
    if node is None:
        return False
    anchors = [fn.body_start if fn.body_start is not None else fn.start]
    if body is not None:  # already instrumented: the wrapper's arrow is the body
        from otelize.synthesize.wrap import find_wrapper

        wrapper = find_wrapper(pf, body)
        if wrapper is not None:
            inner = wrapper.child_by_field_name("arguments").named_children[-1].child_by_field_name("body")
            if inner is not None:
                anchors.append(inner.start_byte)
    for a in captures(query(_AWAIT, pf.tsx), node).get("a", []):
        if not (fn.start <= a.start_byte < fn.end):
            continue
        up = a.parent
        while up is not None and up.type not in _FUNCTION_NODES:
            up = up.parent
        if up is None or any(up.start_byte <= anchor < up.end_byte for anchor in anchors):
            return True
    return False


def _declarators(pf: ParsedFile, node: object) -> tuple[tuple[str, str, str, str], ...]:
    if node is None:
        return ()
    out = []
    for m in captures(query(_DECLARATORS, pf.tsx), node).get("value", []):
        value = m
        while value.type in _UNWRAP and value.named_children:
            value = value.named_children[0]
        name = m.parent.child_by_field_name("name") if m.parent is not None else None
        if name is None:
            continue
        prop = ""
        if value.type == "call_expression":
            callee = value.child_by_field_name("function")
            if callee is not None and callee.type == "member_expression":
                prop = text(callee.child_by_field_name("property"))
        out.append((text(name), value.type, text(value), prop))
    return tuple(out)


def _only_throws(body: object) -> bool:
    stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    return len(stmts) == 1 and stmts[0].type == "throw_statement"


def _decorator_factory(pf: ParsedFile, body: object) -> bool:
    if body is None:
        return False
    for p in captures(query(_RETURNED_FUNCTION, pf.tsx), body).get("p", []):
        ident = p.child_by_field_name("pattern") or p
        if DECORATOR_TARGET.match(text(ident)):
            return True
    return False
