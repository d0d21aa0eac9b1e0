"""facts: per-file, read-only extraction of imports, exports, functions,
classes, calls and Express registrations.

Facts hold no tree-sitter nodes (only byte ranges and lines), so they can be
computed in worker processes and merged deterministically. Hot paths use one
tree-sitter query per file rather than a Python-level walk of every node.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace

from tree_sitter import Node

from otelize.analysis.parse import ParsedFile, captures, line_of, query, text, source_order

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "all", "options", "head")
REGISTRATION_METHODS = HTTP_METHODS + ("use",)
ROUTER_PACKAGES = ("express-promise-router",)  # default export: an express Router factory

FUNCTION_KINDS = (
    "function_declaration",
    "generator_function_declaration",
    "function_expression",
    "generator_function",
    "arrow_function",
    "method_definition",
    "method_signature",
    "abstract_method_signature",
    "function_signature",
)

_QUERY = """
(import_statement) @import
(export_statement) @export
(function_declaration) @function
(generator_function_declaration) @function
(function_signature) @function
(function_expression) @function
(generator_function) @function
(arrow_function) @function
(method_definition) @function
(method_signature) @function
(abstract_method_signature) @function
(class_declaration) @class
(abstract_class_declaration) @class
(call_expression) @call
(new_expression) @call
(variable_declarator) @var
(program (expression_statement (assignment_expression) @assign))
"""


@dataclass(frozen=True)
class ImportFact:
    module: str
    kind: str  # esm | import-equals | require | dynamic
    line: int
    start: int
    end: int  # byte range of the whole statement (esm / import-equals), else of the call
    default: str | None = None
    namespace: str | None = None
    names: tuple[tuple[str, str], ...] = ()  # (local, imported)
    type_only: bool = False
    value_used: bool | None = None  # a binding is used as a value in the file (None: not known; otelize.analysis.typeuse)


@dataclass(frozen=True)
class Param:
    name: str  # identifier, or the pattern text
    text: str


@dataclass
class FunctionFact:
    name: str
    qualname: str  # "OrderService.createOrder", "createApp", "default"
    kind: str  # function | method | arrow | property-arrow | function-expression | signature
    line: int
    start: int
    end: int
    class_name: str | None = None
    is_async: bool = False
    is_generator: bool = False
    is_static: bool = False
    accessor: str | None = None  # "get" | "set"
    is_constructor: bool = False
    is_abstract: bool = False
    is_signature: bool = False  # overload signature or abstract: no body
    is_private: bool = False
    exported: bool = False
    params: tuple[Param, ...] = ()
    body_start: int | None = None  # statement_block range, when the body is a block
    body_end: int | None = None
    expression_body: bool = False
    node_type: str = ""

    @property
    def has_body(self) -> bool:
        return self.body_start is not None or self.expression_body


@dataclass
class ClassFact:
    name: str
    line: int
    start: int
    end: int
    exported: bool = False
    abstract: bool = False
    superclass: str | None = None
    field_types: dict[str, str] = field(default_factory=dict)  # this.<field> -> class/type name


@dataclass(frozen=True)
class CallFact:
    caller: str  # qualname of the innermost enclosing function, or "<module>"
    chain: tuple[str, ...]  # ("this","db","query"), ("userService","getUser"), ("fetch",)
    line: int
    is_new: bool = False


@dataclass(frozen=True)
class HandlerRef:
    kind: str  # identifier | member | inline
    name: str  # "getUser", "ordersController.getOrder", "<anonymous>"
    line: int
    params: int = 0  # arity, for inline handlers


@dataclass(frozen=True)
class RouteReg:
    owner: str  # the app/router variable
    method: str  # GET, POST, ..., USE
    path: str | None  # literal path, or None (use() without path)
    handlers: tuple[HandlerRef, ...]
    line: int


@dataclass
class FileFacts:
    path: str
    imports: list[ImportFact] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)  # exported name -> local name ("default" too)
    reexports: list[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=list)  # (module, (exported, local)) ; () = star
    functions: list[FunctionFact] = field(default_factory=list)
    classes: list[ClassFact] = field(default_factory=list)
    calls: list[CallFact] = field(default_factory=list)
    instances: dict[str, str] = field(default_factory=dict)  # module-level var -> class name (`new X()`)
    # function qualname -> {local or parameter name -> class name}: `const c = new X()`,
    # `const c: X = ...`, `(c: X) => ...` inside that function
    local_types: dict[str, dict[str, str]] = field(default_factory=dict)
    objects: dict[str, list[str]] = field(default_factory=dict)  # module-level object literal var -> method names
    constants: dict[str, str] = field(default_factory=dict)  # module-level `const NAME = 'literal'`
    apps: list[str] = field(default_factory=list)  # variables holding express()
    routers: list[str] = field(default_factory=list)  # variables holding Router()
    aliases: dict[str, str] = field(default_factory=dict)  # `const apiRouter = router` -> {"apiRouter": "router"}
    routes: list[RouteReg] = field(default_factory=list)
    listen_line: int | None = None
    # route owners beyond module routers/apps (routefacts): owner id -> "app" (class
    # property `this.app = express()`), "param-router" / "param-app" (`(app: Router) =>`,
    # id "<function>:<param>"), "controller" (decorators), "generated" (tsoa's routes file)
    route_owners: dict[str, str] = field(default_factory=dict)
    param_scopes: dict[str, dict[str, str]] = field(default_factory=dict)  # function -> {param: owner}
    param_routers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # function -> [(index, owner)]
    returns_router: dict[str, str] = field(default_factory=dict)  # function -> the router/app it returns
    router_args: list = field(default_factory=list)  # routefacts.RouterArg: `auth(app)`
    class_constants: dict[str, str] = field(default_factory=dict)  # "Class.prop" -> string literal
    controllers: list = field(default_factory=list)  # routefacts.Controller (decorator routes)
    framework_mounts: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    dynamic_requires: list[str] = field(default_factory=list)  # `const route = require(path)`, path not a literal
    local_constants: dict[str, dict[str, str]] = field(default_factory=dict)  # function -> {const: path value}
    servers: list[str] = field(default_factory=list)  # `const app = createApp()` (from ./x) / `http.createServer(app)`
    express_imported: bool = False
    markers: list[str] = field(default_factory=list)  # "generated", "ignore-file"
    ignore_lines: list[int] = field(default_factory=list)  # lines holding `// otelize-ignore`
    fn_trees: dict = field(default_factory=dict)  # FunctionFact.start -> otelize.analysis.fntree.FunctionTree
    has_fetch: bool = False
    # entry points (see _entry_call): classes holding `this.x = express()`, classes that call
    # `this.x.listen()`, names `.listen()` is called on that are not this file's own apps
    # (`import app from './app'; app.listen()`, `http.createServer(app).listen()`), and
    # framework bootstraps (`PlatformExpress.bootstrap(Server)`) as (call, line)
    app_classes: list[str] = field(default_factory=list)
    listen_classes: list[str] = field(default_factory=list)
    listens_on: list[str] = field(default_factory=list)
    bootstraps: list[tuple[str, int]] = field(default_factory=list)

    def function(self, qualname: str) -> FunctionFact | None:
        for fn in self.functions:
            if fn.qualname == qualname:
                return fn
        return None

    @property
    def imported_modules(self) -> list[str]:
        return sorted({imp.module for imp in self.imports})


def extract(parsed: ParsedFile) -> FileFacts:
    facts = FileFacts(parsed.path)
    root = parsed.root
    caps = captures(query(_QUERY, parsed.tsx), root)
    _markers(parsed, facts)

    # QueryCursor.captures does not return a capture's nodes in source order
    for node in sorted(caps.get("import", []), key=source_order):
        _import_statement(node, facts)
    for node in caps.get("class", []):
        facts.classes.append(_class(node))
    facts.classes.sort(key=lambda c: c.start)

    functions = [fn for node in caps.get("function", []) if (fn := _function(node, facts)) is not None]
    functions.sort(key=lambda f: (f.start, -f.end))
    facts.functions = functions
    starts = [f.start for f in functions]

    express_names = _express_locals(facts)
    for node in sorted(caps.get("var", []), key=source_order):
        _variable(node, facts, express_names, functions, starts)
    _parameter_types(facts)
    for node in sorted(caps.get("export", []), key=source_order):
        _export(node, facts)
    for node in sorted(caps.get("assign", []), key=source_order):
        _commonjs_export(node, facts)
    _constructor_arguments(facts, caps.get("var", []))
    if any(fn.kind == "method" and fn.class_name and not any(c.name == fn.class_name for c in facts.classes) for fn in functions):
        constructors = {
            text(n.child_by_field_name("name")): n for n in caps.get("function", []) if n.type == "function_declaration"
        }
        _prototype_classes(facts, constructors)

    from otelize.analysis import routefacts

    route_caps = routefacts.owners(root, parsed.tsx, facts, functions, starts, express_names)
    call_nodes = sorted(caps.get("call", []), key=source_order)
    for node in call_nodes:
        _call(node, facts, functions, starts, express_names)
    routefacts.after_calls(parsed.source, route_caps, call_nodes, facts, functions, starts)
    _dedupe(facts)
    from otelize.analysis import fntree

    # decided here, where the tree is (in the process that parsed the file), so that the
    from otelize.analysis import typeuse

    # decided here, where the tree is (in the process that parsed the file), so that the
    # main process never parses a file again to classify it
    facts.imports = [replace(imp, value_used=used) for imp, used in zip(facts.imports, typeuse.value_used(facts.imports, parsed))]
    facts.fn_trees = fntree.function_trees(parsed, facts.functions)
    return facts


# --- markers ---------------------------------------------------------------

# What generators really write, at the top of the file (before any code): an `@generated`
# tag in a comment, or Go-style `Code generated <by something>. DO NOT EDIT.` A "do not
# edit" inside an ordinary comment, or below the first statement, is not a marker.
_GENERATED = re.compile(rb"@generated\b|\bCode generated\b[^\n]*\bDO NOT EDIT\b")
_LEADING_COMMENTS = re.compile(rb"\A(?:\s+|//[^\n]*(?:\n|\Z)|/\*.*?\*/|#![^\n]*\n)*", re.S)


def _markers(parsed: ParsedFile, facts: FileFacts) -> None:
    head = parsed.source[:2048]
    top = _LEADING_COMMENTS.match(head.lstrip(b"\xef\xbb\xbf"))
    leading = top.group(0) if top else b""
    if _GENERATED.search(leading) and not head.lstrip(b"\xef\xbb\xbf").startswith(b"// Generated by otelize."):
        facts.markers.append("generated")
    if b"otelize-ignore-file" in head:
        facts.markers.append("ignore-file")
    if b"otelize-ignore" in parsed.source:
        for i, line in enumerate(parsed.source.split(b"\n"), start=1):
            stripped = line.strip()
            if stripped.startswith(b"//") and stripped[2:].strip() == b"otelize-ignore":
                facts.ignore_lines.append(i)


# --- imports / exports -----------------------------------------------------


def _string_value(node: Node | None) -> str | None:
    if node is None or node.type not in ("string", "template_string"):
        return None
    if node.type == "template_string" and any(c.type == "template_substitution" for c in node.children):
        return None
    raw = text(node)
    return raw[1:-1] if len(raw) >= 2 else None


def _import_statement(node: Node, facts: FileFacts) -> None:
    source = node.child_by_field_name("source")
    type_only = any(c.type == "type" for c in node.children)
    for child in node.named_children:
        if child.type == "import_require_clause":
            ident = next((c for c in child.named_children if c.type == "identifier"), None)
            src = next((c for c in child.named_children if c.type == "string"), None)
            module = _string_value(src)
            if module is not None:
                facts.imports.append(
                    ImportFact(module, "import-equals", line_of(node), node.start_byte, node.end_byte, default=text(ident) or None)
                )
            return
    module = _string_value(source)
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


def _commonjs_export(node: Node, facts: FileFacts) -> None:
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
            _mark_exported(facts, text(right))
        elif right.type == "object":
            for prop in right.named_children:
                if prop.type == "shorthand_property_identifier":
                    facts.exports[text(prop)] = text(prop)
                    _mark_exported(facts, text(prop))
                elif prop.type == "pair":
                    key, value = prop.child_by_field_name("key"), prop.child_by_field_name("value")
                    if key is not None and value is not None and value.type == "identifier":
                        facts.exports[text(key)] = text(value)
                        _mark_exported(facts, text(value))
        _commonjs_js_export(right, facts)
        return
    for prefix in ("module.exports.", "exports."):
        name = target[len(prefix):] if target.startswith(prefix) else ""
        if name.isidentifier() and right.type == "identifier":
            facts.exports[name] = text(right)
            _mark_exported(facts, text(right))
            return
        if name.isidentifier() and right.type in _JS_FUNCTION_VALUES:
            facts.exports[name] = name  # the function itself is named `name` (_commonjs_assigned)
            return


# --- JavaScript (CommonJS) idioms ------------------------------------------------

_JS_FUNCTION_VALUES = ("function_expression", "arrow_function", "generator_function")


def _is_module_exports(node: Node | None) -> bool:
    return node is not None and text(node) == "module.exports"


def _commonjs_assigned(assignment: Node, own_name: str) -> tuple[str, str | None, str, bool] | None:
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
            _mark_exported(facts, text(ctor))
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


def _constructor_arguments(facts: FileFacts, declarators: list[Node]) -> None:
    """`const orderService = new OrderService(db, userService)` at module level, with
    `constructor(db, users) { this.users = users; }`: without types (JavaScript), the field
    holds what the one instantiation in this file passes, so `this.users.find()` resolves
    through `userService`. Fields whose constructor parameter is typed keep their type."""
    calls: dict[str, list[Node]] = {}
    for node in declarators:
        value = node.child_by_field_name("value")
        if value is not None and value.type == "new_expression" and _is_module_level(node):
            calls.setdefault(text(value.child_by_field_name("constructor")), []).append(value)
    for cls in facts.classes:
        if len(calls.get(cls.name, [])) != 1:
            continue  # none, or several instances with (maybe) different collaborators
        ctor = facts.function(f"{cls.name}.constructor")
        args = calls[cls.name][0].child_by_field_name("arguments")
        if ctor is None or args is None:
            continue
        values = [a for a in args.named_children if a.type != "comment"]
        for i, param in enumerate(ctor.params):
            if i < len(values) and values[i].type == "identifier" and param.name == param.text:  # an untyped parameter
                for field_name, held in list(cls.field_types.items()):
                    if held == "@" + param.name:
                        cls.field_types[field_name] = "@" + text(values[i])


def _required_project_module(facts: FileFacts, name: str) -> bool:
    """`const app = require('./config/express'); app.listen(port)`: the app is built in another
    module of the project and started here (bin/www, index.js), so this file is the entry."""
    return any(imp.kind == "require" and imp.default == name and imp.module.startswith(".") for imp in facts.imports)


def _prototype_classes(facts: FileFacts, constructors: dict[str, Node]) -> None:
    """A constructor function with `X.prototype.m = function () {}` methods is a class:
    its `this.x = new Y()` / `this.x = param` fields type calls of its methods."""
    for name in sorted({fn.class_name for fn in facts.functions if fn.class_name and fn.kind == "method"}):
        node = constructors.get(name)
        if node is None or any(c.name == name for c in facts.classes):
            continue
        fact = ClassFact(name=name, line=line_of(node), start=node.start_byte, end=node.end_byte)
        for fn in facts.functions:
            if fn.start == node.start_byte and fn.class_name is None:
                fn.is_constructor = True  # called with `new`: no span, as for a class constructor
        body = node.child_by_field_name("body")
        for stmt in body.named_children if body is not None else []:
            expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
            if expr is None or expr.type != "assignment_expression":
                continue
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            if left is None or right is None or left.type != "member_expression" or text(left.child_by_field_name("object")) != "this":
                continue
            field_name = text(left.child_by_field_name("property"))
            if right.type == "new_expression":
                fact.field_types[field_name] = text(right.child_by_field_name("constructor"))
            elif right.type == "identifier":  # as for a class: a module-level instance, looked up by the graph
                fact.field_types.setdefault(field_name, "@" + text(right))
        facts.classes.append(fact)
    facts.classes.sort(key=lambda c: c.start)


def _export(node: Node, facts: FileFacts) -> None:
    is_default = any(c.type == "default" for c in node.children)
    if any(c.type == "=" for c in node.children):  # `export = router` (what `import x = require()` gets)
        ident = next((c for c in node.named_children if c.type == "identifier"), None)
        if ident is not None:
            facts.exports["="] = text(ident)
            _mark_exported(facts, text(ident))
        return
    source = _string_value(node.child_by_field_name("source"))
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
            _mark_exported(facts, name)
        return
    if is_default and value is not None:
        local = text(value) if value.type == "identifier" else "default"
        facts.exports["default"] = local
        _mark_exported(facts, local)
        return
    clause = next((c for c in node.named_children if c.type == "export_clause"), None)
    if clause is not None:
        for spec in clause.named_children:
            name = spec.child_by_field_name("name")
            alias = spec.child_by_field_name("alias")
            facts.exports[text(alias or name)] = text(name)
            _mark_exported(facts, text(name))


def _mark_exported(facts: FileFacts, name: str) -> None:
    for cls in facts.classes:
        if cls.name == name:
            cls.exported = True
    for fn in facts.functions:
        if fn.class_name is None and fn.name == name:
            fn.exported = True
        elif fn.class_name == name:
            fn.exported = True


# --- classes and functions -------------------------------------------------


def _class(node: Node) -> ClassFact:
    name_node = node.child_by_field_name("name")
    fact = ClassFact(
        name=text(name_node) or "default",
        line=line_of(node),
        start=node.start_byte,
        end=node.end_byte,
        abstract=node.type == "abstract_class_declaration",
        exported=node.parent is not None and node.parent.type == "export_statement",
    )
    for child in node.named_children:
        if child.type == "class_heritage":
            for ext in child.named_children:
                if ext.type == "extends_clause":
                    val = ext.child_by_field_name("value") or (ext.named_children[0] if ext.named_children else None)
                    fact.superclass = text(val) or None
    body = node.child_by_field_name("body")
    if body is None:
        return fact
    for member in body.named_children:
        if member.type == "public_field_definition":
            fname = text(member.child_by_field_name("name"))
            type_name = _type_name(member.child_by_field_name("type"))
            value = member.child_by_field_name("value")
            if value is not None and value.type == "new_expression":
                type_name = text(value.child_by_field_name("constructor")) or type_name
            if fname and type_name:
                fact.field_types[fname] = type_name
        elif member.type == "method_definition" and text(member.child_by_field_name("name")) == "constructor":
            params = member.child_by_field_name("parameters")
            param_types: dict[str, str] = {}
            for p in params.named_children if params is not None else []:
                pname = p.child_by_field_name("pattern")
                ptype = _type_name(p.child_by_field_name("type"))
                if pname is None or pname.type != "identifier" or not ptype:
                    continue
                param_types[text(pname)] = ptype
                if any(c.type in ("accessibility_modifier", "readonly") for c in p.children):
                    fact.field_types[text(pname)] = ptype
            body_block = member.child_by_field_name("body")
            if body_block is not None:
                for stmt in body_block.named_children:
                    expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
                    if expr is None or expr.type != "assignment_expression":
                        continue
                    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
                    if left is None or right is None or left.type != "member_expression":
                        continue
                    obj = left.child_by_field_name("object")
                    if obj is None or obj.type != "this":
                        continue
                    fname = text(left.child_by_field_name("property"))
                    if right.type == "new_expression":
                        fact.field_types[fname] = text(right.child_by_field_name("constructor"))
                    elif right.type == "identifier" and text(right) in param_types:
                        fact.field_types[fname] = param_types[text(right)]
                    elif right.type == "binary_expression" or right.type == "identifier":
                        # `this.db = db ?? defaultDb` etc.: remember the identifier for instance lookup
                        ident = right if right.type == "identifier" else right.child_by_field_name("left")
                        if ident is not None and ident.type == "identifier":
                            fact.field_types.setdefault(fname, "@" + text(ident))
    return fact


def _type_name(type_ann: Node | None) -> str | None:
    if type_ann is None:
        return None
    node = type_ann.named_children[0] if type_ann.type == "type_annotation" and type_ann.named_children else type_ann
    if node.type == "generic_type":
        node = node.named_children[0]
    if node.type in ("type_identifier", "nested_type_identifier"):
        return text(node)
    return None


def _has_token(node: Node, token: str) -> bool:
    return any(c.type == token for c in node.children)


def _params(node: Node) -> tuple[Param, ...]:
    params = node.child_by_field_name("parameters")
    if params is None:
        single = node.child_by_field_name("parameter")
        return (Param(text(single), text(single)),) if single is not None else ()
    out = []
    for p in params.named_children:
        if p.type not in ("required_parameter", "optional_parameter"):
            continue
        pattern = p.child_by_field_name("pattern")
        if pattern is not None and pattern.type == "this":
            continue  # an explicit `this:` parameter is not a runtime parameter
        name = text(pattern) if pattern is not None and pattern.type == "identifier" else text(pattern)
        out.append(Param(name, text(p)))
    return tuple(out)


def _object_owner(obj: Node | None) -> str | None:
    """`ctrl` for a member of `const ctrl = { ... }` (also through `as const`)."""
    node = obj.parent if obj is not None else None
    while node is not None and node.type in ("as_expression", "satisfies_expression", "parenthesized_expression"):
        node = node.parent
    if node is not None and node.type == "variable_declarator":
        return text(node.child_by_field_name("name")) or None
    if node is not None and node.type == "export_statement" and any(c.type == "default" for c in node.children):
        return "default"  # `export default { async find() {} }`
    if node is not None and node.type == "assignment_expression" and _is_module_exports(node.child_by_field_name("left")):
        return "default"  # `module.exports = { async find() {} }`: named like `export default {}`
    return None


def _enclosing_class(node: Node) -> Node | None:
    parent = node.parent
    if parent is not None and parent.type == "class_body":
        return parent.parent
    return None


def _is_span_wrapper(node: Node) -> bool:
    """`node` is the function otelize's span wrapper runs: the last argument of a call to a
    span helper (`withSpan(name, attrs, async () => {...})`, also under an `otelize...` alias).
    It is no function of its own: what it calls, its enclosing function calls, so an
    instrumented file gives the same call graph (and the same roles) as the original."""
    from otelize.synthesize.wrap import HELPERS

    args = node.parent
    call = args.parent if args is not None and args.type == "arguments" else None
    callee = call.child_by_field_name("function") if call is not None else None
    if callee is None or callee.type != "identifier" or args.named_children[-1] != node:
        return False
    name = text(callee)
    return name in HELPERS or (name.startswith("otelize") and name[7:8].isupper()
                               and name[7].lower() + name[8:].rstrip("0123456789") in HELPERS)


def _function(node: Node, facts: FileFacts) -> FunctionFact | None:
    if node.type in ("arrow_function", "function_expression") and _is_span_wrapper(node):
        return None
    kind_map = {
        "function_declaration": "function",
        "generator_function_declaration": "function",
        "function_signature": "signature",
        "function_expression": "function-expression",
        "generator_function": "function-expression",
        "arrow_function": "arrow",
        "method_definition": "method",
        "method_signature": "signature",
        "abstract_method_signature": "signature",
    }
    kind = kind_map[node.type]
    parent = node.parent
    class_node = None
    name_node = node.child_by_field_name("name")
    name = text(name_node)
    exported = False
    is_private = False
    proto_class = None  # `X.prototype.m = function () {}`: a method of the constructor function X

    if node.type in ("method_definition", "method_signature", "abstract_method_signature"):
        class_node = _enclosing_class(node)
        if class_node is None:  # an object-literal method: `const ctrl = { async m() {} }`
            kind = "object-method"
            owner = _object_owner(parent)
            if owner:
                name = f"{owner}.{name}"
        is_private = name.startswith("#") or any(
            c.type == "accessibility_modifier" and text(c) in ("private", "protected") for c in node.children
        )
    elif node.type in ("arrow_function", "function_expression", "generator_function"):
        if parent is not None and parent.type == "variable_declarator":
            name = text(parent.child_by_field_name("name"))
            decl = parent.parent
            exported = decl is not None and decl.parent is not None and decl.parent.type == "export_statement"
        elif parent is not None and parent.type == "public_field_definition":
            class_node = _enclosing_class(parent)
            name = text(parent.child_by_field_name("name"))
            kind = "property-arrow"
            is_private = name.startswith("#") or any(
                c.type == "accessibility_modifier" and text(c) in ("private", "protected") for c in parent.children
            )
        elif parent is not None and parent.type == "pair":
            name = text(parent.child_by_field_name("key"))
            kind = "object-method"
            owner = _object_owner(parent.parent)
            if owner:
                name = f"{owner}.{name}"
        elif parent is not None and parent.type == "export_statement":
            name = name or "default"
            exported = True
        elif parent is not None and parent.type == "assignment_expression" and (assigned := _commonjs_assigned(parent, name)):
            name, proto_class, kind, exported = assigned
        elif not name:
            name = f"<anonymous>@{line_of(node)}"
    else:
        if parent is not None and parent.type == "export_statement":
            exported = True
            if not name:
                name = "default"
    if node.type == "function_declaration" and parent is not None and parent.type == "export_statement":
        exported = True

    class_name = proto_class
    if class_node is not None:
        class_name = text(class_node.child_by_field_name("name")) or "default"
        exported = class_node.parent is not None and class_node.parent.type == "export_statement"

    # nested functions get a path-like qualname so that names stay unique and stable
    qual = f"{class_name}.{name}" if class_name else name
    body = node.child_by_field_name("body")
    is_signature = node.type in ("method_signature", "abstract_method_signature", "function_signature") or body is None
    tokens = {c.type for c in node.children if not c.is_named}  # async, *, static, get, set
    fact = FunctionFact(
        name=name,
        qualname=qual,
        kind=kind,
        line=line_of(node),
        start=node.start_byte,
        end=node.end_byte,
        class_name=class_name,
        is_async="async" in tokens,
        is_generator="*" in tokens or node.type in ("generator_function_declaration", "generator_function"),
        is_static="static" in tokens or (parent is not None and parent.type == "public_field_definition" and _has_token(parent, "static")),
        accessor="get" if "get" in tokens else ("set" if "set" in tokens else None),
        is_constructor=name == "constructor" and class_name is not None,
        is_abstract=node.type == "abstract_method_signature",
        is_signature=is_signature,
        is_private=is_private,
        exported=exported,
        params=_params(node),
        node_type=node.type,
    )
    if body is not None and body.type == "statement_block":
        fact.body_start, fact.body_end = body.start_byte, body.end_byte
    elif body is not None:
        fact.expression_body = True
    return fact


# --- variables, express ----------------------------------------------------


def _express_locals(facts: FileFacts) -> dict[str, set[str]]:
    """Local names bound to express: {"express": {...}, "Router": {...}}."""
    out: dict[str, set[str]] = {"express": set(), "Router": set()}
    for imp in facts.imports:
        for local, imported in imp.names:  # framework factories that return an express app
            if (imp.module, imported) in APP_FACTORIES:
                out["express"].add(local)
        if imp.module in ROUTER_PACKAGES and imp.default:  # `import Router from 'express-promise-router'`
            out["Router"].add(imp.default)
        if imp.module != "express":
            continue
        facts.express_imported = True
        for local in (imp.default, imp.namespace):
            if local:
                out["express"].add(local)
        for local, imported in imp.names:
            if imported == "Router":
                out["Router"].add(local)
            if imported == "default":
                out["express"].add(local)
    return out


def _is_express_call(node: Node | None, names: dict[str, set[str]]) -> str | None:
    """'app' for express(), 'router' for Router()/express.Router()."""
    if node is None or node.type != "call_expression":
        return None
    fn = node.child_by_field_name("function")
    if fn is None:
        return None
    if fn.type == "identifier":
        if text(fn) in names["express"]:
            return "app"
        if text(fn) in names["Router"]:
            return "router"
    if fn.type == "member_expression":
        obj, prop = fn.child_by_field_name("object"), fn.child_by_field_name("property")
        if obj is not None and (text(obj) in names["express"] or _is_require_of(obj, "express")) and text(prop) == "Router":
            return "router"
    if _is_require_of(fn, "express"):  # `const app = require('express')()`
        return "app"
    return None


def _is_require_of(node: Node | None, module: str) -> bool:
    """`require('express')`."""
    if node is None or node.type != "call_expression" or text(node.child_by_field_name("function")) != "require":
        return False
    args = node.child_by_field_name("arguments")
    return args is not None and len(args.named_children) == 1 and _string_value(args.named_children[0]) == module


_TYPED_PARAM = re.compile(r"^(?:(?:public|private|protected|readonly|override)\s+)*([A-Za-z_$][\w$]*)\??\s*:\s*([A-Z][\w$]*)\s*(?:=[\s\S]*)?$")


def _parameter_types(facts: FileFacts) -> None:
    """`(client: BillingClient) => client.charge()`: parameters typed with a class-like name."""
    for fn in facts.functions:
        for p in fn.params:
            m = _TYPED_PARAM.match(p.text)
            if m is not None:
                facts.local_types.setdefault(fn.qualname, {}).setdefault(m.group(1), m.group(2))


def _local_type(node: Node, value: Node | None) -> str | None:
    """The class a function-local `const x = new X()` / `const x: X = ...` holds."""
    annotation = node.child_by_field_name("type")
    if annotation is not None and annotation.named_children and annotation.named_children[0].type == "type_identifier":
        return text(annotation.named_children[0])
    if value is not None and value.type == "new_expression":
        ctor = value.child_by_field_name("constructor")
        if ctor is not None and ctor.type == "identifier":
            return text(ctor)
    return None


def _variable(
    node: Node,
    facts: FileFacts,
    express_names: dict[str, set[str]],
    functions: list[FunctionFact] | None = None,
    starts: list[int] | None = None,
) -> None:
    name_node = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if name_node is not None and name_node.type == "identifier" and functions and not _is_module_level(node):
        cls = _local_type(node, value)
        owner = _innermost(functions, starts or [], node.start_byte) if cls else None
        if owner is not None:
            facts.local_types.setdefault(owner.qualname, {})[text(name_node)] = cls  # type: ignore[assignment]
    if name_node is None or value is None:
        return
    while value.type in ("as_expression", "satisfies_expression", "non_null_expression", "parenthesized_expression"):
        value = value.named_children[0]
    # require('x') imports: `const x = require('x')`, `const { a, b: c } = require('x')`
    if value.type == "call_expression" and text(value.child_by_field_name("function")) == "require":
        args = value.child_by_field_name("arguments")
        module = _string_value(args.named_children[0]) if args is not None and args.named_children else None
        if module is None or name_node.type not in ("identifier", "object_pattern"):
            return
        default = text(name_node) if name_node.type == "identifier" else None
        names = _require_names(name_node) if name_node.type == "object_pattern" else ()
        facts.imports.append(
            ImportFact(module, "require", line_of(node), value.start_byte, value.end_byte, default=default, names=names)
        )
        if module == "express":
            facts.express_imported = True
            if default:
                express_names["express"].add(default)
            express_names["Router"].update(local for local, imported in names if imported == "Router")
        return
    if name_node.type != "identifier":
        return
    name = text(name_node)
    kind = _is_express_call(value, express_names)
    if kind == "app":
        facts.apps.append(name)
        return
    if kind == "router":
        facts.routers.append(name)
        return
    if value.type == "identifier" and (text(value) in facts.apps or text(value) in facts.routers):
        facts.aliases[name] = facts.aliases.get(text(value), text(value))
        return
    top_level = _is_module_level(node)
    if top_level and _is_server_factory_call(value, facts):
        facts.servers.append(name)
    if top_level and node.parent is not None and node.parent.type == "lexical_declaration" and any(
        c.type == "const" for c in node.parent.children
    ):
        literal = _string_value(value)
        if literal is not None:
            facts.constants[name] = literal
    if value.type == "new_expression" and top_level:
        facts.instances[name] = text(value.child_by_field_name("constructor"))
    elif value.type == "object" and top_level:
        methods = []
        for prop in value.named_children:
            if prop.type == "method_definition":
                methods.append(text(prop.child_by_field_name("name")))
            elif prop.type == "pair":
                methods.append(text(prop.child_by_field_name("key")))
        facts.objects[name] = methods


def _is_server_factory_call(value: Node, facts: FileFacts) -> bool:
    """`createApp()` imported from a project module, or `http.createServer(...)`: what
    `x.listen()` is called on when the app is built in a helper (server.ts / index.ts)."""
    if value.type == "await_expression" and value.named_children:
        value = value.named_children[0]
    if value.type != "call_expression":
        return False
    chain = _chain(value.child_by_field_name("function"))
    if not chain:
        return False
    http_modules = ("http", "https", "node:http", "node:https", "http2", "node:http2")
    for imp in facts.imports:
        bound = {imp.default, imp.namespace} | {local for local, _ in imp.names}
        if chain[0] not in bound:
            continue
        if imp.module in http_modules:
            args = value.child_by_field_name("arguments")
            return chain[-1] in ("createServer", "createSecureServer") and bool(args and args.named_children)
        return imp.module.startswith(".") and len(chain) <= 2
    return False


def _require_names(pattern: Node) -> tuple[tuple[str, str], ...]:
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


def _is_module_level(node: Node) -> bool:
    decl = node.parent
    if decl is None:
        return False
    holder = decl.parent
    if holder is not None and holder.type == "export_statement":
        holder = holder.parent
    return holder is not None and holder.type == "program"


def _chain(node: Node | None) -> tuple[str, ...] | None:
    parts: list[str] = []
    while node is not None:
        if node.type == "member_expression":
            parts.append(text(node.child_by_field_name("property")))
            node = node.child_by_field_name("object")
        elif node.type in ("identifier", "this", "super"):
            parts.append(text(node))
            return tuple(reversed(parts))
        elif node.type in ("non_null_expression", "await_expression"):
            # tree-sitter parses `await a.f<T>()` as call(await(a.f), <T>, ())
            node = node.named_children[0] if node.named_children else None
        else:
            return None
    return None


# --- entry points -------------------------------------------------------------

# (module, export) of functions that create an express app: `createExpressServer({...})`
APP_FACTORIES = {("routing-controllers", "createExpressServer")}
# (module, object, method) of framework bootstraps that build the app and start it
BOOTSTRAPS = {
    ("@tsed/platform-express", "PlatformExpress", "bootstrap"),
    ("@tsed/platform-express", "PlatformExpress", "create"),
    ("@tsed/common", "ServerLoader", "bootstrap"),  # Ts.ED 5
}
HTTP_MODULES = ("http", "https", "node:http", "node:https", "http2", "node:http2")


def _entry_call(node: Node, chain: tuple[str, ...] | None, facts: FileFacts, express_names: dict[str, set[str]]) -> None:
    """Entry-point facts of one call: an express app held by a class (`this.app = express()`,
    `this.app.listen()` in a method), `.listen()` on a name this file does not create
    (the app imported from app.ts), `http.createServer(app).listen()`, a framework bootstrap."""
    callee = node.child_by_field_name("function")
    if callee is None:
        return
    cls = _class_of(node)
    if _is_express_call(node, express_names) == "app" and cls is not None:
        parent = node.parent
        while parent is not None and parent.type in ("as_expression", "parenthesized_expression", "non_null_expression"):
            parent = parent.parent
        left = parent.child_by_field_name("left") if parent is not None and parent.type == "assignment_expression" else None
        if left is not None and left.type == "member_expression" and text(left.child_by_field_name("object")) == "this":
            _add(facts.app_classes, cls)
    if chain is not None and len(chain) == 3 and chain[0] == "this" and chain[2] == "listen" and cls is not None:
        _add(facts.listen_classes, cls)
    if chain is not None and len(chain) == 2 and chain[1] == "listen" and chain[0] not in facts.apps and chain[0] not in facts.servers:
        _add(facts.listens_on, chain[0])
    if callee.type == "member_expression" and text(callee.child_by_field_name("property")) == "listen":
        inner = callee.child_by_field_name("object")
        if inner is not None and inner.type == "new_expression":  # new App([...]).listen()
            ctor = inner.child_by_field_name("constructor")
            if ctor is not None and ctor.type == "identifier":
                _add(facts.listens_on, text(ctor))
        if inner is not None and inner.type == "call_expression":  # http.createServer(app).listen()
            inner_chain = _chain(inner.child_by_field_name("function"))
            args = inner.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if inner_chain and inner_chain[-1] in ("createServer", "createSecureServer") and first is not None and first.type == "identifier":
                bound = {imp.module for imp in facts.imports for n in (imp.default, imp.namespace, *(l for l, _ in imp.names)) if n == inner_chain[0]}
                if bound & set(HTTP_MODULES):
                    if text(first) in facts.apps:
                        facts.listen_line = line_of(node)
                    else:
                        _add(facts.listens_on, text(first))
    if chain is not None and len(chain) == 2:
        for imp in facts.imports:
            for local, imported in imp.names:
                if local == chain[0] and (imp.module, imported, chain[1]) in BOOTSTRAPS:
                    facts.bootstraps.append((".".join(chain), line_of(node)))


def _class_of(node: Node) -> str | None:
    """The name of the class whose body holds `node`, if any."""
    parent = node.parent
    while parent is not None:
        if parent.type in ("class_declaration", "abstract_class_declaration", "class"):
            return text(parent.child_by_field_name("name")) or "default"
        parent = parent.parent
    return None


def _add(items: list[str], value: str) -> None:
    if value not in items:
        items.append(value)


def _call(
    node: Node,
    facts: FileFacts,
    functions: list[FunctionFact],
    starts: list[int],
    express_names: dict[str, set[str]],
) -> None:
    is_new = node.type == "new_expression"
    if not is_new:
        _entry_call(node, _chain(node.child_by_field_name("function")), facts, express_names)
    callee = node.child_by_field_name("constructor" if is_new else "function")
    if callee is None:
        return
    if not is_new and callee.type == "import":  # dynamic import('x')
        args = node.child_by_field_name("arguments")
        module = _string_value(args.named_children[0]) if args is not None and args.named_children else None
        if module is not None:
            facts.imports.append(ImportFact(module, "dynamic", line_of(node), node.start_byte, node.end_byte))
        return
    chain = _chain(callee)
    if chain is not None:
        caller = _innermost(functions, starts, node.start_byte)
        facts.calls.append(CallFact(caller.qualname if caller else "<module>", chain, line_of(node), is_new))
        if chain == ("fetch",) or chain == ("globalThis", "fetch"):
            facts.has_fetch = True
        if len(chain) == 2 and chain[1] == "listen" and (
            chain[0] in facts.apps or chain[0] in facts.servers or _required_project_module(facts, chain[0])
        ):
            facts.listen_line = line_of(node)
    if is_new:
        return
    # Express registrations: app.get(...), router.use(...), router.route('/x').get(...).post(...)
    if callee.type == "member_expression":
        method = text(callee.child_by_field_name("property"))
        obj = callee.child_by_field_name("object")
        if method in REGISTRATION_METHODS and obj is not None:
            owner, path_prefix = _route_owner(obj, facts)
            if owner is None:
                from otelize.analysis.routefacts import chain_owner

                owner, path_prefix = chain_owner(obj, facts, functions, starts, express_names)
            if owner is not None:
                args = node.child_by_field_name("arguments")
                arg_nodes = [a for a in (args.named_children if args is not None else []) if a.type != "comment"]
                if method == "get" and path_prefix is None and len(arg_nodes) == 1:
                    return  # app.get('env'): reading a setting, not a route
                if method == "use" and path_prefix is None:
                    from otelize.analysis.routefacts import loop_mounts

                    looped = loop_mounts(node, arg_nodes)
                    if looped is not None:  # one mount per element of a literal array the loop walks
                        for path, router, line in looped:
                            facts.routes.append(RouteReg(owner, "USE", path, (HandlerRef("identifier", router, line),), line))
                        return
                paths = _path_values(arg_nodes[0], facts) if arg_nodes and path_prefix is None else None
                if paths is not None and not paths[0].startswith("$"):
                    arg_nodes = arg_nodes[1:]  # (an imported name stays a handler too: it may be middleware)
                handlers = tuple(h for a in arg_nodes if (h := _handler(a)) is not None)
                # the line of `.get` / `.post`, not of the start of a `router.route('/x')...` chain
                line = line_of(callee.child_by_field_name("property") or node)
                for path in paths if paths is not None else [path_prefix]:  # app.get(['/a', '/b'], h): two routes
                    facts.routes.append(RouteReg(owner, method.upper(), path, handlers, line))


def _imported_names(facts: FileFacts) -> set[str]:
    return {n for imp in facts.imports for n in (imp.default, *(local for local, _ in imp.names)) if n}


def _path_values(node: Node, facts: FileFacts) -> list[str] | None:
    """The route path(s) an argument gives: a string literal, a module-level string
    constant (an imported one as `$NAME`, resolved by the graph), an array of those,
    or a regular expression (as `~/regex/`); None when the argument is not a path
    (a handler, a middleware)."""
    if node.type == "regex":
        return ["~" + text(node)]
    value = _string_value(node)
    if value is not None:
        if "\\" in value:
            from otelize.analysis.routefacts import decode_escapes

            value = decode_escapes(value)
        return [value]
    if node.type == "identifier" and text(node) in facts.constants:
        return [facts.constants[text(node)]]
    if node.type == "identifier" and node.next_named_sibling is not None and text(node) in _imported_names(facts):
        return ["$" + text(node)]  # an imported constant: the graph resolves it (a path is never the last argument)
    if node.type == "template_string":
        from otelize.analysis.routefacts import template_path

        return [p] if (p := template_path(node, facts)) is not None else None
    if node.type == "member_expression":
        from otelize.analysis.routefacts import member_path

        return [p] if (p := member_path(node, facts)) is not None else None
    if node.type == "array" and node.named_children:
        values = [_path_values(c, facts) for c in node.named_children if c.type != "comment"]
        if all(v is not None and len(v) == 1 for v in values):
            return [v[0] for v in values]  # type: ignore[index]
    return None


def _route_owner(obj: Node, facts: FileFacts) -> tuple[str | None, str | None]:
    """The app/router a registration is made on, and the path of a `.route('/x')` chain."""
    if obj.type == "identifier" and text(obj) in facts.aliases:
        return facts.aliases[text(obj)], None
    if obj.type == "identifier" and (text(obj) in facts.apps or text(obj) in facts.routers):
        return text(obj), None
    # router.route('/x').get(...).post(...)
    node = obj
    while node is not None and node.type == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is None or fn.type != "member_expression":
            return None, None
        prop = text(fn.child_by_field_name("property"))
        inner = fn.child_by_field_name("object")
        if prop == "route" and inner is not None and inner.type == "identifier" and (
            text(inner) in facts.apps or text(inner) in facts.routers
        ):
            args = node.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            paths = _path_values(first, facts) if first is not None else None
            return text(inner), paths[0] if paths else None
        node = inner
    return None, None


def _handler(node: Node) -> HandlerRef | None:
    if node.type == "identifier":
        return HandlerRef("identifier", text(node), line_of(node))
    if node.type == "member_expression":
        chain = _chain(node)
        obj = node.child_by_field_name("object")
        if chain is None and obj is not None and obj.type == "new_expression":  # `new UsersRoute().router`
            ctor = text(obj.child_by_field_name("constructor"))
            return HandlerRef("member", f"{ctor}.{text(node.child_by_field_name('property'))}", line_of(node))
        return HandlerRef("member", ".".join(chain) if chain else text(node), line_of(node))
    if node.type in ("arrow_function", "function_expression", "function"):
        params = node.child_by_field_name("parameters")
        arity = len([p for p in params.named_children if p.type != "comment"]) if params is not None else 1
        return HandlerRef("inline", "<anonymous>", line_of(node), arity)
    if node.type == "call_expression":  # asyncHandler(fn), wrap(controller.method)
        args = node.child_by_field_name("arguments")
        inner = args.named_children[0] if args is not None and args.named_children else None
        wrapped = _handler(inner) if inner is not None else None
        if wrapped is not None:
            return wrapped
        return HandlerRef("call", text(node.child_by_field_name("function")), line_of(node))
    return None


def _innermost(functions: list[FunctionFact], starts: list[int], pos: int) -> FunctionFact | None:
    """The innermost function whose range contains pos (functions sorted by start)."""
    # walking back from the last function starting at or before pos, the first one that
    # contains pos is the innermost (ranges nest; equal starts sort outer first)
    i = bisect.bisect_right(starts, pos) - 1
    while i >= 0:
        fn = functions[i]
        if fn.start <= pos < fn.end:
            return fn
        i -= 1
    return None


def _dedupe(facts: FileFacts) -> None:
    facts.imports.sort(key=lambda i: (i.line, i.start, i.module))
    # make nested / duplicate qualnames unique and stable: second `x` becomes `x#2`
    seen: dict[str, int] = {}
    for fn in facts.functions:
        if fn.kind == "signature":
            continue
        n = seen.get(fn.qualname, 0) + 1
        seen[fn.qualname] = n
        if n > 1:
            fn.qualname = f"{fn.qualname}#{n}"
