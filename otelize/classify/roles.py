"""roles: what the span workers do with each function of a span file.

File rules say what a file is (evidence ranks class name > file name > folder >
imports). Within the span files, each function then gets its role from what it
does: a business-layer entry gets a span when it does real work (it awaits, does
I/O, or reaches I/O through the call graph); a pure synchronous helper, startup
code, a route handler or middleware, a decorator factory and code called at
module load get none, with the reason in the report. A database, cache or API
operation whose I/O goes through an auto-instrumented library gets an INTERNAL
span (the library's own CLIENT span nests below it); CLIENT spans are left for
true client boundaries, and never sit above another CLIENT of the same kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from otelize.analysis.fntree import FunctionTree, function_tree
from otelize.analysis.graph import AppGraph, sym_id
from otelize.analysis.parse import ParsedFile
from otelize.analysis.records import FileFacts, FunctionFact
from otelize.classify.libraries import (
    BUILTIN_VALUE_TYPES,
    CATEGORY_LIBRARIES,
    DB_SYSTEMS,
    DEPENDENCY_PARAM,
    DEPENDENCY_TYPE,
    DI_LOOKUPS,
    IO_LIBRARIES,
    LOGGERS,
    PURE_ROOTS,
    STARTUP_CLASS,
    STARTUP_FOLDERS,
    STARTUP_NAME,
    dependencies,
    instrumented_libraries,
    lib_name,
)

if TYPE_CHECKING:
    from otelize.classify.engine import Classification

SPAN_CATEGORIES = ("service", "database", "cache", "external-api")
CLIENT_CATEGORIES = ("database", "cache", "external-api")
HANDLER_PARAMS = (re.compile(r"^_?req"), re.compile(r"^_?res"))


@dataclass(frozen=True)
class Role:
    """What the span workers do with one function of a span file."""

    action: str  # "span" | "skip"
    kind: str = ""  # INTERNAL | CLIENT (span)
    name: str = ""  # a span name that replaces the default one (span names are unique per app)
    reason: str = ""  # why (skip), or why INTERNAL (span)

    def to_option(self, qualname: str) -> tuple[str, str, str, str, str]:
        return (qualname, self.action, self.kind, self.name, self.reason)


# the roles that are the same for every function they go to (frozen: shared)
MODULE_LOAD = Role("skip", reason="called at module load (startup code)")
HANDLER = Role("skip", reason="route handler or middleware (the express instrumentation traces it)")
STARTUP = Role("skip", reason="startup code (connect/init/setup/listen, factories, configuration)")
DECORATOR_FACTORY = Role("skip", reason="decorator factory (runs when the class is defined)")
STUB = Role("skip", reason="a stub (its body only throws)")
PURE_HELPER = Role("skip", reason="pure helper (synchronous and reaches no I/O)")
SERVICE_SPAN = Role("span", "INTERNAL")
CLIENT_SPAN = Role("span", "CLIENT")


_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_TYPE_ANNOTATION = re.compile(r":\s*([A-Za-z_$][\w$]*)\s*$")


def _dependency_params(fn: FunctionFact) -> set[str]:
    """The parameters (also names bound in a destructuring pattern) named or typed as a dependency."""
    out: set[str] = set()
    for p in fn.params:
        typed = _TYPE_ANNOTATION.search(p.text)
        if p.name.startswith(("{", "[")):
            pattern = p.name.split("}:", 1)[0]
            out.update(n for n in _IDENTIFIER.findall(pattern) if DEPENDENCY_PARAM.search(n))
        elif DEPENDENCY_PARAM.search(p.name) or (typed is not None and DEPENDENCY_TYPE.match(typed.group(1))):
            out.add(p.name)
    return out


class _Roles:
    def __init__(self, result: Classification, parsed: dict[str, ParsedFile], facts: dict[str, FileFacts],
                 graph: AppGraph, project: Any, route_handlers: set[str], callees: dict[str, set[str]],
                 include_code: frozenset[str] = frozenset()):
        from otelize.analysis.symbols import Resolver
        from otelize.analysis.typeuse import value_imports

        self.result, self.parsed, self.facts, self.graph = result, parsed, facts, graph
        self.route_handlers, self.callees, self.include_code = route_handlers, callees, include_code
        self.instrumented = instrumented_libraries(project.package_json) if project is not None else frozenset()
        self.dependencies = dependencies(project.package_json) if project is not None else frozenset()
        self._fetch_traced: bool | None = None  # (asked only of a file that calls fetch)
        self._project = project
        resolver = Resolver(project) if project is not None else None
        self.project_classes = {c.name for f in facts.values() for c in f.classes}
        self.io_bindings: dict[str, dict[str, str]] = {}  # file -> local binding -> IO library
        self.project_bindings: dict[str, dict[str, str]] = {}  # file -> local binding -> project file
        self.imports_files: dict[str, set[str]] = {}
        self.direct_libs: dict[str, set[str]] = {}
        for path in sorted(facts):
            io: dict[str, str] = {}
            proj: dict[str, str] = {}
            libs: set[str] = set()
            files: set[str] = set()
            for imp in value_imports(facts[path], parsed.get(path)):
                names = [n for n in (imp.default, imp.namespace) if n] + [local for local, _ in imp.names]
                target = resolver.resolve(path, imp.module) if resolver is not None else None
                if target is not None:
                    files.add(target)
                    for n in names:
                        proj[n] = target
                    continue
                lib = lib_name(imp.module)
                if lib in IO_LIBRARIES:
                    libs.add(lib)
                    for n in names:
                        io[n] = lib
            self.io_bindings[path], self.project_bindings[path] = io, proj
            self.imports_files[path], self.direct_libs[path] = files, libs
        self._reach: dict[str, frozenset[str]] = {}
        self._work: dict[str, bool] = {}
        self._calls_by_caller: dict[str, dict[str, list[tuple[str, ...]]]] = {}
        self._module_called = self._called_at_module_load()
        self._client_roles: dict[tuple[str, str], Role] = {}  # (file, category) -> its CLIENT or INTERNAL span
        self._startup_folders: dict[str, bool] = {}
        self._from_handlers: frozenset[str] | None = None  # what route handlers reach (computed when first asked)

    # -- what a file reaches -----------------------------------------------------
    def libs_reached(self, path: str, depth: int = 3) -> frozenset[str]:
        """IO libraries the file imports, or that the project files it imports do (a few levels deep)."""
        key = f"{depth}:{path}"
        if key in self._reach:
            return self._reach[key]
        self._reach[key] = frozenset()  # cycle guard
        libs = set(self.direct_libs.get(path, ()))
        if depth > 0:
            for target in sorted(self.imports_files.get(path, ())):
                libs |= self.libs_reached(target, depth - 1)
        self._reach[key] = frozenset(libs)
        return self._reach[key]

    # -- real work -----------------------------------------------------------------
    def _tree(self, path: str, fn: FunctionFact) -> FunctionTree:
        """The function's tree facts: recorded by the scan, else read from the tree here."""
        recorded = self.facts[path].fn_trees.get(fn.start)
        return recorded if recorded is not None else function_tree(self.parsed[path], fn)

    def _own_await(self, path: str, fn: FunctionFact) -> bool:
        return self._tree(path, fn).own_await

    def _dependency_locals(self, path: str, fn: FunctionFact) -> set[str]:
        """Locals that hold a dependency: `const repo = this.models.User`, `= Container.get(...)`, and the
        parameters that hand one in (`findById(id, postRepository)`, `{ userService }`, `r: OrderRepository`)."""
        out = _dependency_params(fn)
        for name, kind, value, prop in self._tree(path, fn).declarators:
            if kind == "member_expression" and value.startswith("this."):
                out.add(name)
            elif kind == "call_expression":
                if prop in DI_LOOKUPS:
                    out.add(name)
            elif kind == "identifier" and (value in self.io_bindings.get(path, {}) or value in self.project_bindings.get(path, {})):
                out.add(name)
        return out

    def _counts(self, path: str, fn: FunctionFact, chain: tuple[str, ...], deps: set[str]) -> bool:
        """An unresolved call that is I/O or goes to a dependency (not a pure helper)."""
        if not chain or any(part in LOGGERS for part in chain):
            return False
        root = chain[0]
        if root in PURE_ROOTS:
            return False
        if chain == ("fetch",) or (root in ("globalThis", "window") and chain[-1] == "fetch"):
            return True
        if root in ("this", "super"):
            cls = next((c for c in self.facts[path].classes if c.name == fn.class_name), None)
            if len(chain) == 2:
                own = {f.name for f in self.facts[path].functions if f.class_name == fn.class_name}
                return root == "super" or chain[1] not in own
            field_type = cls.field_types.get(chain[1]) if cls is not None else None
            if field_type in BUILTIN_VALUE_TYPES:  # `private states = new Map()`: this.states.get() is no I/O
                return False
            return field_type is None or field_type.lstrip("@") not in self.project_classes
        if root in self.io_bindings.get(path, {}):
            return True
        target = self.project_bindings.get(path, {}).get(root)
        if target is not None:
            tf = self.facts.get(target)
            defined = tf is not None and any(f.name == root or f.qualname.startswith(root + ".") for f in tf.functions)
            return not defined and bool(self.libs_reached(target, 2))
        return root in deps

    def _calls_of(self, path: str) -> dict[str, list[tuple[str, ...]]]:
        """The file's call chains (not `new`) by calling function, in source order (once per file)."""
        found = self._calls_by_caller.get(path)
        if found is None:
            found = self._calls_by_caller[path] = {}
            for c in self.facts[path].calls:
                if not c.is_new:
                    found.setdefault(c.caller, []).append(c.chain)
        return found

    def does_work(self, path: str, fn: FunctionFact) -> bool:
        sid = sym_id(path, fn.qualname)
        if sid in self._work:
            return self._work[sid]
        self._work[sid] = False  # cycle guard
        # `async` states asynchronous work (an async function that awaits nothing is still
        # awaited by its callers); a synchronous one must reach I/O to count
        work = fn.is_async or self._own_await(path, fn)
        if not work:
            deps = self._dependency_locals(path, fn)
            work = any(self._counts(path, fn, chain, deps) for chain in self._calls_of(path).get(fn.qualname, ()))
        if not work:
            for callee in sorted(self.callees.get(sid, ())):
                data = self.graph.graph.nodes.get(callee, {})
                cfacts = self.facts.get(data.get("file", ""))
                target = cfacts.function(data.get("qualname", "")) if cfacts is not None else None
                if target is not None and self.does_work(data["file"], target):
                    work = True
                    break
        self._work[sid] = work
        return work

    # -- module load ----------------------------------------------------------------
    def _called_at_module_load(self) -> set[tuple[str, str]]:
        """(file, function) pairs called from the top level of some module."""
        out: set[tuple[str, str]] = set()
        for path in sorted(self.facts):
            f = self.facts[path]
            for call in f.calls:
                if call.caller != "<module>" or call.is_new or len(call.chain) != 1:
                    continue
                name = call.chain[0]
                if f.function(name) is not None:
                    out.add((path, name))
                    continue
                target = self.project_bindings.get(path, {}).get(name)
                if target is None:
                    continue
                tf = self.facts[target]
                imported = next((imported for imp in f.imports for local, imported in imp.names if local == name), None)
                default = any(imp.default == name for imp in f.imports)
                exported = "default" if default else imported or name
                local = tf.exports.get(exported, exported)
                if tf.function(local) is not None:
                    out.add((target, local))
                elif exported == "default" and tf.function("default") is not None:
                    out.add((target, "default"))
        return out

    # -- the role of one function ---------------------------------------------------
    def role(self, path: str, fn: FunctionFact, category: str) -> Role | None:
        if "module-load" not in self.include_code and (
            (path, fn.qualname) in self._module_called or (fn.kind == "arrow" and (path, fn.name) in self._module_called)
        ):
            return MODULE_LOAD
        if sym_id(path, fn.qualname) in self.route_handlers or self._handler_params(fn):
            return HANDLER
        if STARTUP_NAME.match(fn.name.rsplit(".", 1)[-1]) or (fn.class_name and STARTUP_CLASS.search(fn.class_name)) or (
            self._startup_folder(path) and not self._request_time_io(path, fn)
        ):
            return STARTUP
        if "decorator-factories" not in self.include_code and self._decorator_factory(path, fn):
            return DECORATOR_FACTORY
        if not fn.has_body or fn.is_signature or fn.is_constructor or fn.accessor or fn.is_generator:
            return None  # the span worker reports these itself
        if self._only_throws(path, fn):
            return STUB
        if "pure-helpers" not in self.include_code and not self.does_work(path, fn):
            return PURE_HELPER
        if category == "service":
            return SERVICE_SPAN
        key = (path, category)
        found = self._client_roles.get(key)
        if found is None:
            found = self._client_roles[key] = self._client_or_internal(path, category)
        return found

    def _request_time_io(self, path: str, fn: FunctionFact) -> bool:
        """An asynchronous function that a route handler reaches through the call graph: it
        runs per request, whatever folder it sits in (a config/ module's token revocation
        or mail sending, called from a controller). A connection setup, a seeder or an env
        parser in config/ is reached from the entry or a script, not from a handler."""
        if not (fn.is_async or self._own_await(path, fn)):
            return False
        if self._from_handlers is None:
            roots = set(self.route_handlers)
            for p in sorted(self.facts):
                roots.update(sym_id(p, f.qualname) for f in self.facts[p].functions if self._handler_params(f))
            seen, stack = set(roots), sorted(roots)
            while stack:
                for nxt in sorted(self.callees.get(stack.pop(), ())):
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            self._from_handlers = frozenset(seen - roots)
        return sym_id(path, fn.qualname) in self._from_handlers

    def _startup_folder(self, path: str) -> bool:
        """The file sits in a startup folder (config/, bootstrap/, ...): once per file."""
        found = self._startup_folders.get(path)
        if found is None:
            found = self._startup_folders[path] = bool(STARTUP_FOLDERS & set(path.split("/")[:-1]))
        return found

    def _client_or_internal(self, path: str, category: str) -> Role:
        """CLIENT only for a true client boundary: no auto-instrumented library below it
        (the same for every function of the file: `role` asks once per file and category)."""
        reached = self.libs_reached(path)
        libs = reached & self.instrumented
        if libs:
            return Role("span", "INTERNAL", reason=f"its I/O goes through {', '.join(sorted(libs))} (auto-instrumented)")
        if category == "external-api" and self.facts[path].has_fetch and self.fetch_traced:
            return Role("span", "INTERNAL", reason="its I/O goes through fetch (auto-instrumented undici)")
        own = CATEGORY_LIBRARIES.get(category, frozenset())
        if not (reached & own):
            # the client comes in as a dependency (`this.models`, an injected pool): when every
            # library of this kind the app depends on is auto-instrumented, so is this I/O
            deps = self.dependencies & own
            if deps and deps <= self.instrumented:
                return Role("span", "INTERNAL", reason=f"the app's {', '.join(sorted(deps))} is auto-instrumented")
        return CLIENT_SPAN

    @property
    def fetch_traced(self) -> bool:
        """The app's fetch calls get the undici instrumentation's CLIENT span (the dependency
        worker adds it for the global fetch), or go through an instrumented polyfill; on a
        Node without a global fetch and no such polyfill, a fetch client gets its own span."""
        if self._fetch_traced is None:
            from otelize.workers.deps.choose import fetch_traced

            self._fetch_traced = self._project is None or fetch_traced(self._project, self.facts)
        return self._fetch_traced

    def _only_throws(self, path: str, fn: FunctionFact) -> bool:
        return fn.body_start is not None and self._tree(path, fn).only_throws

    def _handler_params(self, fn: FunctionFact) -> bool:
        params = fn.params
        return len(params) >= 2 and all(rx.match(p.name) for rx, p in zip(HANDLER_PARAMS, params))

    def _decorator_factory(self, path: str, fn: FunctionFact) -> bool:
        return fn.body_start is not None and self._tree(path, fn).decorator_factory

    def registered_handlers(self, path: str) -> set[str]:
        """Private methods the class registers as callbacks (`bus.register(this.onX.bind(this))`)."""
        out = set()
        for call in self.facts[path].calls:
            if len(call.chain) == 3 and call.chain[0] == "this" and call.chain[2] == "bind":
                out.add(call.chain[1])
        return out


