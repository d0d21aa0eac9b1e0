"""The import step: turn every worker's import requests into one edit per file.

Workers never edit import blocks themselves (LibCST's AddImportsVisitor
idea). This step respects the file's existing imports, quote style,
semicolons and line endings.
"""

from __future__ import annotations

from collections import defaultdict

from tree_sitter import Node

from otelize.synthesize.edits import Edit, ImportRequest, Skip
from otelize.analysis.parse import ParsedFile, text
from otelize.synthesize.wrap import detect_style, has_directive, ts_string

WORKER = "imports"
BOM = b"\xef\xbb\xbf"


def _source_of(stmt: Node) -> str | None:
    src = stmt.child_by_field_name("source")
    if src is None or src.type != "string":
        return None
    return text(src)[1:-1]


def _top_statements(pf: ParsedFile) -> list[Node]:
    return [c for c in pf.root.named_children if c.type not in ("comment", "hash_bang_line")]


def _line_start(src: bytes, pos: int) -> int:
    """The start of `pos`'s line; on the first line, after a byte order mark (which stays
    the file's first bytes)."""
    start = src.rfind(b"\n", 0, pos) + 1
    if start == 0 and src.startswith(BOM) and pos >= len(BOM):
        return len(BOM)
    return start


def _before_attached_comments(pf: ParsedFile, stmt: Node) -> int:
    """Line start above the comments attached to `stmt` (no blank line between).

    A JSDoc block or a `// @ts-expect-error` belongs to the statement below it;
    an import inserted between them would take it over.
    """
    src = pf.source
    at = _line_start(src, stmt.start_byte)
    # a comment above the first import is the file's header: stay below it, unless it is
    # a directive (`// @ts-ignore`, `// eslint-disable-next-line`) that governs the import
    only_directives = stmt.type == "import_statement"
    node = stmt.prev_sibling
    while node is not None and node.type == "comment":
        gap = src[node.end_byte : at]
        if gap.count(b"\n") > 1 or src[_line_start(src, node.start_byte) : node.start_byte].strip():
            break
        if only_directives and not has_directive(src[node.start_byte : node.end_byte]):
            break
        at = _line_start(src, node.start_byte)
        node = node.prev_sibling
    return at


def _not_under_a_directive(src: bytes, at: int) -> int:
    """`at` (a line start), moved up while the line above ends in a next-line directive
    (`import x from 'x'; // @ts-ignore` governs the line after it)."""
    while at > 0:
        above = _line_start(src, at - 1)
        if above == at or not has_directive(src[above:at]):
            break
        at = above
    return at


def _line_end(src: bytes, pos: int) -> int:
    nl = src.find(b"\n", pos)
    return len(src) if nl < 0 else nl + 1


def import_edits(pf: ParsedFile, requests: list[ImportRequest]) -> tuple[list[Edit], list[Skip]]:
    required = [r for r in requests if r.require]
    if required:
        edits, skips = require_edits(pf, required)
        more, more_skips = _esm_import_edits(pf, [r for r in requests if not r.require]) if len(required) < len(requests) else ([], [])
        return edits + more, skips + more_skips
    return _esm_import_edits(pf, requests)


# --- a leading .env load: the tracing import goes after it -------------------------

DOTENV = "dotenv"
DOTENV_CONFIG = "dotenv/config"
# side-effect modules that may come before the .env load without loading anything traced
HARMLESS_FIRST = frozenset({"reflect-metadata", "source-map-support/register", "module-alias/register"})


def _require_of(node: Node | None) -> str | None:
    """'m' of a `require('m')` call."""
    if node is None or node.type != "call_expression" or text(node.child_by_field_name("function")) != "require":
        return None
    args = node.child_by_field_name("arguments")
    if args is None or len(args.named_children) != 1 or args.named_children[0].type != "string":
        return None
    return text(args.named_children[0])[1:-1]


def _loads_dotenv(call: Node | None, bound: set[str]) -> bool:
    """`require('dotenv/config')`, `require('dotenv').config(...)`, `dotenv.config(...)` or
    `config(...)` (a name `bound` to dotenv's module or its config)."""
    if call is None or call.type != "call_expression":
        return False
    if _require_of(call) == DOTENV_CONFIG:
        return True
    fn = call.child_by_field_name("function")
    if fn is not None and fn.type == "identifier":
        return text(fn) in bound
    if fn is None or fn.type != "member_expression" or text(fn.child_by_field_name("property")) != "config":
        return False
    obj = fn.child_by_field_name("object")
    return _require_of(obj) == DOTENV or (obj is not None and obj.type == "identifier" and text(obj) in bound)


