"""routefacts: the Express route facts that need more than one registration call.

Called from `facts.extract` (read-only, like the rest of facts):
- owners the route table mounts through: class-property routers and apps
  (`public router = Router()`, `this.app = express()`), routers and apps passed as
  function parameters (`export default (app: Router) => ...`), routers built by a
  chain (`Router().use(a).use(b)`), and the router a function returns;
- route paths from template literals over module and class constants
  (`${this.path}/:id`) and from module object constants (`config.api.prefix`);
- calls that pass a router to a function (`auth(app)`), resolved by the graph;
- decorator routes (`otelize.analysis.routedecorators`).

The paths built from constants, templates and members, and loop mounts, are read by
`otelize.analysis.routepaths`; the state both passes share is in
`otelize.analysis.routescope`.
"""

from __future__ import annotations

import re

from dataclasses import dataclass

from tree_sitter import Node

from otelize.analysis.express import is_express_call
from otelize.analysis.express import route_path as route_path_of
from otelize.analysis.parse import captures, line_of, query, source_order, text
from otelize.analysis.routedecorators import decorators, framework_options
from otelize.analysis.routepaths import local_constant, module_objects, returned_object
from otelize.analysis.routescope import FINAL, FUNCS, PARAM_NAMES, class_of, enclosing_functions, final_qualname
from otelize.analysis.syntax import innermost, string_value


ROUTER_TYPES = {"Router", "IRouter", "express.Router", "express.IRouter", "e.Router"}


APP_TYPES = {"Application", "Express", "express.Application", "express.Express", "e.Application", "e.Express"}


# untyped parameters with these names are taken for what they are named after
UNTYPED_APP_NAMES = {"app", "expressApp"}


UNTYPED_ROUTER_NAMES = {"router", "route", "routes", "api"}


# what every type of ROUTER_TYPES / APP_TYPES and every name of UNTYPED_*_NAMES contains
_OWNER_HINT = re.compile(rb"Router|Application|Express|app|App|route|api")


CHAIN_METHODS = ("get", "post", "put", "patch", "delete", "all", "options", "head", "use")


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


def _express_kind(value: Node | None, names: dict[str, set[str]]) -> str | None:
    while value is not None and value.type in ("as_expression", "satisfies_expression", "non_null_expression", "parenthesized_expression"):
        value = value.named_children[0] if value.named_children else None
    return is_express_call(value, names)


def _type_text(param: Node) -> str:
    ann = param.child_by_field_name("type")
    if ann is None:
        return ""
    node = ann.named_children[0] if ann.named_children else None
    return text(node) if node is not None else ""


def owners(root: Node, parsed_tsx: bool, facts, functions, starts, names: dict[str, set[str]], caps: dict | None = None) -> list:  # noqa: ANN001
    """Before the registrations are read: class-property and parameter owners, module
    object constants and class string constants. Returns the query's captures (reused
    by `after_calls`)."""
    PARAM_NAMES.pop(id(facts), None)
    # the names `facts._dedupe` will give (a second nested `x` becomes `x#2`): what the graph looks up
    seen: dict[str, int] = {}
    final: dict[tuple[int, int], str] = {}
    for fn in functions:
        if fn.kind == "signature":
            continue
        n = seen[fn.qualname] = seen.get(fn.qualname, 0) + 1
        final[(fn.start, fn.end)] = fn.qualname if n == 1 else f"{fn.qualname}#{n}"
    FINAL[id(facts)] = final
    if caps is None:  # (the scan passes its combined query's captures, which include these)
        caps = captures(query(_QUERY, parsed_tsx), root)
    for node in sorted(caps.get("field", []), key=source_order):
        cls = class_of(node)
        name = text(node.child_by_field_name("name"))
        value = node.child_by_field_name("value")
        if cls is None or not name or value is None:
            continue
        _class_member(facts, f"{cls}.{name}", value, names)
    for node in sorted(caps.get("this_assign", []), key=source_order):
        cls = class_of(node)
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
        qualname = None
        for index, p in enumerate(params):
            # a parameter is an owner by its type or its name, and the parameter's text
            # spells both: one that spells none of them needs no closer look
            if _OWNER_HINT.search(p.text) is None:
                continue
            if qualname is None:
                qualname = final_qualname(facts, fn)
            _parameter_owner(facts, qualname, index, p)
    for child in root.named_children:
        module_objects(facts, child)
    FUNCS[id(facts)] = (functions, starts)
    for node in sorted(caps.get("local", []), key=source_order):
        local_constant(node, facts, functions, starts)
    return caps


def _class_member(facts, key: str, value: Node, names: dict[str, set[str]]) -> None:  # noqa: ANN001
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
    scope = facts.param_scopes.get(qualname) or {}
    if pattern.type == "identifier":
        name = text(pattern)
        owner = f"{qualname}:{name}"
        if type_text in ROUTER_TYPES or (not type_text and name in UNTYPED_ROUTER_NAMES):
            facts.route_owners[owner] = "param-router"
            facts.param_routers.setdefault(qualname, []).append((index, owner))
            scope[name] = owner
        elif type_text in APP_TYPES or (not type_text and name in UNTYPED_APP_NAMES):
            facts.route_owners[owner] = "param-app"
            facts.param_routers.setdefault(qualname, []).append((index, owner))  # (often passed a router)
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
    if scope:
        facts.param_scopes[qualname] = scope


