"""express: the Express facts of a file.

The local names bound to express and Router, the variables holding an app or a
router, route registrations (`app.get(...)`, `router.use(...)`,
`router.route('/x').get(...)`) with their paths and handlers, `.listen()`, and
the entry points: an app held by a class, `http.createServer(app).listen()`,
framework factories and bootstraps. Decorator routes, router parameters and
other owners are in `otelize.analysis.routefacts`, paths beyond literals in
`otelize.analysis.routepaths`.
"""

from __future__ import annotations

from tree_sitter import Node

from otelize.analysis.parse import line_of, text
from otelize.analysis.records import FileFacts, FunctionFact, HandlerRef, RouteReg
from otelize.analysis.syntax import member_chain, string_value


HTTP_METHODS = ("get", "post", "put", "patch", "delete", "all", "options", "head")


REGISTRATION_METHODS = HTTP_METHODS + ("use",)


ROUTER_PACKAGES = ("express-promise-router",)  # default export: an express Router factory


# (module, export) of functions that create an express app: `createExpressServer({...})`
APP_FACTORIES = {("routing-controllers", "createExpressServer")}


# (module, class) -> the method whose call returns the express app the instance builds:
# `new InversifyExpressServer(container).setConfig(fn).build()`
APP_BUILDERS = {("inversify-express-utils", "InversifyExpressServer"): "build"}


# the builder's methods that return the builder itself (chainable before the build)
BUILDER_CHAIN = ("setConfig", "setErrorConfig")


# (module, object, method) of framework bootstraps that build the app and start it
BOOTSTRAPS = {
    ("@tsed/platform-express", "PlatformExpress", "bootstrap"),
    ("@tsed/platform-express", "PlatformExpress", "create"),
    ("@tsed/common", "ServerLoader", "bootstrap"),  # Ts.ED 5
}


HTTP_MODULES = ("http", "https", "node:http", "node:https", "http2", "node:http2")


# an untyped parameter of this name is the express module passed in by its caller
# (`export default function userRouter(express, db) { const router = express.Router(); ... }`)
EXPRESS_PARAMETERS = ("express",)


def express_locals(facts: FileFacts) -> dict[str, set[str]]:
    """Local names bound to express: {"express": {...}, "Router": {...}}; "express" also
    holds the parameters the express module is passed in (`_express_parameters`)."""
    # "builders": local class -> build method (APP_BUILDERS); "built": the variables holding
    # a `new` of one (filled as the file's declarations are read, in source order)
    out: dict[str, set[str]] = {"express": set(), "Router": set(), "builders": set(), "built": set()}
    for imp in facts.imports:
        for local, imported in imp.names:  # framework factories that return an express app
            if (imp.module, imported) in APP_FACTORIES:
                out["express"].add(local)
            if (imp.module, imported) in APP_BUILDERS:
                out["builders"].add(local)
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
    out["express"].update(_express_parameters(facts, out["express"]))
    return out


def _express_parameters(facts: FileFacts, bound: set[str]) -> set[str]:
    """The function parameters that hold the express module: an untyped one named as in
    `EXPRESS_PARAMETERS`, or one typed `typeof express` (a name bound to express) or
    `typeof import('express')`."""
    out: set[str] = set()
    for fn in facts.functions:
        for p in fn.params:
            if not p.name.isidentifier():
                continue
            _, colon, annotation = p.text.partition(":")
            if not colon:
                if p.text == p.name and p.name in EXPRESS_PARAMETERS:
                    out.add(p.name)
                continue
            annotation = annotation.split("=", 1)[0].strip()
            if annotation.startswith("typeof "):
                target = annotation[len("typeof "):].strip()
                if target in bound or target in ("import('express')", 'import("express")'):
                    out.add(p.name)
    return out


