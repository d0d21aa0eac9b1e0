"""The JavaScript shop apps (tests/fixtures/js-shop-cjs, tests/fixtures/js-shop-esm), made whole.

Both answer the sample app's HTTP contract with the same code, kept once:

- tests/fixtures/js-shop-esm/src is the shop's code (`"type": "module"`).
- The CommonJS shop (express-generator layout: app.js + bin/www, lib/ for src/utils/) is
  derived from it by `to_commonjs`, file by file through CJS_LAYOUT (CommonJS path -> the
  ES-module file and the CommonJS idiom that file is to show). Only what is CommonJS by
  nature is hand-written in tests/fixtures/js-shop-cjs: bin/www, package.json and
  package-lock.json.
- Both run the sample app's own contract test, sample-app/test/api.test.mjs (it starts the
  entry its package.json names), copied in.

`materialise` writes one complete app into a folder (the session fixture `js_shops` in
conftest.py does it once per test session).

`to_commonjs` rules, for every file (each raises Unsupported on a form it does not know,
so an edit of the ES-module shop cannot turn silently into a wrong port):
- `'use strict';` heads the file;
- private members `#name` become `_name` (the convention before #private);
- `import x from 'm'` / `import { a, b as c } from 'm'` become `const x = require('m')` /
  `const { a, b: c } = require('m')`; a relative path is mapped through CJS_LAYOUT and loses
  its `.js`; names imported from a package (`import { Router } from 'express'`) are read off
  the package at each use (`const express = require('express')` ... `express.Router()`);
- `export` before a declaration goes and the names are exported at the end in one
  `module.exports = { ... }` (`export default x`: `module.exports = x`);
and, where a Port asks for it, the CommonJS idioms the CommonJS tests look for:
- value: the module *is* one value (`module.exports = new ProductService(db, cache)`,
  required as `const productService = require('./productService')`);
- dot_exports: `exports.f = function (...) {...}` and `exports.x = x;`;
- prototype: a class becomes a constructor function with prototype methods;
- inline_requires: a package required where it is used (`require('express').Router()`);
- until: only the statements before the first one that starts with this text (app.js is
  index.js without its server: bin/www starts it).
"""

from __future__ import annotations

import posixpath
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node

from otelize.analysis.parse import parse_source

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
ESM_APP = FIXTURES / "js-shop-esm"
CONTRACT_TEST = TESTS.parent / "sample-app" / "test" / "api.test.mjs"
APPS = ("js-shop-cjs", "js-shop-esm")


class Unsupported(ValueError):
    """A form to_commonjs does not convert."""


@dataclass(frozen=True)
class Port:
    src: str  # the ES-module file, relative to the ES-module app
    value: str | None = None  # the module is this one value (its other exports are not exported)
    dot_exports: bool = False  # `exports.f = function` for exported functions, `exports.x = x;` for the rest
    prototype: str | None = None  # this class becomes a constructor function with prototype methods
    inline_requires: tuple[str, ...] = ()  # packages required where they are used; the import's line stays, empty
    until: str | None = None  # keep the statements before the first one that starts with this text


# CommonJS path -> its ES-module source. Every file of js-shop-esm/src is here once (tested).
CJS_LAYOUT: dict[str, Port] = {
    "app.js": Port("src/index.js", value="app", until="const port = "),
    "errors.js": Port("src/errors.js"),
    "lib/cache.js": Port("src/utils/cache.js"),
    "lib/database.js": Port("src/utils/database.js"),
    "lib/externalAPI.js": Port("src/utils/externalAPI.js"),
    "lib/latency.js": Port("src/utils/latency.js"),
    "middleware/asyncHandler.js": Port("src/middleware/asyncHandler.js"),
    "middleware/errorHandler.js": Port("src/middleware/errorHandler.js"),
    "middleware/requestId.js": Port("src/middleware/requestId.js"),
    "middleware/requestLogger.js": Port("src/middleware/requestLogger.js"),
    "routes/orders.js": Port("src/routes/orders.js"),
    "routes/ordersController.js": Port("src/routes/ordersController.js"),
    "routes/products.js": Port("src/routes/products.js", inline_requires=("express",)),
    "routes/users.js": Port("src/routes/users.js"),
    "services/inventoryService.js": Port("src/services/inventoryService.js", prototype="InventoryService"),
    "services/orderService.js": Port("src/services/orderService.js"),
    "services/paymentService.js": Port("src/services/paymentService.js"),
    "services/productService.js": Port("src/services/productService.js", value="productService"),
    "services/userService.js": Port("src/services/userService.js", dot_exports=True),
}

