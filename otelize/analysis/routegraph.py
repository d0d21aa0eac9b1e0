"""routegraph: the routes of the app graph, with their full mounted paths.

From every file's registrations: which routers each `use()` mounts (imported,
returned by a function, class properties, routers passed as parameters, dynamic
requires), the prefixes each router is reached under from the apps, decorator
controllers' prefixes (routing-controllers, Ts.ED, tsoa), the route nodes and
their `handles` edges, middleware, unmounted routers, and the entry points (the
files that start an app, also one built elsewhere).
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from otelize.analysis.records import FileFacts, FunctionFact, HandlerRef, RouteReg
from otelize.analysis.symbols import sym_id
from otelize.project.model import Route

if TYPE_CHECKING:
    from otelize.analysis.graph import AppGraph
    from otelize.analysis.symbols import Symbols


def add_routes(project, facts, app_graph: AppGraph, symbols: Symbols) -> None:  # noqa: ANN001, C901
    """The route nodes and `handles` edges, the full mounted paths, the middleware, the
    unmounted routes and the entry points, into `app_graph`."""
    g = app_graph.graph
    lookup, resolve_chain = symbols.lookup, symbols.resolve_chain

    def owner_of(file: str, name: str) -> tuple[str, str] | None:
        f = facts[file]
        name = f.aliases.get(name, name)
        if name in f.routers or name in f.apps or name in f.route_owners:
            return file, name
        return None

    def symbol_of(file: str, chain: tuple[str, ...]) -> tuple[str, str] | None:
        """The (file, qualname) of the function a call chain names."""
        sid = resolve_chain(file, None, chain)
        if sid is None and len(chain) == 1 and (loc := lookup(file, chain[0])) is not None and loc[1] == "*":
            value = facts[loc[0]].exports.get("=") if loc[0] in facts else None  # `module.exports = (app) => ...`
            fn = symbols.function(loc[0], value) if value else None
            sid = sym_id(loc[0], fn.qualname) if fn is not None else None
        if sid is None or sid not in g:
            return None
        return g.nodes[sid]["file"], g.nodes[sid]["qualname"]

    def class_routers(prop: str) -> list[tuple[str, str]]:
        """Every class-property router named `prop` (`public router = Router()`)."""
        out = []
        for p in sorted(facts):
            classes = {c.name for c in facts[p].classes}
            out += [(p, r) for r in facts[p].routers if "." in r and r.split(".", 1)[1] == prop and r.split(".", 1)[0] in classes]
        return out

    def children_of(file: str, ref: HandlerRef, parent: str) -> list[tuple[str, str]]:
        """The routers a `use()` argument stands for."""
        if ref.via is not None and ref.kind != "call":
            # `app.use('/users', userRouter(express, db))`: the router the called function
            # returns; else the call wraps its argument (`wrap(router)`)
            hits = children_of(file, HandlerRef("call", ref.via, ref.line), parent)
            if hits:
                return hits
        if ref.kind == "identifier":
            loc = lookup(file, ref.name)
            if loc is None:
                return []
            tfile, tname = loc
            if tname == "default":
                tname = facts[tfile].exports.get("default", "default")
            elif tname == "*":  # `import x = require('./r')` of a module that does `export = router`
                tname = facts[tfile].exports.get("=", "*")
            hit = owner_of(tfile, tname)
            return [hit] if hit is not None and facts[tfile].route_owners.get(tname) != "param-router" else []
        if ref.kind == "call":  # `app.use('/api', routes())`: the router the function returns
            fn = symbol_of(file, tuple(ref.name.split(".")))
            if fn is None:
                return []
            owner = facts[fn[0]].returns_router.get(fn[1])
            hit = owner_of(fn[0], owner) if owner else None
            return [hit] if hit is not None else []
        if ref.kind == "member":
            chain = ref.name.split(".")
            if len(chain) != 2:
                return []
            head, prop = chain
            if head == "this":
                cls = parent.split(".", 1)[0] if "." in parent else None
                hit = owner_of(file, f"{cls}.{prop}") if cls else None
                return [hit] if hit is not None else []
            loc = lookup(file, head)
            if loc is not None and loc[0] in facts:  # `routes.users`: a router an object or module holds
                held = facts[loc[0]].exports.get(prop) if loc[1] == "*" else facts[loc[0]].object_members.get(f"{loc[1]}.{prop}")
                hits = children_of(loc[0], HandlerRef("identifier", held, ref.line), parent) if held else []
                if hits:
                    return hits
            if loc is not None and loc[1] != "*" and loc[0] in facts:
                cfacts = facts[loc[0]]
                cls = loc[1] if any(c.name == loc[1] for c in cfacts.classes) else cfacts.instances.get(loc[1])
                if cls is not None:  # `new UsersRoute().router`, `usersRoute.router`
                    hit = owner_of(loc[0], f"{cls}.{prop}")
                    if hit is None:
                        target = lookup(loc[0], cls)
                        hit = owner_of(target[0], f"{target[1]}.{prop}") if target else None
                    return [hit] if hit is not None else []
            # `routes.forEach(route => app.use('/', route.router))`: any class's router property
            return class_routers(prop)
        return []

    def constant_key(file: str, expr: str) -> tuple[str, str] | None:
        """(file, key of its `constants`) an imported `NAME` / `obj.key` stands for: also a
        member of a required CommonJS module (`c.PREFIX`, `const c = require('./c')`)."""
        head, _, rest = expr.partition(".")
        loc = lookup(file, head)
        if loc is None or loc[0] not in facts:
            return None
        if loc[1] == "*":
            if not rest:
                return None
            first, dot, more = rest.partition(".")
            return loc[0], facts[loc[0]].exports.get(first, first) + dot + more
        return loc[0], f"{loc[1]}.{rest}" if rest else loc[1]

    def resolve_path(file: str, raw: str) -> str | None:
        """`$NAME` / `$obj.key` (an imported constant) and `${expr}` pieces of a path."""
        def value(expr: str) -> str | None:
            key = constant_key(file, expr)
            return facts[key[0]].constants.get(key[1]) if key is not None else None

        if raw.startswith("$") and not raw.startswith("${"):
            return value(raw[1:])
        return re.sub(r"\$\{([A-Za-z_$][\w$.]*(?:\(\)\.[\w$]+)?)\}", lambda m: value(m.group(1)) or m.group(0), raw)

    def split(file: str, reg: RouteReg) -> tuple[str, tuple[HandlerRef, ...]]:
        """A registration's path and handlers. `$NAME` is an imported name in the path
        position: a string constant of its module is the path; anything else (imported
        middleware) stays the first handler."""
        if reg.path is None or "$" not in reg.path:
            return reg.path or "", reg.handlers
        resolved = resolve_path(file, reg.path)
        if not reg.path.startswith("$") or reg.path.startswith("${"):
            return resolved or reg.path, reg.handlers
        name = reg.path[1:]
        if resolved is None and reg.method == "USE":
            key = constant_key(file, name)
            if key is None or key[1] not in facts[key[0]].computed_constants:
                return "", reg.handlers  # not known to be a string: middleware
            resolved = "${" + name + "}"  # a prefix computed at runtime (`process.env.API_PREFIX`)
        if resolved is None:  # an HTTP method's first argument is its path: computed at runtime
            resolved = "${" + name + "}"
        return resolved, tuple(h for i, h in enumerate(reg.handlers) if not (i == 0 and h.kind in ("identifier", "member") and h.name == name))

    def dynamic_targets(file: str, chain: tuple[str, ...]) -> list[tuple[str, str]]:
        """`route.register(router)` where `route = require(<computed path>)`: the
        `register` export of every module in this file's folder tree."""
        if len(chain) != 2 or chain[0] not in facts[file].dynamic_requires:
            return []
        folder = posixpath.dirname(file)
        out = []
        for p in sorted(facts):
            if p != file and (not folder or p.startswith(folder + "/")) and chain[1] in facts[p].exports:
                local = facts[p].exports[chain[1]]
                if facts[p].function(local) is not None:
                    out.append((p, local))
        return out

    # mounts: (file, owner) -> [(prefix, (file, router))]
    mounts: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    mount_children: dict[tuple[str, int], list[tuple[str, str]]] = {}  # (file, line) of a use() -> routers
    for path in sorted(facts):
        for reg in facts[path].routes:
            if reg.method != "USE":
                continue
            prefix, handlers = split(path, reg)
            for ref in handlers:
                for child in children_of(path, ref, reg.owner):
                    mounts.setdefault((path, reg.owner), []).append((prefix, child))
                    mount_children.setdefault((path, reg.line), []).append(child)
        for arg in facts[path].router_args:  # `auth(app)`: the parameter is the router passed
            fn = symbol_of(path, arg.chain)
            targets = [fn] if fn is not None else dynamic_targets(path, arg.chain)
            for tfile, qualname in targets:
                for index, owner in facts[tfile].param_routers.get(qualname, []):
                    if index == arg.index:
                        mounts.setdefault((path, arg.owner), []).append(("", (tfile, owner)))

    apps = [(p, a) for p in sorted(facts) for a in facts[p].apps]
    app_graph.apps = apps
    # an app parameter is a root unless the project passes it something: then what it is
    # passed says where it is mounted (`(app: Express) => ...` called as `users(router)`)
    passed = {child for children in mounts.values() for _, child in children}
    roots = apps + [(p, o) for p in sorted(facts) for o, kind in sorted(facts[p].route_owners.items())
                    if kind == "app" or (kind == "param-app" and (p, o) not in passed)]
    prefixes: dict[tuple[str, str], list[str]] = {}

    def visit(owner: tuple[str, str], prefix: str, depth: int) -> None:
        if depth > 16 or prefix in prefixes.get(owner, []):
            return
        prefixes.setdefault(owner, []).append(prefix)
        for sub, child in mounts.get(owner, []):
            visit(child, _join(prefix, sub), depth + 1)

    for root in roots:
        visit(root, "", 0)
    controller_prefixes = _controller_prefixes(project, facts, lookup, resolve_path)
    has_tsoa = any(c.framework == "tsoa" for f in facts.values() for c in f.controllers)

    def handler_symbol(path: str, ref: HandlerRef, by_line: dict[int, FunctionFact], caller: FunctionFact | None = None) -> str | None:
        if ref.kind == "inline":
            fn = by_line.get(ref.line)
            return sym_id(path, fn.qualname) if fn is not None else None
        if ref.kind in ("identifier", "member"):
            return resolve_chain(path, caller, tuple(ref.name.split(".")))
        return None

    routes: list[Route] = []
    unmounted: list[Route] = []
    for path in sorted(facts):
        f = facts[path]
        by_line = {}
        for fn in f.functions:
            by_line.setdefault(fn.line, fn)
        generated = has_tsoa and "<tsoa-generated>" in f.route_owners  # the decorators are the routes
        for reg in f.routes:
            sub, handlers = split(path, reg)
            caller = None
            if "." in reg.owner:  # `this.router.get(..., this.user.getUsers)`: resolve in the class
                cls = reg.owner.split(".", 1)[0]
                caller = next((fn for fn in f.functions if fn.class_name == cls), None)
            if reg.method == "USE":
                mounted_here = mount_children.get((path, reg.line), [])
                for ref in handlers:  # `app.use('/x', auth, router)`: auth is middleware too
                    if not mounted_here or not children_of(path, ref, reg.owner):
                        app_graph.middleware.append((path, reg.line, ref.name))
                        symbol = handler_symbol(path, ref, by_line, caller)
                        if symbol is not None:
                            app_graph.use_handlers.add(symbol)
                continue
            if generated:
                continue
            if reg.owner.startswith("@"):
                full_paths = [_join(p, sub) for p in controller_prefixes.get((path, reg.owner[1:]), [""])]
            else:
                full_paths = [_join(p, sub) for p in prefixes.get((path, reg.owner), [])]
            handler = next((h.name for h in reversed(handlers)), "<none>")
            if not full_paths:
                route = Route(reg.method, _join("", sub), path, reg.line, handler)
                unmounted.append(route)
                rids = [f"route:{reg.method} {route.path} (unmounted {path}:{reg.line})"]
                g.add_node(rids[0], kind="route", file=path, line=reg.line, method=reg.method, path=route.path, unmounted=True)
            else:
                rids = []
                for full in full_paths:
                    routes.append(Route(reg.method, full, path, reg.line, handler))
                    rid = f"route:{reg.method} {full}"
                    g.add_node(rid, kind="route", file=path, line=reg.line, method=reg.method, path=full)
                    rids.append(rid)
            for ref in handlers:
                target = handler_symbol(path, ref, by_line, caller)
                if target is not None and target in g:
                    for rid in rids:
                        g.add_edge(rid, target, kind="handles")
    routes.sort(key=lambda r: (r.path, _METHOD_ORDER.get(r.method, 99), r.file, r.line))
    unmounted.sort(key=lambda r: (r.file, r.line, r.path, _METHOD_ORDER.get(r.method, 99)))
    app_graph.routes = routes
    app_graph.unmounted = unmounted
    listen_files = [p for p in sorted(facts) if facts[p].listen_line is not None]
    listen_files += _started_elsewhere(facts, lookup, set(listen_files))
    entries = sorted(set(listen_files)) or ([apps[0][0]] if apps else []) or _started_by_script(project, facts)
    # several apps: every file that listens is an entry point; the primary one is the
    # shallowest conventional name (src/index.ts over src/admin/main.ts)
    app_graph.entries = sorted(entries, key=_entry_rank)
    app_graph.entry = app_graph.entries[0] if app_graph.entries else None