def is_express_call(node: Node | None, names: dict[str, set[str]]) -> str | None:
    """'app' for express(), 'router' for Router()/express.Router() (also `new Router()`)."""
    if node is not None and node.type == "new_expression":  # Router works with `new` too
        ctor = node.child_by_field_name("constructor")
        if ctor is not None and ctor.type == "identifier" and text(ctor) in names["Router"]:
            return "router"
        if ctor is not None and ctor.type == "member_expression" and text(ctor.child_by_field_name("property")) == "Router":
            obj = ctor.child_by_field_name("object")
            return "router" if text(obj) in names["express"] else None
        return None
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
        if names.get("builders") and text(prop) in APP_BUILDERS.values() and is_builder(obj, names):
            return "app"
    if _is_require_of(fn, "express"):  # `const app = require('express')()`
        return "app"
    return None


def is_builder(node: Node | None, names: dict[str, set[str]]) -> bool:
    """`new InversifyExpressServer(...)`, a variable holding one, or either followed by
    `.setConfig(fn)` calls: what `.build()` turns into an express app."""
    while node is not None and node.type == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is None or fn.type != "member_expression" or text(fn.child_by_field_name("property")) not in BUILDER_CHAIN:
            return False
        node = fn.child_by_field_name("object")
    while node is not None and node.type in ("parenthesized_expression", "await_expression") and node.named_children:
        node = node.named_children[0]
    if node is None:
        return False
    if node.type == "identifier":
        return text(node) in names.get("built", ())
    ctor = node.child_by_field_name("constructor") if node.type == "new_expression" else None
    return ctor is not None and text(ctor) in names.get("builders", ())


def _is_require_of(node: Node | None, module: str) -> bool:
    """`require('express')`."""
    if node is None or node.type != "call_expression" or text(node.child_by_field_name("function")) != "require":
        return False
    args = node.child_by_field_name("arguments")
    return args is not None and len(args.named_children) == 1 and string_value(args.named_children[0]) == module


def is_server_factory_call(value: Node, facts: FileFacts) -> bool:
    """`createApp()` imported from a project module, or `http.createServer(...)`: what
    `x.listen()` is called on when the app is built in a helper (server.ts / index.ts)."""
    if value.type == "await_expression" and value.named_children:
        value = value.named_children[0]
    if value.type != "call_expression":
        return False
    chain = member_chain(value.child_by_field_name("function"))
    if not chain:
        return False
    for imp in facts.imports:
        bound = {imp.default, imp.namespace} | {local for local, _ in imp.names}
        if chain[0] not in bound:
            continue
        if imp.module in HTTP_MODULES:
            args = value.child_by_field_name("arguments")
            return chain[-1] in ("createServer", "createSecureServer") and bool(args and args.named_children)
        return imp.module.startswith(".") and len(chain) <= 2
    return False


def required_project_module(facts: FileFacts, name: str) -> bool:
    """`const app = require('./config/express'); app.listen(port)`: the app is built in another
    module of the project and started here (bin/www, index.js), so this file is the entry."""
    return any(imp.kind == "require" and imp.default == name and imp.module.startswith(".") for imp in facts.imports)


def listen_call(node: Node, chain: tuple[str, ...], facts: FileFacts) -> None:
    """`app.listen()` on this file's app or server, or on the app a project module builds."""
    if len(chain) == 2 and chain[1] == "listen" and (
        chain[0] in facts.apps or chain[0] in facts.servers or required_project_module(facts, chain[0])
    ):
        facts.listen_line = line_of(node)


def bootstrap_locals(facts: FileFacts) -> dict[str, list[tuple[str, str]]]:
    """Local name -> the (module, imported name) pairs it is bound to that a framework
    bootstrap (`BOOTSTRAPS`) can be called on, in import order: what `entry_call` looks up
    for a two-part chain, computed once per file."""
    modules = {module for module, _, _ in BOOTSTRAPS}
    out: dict[str, list[tuple[str, str]]] = {}
    for imp in facts.imports:
        if imp.module in modules:
            for local, imported in imp.names:
                out.setdefault(local, []).append((imp.module, imported))
    return out


