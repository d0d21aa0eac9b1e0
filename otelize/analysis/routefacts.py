"""routefacts: the Express route facts that need more than one registration call.

Called from `facts.extract` (read-only, like the rest of facts):
- owners the route table mounts through: class-property routers and apps
  (`public router = Router()`, `this.app = express()`), routers and apps passed as
  function parameters (`export default (app: Router) => ...`), routers built by a
  chain (`Router().use(a).use(b)`), and the router a function returns;
- route paths from template literals over module and class constants
  (`${this.path}/:id`) and from module object constants (`config.api.prefix`);
- calls that pass a router to a function (`auth(app)`), resolved by the graph;
- decorator routes: routing-controllers (`@JsonController('/users')`, `@Get('/:id')`,
  the `routePrefix` option), Ts.ED (`@Controller('/users')`, the `mount`
  configuration, `children`) and tsoa (`@Route('users')`, `@Get('{id}')`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from otelize.analysis.parse import captures, line_of, query, text, source_order

ROUTER_TYPES = {"Router", "IRouter", "express.Router", "express.IRouter", "e.Router"}
APP_TYPES = {"Application", "Express", "express.Application", "express.Express", "e.Application", "e.Express"}
# untyped parameters with these names are taken for what they are named after
UNTYPED_APP_NAMES = {"app", "expressApp"}
UNTYPED_ROUTER_NAMES = {"router", "route", "routes", "api"}
CHAIN_METHODS = ("get", "post", "put", "patch", "delete", "all", "options", "head", "use")

# decorator frameworks: module prefix -> (framework, class decorators, method decorators)
_FRAMEWORKS = (
    ("routing-controllers", "routing-controllers", ("JsonController", "Controller")),
    ("@tsed/", "tsed", ("Controller",)),
    ("tsoa", "tsoa", ("Route",)),
)
_METHOD_DECORATORS = {"Get", "Post", "Put", "Patch", "Delete", "Head", "Options", "All"}

_QUERY = """
(public_field_definition) @field
(assignment_expression left: (member_expression object: (this))) @this_assign
(formal_parameters) @params
(return_statement) @return
(decorator) @decorator
(pair) @pair
(lexical_declaration (variable_declarator) @local)
"""


@dataclass(frozen=True)
class RouterArg:
    """`auth(app)`: a call that passes the router/app `owner` as argument `index`."""

    chain: tuple[str, ...]
    index: int
    owner: str
    line: int


@dataclass(frozen=True)
class Controller:
    """A decorator controller class: its framework, path and Ts.ED children."""

    name: str
    framework: str  # routing-controllers | tsed | tsoa
    path: str
    line: int
    children: tuple[str, ...] = ()


def _class_of(node: Node) -> str | None:
    """The name of the class whose body holds `node`."""
    cur = node.parent
    while cur is not None:
        if cur.type == "class_body":
            cls = cur.parent
            name = cls.child_by_field_name("name") if cls is not None else None
            return text(name) or "default"
        cur = cur.parent
    return None


def _express_kind(value: Node | None, names: dict[str, set[str]]) -> str | None:
    from otelize.analysis.express import is_express_call

    while value is not None and value.type in ("as_expression", "satisfies_expression", "non_null_expression", "parenthesized_expression"):
        value = value.named_children[0] if value.named_children else None
    return is_express_call(value, names)


def _type_text(param: Node) -> str:
    ann = param.child_by_field_name("type")
    if ann is None:
        return ""
    node = ann.named_children[0] if ann.named_children else None
    return text(node) if node is not None else ""


def owners(root: Node, parsed_tsx: bool, facts, functions, starts, names: dict[str, set[str]]) -> list:  # noqa: ANN001
    """Before the registrations are read: class-property and parameter owners, module
    object constants and class string constants. Returns the query's captures (reused
    by `after_calls`)."""
    _PARAM_NAMES.pop(id(facts), None)
    # the names `facts._dedupe` will give (a second nested `x` becomes `x#2`): what the graph looks up
    seen: dict[str, int] = {}
    final: dict[tuple[int, int], str] = {}
    for fn in functions:
        if fn.kind == "signature":
            continue
        n = seen[fn.qualname] = seen.get(fn.qualname, 0) + 1
        final[(fn.start, fn.end)] = fn.qualname if n == 1 else f"{fn.qualname}#{n}"
    _FINAL[id(facts)] = final
    caps = captures(query(_QUERY, parsed_tsx), root)
    for node in sorted(caps.get("field", []), key=source_order):
        cls = _class_of(node)
        name = text(node.child_by_field_name("name"))
        value = node.child_by_field_name("value")
        if cls is None or not name or value is None:
            continue
        _class_member(facts, f"{cls}.{name}", value, names)
    for node in sorted(caps.get("this_assign", []), key=source_order):
        cls = _class_of(node)
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if cls is None or left is None or right is None:
            continue
        _class_member(facts, f"{cls}.{text(left.child_by_field_name('property'))}", right, names)
    by_start = {fn.start: fn for fn in functions}
    for node in sorted(caps.get("params", []), key=source_order):
        fn = by_start.get(node.parent.start_byte) if node.parent is not None else None
        if fn is None:
            continue
        params = [p for p in node.named_children if p.type in ("required_parameter", "optional_parameter")]
        for index, p in enumerate(params):
            _parameter_owner(facts, _q(facts, fn), index, p)
    for child in root.named_children:
        _module_objects(facts, child)
    _FUNCS[id(facts)] = (functions, starts)
    for node in sorted(caps.get("local", []), key=source_order):
        _local_constant(node, facts, functions, starts)
    return caps


_FINAL: dict[int, dict[tuple[int, int], str]] = {}


def _q(facts, fn) -> str:  # noqa: ANN001
    """A function's qualname as `facts._dedupe` leaves it."""
    return _FINAL.get(id(facts), {}).get((fn.start, fn.end), fn.qualname)


