"""graph: modules, symbols and routes in one networkx DiGraph.

Node ids:
- ``mod:<file>``                module
- ``sym:<file>::<qualname>``   function / method
- ``route:<METHOD> <path>``    route
Edge ``kind`` attribute: ``imports``, ``defines``, ``calls``, ``handles``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import networkx as nx

from otelize.facts import FileFacts, FunctionFact, HandlerRef, RouteReg
from otelize.project import Project, Route

RESOLVE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")  # TypeScript first: `./x` is x.ts over a stale x.js


def mod_id(path: str) -> str:
    return f"mod:{path}"


def sym_id(path: str, qualname: str) -> str:
    return f"sym:{path}::{qualname}"


@dataclass
class AppGraph:
    graph: nx.DiGraph
    routes: list[Route]
    middleware: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, handler)
    use_handlers: set[str] = field(default_factory=set)  # symbols registered with app/router.use()
    entry: str | None = None  # the primary entry point
    entries: list[str] = field(default_factory=list)  # every file that starts an app (listen)
    apps: list[tuple[str, str]] = field(default_factory=list)  # (file, var)

    def symbols_reached_from(self, node: str) -> set[str]:
        calls = self.graph.edge_subgraph(
            [(u, v) for u, v, k in self.graph.edges(data="kind") if k in ("calls", "handles")]
        )
        if node not in calls:
            return set()
        return set(nx.descendants(calls, node))


class Resolver:
    """Resolves import specifiers to project files (relative, index, tsconfig paths)."""

    def __init__(self, project: Project):
        self.project = project
        self.files = set(project.files)

    def resolve(self, from_file: str, spec: str) -> str | None:
        if spec.startswith("."):
            base = posixpath.normpath(posixpath.join(posixpath.dirname(from_file), spec))
            return self._try(base)
        for pattern, targets in self.project.paths.items():
            base_dir = self.project.base_url or ""
            if pattern.endswith("*"):
                prefix = pattern[:-1]
                if not spec.startswith(prefix):
                    continue
                rest = spec[len(prefix) :]
                candidates = [t.replace("*", rest) for t in targets]
            elif spec == pattern:
                candidates = list(targets)
            else:
                continue
            for cand in candidates:
                hit = self._try(posixpath.normpath(posixpath.join(base_dir, cand)))
                if hit:
                    return hit
        if self.project.base_url is not None and not spec.startswith("@"):
            hit = self._try(posixpath.normpath(posixpath.join(self.project.base_url, spec)))
            if hit:
                return hit
        return None

    def _try(self, base: str) -> str | None:
        base = base.lstrip("./") if base.startswith("./") else base
        if base in self.files:
            return base
        stem = base
        for js, ts in ((".js", ".ts"), (".jsx", ".tsx"), (".mjs", ".mts"), (".cjs", ".cts")):
            if base.endswith(js):
                stem = base[: -len(js)]
                if stem + ts in self.files:
                    return stem + ts
        for suffix in RESOLVE_SUFFIXES:
            if stem + suffix in self.files:
                return stem + suffix
        for suffix in RESOLVE_SUFFIXES:
            cand = posixpath.join(stem, "index" + suffix)
            if cand in self.files:
                return cand
        return None


def build_graph(project: Project, facts: dict[str, FileFacts]) -> AppGraph:
    g: nx.DiGraph = nx.DiGraph()
    resolver = Resolver(project)
    paths = sorted(facts)
    # import resolution: file -> local name -> (target file, exported name)
    bindings: dict[str, dict[str, tuple[str, str]]] = {}
    for path in paths:
        f = facts[path]
        g.add_node(mod_id(path), kind="module", file=path)
        local: dict[str, tuple[str, str]] = {}
        for imp in f.imports:
            target = resolver.resolve(path, imp.module)
            if target is None:
                continue
            g.add_edge(mod_id(path), mod_id(target), kind="imports")
            if imp.default:
                local[imp.default] = (target, "default" if imp.kind == "esm" else "*")
            if imp.namespace:
                local[imp.namespace] = (target, "*")
            for name, imported in imp.names:
                local[name] = (target, imported)
        bindings[path] = local
        for fn in f.functions:
            if fn.kind == "signature":
                continue
            sid = sym_id(path, fn.qualname)
            g.add_node(sid, kind="symbol", file=path, qualname=fn.qualname, line=fn.line)
            g.add_edge(mod_id(path), sid, kind="defines")

    def export_target(file: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Follow exports/re-exports to (file, local name)."""
        if depth > 8 or file not in facts:
            return None
        f = facts[file]
        if name in f.exports:
            return file, f.exports[name]
        for module, pairs in f.reexports:
            target = resolver.resolve(file, module)
            if target is None:
                continue
            if not pairs:
                hit = export_target(target, name, depth + 1)
                if hit:
                    return hit
            for exported, local in pairs:
                if exported == name:
                    return export_target(target, local, depth + 1)
        return None

    def lookup(file: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Resolve a local identifier in `file` to its defining (file, local name)."""
        f = facts.get(file)
        if f is None or depth > 8:
            return None
        if name in bindings.get(file, {}):
            target, exported = bindings[file][name]
            if exported == "*":
                return target, "*"
            hit = export_target(target, exported)
            if hit is None:
                return None
            tfile, tname = hit
            if tfile != file and tname in bindings.get(tfile, {}):  # `import x; export { x }`
                return lookup(tfile, tname, depth + 1)
            return hit
        return file, name

    def class_location(file: str, class_name: str) -> tuple[str, str] | None:
        loc = lookup(file, class_name)
        if loc is None:
            return None
        cfile, cname = loc
        cfacts = facts.get(cfile)
        if cfacts and any(c.name == cname for c in cfacts.classes):
            return cfile, cname
        return None

    def instance_class(file: str, var: str) -> tuple[str, str] | None:
        """`var` holds `new X()` somewhere: return X's (file, name)."""
        loc = lookup(file, var)
        if loc is None:
            return None
        vfile, vname = loc
        if vname == "*":  # a required CommonJS module whose value is an instance: `module.exports = new X()`
            vname = facts[vfile].exports.get("=", "*")
        cls = facts[vfile].instances.get(vname)
        if cls is None:
            return None
        return class_location(vfile, cls)

    def method_symbol(cls: tuple[str, str] | None, method: str) -> str | None:
        seen = 0
        while cls is not None and seen < 8:
            cfile, cname = cls
            fn = facts[cfile].function(f"{cname}.{method}")
            if fn is not None:
                return sym_id(cfile, fn.qualname)
            parent = next((c.superclass for c in facts[cfile].classes if c.name == cname), None)
            cls = class_location(cfile, parent) if parent else None
            seen += 1
        return None

    def function_symbol(file: str, name: str) -> str | None:
        loc = lookup(file, name)
        if loc is None:
            return None
        tfile, tname = loc
        fn = facts[tfile].function(tname)
        return sym_id(tfile, fn.qualname) if fn is not None else None

    def module_value_member(file: str, member: str) -> str | None:
        """`svc.find()` where `svc = require('./svc')` and that module sets `module.exports` to an
        instance (`new OrderService()`), a class or constructor (static / prototype members), or
        an object of functions."""
        value = facts[file].exports.get("=")
        if value is None:
            return None
        cls = facts[file].instances.get(value)
        if cls is not None:
            return method_symbol(class_location(file, cls), member)
        fn = facts[file].function(f"{value}.{member}")
        if fn is not None:
            return sym_id(file, fn.qualname)
        return None

    def resolve_chain(file: str, caller: FunctionFact | None, chain: tuple[str, ...]) -> str | None:
        if len(chain) == 1:
            return function_symbol(file, chain[0])
        head = chain[0]
        if head == "this" and caller is not None and caller.class_name:
            cls_facts = next((c for c in facts[file].classes if c.name == caller.class_name), None)
            if len(chain) == 2:
                return method_symbol((file, caller.class_name), chain[1])
            if len(chain) == 3 and cls_facts is not None:
                field_type = cls_facts.field_types.get(chain[1])
                if field_type is None:
                    return None
                if field_type.startswith("@"):
                    target = instance_class(file, field_type[1:])
                else:
                    target = class_location(file, field_type)
                return method_symbol(target, chain[2])
            return None
        if len(chain) == 2:
            local = facts[file].local_types.get(caller.qualname, {}).get(head) if caller is not None else None
            if local is not None:  # a local or parameter holding a class instance shadows module names
                return method_symbol(class_location(file, local), chain[1])
            cls = instance_class(file, head)
            if cls is not None:
                return method_symbol(cls, chain[1])
            loc = lookup(file, head)
            if loc is None:
                return None
            tfile, tname = loc
            if tname == "*":  # namespace import: ns.fn(); or a required CommonJS module
                return function_symbol(tfile, chain[1]) or module_value_member(tfile, chain[1])
            fn = facts[tfile].function(f"{tname}.{chain[1]}")  # object literal member / static method
            if fn is not None:
                return sym_id(tfile, fn.qualname)
        return None

    for path in paths:
        f = facts[path]
        by_qual = {fn.qualname: fn for fn in f.functions}
        for call in f.calls:
            if call.is_new or call.caller == "<module>":
                continue
            target = resolve_chain(path, by_qual.get(call.caller), call.chain)
            if target is not None and target in g:
                g.add_edge(sym_id(path, call.caller), target, kind="calls")

    app_graph = AppGraph(g, [])
    _routes(project, facts, app_graph, lookup, resolve_chain)
    return app_graph


def _routes(project, facts, app_graph: AppGraph, lookup, resolve_chain) -> None:  # noqa: ANN001
    g = app_graph.graph

    def router_of(file: str, ref: HandlerRef) -> tuple[str, str] | None:
        if ref.kind != "identifier":
            return None
        loc = lookup(file, ref.name)
        if loc is None:
            return None
        tfile, tname = loc
        if tname == "default":
            tname = facts[tfile].exports.get("default", "default")
        elif tname == "*":  # `import x = require('./r')` / `require('./r')` of a module that does `export = router`
            tname = facts[tfile].exports.get("=", "*")
        tname = facts[tfile].aliases.get(tname, tname)
        if tname in facts[tfile].routers or tname in facts[tfile].apps:
            return tfile, tname
        return None

    def split(file: str, reg: RouteReg) -> tuple[str, tuple[HandlerRef, ...]]:
        """A registration's path and handlers. `$NAME` is an imported name in the path
        position: a string constant of its module is the path; anything else (imported
        middleware) stays the first handler."""
        if reg.path is None or not reg.path.startswith("$"):
            return reg.path or "", reg.handlers
        name = reg.path[1:]
        loc = lookup(file, name)
        value = facts[loc[0]].constants.get(loc[1]) if loc is not None and loc[0] in facts else None
        if value is None:
            return "", reg.handlers
        return value, tuple(h for i, h in enumerate(reg.handlers) if not (i == 0 and h.kind == "identifier" and h.name == name))

    # mounts: (file, owner) -> [(prefix, (file, router))]
    mounts: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    mounted: set[tuple[str, str]] = set()
    for path in sorted(facts):
        for reg in facts[path].routes:
            if reg.method != "USE":
                continue
            prefix, handlers = split(path, reg)
            for ref in handlers:
                child = router_of(path, ref)
                if child is not None:
                    mounts.setdefault((path, reg.owner), []).append((prefix, child))
                    mounted.add(child)

    apps = [(p, a) for p in sorted(facts) for a in facts[p].apps]
    app_graph.apps = apps
    roots = apps + [(p, r) for p in sorted(facts) for r in facts[p].routers if (p, r) not in mounted]
    prefixes: dict[tuple[str, str], list[str]] = {}

    def visit(owner: tuple[str, str], prefix: str, depth: int) -> None:
        if depth > 16:
            return
        prefixes.setdefault(owner, []).append(prefix)
        for sub, child in mounts.get(owner, []):
            visit(child, _join(prefix, sub), depth + 1)

    for root in roots:
        visit(root, "", 0)

    def handler_symbol(path: str, ref: HandlerRef, by_line: dict[int, FunctionFact]) -> str | None:
        if ref.kind == "inline":
            fn = by_line.get(ref.line)
            return sym_id(path, fn.qualname) if fn is not None else None
        if ref.kind in ("identifier", "member"):
            return resolve_chain(path, None, tuple(ref.name.split(".")))
        return None

    routes: list[Route] = []
    for path in sorted(facts):
        f = facts[path]
        by_line = {}
        for fn in f.functions:
            by_line.setdefault(fn.line, fn)
        for reg in f.routes:
            sub, handlers = split(path, reg)
            is_mount = reg.method == "USE" and any(router_of(path, h) for h in handlers)
            if reg.method == "USE":
                for ref in handlers:  # `app.use('/x', auth, router)`: auth is middleware too
                    if not is_mount or router_of(path, ref) is None:
                        app_graph.middleware.append((path, reg.line, ref.name))
                        symbol = handler_symbol(path, ref, by_line)
                        if symbol is not None:
                            app_graph.use_handlers.add(symbol)
                continue
            for prefix in prefixes.get((path, reg.owner), [""]):
                full = _join(prefix, sub)
                handler = next((h.name for h in reversed(handlers)), "<none>")
                route = Route(reg.method, full, path, reg.line, handler)
                routes.append(route)
                rid = f"route:{reg.method} {full}"
                g.add_node(rid, kind="route", file=path, line=reg.line, method=reg.method, path=full)
                for ref in handlers:
                    target = handler_symbol(path, ref, by_line)
                    if target is not None and target in g:
                        g.add_edge(rid, target, kind="handles")
    routes.sort(key=lambda r: (r.path, _METHOD_ORDER.get(r.method, 99), r.file, r.line))
    app_graph.routes = routes
    listen_files = [p for p in sorted(facts) if facts[p].listen_line is not None]
    entries = listen_files or ([apps[0][0]] if apps else [])
    # several apps: every file that listens is an entry point; the primary one is the
    # shallowest conventional name (src/index.ts over src/admin/main.ts)
    app_graph.entries = sorted(entries, key=_entry_rank)
    app_graph.entry = app_graph.entries[0] if app_graph.entries else None


def _entry_rank(path: str) -> tuple[int, int, str]:
    stem = posixpath.basename(path).split(".", 1)[0]
    return (path.count("/"), 0 if stem in ("index", "server", "main", "app") else 1, path)


_METHOD_ORDER = {m: i for i, m in enumerate(["GET", "POST", "PUT", "PATCH", "DELETE", "ALL", "OPTIONS", "HEAD"])}


def _join(prefix: str, path: str) -> str:
    if path.startswith("~"):  # a regular expression route: shown after its mount path, as written
        return _join(prefix, "").rstrip("/") + path[1:]
    joined = "/" + "/".join(part for part in (prefix + "/" + path).split("/") if part)
    return joined