def entry_call(
    node: Node, callee: Node | None, chain: tuple[str, ...] | None, facts: FileFacts, express_names: dict[str, set[str]],
    bootstraps: dict[str, list[tuple[str, str]]] | None = None,
) -> None:
    """Entry-point facts of one call (`callee` its function, `chain` that function's
    member chain): an express app held by a class (`this.app = express()`,
    `this.app.listen()` in a method), `.listen()` on a name this file does not create
    (the app imported from app.ts), `http.createServer(app).listen()`, a framework bootstrap.
    `bootstraps`: the file's `bootstrap_locals` (computed here when not given)."""
    if callee is None:
        return
    # a plain-name chain says most of what `is_express_call` would: `express()` is the only
    # app it can be (a member callee gives a router at most; `require('express')()` has no chain)
    if chain is not None:
        is_app = callee.type == "identifier" and chain[0] in express_names["express"]
        if not is_app and express_names.get("built") and chain[-1] in APP_BUILDERS.values():
            is_app = is_express_call(node, express_names) == "app"  # `this.app = server.build()`
    else:
        is_app = is_express_call(node, express_names) == "app"
    if is_app and (cls := _class_of(node)) is not None:
        parent = node.parent
        while parent is not None and parent.type in ("as_expression", "parenthesized_expression", "non_null_expression"):
            parent = parent.parent
        left = parent.child_by_field_name("left") if parent is not None and parent.type == "assignment_expression" else None
        if left is not None and left.type == "member_expression" and text(left.child_by_field_name("object")) == "this":
            _add(facts.app_classes, cls)
        elif parent is not None and parent.type == "public_field_definition":  # `private app = express();`
            _add(facts.app_classes, cls)
    if chain is not None:
        if len(chain) == 3 and chain[0] == "this" and chain[2] == "listen" and (cls := _class_of(node)) is not None:
            _add(facts.listen_classes, cls)
        if len(chain) == 2:
            if chain[1] == "listen" and chain[0] not in facts.apps and chain[0] not in facts.servers:
                _add(facts.listens_on, chain[0])
            if bootstraps is None:
                bootstraps = bootstrap_locals(facts)
            for module, imported in bootstraps.get(chain[0], ()):
                if (module, imported, chain[1]) in BOOTSTRAPS:
                    facts.bootstraps.append((".".join(chain), line_of(node)))
        return  # (a callee with a chain has a name or `this` for its object: not `new X()` or a call)
    if callee.type == "member_expression" and text(callee.child_by_field_name("property")) == "listen":
        inner = callee.child_by_field_name("object")
        if inner is not None and inner.type == "new_expression":  # new App([...]).listen()
            ctor = inner.child_by_field_name("constructor")
            if ctor is not None and ctor.type == "identifier":
                _add(facts.listens_on, text(ctor))
        if inner is not None and is_express_call(inner, express_names) == "app":  # `server.build().listen()`
            facts.listen_line = line_of(node)
        if inner is not None and inner.type == "call_expression":  # http.createServer(app).listen()
            inner_chain = member_chain(inner.child_by_field_name("function"))
            args = inner.child_by_field_name("arguments")
            first = args.named_children[0] if args is not None and args.named_children else None
            if inner_chain and inner_chain[-1] in ("createServer", "createSecureServer") and first is not None and first.type == "identifier":
                bound = {imp.module for imp in facts.imports for n in (imp.default, imp.namespace, *(l for l, _ in imp.names)) if n == inner_chain[0]}
                if bound & set(HTTP_MODULES):
                    if text(first) in facts.apps:
                        facts.listen_line = line_of(node)
                    else:
                        _add(facts.listens_on, text(first))


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