# per file being extracted: its functions (for `template_path`), dropped by `after_calls`
_FUNCS: dict[int, tuple[list, list[int]]] = {}
_CALL_MEMBER = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(\)\.[A-Za-z_$][\w$]*$")


def _value_or_env_default(value: Node | None) -> str | None:
    """A string literal, or the default of `process.env.X || 'api'` (`??` too): the path
    the app uses when the variable is not set."""
    from otelize.analysis.syntax import string_value

    if value is None:
        return None
    literal = string_value(value)
    if literal is not None:
        return literal
    if value.type == "binary_expression":
        op = value.child_by_field_name("operator")
        left, right = value.child_by_field_name("left"), value.child_by_field_name("right")
        if op is not None and text(op) in ("||", "??") and left is not None and text(left).startswith("process.env."):
            return string_value(right)
    return None


def _local_constant(node: Node, facts, functions, starts) -> None:  # noqa: ANN001
    """A function-local `const apiPrefix = process.env.API_PREFIX || 'api'` (the value),
    or `const apiPrefix = Locals.config().apiPrefix` (kept as `${Locals.config().apiPrefix}`
    for the graph: the member of the object that function returns)."""
    from otelize.analysis.syntax import innermost

    decl = node.parent
    if decl is None or not any(c.type == "const" for c in decl.children):
        return
    name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
    if name is None or name.type != "identifier" or value is None:
        return
    fn = innermost(functions, starts, node.start_byte)
    if fn is None:
        return
    literal = _value_or_env_default(value)
    if literal is None and value.type == "member_expression" and _CALL_MEMBER.match(text(value)):
        literal = "${" + text(value) + "}"
    if literal is not None:
        facts.local_constants.setdefault(_q(facts, fn), {})[text(name)] = literal


def _class_member(facts, key: str, value: Node, names: dict[str, set[str]]) -> None:  # noqa: ANN001
    from otelize.analysis.syntax import string_value

    kind = _express_kind(value, names)
    if kind == "router" and key not in facts.routers:
        facts.routers.append(key)
    elif kind == "app" and key not in facts.route_owners:
        facts.route_owners[key] = "app"
    literal = string_value(value)
    if literal is not None:
        facts.class_constants.setdefault(key, literal)