_TEST_FILE = re.compile(r"(^|/)(__tests__|tests?|e2e)/|\.(test|spec|e2e)\.[cm]?[jt]sx?$")


def _started_elsewhere(facts: dict[str, FileFacts], lookup, known: set[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Files that start an app built in another file: `app.listen()` / `http.createServer(app)
    .listen()` on an app imported from app.ts; `new App([...]).listen()` of a class that holds
    `this.app = express()` and listens in a method; a framework bootstrap
    (`PlatformExpress.bootstrap(Server)`)."""
    out = []
    for path in sorted(facts):
        if path in known:
            continue
        f = facts[path]
        if f.bootstraps:
            out.append(path)
            continue
        hit = False
        for name in f.listens_on:
            loc = lookup(path, name)
            if loc is None:
                continue
            tfile, tname = loc
            tf = facts.get(tfile)
            if tf is None:
                continue
            tname = tf.exports.get("default", tname) if tname == "default" else tname
            tname = tf.aliases.get(tname, tname)
            if tname in tf.apps or tname in tf.servers or tname in tf.app_classes or (tname == "*" and tf.apps):
                hit = True
        # what `.listen()` is called on: `new App().listen()`, or `app.listen()` of `const app = new App()`
        instances = dict(f.instances)
        for types in f.local_types.values():
            instances.update(types)
        listened = {instances.get(n, n) for n in f.listens_on}
        for call in f.calls:
            if not call.is_new or len(call.chain) != 1 or call.chain[0] not in listened:
                continue
            loc = lookup(path, call.chain[0])
            if loc is not None and loc[0] in facts:
                tf = facts[loc[0]]
                cname = tf.exports.get("default", loc[1]) if loc[1] == "default" else loc[1]
                if cname in tf.app_classes and cname in tf.listen_classes:
                    hit = True
            elif call.chain[0] in f.app_classes and call.chain[0] in f.listen_classes:
                hit = True  # the class and `new App().listen()` in one file
        for call in f.calls if not hit else ():
            # `new MoocApp().start()` of a class that listens on a server class it holds
            # (`server?: Server; start() { this.server = new Server(port); return this.server.listen(); }`)
            if call.is_new and len(call.chain) == 1 and _starts_a_server(facts, lookup, path, call.chain[0]):
                hit = True
                break
        if hit and not _TEST_FILE.search(path):  # a test starts the app too, but node never runs it
            out.append(path)
    return out


def _starts_a_server(facts: dict[str, FileFacts], lookup, path: str, name: str) -> bool:  # type: ignore[no-untyped-def]
    """`name` (in `path`) is a class that calls `this.<field>.listen()` and has a field typed
    with, or holding, a class that builds an express app and listens (`this.app = express()`)."""
    loc = lookup(path, name)
    if loc is None or loc[0] not in facts:
        return False
    cfile, cname = loc
    cf = facts[cfile]
    cname = cf.exports.get("default", cname) if cname == "default" else cname
    if cname not in cf.listen_classes or cname in cf.app_classes:
        return False  # (a class that holds the app itself is the check above)
    for cls in cf.classes:
        if cls.name != cname:
            continue
        for held in sorted(set(cls.field_types.values())):
            target = lookup(cfile, held) if not held.startswith("@") else None
            if target is None or target[0] not in facts:
                continue
            sf = facts[target[0]]
            server = sf.exports.get("default", target[1]) if target[1] == "default" else target[1]
            if server in sf.app_classes and server in sf.listen_classes:
                return True
    return False


_NODE_FLAGS_WITH_VALUE = frozenset({"-r", "--require", "--import", "--loader", "--experimental-loader", "-e", "--eval"})


def _started_by_script(project, facts: dict[str, FileFacts]) -> list[str]:  # noqa: ANN001
    """The source file package.json's start script runs (`node dist`, `node dist/index.js`),
    mapped back through the build (tsc's outDir): the entry when no file listens itself and
    none creates an app as a plain variable (the app is built in a class, started through a
    cluster fork or a chain of singletons: `cluster.isMaster ? fork() : App.loadServer()`).
    Only a project whose files hold an express app, and only a file the build provably emits."""
    if not any(f.apps or f.app_classes for f in facts.values()):
        return []
    from otelize.project.build import analyse, script_steps

    scripts = project.package_json.get("scripts")
    if not isinstance(scripts, dict):
        return []
    started: list[str] = []
    for tokens in script_steps(scripts, "start"):
        if posixpath.basename(tokens[0]) != "node":
            continue
        args = iter(tokens[1:])
        for arg in args:
            if arg in _NODE_FLAGS_WITH_VALUE:
                next(args, None)
            elif not arg.startswith("-"):
                started.append(posixpath.normpath(arg))
                break
    if not started:
        return []
    candidates = set()
    for target in started:
        stem, ext = posixpath.splitext(target)
        candidates.update((target,) if ext in (".js", ".cjs", ".mjs") else (target + ".js", posixpath.join(target, "index.js")))
    build = analyse(project.root, project.package_json)
    return [path for path in sorted(facts) if build.emits(path) in candidates and not _TEST_FILE.search(path)][:1]


def _controller_prefixes(project, facts, lookup, resolve_path) -> dict[tuple[str, str], list[str]]:  # noqa: ANN001, C901
    """(file, class) -> the mount paths of a decorator controller's own path: routing-
    controllers' `routePrefix`, Ts.ED's `mount` (and `children`), tsoa's routes basePath."""
    mounts: dict[str, list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]] = {}
    for p in sorted(facts):
        for framework, prefix, names, globs in facts[p].framework_mounts:
            mounts.setdefault(framework, []).append((p, resolve_path(p, prefix) or prefix, names, globs))
    tsoa_base = _tsoa_base_path(project)
    controllers = {(p, c.name): c for p in sorted(facts) for c in facts[p].controllers}
    parents: dict[tuple[str, str], tuple[str, str]] = {}
    for (p, name), c in controllers.items():
        for child in c.children:
            loc = lookup(p, child)
            if loc is not None and loc in controllers:
                parents[loc] = (p, name)

    def own_prefixes(key: tuple[str, str], depth: int = 0) -> list[str]:
        c = controllers[key]
        if key in parents and depth < 8:
            parent = controllers[parents[key]]
            return [_join(pp, parent.path) for pp in own_prefixes(parents[key], depth + 1)]
        if c.framework == "tsoa":
            return [tsoa_base]
        found = mounts.get(c.framework, [])
        if c.framework in ("routing-controllers", "inversify"):  # every controller under every server's prefix
            return sorted({m[1] for m in found}) or [""]
        if not found:  # no `mount` configuration in the project: the controller's own path
            return [""]
        matched = []
        for mfile, prefix, names, globs in found:
            if any(lookup(mfile, n) == key for n in names) or any(_glob_matches(gl, key[0]) for gl in globs):
                matched.append(prefix)
        if not matched and not any(names or globs for _, _, names, globs in found) and len({m[1] for m in found}) == 1:
            matched = [found[0][1]]  # a mount whose controllers we cannot read (`...Object.values(x)`)
        return sorted(set(matched))  # none: a controller no mount names is unmounted

    return {key: [_join(pp, c.path) for pp in own_prefixes(key)] for key, c in controllers.items()}


def _glob_matches(glob: str, path: str) -> bool:
    """A Ts.ED mount glob (`controllers/**/*.ts`, what follows `${rootDir}/`) against a project path."""
    rx = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            rx += "(?:.*/)?"
            i += 3
        elif glob[i] == "*":
            rx += "[^/]*"
            i += 1
        else:
            rx += re.escape(glob[i])
            i += 1
    return re.search(r"(?:^|/)" + rx + "$", path) is not None


def _tsoa_base_path(project) -> str:  # noqa: ANN001
    """tsoa.json `routes.basePath` (tsoa's default is `/`)."""
    import json

    from otelize.project.jsonc import strip_jsonc

    config = project.root / "tsoa.json"
    try:
        data = json.loads(strip_jsonc(config.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return "/"
    routes = data.get("routes") if isinstance(data, dict) else None
    base = routes.get("basePath") if isinstance(routes, dict) else None
    return base if isinstance(base, str) else "/"


def _entry_rank(path: str) -> tuple[int, int, str]:
    stem = posixpath.basename(path).split(".", 1)[0]
    return (path.count("/"), 0 if stem in ("index", "server", "main", "app") else 1, path)


_METHOD_ORDER = {m: i for i, m in enumerate(["GET", "POST", "PUT", "PATCH", "DELETE", "ALL", "OPTIONS", "HEAD"])}


def _join(prefix: str, path: str) -> str:
    if path.startswith("~"):  # a regular expression route: shown after its mount path, as written
        return _join(prefix, "").rstrip("/") + path[1:]
    joined = "/" + "/".join(part for part in (prefix + "/" + path).split("/") if part)
    return joined