def assign_roles(result: Classification, parsed: dict[str, ParsedFile], facts: dict[str, FileFacts], graph: AppGraph,
                 project: Any, route_handlers: set[str], callees: dict[str, set[str]],
                 include_code: frozenset[str] = frozenset()) -> None:
    """Per-function roles of every span file, into its decision's options (`roles`, `db_system_reached`)."""
    from otelize.workers.eligibility import candidates
    from otelize.workers.spans import span_base_name

    roles = _Roles(result, parsed, facts, graph, project, route_handlers, callees, include_code)
    decided: dict[str, dict[str, Role]] = {}
    for path in sorted(result.files):
        decision = result.files[path]
        if decision.category not in SPAN_CATEGORIES or path not in parsed or not parsed[path].ok:
            continue
        registered = roles.registered_handlers(path) if decision.category == "service" else set()
        out: dict[str, Role] = {}
        for fn in candidates(facts[path]):
            member = fn.name.rsplit(".", 1)[-1]
            if (fn.is_private or member.startswith(("_", "#"))) and fn.name not in registered:
                continue  # the worker skips (and reports) private members: they take no part in the roles
            role = roles.role(path, fn, decision.category)
            if role is not None:
                out[fn.qualname] = role
        decided[path] = out
    # no CLIENT span above another CLIENT of the same category: the outer one is INTERNAL
    clients = {sym_id(p, q): (p, result.files[p].category) for p, rs in decided.items() for q, r in rs.items() if r.kind == "CLIENT"}
    for node, (path, category) in sorted(clients.items()):
        seen, stack = {node}, [node]
        below = False
        while stack and not below:
            for nxt in sorted(callees.get(stack.pop(), ())):
                if nxt in clients and clients[nxt][1] == category:
                    below = True
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        if below:
            qual = node.split("::", 1)[1]
            decided[path][qual] = Role("span", "INTERNAL", reason="calls another CLIENT span of the same kind")
    # span names unique per app: colliding names get their module (bare functions) or folders
    by_name: dict[str, list[tuple[str, FunctionFact]]] = {}
    for path, rs in sorted(decided.items()):
        seen_here: set[str] = set()
        for fn in facts[path].functions:
            if fn.kind == "signature" or fn.qualname in seen_here:
                continue
            if rs.get(fn.qualname) is not None and rs[fn.qualname].action == "span":
                seen_here.add(fn.qualname)
                by_name.setdefault(span_base_name(fn, path), []).append((path, fn))
    for base, group in sorted(by_name.items()):
        if len(group) < 2:
            continue
        for path, fn, name in _unique_names(base, group):
            decided[path][fn.qualname] = replace(decided[path][fn.qualname], name=name)
    for path, rs in decided.items():
        options = dict(result.files[path].options)
        options["roles"] = tuple(rs[q].to_option(q) for q in sorted(rs))
        systems = {DB_SYSTEMS[lib] for lib in roles.libs_reached(path) if lib in DB_SYSTEMS}
        if len(systems) == 1:
            options["db_system_reached"] = systems.pop()
        result.files[path] = replace(result.files[path], options=tuple(sorted(options.items())))


def _unique_names(base: str, group: list[tuple[str, FunctionFact]]) -> list[tuple[str, FunctionFact, str]]:
    """`module.function` for bare functions, then as many parent folders as it takes."""
    def prefixes(path: str, fn: FunctionFact, depth: int) -> str:
        parts = path.split("/")
        stem = parts[-1].split(".", 1)[0]
        folders = parts[:-1]
        segs = ([] if fn.class_name or base.startswith(stem + ".") else [stem])
        need = depth - len(segs)
        if need > 0:
            segs = folders[len(folders) - need:] + segs if need <= len(folders) else folders + segs
        return ".".join(segs + [base]) if segs else base
    for depth in range(1, 12):
        names = [prefixes(p, fn, depth) for p, fn in group]
        if len(set(names)) == len(names):
            return [(p, fn, n) for (p, fn), n in zip(group, names)]
    return [(p, fn, f"{p}:{base}") for p, fn in group]