def _parameter_owner(facts, qualname: str, index: int, param: Node) -> None:  # noqa: ANN001
    pattern = param.child_by_field_name("pattern")
    if pattern is None:
        return
    type_text = _type_text(param)
    scope = facts.param_scopes.setdefault(qualname, {})
    if pattern.type == "identifier":
        name = text(pattern)
        owner = f"{qualname}:{name}"
        if type_text in ROUTER_TYPES or (not type_text and name in UNTYPED_ROUTER_NAMES):
            facts.route_owners[owner] = "param-router"
            facts.param_routers.setdefault(qualname, []).append((index, owner))
            scope[name] = owner
        elif type_text in APP_TYPES or (not type_text and name in UNTYPED_APP_NAMES):
            facts.route_owners[owner] = "param-app"
            scope[name] = owner
    elif pattern.type == "object_pattern":  # `({ app }: { app: express.Application })`
        ann = param.child_by_field_name("type")
        typed: dict[str, str] = {}
        obj_type = ann.named_children[0] if ann is not None and ann.named_children else None
        if obj_type is not None and obj_type.type == "object_type":
            for sig in obj_type.named_children:
                if sig.type == "property_signature":
                    typed[text(sig.child_by_field_name("name"))] = _type_text(sig)
        for part in pattern.named_children:
            if part.type != "shorthand_property_identifier_pattern":
                continue
            name = text(part)
            t = typed.get(name, "")
            if t in APP_TYPES or (not t and name in UNTYPED_APP_NAMES):
                owner = f"{qualname}:{name}"
                facts.route_owners[owner] = "param-app"
                scope[name] = owner
    if not scope:
        facts.param_scopes.pop(qualname, None)


def _module_objects(facts, stmt: Node) -> None:  # noqa: ANN001
    """`const config = { api: { prefix: '/api' } }` / `export default { ... }`: the string
    leaves of a module-level object, as constants `config.api.prefix`."""
    holder = stmt
    if stmt.type == "export_statement":
        value = stmt.child_by_field_name("value")
        if value is not None and value.type == "object" and any(c.type == "default" for c in stmt.children):
            _object_leaves(facts, "default", value, 0)
            return
        holder = stmt.child_by_field_name("declaration")
    if holder is None or holder.type != "lexical_declaration" or not any(c.type == "const" for c in holder.children):
        return
    for decl in holder.named_children:
        if decl.type != "variable_declarator":
            continue
        name, value = decl.child_by_field_name("name"), decl.child_by_field_name("value")
        while value is not None and value.type in ("as_expression", "satisfies_expression", "parenthesized_expression"):
            value = value.named_children[0] if value.named_children else None
        if name is not None and name.type == "identifier" and value is not None and value.type == "object":
            _object_leaves(facts, text(name), value, 0)


def _object_leaves(facts, prefix: str, obj: Node, depth: int) -> None:  # noqa: ANN001
    from otelize.analysis.syntax import string_value

    if depth > 4:
        return
    for pair in obj.named_children:
        if pair.type != "pair":
            continue
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if key is None or value is None or key.type not in ("property_identifier", "string"):
            continue
        k = string_value(key) if key.type == "string" else text(key)
        if value.type == "object":
            _object_leaves(facts, f"{prefix}.{k}", value, depth + 1)
        else:
            literal = string_value(value)
            if literal is not None:
                facts.constants[f"{prefix}.{k}"] = literal


# --- registrations ------------------------------------------------------------


def _enclosing_functions(node: Node, functions, starts):  # noqa: ANN001, ANN202
    """The functions around `node`, innermost first (by the tree's parents: depth, not file size)."""
    import bisect

    from otelize.analysis.syntax import FUNCTION_KINDS

    out = []
    cur = node.parent
    while cur is not None:
        if cur.type in FUNCTION_KINDS:
            i = bisect.bisect_left(starts, cur.start_byte)
            while i < len(functions) and functions[i].start == cur.start_byte:
                if functions[i].end == cur.end_byte:
                    out.append(functions[i])
                    break
                i += 1
        cur = cur.parent
    return out


# per file being extracted: the parameter names that are owners somewhere in it
# (filled on first use after `owners`, dropped at the end of `after_calls`)
_PARAM_NAMES: dict[int, set[str]] = {}


def scoped_owner(node: Node, facts, functions, starts) -> str | None:  # noqa: ANN001
    """The owner an identifier or `this.x` stands for at `node`: a parameter of an
    enclosing function, a class-property router or app, or a module router/app."""
    if node.type == "identifier":
        name = text(node)
        params = _PARAM_NAMES.get(id(facts))
        if params is None:
            params = _PARAM_NAMES[id(facts)] = {n for scope in facts.param_scopes.values() for n in scope}
        if name not in params and name not in facts.aliases and name not in facts.apps and name not in facts.routers:
            return None
        for fn in _enclosing_functions(node, functions, starts):
            owner = facts.param_scopes.get(_q(facts, fn), {}).get(name)
            if owner is not None:
                return owner
        if name in facts.aliases:
            return facts.aliases[name]
        if name in facts.apps or name in facts.routers:
            return name
        return None
    if node.type == "member_expression":
        obj = node.child_by_field_name("object")
        if obj is not None and obj.type == "this":
            cls = _class_of(node)
            key = f"{cls}.{text(node.child_by_field_name('property'))}"
            if key in facts.routers or facts.route_owners.get(key) == "app":
                return key
    return None


