"""importfacts: the module facts of a file, imports and exports.

ESM imports and exports, `import x = require()`, `export =`, re-exports,
`require()` patterns, and the CommonJS idioms of JavaScript (and of TypeScript
compiled as CommonJS): `module.exports = ...`, `exports.name = ...`,
`X.prototype.m = function () {}`.
"""

from __future__ import annotations

from tree_sitter import Node

from otelize.analysis.parse import line_of, text
from otelize.analysis.records import FileFacts, ImportFact
from otelize.analysis.syntax import string_value


def import_statement(node: Node, facts: FileFacts) -> None:
    source = node.child_by_field_name("source")
    type_only = any(c.type == "type" for c in node.children)
    for child in node.named_children:
        if child.type == "import_require_clause":
            ident = next((c for c in child.named_children if c.type == "identifier"), None)
            src = next((c for c in child.named_children if c.type == "string"), None)
            module = string_value(src)
            if module is not None:
                facts.imports.append(
                    ImportFact(module, "import-equals", line_of(node), node.start_byte, node.end_byte, default=text(ident) or None)
                )
            return
    module = string_value(source)
    if module is None:
        return
    default = namespace = None
    names: list[tuple[str, str]] = []
    clause = next((c for c in node.named_children if c.type == "import_clause"), None)
    if clause is not None:
        for part in clause.named_children:
            if part.type == "identifier":
                default = text(part)
            elif part.type == "namespace_import":
                ident = next((c for c in part.named_children if c.type == "identifier"), None)
                namespace = text(ident)
            elif part.type == "named_imports":
                for spec in part.named_children:
                    if spec.type != "import_specifier":
                        continue
                    name = spec.child_by_field_name("name")
                    alias = spec.child_by_field_name("alias")
                    names.append((text(alias or name), text(name)))
    facts.imports.append(
        ImportFact(module, "esm", line_of(node), node.start_byte, node.end_byte, default, namespace, tuple(names), type_only)
    )


def commonjs_export(node: Node, facts: FileFacts) -> None:
    """Top-level `module.exports = router`, `module.exports = { a, b: c }`,
    `exports.name = x` / `module.exports.name = x` (TypeScript compiled as, or
    migrated from, CommonJS). `module.exports = x` is what `export = x` is.
    The JavaScript forms (functions, instances, objects of functions, prototype
    methods) are read by `_commonjs_js_export`."""
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or right is None:
        return
    target = text(left)
    if target == "module.exports":
        if right.type == "identifier":
            facts.exports["="] = text(right)
            mark_exported(facts, text(right))
        elif right.type == "object":
            for prop in right.named_children:
                if prop.type == "shorthand_property_identifier":
                    facts.exports[text(prop)] = text(prop)
                    mark_exported(facts, text(prop))
                elif prop.type == "pair":
                    key, value = prop.child_by_field_name("key"), prop.child_by_field_name("value")
                    if key is not None and value is not None and value.type == "identifier":
                        facts.exports[text(key)] = text(value)
                        mark_exported(facts, text(value))
        _commonjs_js_export(right, facts)
        return
    for prefix in ("module.exports.", "exports."):
        name = target[len(prefix):] if target.startswith(prefix) else ""
        if name.isidentifier() and right.type == "identifier":
            facts.exports[name] = text(right)
            mark_exported(facts, text(right))
            return
        if name.isidentifier() and right.type in _JS_FUNCTION_VALUES:
            facts.exports[name] = name  # the function itself is named `name` (commonjs_assigned)
            return


_JS_FUNCTION_VALUES = ("function_expression", "arrow_function", "generator_function")


def is_module_exports(node: Node | None) -> bool:
    return node is not None and text(node) == "module.exports"


def commonjs_assigned(assignment: Node, own_name: str) -> tuple[str, str | None, str, bool] | None:
    """(name, prototype class, kind, exported) of a function assigned at module level:
    `exports.find = async () => {}`, `module.exports.find = function () {}`,
    `module.exports = function find() {}` (the module's value), and
    `OrderService.prototype.place = function () {}` (a method of a constructor function)."""
    holder = assignment.parent
    if holder is None or holder.type != "expression_statement" or holder.parent is None or holder.parent.type != "program":
        return None
    target = text(assignment.child_by_field_name("left"))
    if target == "module.exports":
        return own_name or "default", None, "function-expression", True
    for prefix in ("module.exports.", "exports."):
        name = target[len(prefix):] if target.startswith(prefix) else ""
        if name.isidentifier():
            return name, None, "function-expression", True
    parts = target.split(".")
    if len(parts) == 3 and parts[1] == "prototype" and parts[0].isidentifier() and parts[2].isidentifier():
        return parts[2], parts[0], "method", False
    return None