def scoped_owner(node: Node, facts, functions, starts) -> str | None:  # noqa: ANN001
    """The owner an identifier or `this.x` stands for at `node`: a parameter of an
    enclosing function, a class-property router or app, or a module router/app."""
    if node.type == "identifier":
        name = text(node)
        params = PARAM_NAMES.get(id(facts))
        if params is None:
            params = PARAM_NAMES[id(facts)] = {n for scope in facts.param_scopes.values() for n in scope}
        if name not in params and name not in facts.aliases and name not in facts.apps and name not in facts.routers:
            return None
        for fn in enclosing_functions(node, functions, starts):
            owner = facts.param_scopes.get(final_qualname(facts, fn), {}).get(name)
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
            cls = class_of(node)
            key = f"{cls}.{text(node.child_by_field_name('property'))}"
            if key in facts.routers or facts.route_owners.get(key) == "app":
                return key
    return None


def chain_owner(obj: Node, facts, functions, starts, names: dict[str, set[str]]) -> tuple[str | None, str | None]:  # noqa: ANN001
    """The owner (and `.route('/x')` path) of a registration whose object is not a
    plain module router: a parameter, `this.router`, or a chain of registrations
    (`Router().use(a).use(b)`, `this.app.use(x).use(y)`, `r.route(p).get(h)`)."""
    route_path: str | None = None
    node = obj
    while node is not None and node.type == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is None:
            return None, None
        if _express_kind(node, names) is not None:  # `Router().use(a).use(b)`
            name = _declared_name(obj)
            if name == "module.exports":
                facts.exports.setdefault("=", name)
            if name is not None and _express_kind(node, names) == "router" and name not in facts.routers:
                facts.routers.append(name)
            elif name is not None and _express_kind(node, names) == "app" and name not in facts.apps:
                facts.apps.append(name)
            return name, route_path
        if fn.type != "member_expression":
            return None, None
        prop = text(fn.child_by_field_name("property"))
        if prop == "route":
            route_path = route_path_of(node, facts)
        elif prop not in CHAIN_METHODS:
            return None, None
        node = fn.child_by_field_name("object")
    if node is None:
        return None, None
    owner = scoped_owner(node, facts, functions, starts)
    return owner, route_path


def _declared_name(node: Node) -> str | None:
    """`const api = Router().use(a)`: the variable the outermost chain is assigned to;
    `default` for the value of `export default`, `module.exports` for the value assigned to it."""
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
    if decl is not None and decl.type == "export_statement" and decl.child_by_field_name("value") == cur:
        return "default"  # `export default Router().use('/api', api)`: the name `export` gives it
    if (decl is not None and decl.type == "assignment_expression" and decl.child_by_field_name("right") == cur
            and text(decl.child_by_field_name("left")) == "module.exports"):
        return "module.exports"  # `module.exports = Router().use(...)`: what `require()` of the file gets
    return None


def after_calls(source: bytes, caps: dict, call_nodes: list[Node], chains: list, facts, functions, starts) -> None:  # noqa: ANN001
    """`chains`: the member chain of each call's callee (facts._call's), in `call_nodes` order."""
    FUNCS.pop(id(facts), None)
    for node in sorted(caps.get("return", []), key=source_order):
        value = node.named_children[0] if node.named_children else None
        if value is not None and value.type == "object":
            fn = innermost(functions, starts, node.start_byte)
            if fn is not None:
                returned_object(facts, final_qualname(facts, fn), value)
            continue
        owner = scoped_owner(value, facts, functions, starts) if value is not None else None
        fn = innermost(functions, starts, node.start_byte)
        if owner is not None and fn is not None:
            facts.returns_router.setdefault(final_qualname(facts, fn), owner)
    # an argument is a router or app only where the file has one to pass (scoped_owner)
    owners = bool(facts.apps or facts.routers or facts.aliases or facts.param_scopes or facts.route_owners)
    for node, chain in zip(call_nodes, chains):
        if chain is None or node.type != "call_expression":
            continue
        if chain == ("require",):
            _dynamic_require(node, facts)
        if not owners or chain[-1] in CHAIN_METHODS:
            continue
        args = node.child_by_field_name("arguments")
        if args is None:
            continue
        for index, arg in enumerate(a for a in args.named_children if a.type != "comment"):
            owner = scoped_owner(arg, facts, functions, starts) if arg.type in ("identifier", "member_expression") else None
            if owner is not None:
                facts.router_args.append(RouterArg(chain, index, owner, line_of(node)))
    PARAM_NAMES.pop(id(facts), None)
    if b"auto-generated with tsoa" in source[:1024]:
        facts.route_owners["<tsoa-generated>"] = "generated"
    decorators(caps, facts)
    framework_options(caps, facts, call_nodes)
    FINAL.pop(id(facts), None)


def _dynamic_require(node: Node, facts) -> None:  # noqa: ANN001
    """`const route = require(routePath)` (a path computed at runtime, e.g. from a glob):
    the graph resolves `route.register(router)` to the modules under this folder."""
    fn = node.child_by_field_name("function")
    args = node.child_by_field_name("arguments")
    if fn is None or fn.text != b"require" or args is None or len(args.named_children) != 1:
        return
    if string_value(args.named_children[0]) is not None:
        return
    decl = node.parent
    name = decl.child_by_field_name("name") if decl is not None and decl.type == "variable_declarator" else None
    if name is not None and name.type == "identifier" and text(name) not in facts.dynamic_requires:
        facts.dynamic_requires.append(text(name))