def chain_owner(obj: Node, facts, functions, starts, names: dict[str, set[str]]) -> tuple[str | None, str | None]:  # noqa: ANN001
    """The owner (and `.route('/x')` path) of a registration whose object is not a
    plain module router: a parameter, `this.router`, or a chain of registrations
    (`Router().use(a).use(b)`, `this.app.use(x).use(y)`, `r.route(p).get(h)`)."""
    from otelize.analysis.express import path_values

    route_path: str | None = None
    node = obj
    while node is not None and node.type == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is None:
            return None, None
        if _express_kind(node, names) is not None:  # `Router().use(a).use(b)`
            name = _declared_name(obj)
            if name is not None and _express_kind(node, names) == "router" and name not in facts.routers:
                facts.routers.append(name)
            elif name is not None and _express_kind(node, names) == "app" and name not in facts.apps:
                facts.apps.append(name)
            return name, route_path
        if fn.type != "member_expression":
            return None, None
        prop = text(fn.child_by_field_name("property"))
        if prop == "route":
            args = node.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            paths = path_values(first, facts) if first is not None else None
            route_path = paths[0] if paths else None
        elif prop not in CHAIN_METHODS:
            return None, None
        node = fn.child_by_field_name("object")
    if node is None:
        return None, None
    owner = scoped_owner(node, facts, functions, starts)
    return owner, route_path


def _declared_name(node: Node) -> str | None:
    """`const api = Router().use(a)`: the variable the outermost chain is assigned to."""
    cur = node
    while cur.parent is not None and (
        (cur.parent.type == "member_expression" and cur.parent.child_by_field_name("object") == cur)
        or (cur.parent.type == "call_expression" and cur.parent.child_by_field_name("function") == cur)
    ):
        cur = cur.parent
    decl = cur.parent
    if decl is not None and decl.type == "variable_declarator":
        name = decl.child_by_field_name("name")
        return text(name) if name is not None and name.type == "identifier" else None
    return None


def template_path(node: Node, facts) -> str | None:  # noqa: ANN001
    """A template literal path: module constants and `this.<class constant>` resolved,
    anything else kept as `${expr}` (an imported name is resolved by the graph)."""
    out: list[str] = []
    cls = _class_of(node)
    for child in node.children:
        if child.type in ("`",):
            continue
        if child.type == "template_substitution":
            expr = child.named_children[0] if child.named_children else None
            value = _expression_value(expr, facts, cls)
            out.append(value if value is not None else "${" + text(expr) + "}")
        else:
            out.append(decode_escapes(text(child)) if child.type == "escape_sequence" else text(child))
    return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def decode_escapes(raw: str) -> str:
    r"""`\\d` -> `\d`, `\'` -> `'`: a path as the running app sees it."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw)


def _expression_value(expr: Node | None, facts, cls: str | None) -> str | None:  # noqa: ANN001
    if expr is None:
        return None
    if expr.type == "identifier":
        name = text(expr)
        funcs = _FUNCS.get(id(facts))
        if funcs is not None and facts.local_constants:
            for fn in _enclosing_functions(expr, *funcs):
                value = facts.local_constants.get(_q(facts, fn), {}).get(name)
                if value is not None:
                    return value
        return facts.constants.get(name)
    if expr.type == "member_expression":
        obj = expr.child_by_field_name("object")
        if obj is not None and obj.type == "this" and cls is not None:
            return facts.class_constants.get(f"{cls}.{text(expr.child_by_field_name('property'))}")
        return facts.constants.get(text(expr))
    return None


def member_path(node: Node, facts) -> str | None:  # noqa: ANN001
    """`config.api.prefix` as a path: a module object constant, `this.path` a class
    constant, an imported object's member `$config.api.prefix` (the graph resolves it)."""
    from otelize.analysis.express import imported_names
    from otelize.analysis.syntax import member_chain

    chain = member_chain(node)
    if chain is None:
        return None
    if chain[0] == "this" and len(chain) == 2:
        return facts.class_constants.get(f"{_class_of(node)}.{chain[1]}")
    dotted = ".".join(chain)
    if dotted in facts.constants:
        return facts.constants[dotted]
    if chain[0] in imported_names(facts) and node.next_named_sibling is not None:
        return "$" + dotted
    return None