def _imports_module(stmt: Node, module: str) -> bool:
    """`import ... from 'module'`, `require('module')` or `const x = require('module')`."""
    if stmt.type == "import_statement":
        return _source_of(stmt) == module
    if stmt.type == "expression_statement" and len(stmt.named_children) == 1:
        return _require_of(stmt.named_children[0]) == module
    if stmt.type in ("lexical_declaration", "variable_declaration"):
        decls = [c for c in stmt.named_children if c.type == "variable_declarator"]
        return len(decls) == 1 and _require_of(decls[0].child_by_field_name("value")) == module
    return False


def dotenv_step(stmt: Node, bound: set[str]) -> str | None:
    """What a top-level statement does towards loading .env: "load" (it loads it: `import
    'dotenv/config'`, `dotenv.config()`, `require('dotenv').config()`), "bind" (it binds
    dotenv or its config, adding the names to `bound`; or it is a harmless side-effect
    import such as reflect-metadata), or None (anything else)."""
    if stmt.type == "import_statement":
        module = _source_of(stmt)
        clause = next((c for c in stmt.named_children if c.type == "import_clause"), None)
        if any(c.type == "type" for c in stmt.children) or clause is None:
            return "load" if module == DOTENV_CONFIG and clause is None else ("bind" if module in HARMLESS_FIRST else None)
        if module != DOTENV:
            return None
        for c in clause.named_children:
            if c.type == "identifier":
                bound.add(text(c))
            elif c.type == "namespace_import":
                bound.update(text(n) for n in c.named_children if n.type == "identifier")
            elif c.type == "named_imports":
                for spec in c.named_children:
                    if spec.type == "import_specifier" and text(spec.child_by_field_name("name")) == "config":
                        bound.add(text(spec.child_by_field_name("alias") or spec.child_by_field_name("name")))
        return "bind"
    if stmt.type == "expression_statement" and len(stmt.named_children) == 1:
        call = stmt.named_children[0]
        if _loads_dotenv(call, bound):
            return "load"
        return "bind" if _require_of(call) in HARMLESS_FIRST else None
    if stmt.type in ("lexical_declaration", "variable_declaration"):
        decls = [c for c in stmt.named_children if c.type == "variable_declarator"]
        if len(decls) != 1:
            return None
        name, value = decls[0].child_by_field_name("name"), decls[0].child_by_field_name("value")
        if _loads_dotenv(value, bound):
            return "load"  # const env = require('dotenv').config()
        if _require_of(value) != DOTENV or name is None:
            return None
        if name.type == "identifier":
            bound.add(text(name))  # const dotenv = require('dotenv')
        elif name.type == "object_pattern":
            for c in name.named_children:
                if c.type == "shorthand_property_identifier_pattern" and text(c) == "config":
                    bound.add("config")
                elif c.type == "pair_pattern" and text(c.child_by_field_name("key")) == "config":
                    bound.add(text(c.child_by_field_name("value")))
        return "bind"
    return None


def env_loads(pf: ParsedFile, stmts: list[Node], after: str | None = None) -> int:
    """How many of the leading `stmts` end with the file's .env load (0: none): the
    statements before any other import or code that load .env with dotenv (and bind it,
    or import reflect-metadata and the like). The tracing import goes after them, so that
    the OTEL_* variables a .env holds are set when the SDK starts; dotenv loads nothing
    that is traced. `after`: a module whose import counts as a load (a config module
    that loads .env and imports nothing traced: otelize.workers.config.env_module). 0 as
    well when the last load shares its line with more code."""
    bound: set[str] = set()
    count = 0
    for i, stmt in enumerate(stmts):
        step = "load" if after is not None and _imports_module(stmt, after) else dotenv_step(stmt, bound)
        if step is None:
            break
        if step == "load":
            count = i + 1
    if count:
        rest = pf.source[stmts[count - 1].end_byte : _line_end(pf.source, stmts[count - 1].end_byte)].strip()
        if rest and not rest.startswith(b"//"):
            return 0
    return count


def env_load_form(pf: ParsedFile) -> tuple[str, int] | None:
    """How the file's leading .env load (env_loads) calls dotenv, and its line: "module"
    (`import 'dotenv/config'`, `require('dotenv/config')`), "call" (`config()` with no
    arguments) or "options" (`config({ path })`); None when the file has none."""
    stmts = [s for s in _top_statements(pf) if not _is_directive(s)]
    count = env_loads(pf, stmts)
    if not count:
        return None
    stmt = stmts[count - 1]
    line = stmt.start_point[0] + 1
    if stmt.type == "import_statement":
        return "module", line
    node = stmt.named_children[0]
    if node.type == "variable_declarator":
        node = node.child_by_field_name("value")
    if _require_of(node) == DOTENV_CONFIG:
        return "module", line
    args = node.child_by_field_name("arguments") if node is not None else None
    return ("call" if args is not None and not args.named_children else "options"), line