def registration(
    node: Node,
    callee: Node,
    facts: FileFacts,
    functions: list[FunctionFact],
    starts: list[int],
    express_names: dict[str, set[str]],
) -> None:
    """The routes one call (`node`, a call of `callee`) registers: `app.get(...)`,
    `router.use(...)`, `router.route('/x').get(...).post(...)`."""
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
                    from otelize.analysis.routepaths import loop_mounts

                    looped = loop_mounts(node, arg_nodes)
                    if looped is not None:  # one mount per element of a literal array the loop walks
                        for path, router, line in looped:
                            facts.routes.append(RouteReg(owner, "USE", path, (HandlerRef("identifier", router, line),), line))
                        return
                paths = path_values(arg_nodes[0], facts) if arg_nodes and path_prefix is None else None
                if paths is None and method == "use" and path_prefix is None and len(arg_nodes) > 1:
                    from otelize.analysis.routepaths import mount_prefix

                    # `app.use(prefix, router)`: a prefix held in a variable that is a string
                    prefix = mount_prefix(arg_nodes[0], facts, functions, starts)
                    paths = [prefix] if prefix is not None else None
                if paths is None and method != "use" and arg_nodes and path_prefix is None:
                    # an HTTP method's first argument is its path, whatever computes it: the
                    # elements of a literal array a loop walks, or the source text as `${...}`
                    from otelize.analysis.routepaths import computed_path, loop_paths

                    paths = loop_paths(node, arg_nodes[0]) or [computed_path(arg_nodes[0], facts)]
                if paths is not None and (not paths[0].startswith("$") or paths[0].startswith("${")):
                    arg_nodes = arg_nodes[1:]  # (an imported `$NAME` stays a handler too: it may be middleware)
                handlers = tuple(h for a in arg_nodes if (h := _handler(a)) is not None)
                # the line of `.get` / `.post`, not of the start of a `router.route('/x')...` chain
                line = line_of(callee.child_by_field_name("property") or node)
                for path in paths if paths is not None else [path_prefix]:  # app.get(['/a', '/b'], h): two routes
                    facts.routes.append(RouteReg(owner, method.upper(), path, handlers, line))


def imported_names(facts: FileFacts) -> set[str]:
    return {n for imp in facts.imports for n in (imp.default, *(local for local, _ in imp.names)) if n}


def path_values(node: Node, facts: FileFacts) -> list[str] | None:
    """The route path(s) an argument gives: a string literal, a module-level string
    constant (an imported one as `$NAME`, resolved by the graph), an array of those,
    or a regular expression (as `~/regex/`); None when the argument is not a path
    (a handler, a middleware)."""
    if node.type == "regex":
        return ["~" + text(node)]
    value = string_value(node)
    if value is not None:
        if "\\" in value:
            from otelize.analysis.routepaths import decode_escapes

            value = decode_escapes(value)
        return [value]
    if node.type == "identifier" and text(node) in facts.constants:
        return [facts.constants[text(node)]]
    if node.type == "identifier" and node.next_named_sibling is not None and text(node) in imported_names(facts):
        return ["$" + text(node)]  # an imported constant: the graph resolves it (a path is never the last argument)
    if node.type == "template_string":
        from otelize.analysis.routepaths import template_path

        return [p] if (p := template_path(node, facts)) is not None else None
    if node.type == "member_expression":
        from otelize.analysis.routepaths import member_path

        return [p] if (p := member_path(node, facts)) is not None else None
    if node.type in ("binary_expression", "parenthesized_expression"):  # `base + '/ping'`
        from otelize.analysis.routepaths import concat_path, is_concatenation

        inner = node
        while inner.type == "parenthesized_expression" and inner.named_children:
            inner = inner.named_children[0]
        return [concat_path(inner, facts)] if is_concatenation(inner) else None
    if node.type == "array" and node.named_children:
        values = [path_values(c, facts) for c in node.named_children if c.type != "comment"]
        if all(v is not None and len(v) == 1 for v in values):
            return [v[0] for v in values]  # type: ignore[index]
    return None


def route_path(route_call: Node, facts: FileFacts) -> str | None:
    """The path of `router.route(<path>)`: what `path_values` reads, else the source text
    as `${...}` (computed at runtime)."""
    args = route_call.child_by_field_name("arguments")
    first = next((a for a in args.named_children if a.type != "comment"), None) if args is not None else None
    if first is None:
        return None
    paths = path_values(first, facts)
    if paths:
        return paths[0]
    from otelize.analysis.routepaths import computed_path

    return computed_path(first, facts)


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
            return text(inner), route_path(node, facts)
        node = inner
    return None, None


def _handler(node: Node) -> HandlerRef | None:
    if node.type == "identifier":
        return HandlerRef("identifier", text(node), line_of(node))
    if node.type == "member_expression":
        chain = member_chain(node)
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
            return HandlerRef(wrapped.kind, wrapped.name, wrapped.line, wrapped.params, text(node.child_by_field_name("function")))
        return HandlerRef("call", text(node.child_by_field_name("function")), line_of(node))
    return None
