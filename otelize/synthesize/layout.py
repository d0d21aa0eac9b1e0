"""Is this code ours, re-flowed by a formatter? (layout-insensitive comparison)

Teams run Prettier (or dprint, or Biome) after otelize, in the same pre-commit
run. A formatter changes layout only: whitespace and line breaks, quote
characters, semicolons, trailing commas, redundant parentheses around an
expression, parentheses around a single arrow parameter. If otelize compared
bytes, it would rewrite its generated files back on every run and the two
hooks would fight forever. `same_code` compares syntax trees with those
differences normalised away, so a formatted copy of otelize's output counts as
otelize's output; anything else (another identifier, literal, operator or
comment) still counts as a change.
"""

from __future__ import annotations

from tree_sitter import Node

from otelize.analysis.parse import parse_source

_SKIPPED_TOKENS = {",", ";", "'", '"', "(", ")"}


def same_code(path: str, a: bytes, b: bytes) -> bool:
    """`a` and `b` parse cleanly and differ in layout only."""
    if a == b:
        return True
    pa, pb = parse_source(path, a), parse_source(path, b)
    if not pa.ok or not pb.ok:
        return False
    return canonical(pa.root) == canonical(pb.root)


def canonical(root: Node) -> list[str]:
    """A pre-order token list of the tree: named nodes as `<type` … `>`, leaves by text,
    with the layout a formatter may change left out."""
    out: list[str] = []
    stack: list[Node | None] = [root]
    while stack:
        node = stack.pop()
        if node is None:
            out.append(">")
            continue
        node = _unwrapped(node)
        if node.type == "string":  # 'it\\'s' and "it's" are the same literal
            out.append("<string " + "".join(_string_part(c) for c in node.named_children) + ">")
            continue
        if node.child_count == 0:
            token = node.text.decode("utf-8", "replace") if node.text is not None else ""
            if node.type == "comment":
                out.append(token.strip())
            elif node.is_named or token not in _SKIPPED_TOKENS:
                out.append(token)
            continue
        if node.is_named:
            out.append("<" + node.type)
            stack.append(None)
        stack.extend(reversed(node.children))
    return out


def _string_part(node: Node) -> str:
    token = node.text.decode("utf-8", "replace") if node.text is not None else ""
    if node.type == "escape_sequence" and token in ("\\'", '\\"'):
        return token[1:]
    return token


def _unwrapped(node: Node) -> Node:
    """`(expr)` as `expr`; `(x) => …` parameters as `x`."""
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    if node.type == "formal_parameters" and node.named_child_count == 1:
        param = node.named_children[0]
        pattern = param.child_by_field_name("pattern")
        if param.type == "required_parameter" and param.named_child_count == 1 and pattern is not None and pattern.type == "identifier":
            return pattern
    return node
