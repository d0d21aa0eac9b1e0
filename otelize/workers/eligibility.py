"""Which functions a span worker may wrap: the candidates of a file (top-level functions,
exported arrows, class members, members of exported objects) and, for each, whether it
can be wrapped safely or the reason it is skipped."""

from __future__ import annotations

from tree_sitter import Node

from otelize.analysis.capindex import captures_in
from otelize.analysis.parse import ParsedFile, text
from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.syntax import descendants_of_type

_MANUAL_SPAN = """
(call_expression function: (member_expression property: (property_identifier) @p
  (#match? @p "^(startActiveSpan|startSpan)$")))
"""
_CALLS = frozenset(("call_expression", "new_expression", "await_expression"))


def candidates(facts: FileFacts) -> list[FunctionFact]:
    """Top-level functions, exported arrow consts, class members, the members of an
    exported object literal (`export const userService = { async find() {} }`), and what an
    exported factory makes (`makeX = (deps) => async () => {}`, `=> ({ async find() {} })`), in source order."""
    exported_objects = {local for local in facts.exports.values()} | set(facts.exports)
    # what an exported factory makes (`export { makeX }` over `const makeX = (deps) => async () => {}`)
    made = {name for name, factory in facts.factories.items() if factory in exported_objects}
    exported_objects |= made
    out = []
    for fn in facts.functions:
        if fn.kind in ("method", "property-arrow", "signature"):
            out.append(fn)
        elif fn.kind in ("function", "arrow", "function-expression") and (fn.exported or fn.name in made):
            out.append(fn)
        elif fn.kind == "function" and not fn.exported and fn.class_name is None:
            out.append(fn)
        elif fn.kind == "object-method" and "." in fn.name and fn.name.split(".", 1)[0] in exported_objects:
            out.append(fn)
    return out


def eligibility(fn: FunctionFact, pf: ParsedFile, facts: FileFacts, allow_private: bool = False) -> str | None:
    """None when the function may be wrapped, else the skip reason. `allow_private`: a
    private method the class registers as a callback (an event handler) may be wrapped."""
    if fn.line - 1 in facts.ignore_lines:
        return "ignored by comment"
    if fn.is_signature:
        return "abstract method" if fn.is_abstract else "overload signature (only the implementation is wrapped)"
    if fn.is_constructor:
        return "constructor"
    if fn.accessor:
        return f"{fn.accessor}ter"
    if fn.is_generator:
        return "async generator" if fn.is_async else "generator"
    member = fn.name.rsplit(".", 1)[-1] if fn.kind == "object-method" else fn.name
    if (fn.is_private and not allow_private) or member.startswith("_") or member.startswith("#"):
        return "private member"
    if fn.kind == "function" and not fn.exported and fn.class_name is None:
        return "module-internal helper (not exported)"
    if fn.expression_body or fn.body_start is None:
        return "one-expression arrow function (trivial helper)"
    node = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
    if node is None or node.type != "statement_block":
        return "body not found"
    stmts = [c for c in node.named_children if c.type != "comment"]
    if not stmts:
        return "empty body"
    if len(stmts) == 1 and stmts[0].type == "return_statement" and not descendants_of_type(stmts[0], _CALLS):
        return "one-expression helper (trivial)"
    # (the query needs the name in the source: most files have neither, and need no query)
    if _names_manual_spans(pf) and captures_in(pf, _MANUAL_SPAN, "p", node):
        return "already instrumented manually (startActiveSpan)"
    # (a redeclaring `var` needs the word in the body's bytes: most bodies have none, and need no walk)
    redeclared = _var_redeclared_parameters(node) if pf.source.find(b"var", fn.body_start, fn.body_end) >= 0 else []
    if redeclared:
        # in the wrapper's arrow the `var` would be a new, undefined binding instead of the parameter
        return f"parameter `{redeclared[0]}` is redeclared with `var` in the body"
    return None


def _names_manual_spans(pf: ParsedFile) -> bool:
    """Whether the file's bytes hold `startSpan` or `startActiveSpan`, looked
    for once per file rather than over the whole file for each function."""
    found = pf.cache.get("names_manual_spans")
    if found is None:
        found = pf.cache["names_manual_spans"] = b"startSpan" in pf.source or b"startActiveSpan" in pf.source
    return found


_FUNCTIONS = frozenset({
    "function_declaration", "function_expression", "arrow_function", "method_definition", "generator_function",
    "generator_function_declaration", "function",
})


def binding_names(node: Node | None) -> list[str]:
    """The names a parameter or declarator pattern binds (not those in default values)."""
    if node is None:
        return []
    kind = node.type
    if kind in ("identifier", "shorthand_property_identifier_pattern"):
        return [text(node)]
    if kind in ("required_parameter", "optional_parameter"):
        return binding_names(node.child_by_field_name("pattern"))
    if kind in ("assignment_pattern", "object_assignment_pattern"):
        return binding_names(node.child_by_field_name("left"))
    if kind == "pair_pattern":
        return binding_names(node.child_by_field_name("value"))
    if kind in ("object_pattern", "array_pattern", "rest_pattern", "formal_parameters"):
        return [n for child in node.named_children for n in binding_names(child)]
    return []


def _var_redeclared_parameters(body: Node) -> list[str]:
    """Parameters of the body's function that a `var` of that same function redeclares."""
    fn = body.parent
    params = set(binding_names(fn.child_by_field_name("parameters") if fn is not None else None))
    if fn is not None and fn.child_by_field_name("parameter") is not None:  # `a => { ... }`
        params |= set(binding_names(fn.child_by_field_name("parameter")))
    if not params:
        return []
    out = []
    stack = list(body.named_children)
    while stack:
        node = stack.pop()
        if node.type in _FUNCTIONS or node.type == "class_body":
            continue  # their `var`s are their own
        if node.type == "variable_declaration":
            for decl in node.named_children:
                if decl.type == "variable_declarator":
                    out += [n for n in binding_names(decl.child_by_field_name("name")) if n in params]
        kind = node.child_by_field_name("kind") if node.type == "for_in_statement" else None
        if kind is not None and text(kind) == "var":  # `for (var a of xs)`
            out += [n for n in binding_names(node.child_by_field_name("left")) if n in params]
        stack.extend(node.named_children)
    return sorted(set(out))