PROTOTYPE_NOTE = b"// A constructor function with prototype methods (the pre-class style).\n"
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


def materialise(app: str, dest: Path) -> Path:
    """The complete app `app` (one of APPS) in dest, a folder that must not exist yet."""
    if app not in APPS:
        raise ValueError(f"unknown JavaScript shop {app!r}: one of {APPS}")
    shutil.copytree(FIXTURES / app, dest, ignore=shutil.ignore_patterns("node_modules"))
    if app == "js-shop-cjs":
        for rel, port in sorted(CJS_LAYOUT.items()):
            target = dest / rel
            if target.exists():
                raise FileExistsError(f"{app}/{rel} is hand-written and derived from {port.src} both")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(to_commonjs((ESM_APP / port.src).read_bytes(), rel))
    test = dest / "test" / CONTRACT_TEST.name
    if test.exists():
        raise FileExistsError(f"{app} has its own {test.relative_to(dest)}: the contract test is {CONTRACT_TEST}")
    test.parent.mkdir(exist_ok=True)
    shutil.copyfile(CONTRACT_TEST, test)
    return dest


def to_commonjs(source: bytes, path: str, layout: dict[str, Port] = CJS_LAYOUT) -> bytes:
    """The CommonJS file `path` of layout, from the ES-module source of layout[path].src."""
    port = layout[path]
    if port.until is not None:
        source = _cut(source, port.until, port.src)
    source = _rename_private(source, port.src)
    return b"'use strict';\n\n" + _modules(source, path, port, layout)


# --- passes --------------------------------------------------------------------------------


def _root(source: bytes, where: str) -> Node:
    parsed = parse_source("x.js", source)
    if not parsed.ok:
        raise Unsupported(f"{where}: does not parse")
    return parsed.root