# --- after the registrations --------------------------------------------------


def after_calls(source: bytes, caps: dict, call_nodes: list[Node], facts, functions, starts) -> None:  # noqa: ANN001
    from otelize.analysis.syntax import innermost, member_chain

    _FUNCS.pop(id(facts), None)
    for node in sorted(caps.get("return", []), key=source_order):
        value = node.named_children[0] if node.named_children else None
        if value is not None and value.type == "object":
            fn = innermost(functions, starts, node.start_byte)
            if fn is not None:
                _returned_object(facts, _q(facts, fn), value)
            continue
        owner = scoped_owner(value, facts, functions, starts) if value is not None else None
        fn = innermost(functions, starts, node.start_byte)
        if owner is not None and fn is not None:
            facts.returns_router.setdefault(_q(facts, fn), owner)
    for node in call_nodes:
        if node.type != "call_expression":
            continue
        _dynamic_require(node, facts)
        chain = member_chain(node.child_by_field_name("function"))
        args = node.child_by_field_name("arguments")
        if chain is None or args is None or chain[-1] in CHAIN_METHODS:
            continue
        for index, arg in enumerate(a for a in args.named_children if a.type != "comment"):
            owner = scoped_owner(arg, facts, functions, starts) if arg.type in ("identifier", "member_expression") else None
            if owner is not None:
                facts.router_args.append(RouterArg(chain, index, owner, line_of(node)))
    _PARAM_NAMES.pop(id(facts), None)
    if b"auto-generated with tsoa" in source[:1024]:
        facts.route_owners["<tsoa-generated>"] = "generated"
    _decorators(caps, facts)
    _framework_options(caps, facts, call_nodes)
    _FINAL.pop(id(facts), None)


def _returned_object(facts, qualname: str, obj: Node) -> None:  # noqa: ANN001
    """`return { apiPrefix, name: 'x' }`: string members as constants `Locals.config().apiPrefix`."""
    local = facts.local_constants.get(qualname, {})
    for prop in obj.named_children:
        if prop.type == "shorthand_property_identifier":
            value = local.get(text(prop))
            key = text(prop)
        elif prop.type == "pair":
            key = text(prop.child_by_field_name("key"))
            value = _value_or_env_default(prop.child_by_field_name("value"))
        else:
            continue
        if value is not None and "${" not in value:
            facts.constants[f"{qualname}().{key}"] = value


def _dynamic_require(node: Node, facts) -> None:  # noqa: ANN001
    """`const route = require(routePath)` (a path computed at runtime, e.g. from a glob):
    the graph resolves `route.register(router)` to the modules under this folder."""
    from otelize.analysis.syntax import string_value

    fn = node.child_by_field_name("function")
    args = node.child_by_field_name("arguments")
    if fn is None or text(fn) != "require" or args is None or len(args.named_children) != 1:
        return
    if string_value(args.named_children[0]) is not None:
        return
    decl = node.parent
    name = decl.child_by_field_name("name") if decl is not None and decl.type == "variable_declarator" else None
    if name is not None and name.type == "identifier" and text(name) not in facts.dynamic_requires:
        facts.dynamic_requires.append(text(name))


def _decorator_imports(facts) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """local decorator name -> (framework, imported name)."""
    out: dict[str, tuple[str, str]] = {}
    for imp in facts.imports:
        framework = next((fw for prefix, fw, _ in _FRAMEWORKS if imp.module == prefix or (prefix.endswith("/") and imp.module.startswith(prefix))), None)
        if framework is None:
            continue
        for local, imported in imp.names:
            out[local] = (framework, imported)
    return out


def _decorator_call(node: Node) -> tuple[str, list[Node]] | None:
    expr = node.named_children[0] if node.named_children else None
    if expr is None:
        return None
    if expr.type == "identifier":
        return text(expr), []
    if expr.type != "call_expression":
        return None
    fn = expr.child_by_field_name("function")
    if fn is None or fn.type != "identifier":
        return None
    args = expr.child_by_field_name("arguments")
    return text(fn), [a for a in (args.named_children if args is not None else []) if a.type != "comment"]