def _esm_import_edits(pf: ParsedFile, requests: list[ImportRequest]) -> tuple[list[Edit], list[Skip]]:
    style = detect_style(pf)
    src = pf.source
    semi = ";" if style.semicolons else ""
    stmts = _top_statements(pf)
    imports = [s for s in stmts if s.type == "import_statement"]
    edits: list[Edit] = []
    skips: list[Skip] = []

    side_effects = sorted({r.module for r in requests if r.side_effect})
    named: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        if not r.side_effect:
            named[r.module].update(r.names)

    after = next((r.after for r in requests if r.side_effect and r.after), None)
    loads = env_loads(pf, stmts, after) if side_effects else 0
    for module in side_effects:
        first = stmts[loads] if loads < len(stmts) else None
        if first is not None and first.type == "import_statement" and _source_of(first) == module:
            continue
        existing = next((s for s in imports if _source_of(s) == module and s.named_child_count == 1), None)
        if loads:
            at = _line_end(src, stmts[loads - 1].end_byte)
        else:
            at = _before_attached_comments(pf, first) if first is not None else len(src)
        if existing is not None:
            # it must run first (tracing before express): move the statement, as written, to the top
            start, end = _line_start(src, existing.start_byte), _line_end(src, existing.end_byte)
            if src[start : existing.start_byte].strip() or src[existing.end_byte : end].strip() or start <= at:
                skips.append(Skip(pf.path, existing.start_point[0] + 1, module,
                                  f"`import {module}` exists but is not the first statement; move it to the top", WORKER))
                continue
            whole_line = src[start:end].endswith(b"\n")
            line = src[start:end] if whole_line else src[start:end] + style.newline
            # the last line of a file without a final newline takes the newline before it along
            edits.append(Edit.delete(pf.path, start if whole_line else start - len(style.newline), end, WORKER))
            edits.append(Edit.insert(pf.path, at, line, WORKER))
            continue
        line = f"import {ts_string(module, style.quote)}{semi}".encode() + style.newline
        if at == len(src) and src and not src.endswith(b"\n"):
            line = style.newline + line
        edits.append(Edit.insert(pf.path, at, line, WORKER))

    new_lines: list[bytes] = []
    for module in sorted(named):
        wanted = named[module]
        existing = [s for s in imports if _source_of(s) == module and not any(c.type == "type" for c in s.children)]
        have: set[str] = set()
        for s in existing:
            for spec in _specifiers(s):
                have.add(text(spec.child_by_field_name("alias") or spec.child_by_field_name("name")))
        # a wanted name is `withSpan` or `withSpan as otelizeWithSpan`: present when its local name is bound
        missing = sorted(w for w in wanted if w.rsplit(" as ", 1)[-1] not in have)
        if not missing:
            continue
        target = next((s for s in existing if _named_imports(s) is not None), None)
        if target is not None:
            braces = _named_imports(target)
            names = sorted({text(sp) for sp in _specifiers(target)} | set(missing))
            edits.append(Edit.replace(pf.path, braces.start_byte, braces.end_byte, ("{ " + ", ".join(names) + " }").encode(), WORKER))
            continue
        new_lines.append(f"import {{ {', '.join(missing)} }} from {ts_string(module, style.quote)}{semi}".encode() + style.newline)

    if new_lines:
        if imports:
            at = _not_under_a_directive(src, _line_end(src, imports[-1].end_byte))
            block = b"".join(new_lines)
            if at == len(src) and not src.endswith(b"\n"):
                block = style.newline + block
        else:
            first = stmts[0] if stmts else None
            at = _before_attached_comments(pf, first) if first is not None else len(src)
            block = b"".join(new_lines)
        # a side-effect import inserted at the same point must come first
        merged = [e for e in edits if e.start == at and e.end == at]
        if merged:
            edits = [e for e in edits if e not in merged]
            block = b"".join(e.text for e in merged) + block
        edits.append(Edit.insert(pf.path, at, block, WORKER))
    return edits, skips


def _named_imports(stmt: Node) -> Node | None:
    clause = next((c for c in stmt.named_children if c.type == "import_clause"), None)
    if clause is None:
        return None
    return next((c for c in clause.named_children if c.type == "named_imports"), None)


def _specifiers(stmt: Node) -> list[Node]:
    braces = _named_imports(stmt)
    return [c for c in braces.named_children if c.type == "import_specifier"] if braces is not None else []


# --- CommonJS JavaScript: require() ---------------------------------------------


def _is_directive(stmt: Node) -> bool:
    """`'use strict';`: part of the directive prologue, which must stay first."""
    return stmt.type == "expression_statement" and len(stmt.named_children) == 1 and stmt.named_children[0].type == "string"