def _commonjs_js_export(right: Node, facts: FileFacts) -> None:
    """`module.exports = new OrderService(db)` (a singleton: calls on the required module
    are calls of its methods), `module.exports = function find() {}`, and
    `module.exports = { async find() {}, list: async () => {} }` (members named `default.x`,
    like `export default { ... }`)."""
    if right.type == "new_expression":
        ctor = right.child_by_field_name("constructor")
        if ctor is not None and ctor.type == "identifier":
            facts.instances["module.exports"] = text(ctor)
            facts.exports["="] = "module.exports"
            mark_exported(facts, text(ctor))
    elif right.type in _JS_FUNCTION_VALUES:
        facts.exports["="] = text(right.child_by_field_name("name")) or "default"
    elif right.type == "object":
        members = [
            p for p in right.named_children
            if p.type == "method_definition"
            or (p.type == "pair" and (v := p.child_by_field_name("value")) is not None and v.type in _JS_FUNCTION_VALUES)
        ]
        if members:
            facts.exports.setdefault("=", "default")
            facts.objects["default"] = [text(p.child_by_field_name("name") or p.child_by_field_name("key")) for p in members]


def export(node: Node, facts: FileFacts) -> None:
    is_default = any(c.type == "default" for c in node.children)
    if any(c.type == "=" for c in node.children):  # `export = router` (what `import x = require()` gets)
        ident = next((c for c in node.named_children if c.type == "identifier"), None)
        if ident is not None:
            facts.exports["="] = text(ident)
            mark_exported(facts, text(ident))
        return
    source = string_value(node.child_by_field_name("source"))
    decl = node.child_by_field_name("declaration")
    value = node.child_by_field_name("value")
    if source is not None:
        clause = next((c for c in node.named_children if c.type == "export_clause"), None)
        pairs: list[tuple[str, str]] = []
        if clause is not None:
            for spec in clause.named_children:
                name = spec.child_by_field_name("name")
                alias = spec.child_by_field_name("alias")
                pairs.append((text(alias or name), text(name)))
        facts.reexports.append((source, tuple(pairs)))
        return
    if decl is not None:
        names: list[str] = []
        if decl.type in ("lexical_declaration", "variable_declaration"):
            for d in decl.named_children:
                if d.type == "variable_declarator":
                    names.append(text(d.child_by_field_name("name")))
        else:
            name = decl.child_by_field_name("name")
            names.append(text(name) if name is not None else "default")
        for name in names:
            facts.exports["default" if is_default else name] = name
            mark_exported(facts, name)
        return
    if is_default and value is not None:
        local = text(value) if value.type == "identifier" else "default"
        facts.exports["default"] = local
        mark_exported(facts, local)
        return
    clause = next((c for c in node.named_children if c.type == "export_clause"), None)
    if clause is not None:
        for spec in clause.named_children:
            name = spec.child_by_field_name("name")
            alias = spec.child_by_field_name("alias")
            facts.exports[text(alias or name)] = text(name)
            mark_exported(facts, text(name))


def mark_exported(facts: FileFacts, name: str) -> None:
    for cls in facts.classes:
        if cls.name == name:
            cls.exported = True
    for fn in facts.functions:
        if fn.class_name is None and fn.name == name:
            fn.exported = True
        elif fn.class_name == name:
            fn.exported = True


def require_names(pattern: Node) -> tuple[tuple[str, str], ...]:
    """(local, imported) pairs of `const { a, b: c } = require('x')`."""
    out = []
    for child in pattern.named_children:
        if child.type == "shorthand_property_identifier_pattern":
            out.append((text(child), text(child)))
        elif child.type == "pair_pattern":
            key, value = child.child_by_field_name("key"), child.child_by_field_name("value")
            if value is not None and value.type == "identifier":
                out.append((text(value), text(key)))
    return tuple(out)