def _decorator_path(args: list[Node], facts, framework: str) -> tuple[str, tuple[str, ...]] | None:  # noqa: ANN001
    """The path of `@Get('/:id')` / `@Controller({ path, children })`; '' without one."""
    from otelize.analysis.express import path_values

    if not args:
        return "", ()
    first = args[0]
    children: tuple[str, ...] = ()
    if first.type == "object":
        path_node = None
        for pair in first.named_children:
            if pair.type != "pair":
                continue
            key = text(pair.child_by_field_name("key"))
            value = pair.child_by_field_name("value")
            if key == "path":
                path_node = value
            elif key == "children" and value is not None and value.type == "array":
                children = tuple(text(c) for c in value.named_children if c.type == "identifier")
        if path_node is None:
            return "", children
        first = path_node
    paths = path_values(first, facts)
    if not paths:
        return None
    path = paths[0]
    if framework == "tsoa":
        path = re.sub(r"\{([A-Za-z_$][\w$]*)\}", r":\1", path)
    return path, children


def _decorators(caps: dict, facts) -> None:  # noqa: ANN001
    from otelize.analysis.records import HandlerRef, RouteReg

    known = _decorator_imports(facts)
    if not known:
        return
    for node in sorted(caps.get("decorator", []), key=source_order):
        call = _decorator_call(node)
        if call is None or call[0] not in known:
            continue
        framework, imported = known[call[0]]
        parent = node.parent
        if parent is None:
            continue
        if parent.type in ("class_declaration", "abstract_class_declaration", "export_statement"):
            cls_node = parent if parent.type != "export_statement" else parent.child_by_field_name("declaration")
            class_decorators = next(d for _, fw, d in _FRAMEWORKS if fw == framework)
            if cls_node is None or imported not in class_decorators:
                continue
            found = _decorator_path(call[1], facts, framework)
            if found is None:
                continue
            name = text(cls_node.child_by_field_name("name")) or "default"
            facts.controllers.append(Controller(name, framework, found[0], line_of(node), found[1]))
        elif parent.type == "class_body" and imported in _METHOD_DECORATORS:
            method = node.next_named_sibling
            while method is not None and method.type == "decorator":
                method = method.next_named_sibling
            if method is None or method.type != "method_definition":
                continue
            found = _decorator_path(call[1], facts, framework)
            if found is None:
                continue
            cls = _class_of(method) or "default"
            mname = text(method.child_by_field_name("name"))
            handler = HandlerRef("member", f"{cls}.{mname}", line_of(method))
            facts.routes.append(RouteReg("@" + cls, imported.upper(), found[0], (handler,), line_of(node)))


def _framework_options(caps: dict, facts, call_nodes: list[Node]) -> None:  # noqa: ANN001
    """routing-controllers' `routePrefix` (createExpressServer / useExpressServer) and
    Ts.ED's `mount` configuration: `(framework, prefix, controller names, globs)`."""
    from otelize.analysis.express import path_values
    from otelize.analysis.syntax import string_value

    known = _decorator_imports(facts)
    frameworks = {fw for fw, _ in known.values()}
    if "routing-controllers" in frameworks:
        for node in call_nodes:
            fn = node.child_by_field_name("function") if node.type == "call_expression" else None
            if fn is None or fn.type != "identifier" or known.get(text(fn), ("", ""))[1] not in ("createExpressServer", "useExpressServer"):
                continue
            args = node.child_by_field_name("arguments")
            options = next((a for a in (args.named_children if args is not None else []) if a.type == "object"), None)
            prefix = ""
            for pair in options.named_children if options is not None else []:
                if pair.type == "pair" and text(pair.child_by_field_name("key")) == "routePrefix":
                    value = pair.child_by_field_name("value")
                    paths = path_values(value, facts) if value is not None else None
                    prefix = paths[0] if paths else "${" + text(value) + "}"
            facts.framework_mounts.append(("routing-controllers", prefix, (), ()))
    if "tsed" in frameworks:
        for node in sorted(caps.get("pair", []), key=source_order):
            if text(node.child_by_field_name("key")) != "mount":
                continue
            value = node.child_by_field_name("value")
            if value is None or value.type != "object":
                continue
            for pair in value.named_children:
                if pair.type != "pair":
                    continue
                key = pair.child_by_field_name("key")
                prefix = string_value(key) if key is not None and key.type == "string" else None
                target = pair.child_by_field_name("value")
                if prefix is None or target is None:
                    continue
                items = target.named_children if target.type == "array" else [target]
                names = tuple(text(i) for i in items if i.type == "identifier")
                globs = tuple(g for i in items if (g := _glob_text(i)) is not None)
                facts.framework_mounts.append(("tsed", prefix, names, globs))