def required_module(stmt: Node) -> tuple[str, Node | None] | None:
    """(module, object pattern or None) of a top-level `require('m');` or
    `const { a, b } = require('m');` / `const x = require('m');` statement."""
    call: Node | None = None
    pattern: Node | None = None
    if stmt.type == "expression_statement" and stmt.named_children:
        call = stmt.named_children[0]
    elif stmt.type in ("lexical_declaration", "variable_declaration"):
        decls = [c for c in stmt.named_children if c.type == "variable_declarator"]
        if len(decls) != 1:
            return None
        call, name = decls[0].child_by_field_name("value"), decls[0].child_by_field_name("name")
        pattern = name if name is not None and name.type == "object_pattern" else None
    if call is None or call.type != "call_expression" or text(call.child_by_field_name("function")) != "require":
        return None
    args = call.child_by_field_name("arguments")
    if args is None or len(args.named_children) != 1 or args.named_children[0].type != "string":
        return None
    return text(args.named_children[0])[1:-1], pattern


def _pattern(name: str) -> str:
    """`withSpan as otelizeWithSpan` (an import specifier) as a destructuring property."""
    return name.replace(" as ", ": ")


def require_edits(pf: ParsedFile, requests: list[ImportRequest]) -> tuple[list[Edit], list[Skip]]:
    """The import step for a CommonJS JavaScript file: `require('./tracing');` as the first
    statement after the directive prologue, and `const { withSpan } = require('./otel');`
    after the file's last top-level require (names merged into an existing one)."""
    style = detect_style(pf)
    src = pf.source
    semi = ";" if style.semicolons else ""
    stmts = _top_statements(pf)
    body = [s for s in stmts if not _is_directive(s)]
    prologue = stmts[: len(stmts) - len(body)]
    requires = [(s, r) for s in body if (r := required_module(s)) is not None]
    edits: list[Edit] = []
    skips: list[Skip] = []
    after = next((r.after for r in requests if r.side_effect and r.after), None)
    loads = env_loads(pf, body, after) if any(r.side_effect for r in requests) else 0
    first = body[loads] if loads < len(body) else None
    if loads:
        top = _line_end(src, body[loads - 1].end_byte)  # after the .env load (env_loads)
    elif first is not None:
        top = _before_attached_comments(pf, first)
        if prologue and top < prologue[-1].end_byte:
            top = _line_end(src, prologue[-1].end_byte)
    else:
        top = _line_end(src, prologue[-1].end_byte) if prologue else len(src)
    lead = style.newline if top == len(src) and src and not src.endswith(b"\n") else b""

    for module in sorted({r.module for r in requests if r.side_effect}):
        if first is not None and (r := required_module(first)) is not None and r == (module, None) and first.type == "expression_statement":
            continue
        if any(m == module and p is None and s.type == "expression_statement" for s, (m, p) in requires):
            line = next(s for s, (m, _) in requires if m == module).start_point[0] + 1
            skips.append(Skip(pf.path, line, module, f"`require('{module}')` exists but is not the first statement; move it to the top", WORKER))
            continue
        edits.append(Edit.insert(pf.path, top, lead + f"require({ts_string(module, style.quote)}){semi}".encode() + style.newline, WORKER))

    named: dict[str, set[str]] = defaultdict(set)
    for r in requests:
        if not r.side_effect:
            named[r.module].update(r.names)
    new_lines: list[bytes] = []
    for module in sorted(named):
        existing = [p for _, (m, p) in requires if m == module and p is not None]
        have = {text(c).replace(": ", " as ") for p in existing for c in p.named_children
                if c.type in ("shorthand_property_identifier_pattern", "pair_pattern")}
        missing = sorted(named[module] - have)  # names as `withSpan` or `withSpan as otelizeWithSpan`
        if not missing:
            continue
        if existing:
            names = sorted(have | set(missing))
            edits.append(Edit.replace(pf.path, existing[0].start_byte, existing[0].end_byte, ("{ " + ", ".join(_pattern(n) for n in names) + " }").encode(), WORKER))
            continue
        new_lines.append(f"const {{ {', '.join(_pattern(n) for n in missing)} }} = require({ts_string(module, style.quote)}){semi}".encode() + style.newline)
    if new_lines:
        block = b"".join(new_lines)
        after = [s for s, (m, _) in requires if not any(m == r.module for r in requests if r.side_effect)]
        if after:
            at = _line_end(src, after[-1].end_byte)
            if at == len(src) and not src.endswith(b"\n"):
                block = style.newline + block
        else:
            at = top
            block = lead + block if not any(e.start == top for e in edits) else block
        merged = [e for e in edits if e.start == at and e.end == at]
        if merged:  # the side-effect require inserted at the same point comes first
            edits = [e for e in edits if e not in merged]
            block = b"".join(e.text for e in merged) + block
        edits.append(Edit.insert(pf.path, at, block, WORKER))
    return edits, skips