def _walk(node: Node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def _apply(source: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out, at = [], 0
    for start, end, text in sorted(edits):
        if start < at:
            raise Unsupported(f"overlapping edits at byte {start}")
        out += [source[at:start], text]
        at = end
    return b"".join(out) + source[at:]


def _line(source: bytes, start: int, end: int) -> tuple[int, int]:
    """start..end widened to its whole line(s) with the newline, if nothing else is on them."""
    head = source.rfind(b"\n", 0, start) + 1
    tail = source.find(b"\n", end)
    tail = len(source) if tail < 0 else tail + 1
    if source[head:start].strip() or source[end:tail].strip():
        raise Unsupported(f"a statement shares its line: {source[head:tail]!r}")
    return head, tail


def _cut(source: bytes, until: str, where: str) -> bytes:
    for stmt in _root(source, where).named_children:
        if source[stmt.start_byte:].startswith(until.encode()):
            return source[: stmt.start_byte]
    raise Unsupported(f"{where}: no top-level statement starts with {until!r}")


def _rename_private(source: bytes, where: str) -> bytes:
    edits = []
    for node in _walk(_root(source, where)):
        if node.type == "private_property_identifier":
            name = b"_" + node.text[1:]
            if re.search(rb"(?<![\w$#])" + re.escape(name) + rb"(?![\w$])", source):
                raise Unsupported(f"{where}: {node.text.decode()} -> {name.decode()} would meet an existing name")
            edits.append((node.start_byte, node.end_byte, name))
    return _apply(source, edits)


def _require_path(spec: str, port: Port, path: str, layout: dict[str, Port]) -> tuple[str, Port]:
    """The require() path of a relative import, through the layout, and the Port it names."""
    target = posixpath.normpath(posixpath.join(posixpath.dirname(port.src), spec))
    found = [rel for rel, p in layout.items() if p.src == target]
    if len(found) != 1:
        raise Unsupported(f"{port.src}: {spec!r} is {target}, which the layout maps {len(found)} times")
    rel = posixpath.relpath(found[0], posixpath.dirname(path) or ".")
    rel = rel if rel.startswith("../") else "./" + rel
    return rel.removesuffix(".js"), layout[found[0]]


def _import(stmt: Node, port: Port, path: str, layout: dict[str, Port], uses: dict[bytes, bytes]) -> bytes:
    """The require() statement for one import (b"" when the package is required where used)."""
    spec = stmt.child_by_field_name("source").named_children[0].text.decode()
    clause = next((c for c in stmt.named_children if c.type == "import_clause"), None)
    if clause is None:
        return f"require('{spec}');".encode()
    default, named = None, []
    for part in clause.named_children:
        if part.type == "identifier":
            default = part.text.decode()
        elif part.type == "named_imports":
            for spec_node in part.named_children:
                names = [n.text.decode() for n in spec_node.named_children]
                named.append((names[0], names[-1]))  # (imported, local)
        else:
            raise Unsupported(f"{port.src}: {part.type} in {stmt.text.decode()}")
    if spec.startswith("."):
        req, target = _require_path(spec, port, path, layout)
        if target.value is not None:  # the module is the value: it is required whole
            if default or len(named) != 1 or named[0][0] != target.value:
                raise Unsupported(f"{port.src}: {spec} exports only `{target.value}`, as the module")
            return f"const {named[0][1]} = require('{req}');".encode()
        if default and named:
            raise Unsupported(f"{port.src}: a default and named imports of {spec}")
        if default:
            return f"const {default} = require('{req}');".encode()
        fields = ", ".join(i if i == local else f"{i}: {local}" for i, local in named)
        return f"const {{ {fields} }} = require('{req}');".encode()
    if not named:
        return f"const {default} = require('{spec}');".encode()
    inline = spec in port.inline_requires
    base = f"require('{spec}')" if inline else (default or spec)
    if not inline and not IDENTIFIER.fullmatch(base):
        raise Unsupported(f"{port.src}: {spec!r} is no identifier to read {named} off")
    for imported, local in named:
        uses[local.encode()] = f"{base}.{imported}".encode()
    return b"" if inline else f"const {base} = require('{spec}');".encode()


def _declared(decl: Node, where: str) -> list[str]:
    if decl.type in ("class_declaration", "function_declaration"):
        return [decl.child_by_field_name("name").text.decode()]
    if decl.type == "lexical_declaration":
        names = [d.child_by_field_name("name") for d in decl.named_children]
        if any(n.type != "identifier" for n in names):
            raise Unsupported(f"{where}: a destructuring export: {decl.text.decode()}")
        return [n.text.decode() for n in names]
    raise Unsupported(f"{where}: export of a {decl.type}")


def _dedent(block: bytes, by: int, where: str) -> bytes:
    first, *rest = block.split(b"\n")
    out = [first]
    for line in rest:
        if line and not line.startswith(b" " * by):
            raise Unsupported(f"{where}: cannot take {by} spaces off {line!r}")
        out.append(line[by:])
    return b"\n".join(out)


def _prototype(cls: Node, where: str) -> bytes:
    """A class as a constructor function and one `C.prototype.m = function` per method."""
    name = cls.child_by_field_name("name").text.decode()
    if any(c.type == "class_heritage" for c in cls.children):
        raise Unsupported(f"{where}: class {name} extends a class")
    ctor, methods = None, []
    for member in cls.child_by_field_name("body").named_children:
        if member.type == "public_field_definition" and member.child_by_field_name("value") is None:
            continue  # `db;`: the constructor assigns it
        if member.type != "method_definition" or any(c.type in ("static", "get", "set", "*") for c in member.children):
            raise Unsupported(f"{where}: {member.text.decode()[:40]!r} in class {name}")
        body = member.child_by_field_name("body")
        if any(n.type == "template_string" and b"\n" in n.text for n in _walk(body)):
            raise Unsupported(f"{where}: a multi-line template literal in {name}: re-indenting would change it")
        params = member.child_by_field_name("parameters").text.decode()
        block = _dedent(body.text, 4, where).decode()
        method = member.child_by_field_name("name").text.decode()
        if method == "constructor":
            ctor = f"function {name}{params} {block}"
        else:
            is_async = "async " if member.children[0].type == "async" else ""
            methods.append(f"{name}.prototype.{method} = {is_async}function {params} {block};")
    return PROTOTYPE_NOTE + "\n\n".join([ctor or f"function {name}() {{}}", *methods]).encode()


def _modules(source: bytes, path: str, port: Port, layout: dict[str, Port]) -> bytes:
    """Imports to require(), exports to module.exports (the Port's idioms included)."""
    root = _root(source, port.src)
    edits: list[tuple[int, int, bytes]] = []
    uses: dict[bytes, bytes] = {}  # a local name imported from a package -> how to read it off the package
    exported: list[str] = []  # in the order of the source
    dotted: set[str] = set()  # exported in place, `exports.f = function`
    default, value_in_place = None, False
    for stmt in root.named_children:
        if stmt.type == "import_statement":
            edits.append((stmt.start_byte, stmt.end_byte, _import(stmt, port, path, layout, uses)))
            continue
        if stmt.type != "export_statement":
            continue
        decl = stmt.child_by_field_name("declaration")
        if decl is not None:
            names = _declared(decl, port.src)
            exported += names
            if port.dot_exports and decl.type == "function_declaration":
                if decl.children[0].type != "function":
                    raise Unsupported(f"{port.src}: an async or generator function {names[0]} with dot_exports")
                params, body = decl.child_by_field_name("parameters").text, decl.child_by_field_name("body").text
                text = b"exports.%s = function %s %s;" % (names[0].encode(), params, body)
                edits.append((stmt.start_byte, stmt.end_byte, text))
                dotted.add(names[0])
            elif decl.type == "class_declaration" and port.prototype == names[0]:
                edits.append((stmt.start_byte, stmt.end_byte, _prototype(decl, port.src)))
            elif decl.type == "lexical_declaration" and port.value in names:
                if len(names) != 1:
                    raise Unsupported(f"{port.src}: {port.value} is declared with other names")
                stem = posixpath.basename(path).removesuffix(".js")
                note = f"// The module is the service instance: `const {port.value} = require('./{stem}')`.\n"
                value = decl.named_children[0].child_by_field_name("value").text
                edits.append((stmt.start_byte, stmt.end_byte, note.encode() + b"module.exports = " + value + b";"))
                value_in_place = True
            else:
                edits.append((stmt.start_byte, decl.start_byte, b""))  # `export ` goes
            continue
        value = stmt.child_by_field_name("value")
        clause = next((c for c in stmt.named_children if c.type == "export_clause"), None)
        if value is not None and value.type == "identifier":
            default = value.text.decode()
        elif clause is not None and all(len(s.named_children) == 1 for s in clause.named_children):
            exported += [s.text.decode() for s in clause.named_children]
        else:
            raise Unsupported(f"{port.src}: {stmt.text.decode()}")
        edits.append((*_line(source, stmt.start_byte, stmt.end_byte), b""))
    for node in _walk(root):
        if node.type == "shorthand_property_identifier" and node.text in uses:
            raise Unsupported(f"{port.src}: {node.text.decode()} as a shorthand property")
        if node.type == "identifier" and node.text in uses and node.parent.type != "import_specifier":
            edits.append((node.start_byte, node.end_byte, uses[node.text]))
        if node.type == "identifier" and node.text.decode() in dotted and node.parent.type != "function_declaration":
            raise Unsupported(f"{port.src}: {node.text.decode()} is used in its module: `exports.x = function` leaves it unbound")
    out = _apply(source, edits)
    if not out.endswith(b"\n"):
        out += b"\n"
    if port.value is not None:
        tail = "" if value_in_place else f"module.exports = {port.value};\n"
    elif default is not None:
        if exported:
            raise Unsupported(f"{port.src}: a default export and named exports {exported}")
        tail = f"module.exports = {default};\n"
    elif port.dot_exports:
        tail = "".join(f"exports.{name} = {name};\n" for name in exported if name not in dotted)
    else:
        tail = f"module.exports = {{ {', '.join(exported)} }};\n" if exported else ""
    return out + (b"\n" + tail.encode() if tail else b"")
