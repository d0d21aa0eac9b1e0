"""jsemit: the generated TypeScript modules as plain JavaScript, for a JavaScript app.

`tracing.js` and `otel.js` are rendered from the same templates as `tracing.ts`
and `otel.ts` (one source for both languages), then:

1. the types are erased on the syntax tree: type annotations, type parameters
   and arguments, `x as T`, `x satisfies T`, `x!`, the `?` of optional
   parameters, `import type` statements; the types of an exported function's
   parameters and result move into a JSDoc block above it, for editors;
2. for a CommonJS app, `import { a } from 'm'` becomes `const { a } = require('m')`
   and `export function f` a plain function listed in one `module.exports = { ... }`
   at the end (the shape Node's ES-module loader reads named exports from).

Only otelize's own templates go through here; a construct it does not know is
an error (a template change that needs a rule here), never a silent mistranslation.
"""

from __future__ import annotations

from tree_sitter import Node

from otelize.synthesize.edits import Edit, apply_edits
from otelize.analysis.parse import parse_source, text

_ERASE = ("type_annotation", "type_parameters", "type_arguments", "type_predicate_annotation", "asserts_annotation")
_UNWRAP = ("as_expression", "satisfies_expression", "non_null_expression")
_TS_ONLY = ("interface_declaration", "type_alias_declaration", "enum_declaration", "abstract_class_declaration")


class CannotEmit(Exception):
    """A construct in a template that this module has no JavaScript rule for."""


def to_javascript(ts_source: bytes, module: str) -> bytes:
    """`ts_source` (a generated TypeScript module) as JavaScript: ES module or CommonJS."""
    js = _erase_types(ts_source)
    if module != "esm":
        js = _to_commonjs(js)
    check = parse_source("generated.js", js)
    if not check.ok:
        line, col, kind = check.errors[0]
        raise CannotEmit(f"generated JavaScript does not parse at line {line} column {col} ({kind})")
    return js


def _erase_types(source: bytes) -> bytes:
    pf = parse_source("generated.ts", source)
    if not pf.ok:
        raise CannotEmit("template output does not parse as TypeScript")
    edits: list[Edit] = []

    def walk(node: Node) -> None:
        if node.type in _TS_ONLY:
            raise CannotEmit(f"no JavaScript for a {node.type}")
        if node.type == "import_statement" and any(c.type == "type" for c in node.children):
            edits.append(Edit.delete("", *_whole_lines(source, node), "jsemit"))
            return
        if node.type in _ERASE:
            edits.append(Edit.delete("", node.start_byte, node.end_byte, "jsemit"))
            return
        if node.type == "parenthesized_expression" and len(node.named_children) == 1:
            inner = node.named_children[0]
            if inner.type in _UNWRAP and inner.named_children[0].type in ("identifier", "this"):
                # `(value as { then?: unknown })?.then` -> `value?.then`: the parentheses were the cast's
                edits.append(Edit.delete("", node.start_byte, inner.start_byte, "jsemit"))
                edits.append(Edit.delete("", inner.named_children[0].end_byte, node.end_byte, "jsemit"))
                return
        if node.type in _UNWRAP:
            inner = node.named_children[0]
            parent = node.parent
            if (
                inner.type == "parenthesized_expression"
                and parent is not None
                and parent.type in ("assignment_expression", "variable_declarator")
                and len(inner.named_children) == 1
            ):
                # `x = ((code) => {...}) as typeof f` -> `x = (code) => {...}`
                edits.append(Edit.delete("", inner.start_byte, inner.named_children[0].start_byte, "jsemit"))
                walk(inner.named_children[0])
                edits.append(Edit.delete("", inner.named_children[0].end_byte, node.end_byte, "jsemit"))
                return
            walk(inner)
            edits.append(Edit.delete("", inner.end_byte, node.end_byte, "jsemit"))  # ` as T`, ` satisfies T`, `!`
            return
        if node.type == "optional_parameter":
            mark = next((c for c in node.children if c.type == "?"), None)
            if mark is not None:
                edits.append(Edit.delete("", mark.start_byte, mark.end_byte, "jsemit"))
        if node.type == "export_statement":
            decl = node.child_by_field_name("declaration")
            if decl is not None and decl.type == "function_declaration":
                doc = _jsdoc(source, node, decl)
                if doc is not None:
                    edits.append(doc)
        for child in node.children:
            walk(child)

    walk(pf.root)
    return apply_edits(source, edits)


