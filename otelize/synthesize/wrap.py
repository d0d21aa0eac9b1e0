"""How a span wraps a function body, and how to take it off again.

    async createOrder(input: CreateOrderInput): Promise<Order> {
      return withSpan<Promise<Order>>('OrderService.createOrder', { ... }, async () => {
        ...the original statements, one indent deeper...
      });
    }

The helper's type argument is the declared return type (`return_type_argument`),
where there is one. The original lines reappear unchanged except for one added indent unit;
lines that start inside a multi-line template literal or string are never
touched. `wrap_interior` is a pure function of the original body and the
header, and `otelize.synthesize.unwrap.unwrap_interior` inverts it exactly:
strip re-wraps its result and compares bytes, so user edits to instrumented
code are detected.
"""

from __future__ import annotations

import bisect

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from tree_sitter import Node

from otelize.analysis.capindex import indexed
from otelize.analysis.parse import ParsedFile, captures, query, source_order, text
from otelize.analysis.syntax import descendants_of_type
from otelize.plan.registry import RECORD_ERROR, SPAN_HELPERS

HELPERS = tuple(h.name for h in SPAN_HELPERS)  # the span helpers a wrapper may call (otelize.plan.registry)
RECORD = RECORD_ERROR.name  # the other export of otel.ts, for error middleware
EXPORTS = (*HELPERS, RECORD)
_IDENTIFIERS = "[(identifier) (shorthand_property_identifier_pattern) (shorthand_property_identifier)] @i"


def _helper_module_imports(pf: ParsedFile) -> list[Node]:
    """The file's import statements of the generated span helper (`./otel`, `../otel.js`)."""
    from otelize.workers.base import HELPER_ALT_MODULE, HELPER_MODULE

    # (otelize-otel.ts: the helper's name in an app with an otel.ts of its own)
    stems = {m.rsplit(".", 1)[0] for m in (HELPER_MODULE, HELPER_ALT_MODULE)}
    names = stems | {stem + ".js" for stem in stems}
    from otelize.synthesize.imports import required_module

    out = []
    for node in pf.root.named_children:
        source = node.child_by_field_name("source") if node.type == "import_statement" else None
        spec = text(source)[1:-1] if source is not None and source.type == "string" else ""
        if not spec and node.type in ("lexical_declaration", "variable_declaration"):
            required = required_module(node)  # CommonJS: `const { withSpan } = require('./otel')`
            spec = required[0] if required is not None and required[1] is not None else ""
        if spec.startswith(".") and spec.rsplit("/", 1)[-1] in names:
            out.append(node)
    return out


def imported_helpers(pf: ParsedFile) -> dict[str, str]:
    """Export of otel.ts -> the local name this file imports it under (computed once per file)."""
    cached = pf.cache.get("helper_imports")
    if cached is not None:
        return cached
    out: dict[str, str] = {}
    for node in _helper_module_imports(pf):
        props = sorted((c for p in descendants_of_type(node, ("object_pattern",)) for c in p.named_children
                        if c.type in ("shorthand_property_identifier_pattern", "pair_pattern")), key=source_order)
        for prop in props:
            key, value = (prop, prop) if prop.type == "shorthand_property_identifier_pattern" else (
                prop.child_by_field_name("key"), prop.child_by_field_name("value"))
            if key is not None and value is not None and text(key) in EXPORTS:
                out.setdefault(text(key), text(value))
        for spec in descendants_of_type(node, ("import_specifier",)):
            name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
            if name is not None and text(name) in EXPORTS:
                out.setdefault(text(name), text(alias or name))
    pf.cache["helper_imports"] = out
    return out


