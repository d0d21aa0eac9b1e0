"""Recognising otelize's span wrapper in a function body, and taking it off again.

`unwrap_interior` inverts `otelize.synthesize.wrap.wrap_interior` exactly: the
candidate original is wrapped again and compared byte for byte, so a body the
user edited since is reported and left in place; `unwrap_reflowed` takes off a
wrapper whose header a formatter broke over several lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from otelize.analysis.parse import ParsedFile, text
from otelize.synthesize.wrap import (
    FOOTER, FOOTER_NO_SEMICOLON, CannotWrap, indent_beyond, inside, leading_ws, literal_spans, split_interior,
    split_lines, wrap_interior, wrapper_callees,
)


@dataclass(frozen=True)
class Wrapped:
    """An instrumented body recognised by its AST shape."""

    helper: str
    name: str
    header: bytes  # the exact header bytes in the file
    original: bytes | None  # the interior before wrapping, or None when user edits make it unrecoverable
    reason: str = ""


def same_header(a: bytes, b: bytes) -> bool:
    """Two span headers that differ only in layout (what a formatter such as Prettier
    changes when it re-flows otelize's one-line header): compared as syntax trees by
    otelize.synthesize.layout, each completed into a small function."""
    if a == b:
        return True
    from otelize.synthesize.layout import same_code

    def complete(h: bytes) -> bytes:
        return b"function header() {\n" + h + b"\n});\n}\n"

    return same_code("header.ts", complete(a), complete(b))


def find_wrapper(pf: ParsedFile, body: Node) -> Node | None:
    """The `return withSpan(...)` call when it is the body's only statement."""
    stmts = [c for c in body.named_children if c.type != "comment"]
    if len(stmts) != 1 or stmts[0].type != "return_statement":
        return None
    expr = stmts[0].named_children[0] if stmts[0].named_children else None
    if expr is None or expr.type != "call_expression":
        return None
    fn = expr.child_by_field_name("function")
    if fn is None or fn.type != "identifier" or text(fn) not in wrapper_callees(pf):
        return None
    args = expr.child_by_field_name("arguments")
    parts = [a for a in args.named_children if a.type != "comment"] if args is not None else []
    if len(parts) != 3 or parts[0].type != "string" or parts[1].type != "object" or parts[2].type != "arrow_function":
        return None
    inner = parts[2].child_by_field_name("body")
    if inner is None or inner.type != "statement_block":
        return None
    return expr


def unwrap_interior(pf: ParsedFile, body: Node, default_unit: bytes) -> Wrapped | None:
    """Recover the original interior of an instrumented body (None if not ours)."""
    call = find_wrapper(pf, body)
    if call is None:
        return None
    src = pf.source
    args = call.child_by_field_name("arguments")
    parts = [a for a in args.named_children if a.type != "comment"]
    helper = text(call.child_by_field_name("function"))
    name = text(parts[0])[1:-1]
    inner = parts[2].child_by_field_name("body")
    ret = call.parent
    start, end = body.start_byte + 1, body.end_byte - 1
    interior = src[start:end]
    hdr = src[ret.start_byte : inner.start_byte + 1]
    footer = b"}" + src[inner.end_byte : ret.end_byte]  # `});` or, in a file without semicolons, `})`
    if footer not in (FOOTER, FOOTER_NO_SEMICOLON):
        return Wrapped(helper, name, hdr, None, "instrumentation was edited or re-formatted since; left in place")
    literals = literal_spans(pf, start, end)
    candidate = _unwrap(interior, hdr, footer, src, inner, literals, default_unit)
    if candidate is None or wrap_interior_safe(candidate, start, hdr, pf, default_unit, footer) != interior:
        return Wrapped(helper, name, hdr, None, "instrumentation was edited or re-formatted since; left in place")
    return Wrapped(helper, name, hdr, candidate)


def unwrap_reflowed(pf: ParsedFile, body: Node) -> bytes | None:
    """The interior without the wrapper, for a wrapper whose header a formatter broke over
    several lines (so its body sits deeper than otelize put it): the arrow body's lines,
    dedented to the `return` statement's indentation. Lines inside multi-line literals
    keep their bytes. None when the shape does not allow it."""
    call = find_wrapper(pf, body)
    if call is None:
        return None
    src = pf.source
    ret = call.parent
    parts = [a for a in call.child_by_field_name("arguments").named_children if a.type != "comment"]
    inner = parts[2].child_by_field_name("body")
    line_start = src.rfind(b"\n", 0, ret.start_byte) + 1
    indent = src[line_start : ret.start_byte]
    if indent.strip() or b"\n" not in src[ret.start_byte : inner.start_byte]:
        return None  # `return` shares its line with code, or the header is not re-flowed
    newline = b"\r\n" if b"\r\n" in src[inner.start_byte : inner.end_byte] else b"\n"
    content_start = inner.start_byte + 1
    content = src[content_start : inner.end_byte - 1]
    literals = literal_spans(pf, content_start, inner.end_byte - 1)
    lines: list[tuple[int, bytes]] = []  # (absolute offset, line without its end)
    offset = content_start
    for raw in content.split(b"\n"):
        lines.append((offset, raw.rstrip(b"\r")))
        offset += len(raw) + 1
    while lines and not lines[0][1].strip():
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        return None
    movable = [ln for pos, ln in lines if ln.strip() and not inside(pos, literals)]
    depth = min(len(ln) - len(ln.lstrip(b" \t")) for ln in movable)
    out = []
    for pos, ln in lines:
        if inside(pos, literals):
            out.append(ln)  # the inside of a multi-line literal never moves
        elif not ln.strip():
            out.append(b"")
        else:
            out.append(indent + ln[depth:])
    return src[body.start_byte + 1 : line_start] + newline.join(out) + src[ret.end_byte : body.end_byte - 1]


def wrap_interior_safe(
    interior: bytes, base: int, hdr: bytes, pf: ParsedFile, default_unit: bytes, footer: bytes = FOOTER
) -> bytes | None:
    """Re-wrap a candidate original for verification (literal spans recomputed on the candidate)."""
    from otelize.analysis.parse import parse_source

    prefix = b"function __otelize_probe() {"
    probe = parse_source(pf.path, prefix + interior + b"}")
    shift = base - len(prefix)
    lits = [(s + shift, e + shift) for s, e in literal_spans(probe, 0, len(probe.source))]
    try:
        return wrap_interior(interior, base, hdr, lits, default_unit, footer)
    except CannotWrap:
        return None


def _unwrap(interior: bytes, hdr: bytes, footer: bytes, src: bytes, arrow: Node, literals: list[tuple[int, int]],
            default_unit: bytes) -> bytes | None:
    """wrap_interior's inverse: the interior without the wrapper whose arrow body (in `src`) is `arrow`."""
    if b"\n" not in interior:
        # ` HDR<inner>}); `
        if interior.startswith(b" " + hdr) and interior.endswith(footer + b" "):
            return interior[1 + len(hdr) : -(len(footer) + 1)]
        return None
    head, _, tail = split_interior(interior)
    inner_base = arrow.start_byte + 1
    inner = src[inner_base : arrow.end_byte - 1]
    # inner = nl + indented middle + ind  (between the arrow's braces)
    if b"\n" not in inner:
        return None
    opening, indented, _ = split_interior(inner)
    if opening.strip():
        return None
    pos = inner_base + len(opening)
    lines = split_lines(indented)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return None
    unit = indent_beyond(leading_ws(interior[len(head) :].split(b"\n", 1)[0]), tail, default_unit)
    out = bytearray(head)
    for line in lines:
        if line.strip() and not inside(pos, literals):
            if not line.startswith(unit):
                return None
            out += line[len(unit) :]
        else:
            out += line
        pos += len(line)
    out += tail
    return bytes(out)