def _jsdoc(source: bytes, export: Node, fn: Node) -> Edit | None:
    """The one-line `/** text */` above an exported function, with the types of its
    parameters and result added as JSDoc tags (`@template`, `@param`, `@returns`)."""
    comment = export.prev_sibling
    if comment is None or comment.type != "comment" or not text(comment).startswith("/**") or "\n" in text(comment):
        return None
    indent = b""
    tags = []
    type_params = fn.child_by_field_name("type_parameters")
    for tp in type_params.named_children if type_params is not None else []:
        tags.append(f"@template {text(tp.child_by_field_name('name'))}")
    params = fn.child_by_field_name("parameters")
    for p in params.named_children if params is not None else []:
        pattern, annotation = p.child_by_field_name("pattern"), p.child_by_field_name("type")
        if pattern is None or annotation is None:
            continue
        tags.append(f"@param {{{_type_text(annotation)}}} {text(pattern)}")
    result = fn.child_by_field_name("return_type")
    if result is not None and _type_text(result) != "void":
        tags.append(f"@returns {{{_type_text(result)}}}")
    if not tags:
        return None
    body = text(comment)[3:-2].strip()
    lines = [f"/**", f" * {body}"] + [f" * {t}" for t in tags] + [" */"]
    new = "\n".join(lines).encode()
    return Edit.replace("", comment.start_byte, comment.end_byte, indent + new, "jsemit")


def _type_text(annotation: Node) -> str:
    """The type of a `: T` annotation, with API types named through `import()` (JSDoc has no imports)."""
    node = annotation.named_children[0] if annotation.named_children else annotation
    raw = text(node)
    for api_type in ("Attributes", "Span"):
        if raw == api_type:
            return f"import('@opentelemetry/api').{api_type}"
    return raw


def _whole_lines(src: bytes, node: Node) -> tuple[int, int]:
    start = src.rfind(b"\n", 0, node.start_byte) + 1
    end = src.find(b"\n", node.end_byte)
    return start, (len(src) if end < 0 else end + 1)


def _to_commonjs(source: bytes) -> bytes:
    pf = parse_source("generated.mjs", source)
    edits: list[Edit] = []
    exported: list[str] = []
    for stmt in pf.root.named_children:
        if stmt.type == "import_statement":
            clause = next((c for c in stmt.named_children if c.type == "import_clause"), None)
            module = text(stmt.child_by_field_name("source"))
            named = next((c for c in clause.named_children if c.type == "named_imports"), None) if clause else None
            if clause is None or named is None or len(clause.named_children) != 1:
                raise CannotEmit(f"no CommonJS rule for `{text(stmt)}`")
            pattern = text(named).replace(" as ", ": ")
            edits.append(Edit.replace("", stmt.start_byte, stmt.end_byte, f"const {pattern} = require({module});".encode(), "jsemit"))
        elif stmt.type == "export_statement":
            decl = stmt.child_by_field_name("declaration")
            if decl is None or decl.type not in ("function_declaration", "lexical_declaration", "class_declaration"):
                raise CannotEmit(f"no CommonJS rule for `{text(stmt).splitlines()[0]}`")
            if decl.type == "lexical_declaration":
                exported += [text(d.child_by_field_name("name")) for d in decl.named_children if d.type == "variable_declarator"]
            else:
                exported.append(text(decl.child_by_field_name("name")))
            edits.append(Edit.delete("", stmt.start_byte, decl.start_byte, "jsemit"))
        elif _uses_import_meta(stmt):
            raise CannotEmit("import.meta in a CommonJS module")
    out = apply_edits(source, edits)
    if exported:
        out = out.rstrip(b"\n") + b"\n\nmodule.exports = { " + ", ".join(exported).encode() + b" };\n"
    return out


def _uses_import_meta(node: Node) -> bool:
    if node.type == "meta_property" or (node.type == "member_expression" and text(node).startswith("import.meta")):
        return True
    return any(_uses_import_meta(c) for c in node.named_children)