def local_names(pf: ParsedFile) -> dict[str, str]:
    """Export of otel.ts -> the name this file calls it by: the one it already imports it
    under; else its own name, unless an identifier of the file that is not a call's callee
    has that name (a parameter, a variable, a function, another import: a binding in some
    scope that could shadow the helper), in which case `otelizeWithSpan` (or `...2`, ...),
    a name no identifier of the file has. Computed once per file."""
    cached = pf.cache.get("helper_local_names")
    if cached is not None:
        return cached
    if not any(name.encode() in pf.source for name in EXPORTS):
        # no identifier can have a name the bytes do not hold (nor an import bring one in)
        out = pf.cache["helper_local_names"] = {name: name for name in EXPORTS}
        return out
    imported = imported_helpers(pf)
    ours = [(n.start_byte, n.end_byte) for n in _helper_module_imports(pf)]
    bindings: set[bytes] = set()
    every: set[bytes] = set()
    for node in captures(query(_IDENTIFIERS, pf.tsx), pf.root).get("i", []):
        if ours and any(s <= node.start_byte < e for s, e in ours):
            continue
        name = node.text
        every.add(name)
        if name in bindings:
            continue
        parent = node.parent
        if not (parent is not None and parent.type == "call_expression" and parent.child_by_field_name("function") == node):
            bindings.add(name)
    out: dict[str, str] = {}
    for name in EXPORTS:
        if name in imported:
            out[name] = imported[name]
        elif name.encode() not in bindings:
            out[name] = name
        else:
            base = "otelize" + name[0].upper() + name[1:]
            alias, n = base, 2
            while alias.encode() in every:
                alias, n = f"{base}{n}", n + 1
            out[name] = alias
    pf.cache["helper_local_names"] = out
    return out


def import_name(name: str, local: str) -> str:
    """The import specifier for export `name` bound as `local`."""
    return name if name == local else f"{name} as {local}"


def wrapper_callees(pf: ParsedFile) -> set[str]:
    """The names a span wrapper of this file may call: the helpers, and their local aliases."""
    cached = pf.cache.get("wrapper_callees")
    if cached is None:
        cached = pf.cache["wrapper_callees"] = set(HELPERS) | {
            local for name, local in imported_helpers(pf).items() if name in HELPERS
        }
    return cached
FOOTER = b"});"
FOOTER_NO_SEMICOLON = b"})"  # for files written without semicolons

# The file's string literals (@s), and the property names of its member calls (@m, the
# database worker's driver methods): one query for both, run once per edited file
# (otelize.analysis.capindex); the second pattern costs little beside the walk.
BODY_QUERY = "[(template_string) (string)] @s\n(call_expression function: (member_expression property: (property_identifier) @m))"

# Comments that govern the line (or node) after them: nothing may be inserted between
# such a comment and what it governs, or it would govern the inserted line instead.
_DIRECTIVE = re.compile(
    rb"@ts-ignore|@ts-expect-error|eslint-disable-next-line|prettier-ignore|(?:istanbul|c8)\s+ignore\s+next"
)


def has_directive(comment: bytes) -> bool:
    """Whether `comment` (a comment, or a line ending in one) holds a next-line directive."""
    return _DIRECTIVE.search(comment) is not None


_SEMICOLON_STATEMENTS = ("import_statement", "lexical_declaration", "variable_declaration", "expression_statement")


@dataclass(frozen=True)
class Style:
    newline: bytes  # b"\n" or b"\r\n"
    quote: str  # "'" or '"'
    semicolons: bool
    source: bytes = field(repr=False, compare=False)  # the file's bytes, for indent_unit

    @cached_property
    def indent_unit(self) -> bytes:
        """b"  ", b"    " or b"\t": the whole file's guess, computed on first use (a wrapper
        needs it only when a body is not indented beyond its closing brace's line)."""
        return _indent_unit(self.source)


def detect_style(pf: ParsedFile) -> Style:
    """The file's newline, quote, semicolon and indent style (computed once per file)."""
    style = pf.cache.get("style")
    if style is None:
        style = pf.cache["style"] = _style_of(pf)
    return style