def _glob_text(node: Node) -> str | None:
    """`${rootDir}/controllers/**/*.ts` -> `controllers/**/*.ts` (what follows the root)."""
    if node.type not in ("string", "template_string"):
        return None
    raw = text(node)[1:-1]
    return re.sub(r"^\$\{[^}]*\}/?", "", raw).lstrip("./")


# --- routers mounted in a loop over a literal array --------------------------------

def _loop_source(node: Node) -> tuple[str, str] | None:
    """(array name, item parameter) when `node` sits in `ARRAY.forEach((item) => ...)` or in
    `for (const item of ARRAY) ...`."""
    up = node.parent
    while up is not None:
        if up.type in ("arrow_function", "function_expression"):
            args = up.parent
            call = args.parent if args is not None and args.type == "arguments" else None
            callee = call.child_by_field_name("function") if call is not None else None
            params = up.child_by_field_name("parameters")
            first = params.named_children[0] if params is not None and params.named_children else None
            if first is None and up.child_by_field_name("parameter") is not None:
                first = up.child_by_field_name("parameter")
            if first is not None and first.type == "required_parameter":
                first = first.child_by_field_name("pattern")
            if (callee is not None and callee.type == "member_expression"
                    and text(callee.child_by_field_name("property")) == "forEach"
                    and callee.child_by_field_name("object").type == "identifier"
                    and first is not None and first.type == "identifier"):
                return text(callee.child_by_field_name("object")), text(first)
            return None
        if up.type == "for_in_statement":
            left, right = up.child_by_field_name("left"), up.child_by_field_name("right")
            if right is not None and right.type == "identifier" and left is not None:
                name = left if left.type == "identifier" else next(
                    (c for c in left.named_children if c.type == "identifier"), None)
                if name is not None and b" of " in up.text:
                    return text(right), text(name)
            return None
        up = up.parent
    return None


def _array_literal(root: Node, name: str) -> Node | None:
    """The array a module-level `const NAME = [...]` declares."""
    for stmt in root.named_children:
        decl = stmt
        if decl.type == "export_statement":
            decl = decl.child_by_field_name("declaration") or decl
        if decl.type not in ("lexical_declaration", "variable_declaration"):
            continue
        for d in decl.named_children:
            if d.type == "variable_declarator" and text(d.child_by_field_name("name")) == name:
                value = d.child_by_field_name("value")
                return value if value is not None and value.type == "array" else None
    return None


def loop_mounts(call: Node, arg_nodes: list[Node]) -> list[tuple[str, str, int]] | None:
    """`[{ path: '/auth', route: authRoute }, ...].forEach((r) => router.use(r.path, r.route))`:
    one (path, router name, line) per element, or None when `call` is not such a mount.
    Only literal arrays of object literals with a string path and an identifier router
    are followed; anything else stays unresolved, as before."""
    if len(arg_nodes) != 2 or any(a.type != "member_expression" for a in arg_nodes):
        return None
    source = _loop_source(call)
    if source is None:
        return None
    array_name, item = source
    keys = []
    for a in arg_nodes:
        obj, prop = a.child_by_field_name("object"), a.child_by_field_name("property")
        if obj is None or obj.type != "identifier" or text(obj) != item or prop is None:
            return None
        keys.append(text(prop))
    root = call
    while root.parent is not None:
        root = root.parent
    array = _array_literal(root, array_name)
    if array is None:
        return None
    out = []
    for element in array.named_children:
        if element.type == "comment":
            continue
        if element.type != "object":
            return None
        values: dict[str, Node] = {}
        for pair in element.named_children:
            if pair.type == "pair":
                key = pair.child_by_field_name("key")
                k = text(key).strip("'\"`") if key is not None else ""
                values[k] = pair.child_by_field_name("value")
            elif pair.type == "shorthand_property_identifier":
                values[text(pair)] = pair
        path, router = values.get(keys[0]), values.get(keys[1])
        if path is None or router is None or path.type != "string" or router.type not in ("identifier", "shorthand_property_identifier"):
            return None
        out.append((text(path)[1:-1], text(router), element.start_point[0] + 1))
    return out