def _style_of(pf: ParsedFile) -> Style:
    src = pf.source
    newline = b"\r\n" if src.count(b"\r\n") * 2 > src.count(b"\n") else b"\n"
    quotes = _MODULE_QUOTES.findall(src)  # (no two such matches overlap: one pass counts both)
    singles = quotes.count(b"'")
    doubles = len(quotes) - singles
    if singles == doubles:
        singles, doubles = src.count(b"'"), src.count(b'"')
    quote = '"' if doubles > singles else "'"
    # from the statements themselves: a regex over lines misreads multi-line imports
    stmts = [c for c in pf.root.named_children if c.type in _SEMICOLON_STATEMENTS]
    imports = [c for c in stmts if c.type == "import_statement"] or stmts
    semicolons = True if not imports else sum(1 for c in imports if src[c.end_byte - 1 : c.end_byte] == b";") * 2 >= len(imports)
    return Style(newline, quote, semicolons, src)


_MODULE_QUOTES = re.compile(rb"""(?:from|import|require\() ?(['"])""")
_LEADING = re.compile(rb"(?m)^(\t+|( +))\S")  # a line's leading tabs, or its leading spaces


def _indent_unit(src: bytes) -> bytes:
    leads = _LEADING.findall(src)
    widths = [len(spaces) for _, spaces in leads if spaces]
    tabs = len(leads) - len(widths)
    if tabs > len(widths):
        return b"\t"
    if not widths:
        return b"  "
    from collections import Counter

    deltas: Counter[int] = Counter()
    prev = 0
    for w in widths:
        if w > prev:
            deltas[w - prev] += 1
        prev = w
    best = min((d for d, c in deltas.items() if c == max(deltas.values())), default=2)
    return b" " * (best if best in (2, 3, 4, 8) else 2)


def ts_string(value: str, quote: str) -> str:
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")
    return f"{quote}{escaped}{quote}"


def header(
    helper: str, name: str, attributes: list[tuple[str, str]], is_async: bool, quote: str, type_argument: str = ""
) -> bytes:
    """`return withSpan('Name', { 'k': v, ... }, async () => {`, or with `type_argument`
    (`return_type_argument`) `return withSpan<Promise<Order>>('Name', ...`.

    `attributes` values are TypeScript expressions (already quoted when literal).
    """
    attrs = ", ".join(f"{ts_string(k, quote)}: {v}" for k, v in attributes)
    obj = f"{{ {attrs} }}" if attrs else "{}"
    arrow = "async () => {" if is_async else "() => {"
    targs = f"<{type_argument}>" if type_argument else ""
    return f"return {helper}{targs}({ts_string(name, quote)}, {obj}, {arrow}".encode("utf-8")


_FUNCTIONS = frozenset({"function_declaration", "function_expression", "function", "arrow_function", "method_definition"})


def return_type_argument(pf: ParsedFile, body: Node) -> str:
    """The helper's type argument for the function whose body is `body`: its declared return
    type (`Promise<Order>` of `async find(): Promise<Order>`), which is what the helper's
    callback returns (an async arrow for an async function), so tsc need not infer it
    through the callback (TypeScript before 4.1 cannot infer `Result.ok()` in
    `return Result.ok();` from the method's return type there). The type is written in
    the body, where the method's type parameters and `this` type are in scope, as in its
    signature, and the body's own declarations move into the callback. "" (no type
    argument, the helper infers it) for JavaScript, no annotation, a type predicate or
    assertion (`x is Order`, `asserts x`: no type), and a type spanning lines or holding
    a comment (the header is one line)."""
    from otelize.analysis.parse import is_javascript

    fn = body.parent
    if is_javascript(pf.path) or fn is None or fn.type not in _FUNCTIONS:
        return ""
    annotation = fn.child_by_field_name("return_type")
    if annotation is None or annotation.type != "type_annotation":
        return ""
    kids = annotation.named_children
    if len(kids) != 1 or descendants_of_type(kids[0], ("comment",)):
        return ""
    raw = kids[0].text
    if b"\n" in raw or b"\r" in raw:
        return ""
    return raw.decode("utf-8")


def literal_spans(pf: ParsedFile, start: int, end: int) -> list[tuple[int, int]]:
    """Byte ranges of string/template literals that span lines, inside [start, end)."""
    starts, nodes = indexed(pf, BODY_QUERY, "s")
    out = []
    for n in nodes[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]:
        if n.end_byte <= end and n.start_point[0] != n.end_point[0]:
            out.append((n.start_byte, n.end_byte))
    return sorted(out)


def inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < pos < e for s, e in spans)


def split_lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def leading_ws(line: bytes) -> bytes:
    return line[: len(line) - len(line.lstrip(b" \t"))]


class CannotWrap(Exception):
    """The body has a shape we refuse to rewrite; the message is the skip reason."""


def wrap_interior(
    interior: bytes,
    base: int,
    hdr: bytes,
    literals: list[tuple[int, int]],
    default_unit: bytes | Callable[[], bytes],
    footer: bytes = FOOTER,
) -> bytes:
    """Wrap the bytes between a body's `{` and `}`. `base` is the file offset of interior[0].
    `default_unit` may be a callable, called only when the body's own indentation does not
    decide the unit (`indent_beyond`)."""
    if b"\n" not in interior:
        if not interior.strip():
            raise CannotWrap("empty body")
        return b" " + hdr + interior + footer + b" "
    head, middle, tail = split_interior(interior)
    if tail.strip():
        raise CannotWrap("closing brace shares a line with code")
    if not _only_comments(head):
        # the code would stay outside the span, and the next run would not
        # recognise the wrapper (it is no longer the body's only statement)
        raise CannotWrap("opening brace shares a line with code")
    if has_directive(head):
        # `{ // @ts-ignore`: the span header would come between it and the line it governs
        raise CannotWrap("a directive comment on the opening brace's line governs the next line")
    if not middle.strip():
        raise CannotWrap("empty body")
    nl = b"\r\n" if head.endswith(b"\r\n") else b"\n"
    ind, unit = _indents(middle, tail, default_unit)
    out = bytearray(head + ind + hdr + nl)
    pos = base + len(head)
    if not literals:  # (most bodies: no line can start inside a literal)
        for line in split_lines(middle):
            if line.strip():
                out += unit
            out += line
    else:
        for line in split_lines(middle):
            if line.strip() and not inside(pos, literals):
                out += unit
            out += line
            pos += len(line)
    out += ind + footer + nl + tail
    return bytes(out)


def _only_comments(line: bytes) -> bool:
    """Whether `line` (the rest of the opening brace's line) holds only comments."""
    rest = line.strip()
    while rest.startswith(b"/*") and b"*/" in rest:
        rest = rest[rest.index(b"*/") + 2 :].strip()
    return not rest or rest.startswith(b"//")


def split_interior(interior: bytes) -> tuple[bytes, bytes, bytes]:
    """A multi-line interior as (the opening brace's line, the lines between, the closing brace's line)."""
    first_nl = interior.index(b"\n")
    last_nl = interior.rindex(b"\n")
    return interior[: first_nl + 1], interior[first_nl + 1 : last_nl + 1], interior[last_nl + 1 :]


def _indents(middle: bytes, tail: bytes, default_unit: bytes | Callable[[], bytes]) -> tuple[bytes, bytes]:
    """The indentation of the body's first line, and the unit one level adds (`indent_beyond`)."""
    first = next(line for line in split_lines(middle) if line.strip())
    ind = leading_ws(first)
    return ind, indent_beyond(ind, tail, default_unit)


def indent_beyond(ind: bytes, tail: bytes, default_unit: bytes | Callable[[], bytes]) -> bytes:
    """One indentation level: `ind` beyond the closing brace's line `tail`, else `default_unit`
    (called first when it is a callable)."""
    if ind.startswith(tail) and len(ind) > len(tail):
        return ind[len(tail) :]
    return default_unit if isinstance(default_unit, bytes) else default_unit()
