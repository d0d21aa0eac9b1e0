"""classify: give each file and each function a category, with provenance.

File rules decide a file's category; function rules may refine a function
(e.g. tag the error-handling middleware). Rules that use graph relations see
the categories of the previous round; we iterate to a fixed point (bounded),
so the result does not depend on file order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.fntree import FunctionTree, function_tree
from otelize.analysis.graph import AppGraph, sym_id
from otelize.analysis.parse import ParsedFile
from otelize.classify.matchers import MatchContext
from otelize.classify.ruleset import Rule, RuleSet

MAX_ROUNDS = 4


@dataclass(frozen=True)
class Decision:
    category: str
    rules: tuple[str, ...]  # ids of the rules that decided it (winner first)
    options: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


OTHER = Decision("other", ())


@dataclass
class Classification:
    files: dict[str, Decision] = field(default_factory=dict)
    functions: dict[tuple[str, str], Decision] = field(default_factory=dict)  # (file, qualname)

    def file(self, path: str) -> Decision:
        return self.files.get(path, OTHER)

    def function(self, path: str, qualname: str) -> Decision:
        return self.functions.get((path, qualname), self.file(path))


def _decide(rules: list[Rule], ctx: MatchContext, memo: dict[str, bool] | None = None) -> Decision | None:
    """Highest priority wins; other matching rules of the same category agree.

    `memo` caches the result of rules that do not use graph relations: only
    graph rules can change between classification rounds.
    """
    hits = []
    for r in rules:
        if memo is not None and not r.uses_graph:
            hit = memo.get(r.id)
            if hit is None:
                hit = memo[r.id] = r.matcher(ctx)
        else:
            hit = r.matcher(ctx)
        if hit:
            hits.append(r)
    if not hits:
        return None
    winner = hits[0]  # rules are sorted by (-priority, id)
    agreeing = [r.id for r in hits[1:] if r.category == winner.category]
    options: dict[str, Any] = {}
    for r in reversed([winner] + [h for h in hits[1:] if h.category == winner.category]):
        options.update(r.options)
    tags = sorted({t for r in hits if r.category == winner.category for t in r.tags})
    return Decision(winner.category, (winner.id, *agreeing), tuple(sorted(options.items())), tuple(tags))


def classify(
    ruleset: RuleSet,
    parsed: dict[str, ParsedFile],
    facts: dict[str, FileFacts],
    graph: AppGraph,
    static: dict[str, FileStatic] | None = None,
    project: Any = None,
    include_code: Any = (),
) -> Classification:
    """`static` holds per-file results computed where the tree was (see `scan_static`).
    With the `project` (package.json: which libraries are auto-instrumented), the
    functions of span files get their roles (see `assign_roles`)."""
    file_rules = [r for r in ruleset.rules if r.scope == "file"]
    fn_rules = [r for r in ruleset.rules if r.scope == "function"]
    g = graph.graph
    route_handlers = {v for u, v, k in g.edges(data="kind") if k == "handles"}
    result = Classification()

    node_data = dict(g.nodes(data=True))  # plain dict lookups in the hot loop below
    node_memo: dict[str, tuple[str, ...]] = {}  # node -> its categories; cleared every round

    def node_categories(s: str) -> tuple[str, ...]:
        cats = node_memo.get(s)
        if cats is None:
            data = node_data.get(s, {})
            found = []
            if data.get("kind") == "route" or s in route_handlers:
                found.append("http")  # a route handler is http wherever it is defined (e.g. inline in index.ts)
            if data.get("kind") == "symbol":
                found.append(result.function(data["file"], data["qualname"]).category)
            cats = node_memo[s] = tuple(found)
        return cats

    def categories_of(symbols: set[str]) -> set[str]:
        out: set[str] = set()
        for s in symbols:
            out.update(node_categories(s))
        return out

    # adjacency read once from the graph: the rounds below only look it up
    callees: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    for u, v, kind in g.edges(data="kind"):
        if kind == "calls":
            callees.setdefault(u, set()).add(v)
        if kind in ("calls", "handles"):
            callers.setdefault(v, set()).add(u)
    file_symbols = {
        path: [sym_id(path, fn.qualname) for fn in facts[path].functions if fn.kind != "signature"] for path in facts
    }

    def graph_fn(path: str):  # noqa: ANN202
        def rel(relation: str, qualname: str) -> set[str]:
            nodes = [sym_id(path, qualname)] if qualname else file_symbols[path]
            neighbours = callees if relation == "calls" else callers
            found: set[str] = set()
            for n in nodes:
                linked = neighbours.get(n)
                if linked:
                    found |= categories_of(linked)
            found.discard("other")
            if not qualname:
                found.discard(result.file(path).category)  # a file's calls to itself say nothing
            return found

        return rel

    def handles(path: str):  # noqa: ANN202
        def check(qualname: str) -> bool:
            if qualname:
                return sym_id(path, qualname) in route_handlers
            return any(sym_id(path, fn.qualname) in route_handlers for fn in facts[path].functions)

        return check

    file_memo: dict[str, dict[str, bool]] = {path: dict(static[path].memo) if static and path in static else {} for path in facts}
    fn_static = not any(r.uses_graph for r in fn_rules)
    functions: dict[tuple[str, str], Decision] = {}
    if static is not None and fn_static:
        for path in sorted(static):
            for qual, decision in static[path].functions:
                functions[(path, qual)] = decision
    for round_no in range(MAX_ROUNDS):
        node_memo.clear()  # categories come from the previous round's result
        files: dict[str, Decision] = {}
        precomputed = static is not None and fn_static
        if (round_no == 0 and not precomputed) or not fn_static:
            functions = {}
        for path in sorted(facts):
            ctx = MatchContext(path, facts[path], parsed[path], None, graph_fn(path), handles(path))
            files[path] = _decide(file_rules, ctx, file_memo[path]) or OTHER
            if (round_no > 0 or precomputed) and fn_static:
                continue
            for fn in facts[path].functions:
                if fn.kind == "signature":
                    continue
                fctx = MatchContext(path, facts[path], parsed[path], fn, graph_fn(path), handles(path))
                d = _decide(fn_rules, fctx)
                if d is not None:
                    functions[(path, fn.qualname)] = d
        if files == result.files and functions == result.functions:
            break
        result.files, result.functions = files, functions
    assign_roles(result, parsed, facts, graph, project, route_handlers, callees, frozenset(include_code or ()))
    return result


@dataclass(frozen=True)
class FileStatic:
    """Rule results that need the file's tree but not the graph (computed in a worker process)."""

    memo: tuple[tuple[str, bool], ...]  # file rule id -> matched (rules without graph relations)
    functions: tuple[tuple[str, Decision], ...]  # function qualname -> decision (function rules)


def scan_static(ruleset: RuleSet, path: str, facts: FileFacts, parsed: ParsedFile) -> FileStatic:
    ctx = MatchContext(path, facts, parsed)
    memo = tuple((r.id, r.matcher(ctx)) for r in ruleset.rules if r.scope == "file" and not r.uses_graph)
    fn_rules = [r for r in ruleset.rules if r.scope == "function"]
    decisions = []
    if fn_rules and not any(r.uses_graph for r in fn_rules):
        for fn in facts.functions:
            if fn.kind == "signature":
                continue
            d = _decide(fn_rules, MatchContext(path, facts, parsed, fn))
            if d is not None:
                decisions.append((fn.qualname, d))
    return FileStatic(memo, tuple(decisions))


def is_public(fn: FunctionFact) -> bool:
    return not fn.is_private and not fn.name.startswith("_")


# --- per-function roles ----------------------------------------------------------
#
# File rules say what a file is (evidence ranks class name > file name > folder >
# imports). Within the span files, each function then gets its role from what it
# does: a business-layer entry gets a span when it does real work (it awaits, does
# I/O, or reaches I/O through the call graph); a pure synchronous helper, startup
# code, a route handler or middleware, a decorator factory and code called at
# module load get none, with the reason in the report. A database, cache or API
# operation whose I/O goes through an auto-instrumented library gets an INTERNAL
# span (the library's own CLIENT span nests below it); CLIENT spans are left for
# true client boundaries, and never sit above another CLIENT of the same kind.

SPAN_CATEGORIES = ("service", "database", "cache", "external-api")
CLIENT_CATEGORIES = ("database", "cache", "external-api")

# Libraries whose calls are I/O (a call through one of them is real work).
IO_LIBRARIES = frozenset({
    "pg", "pg-pool", "postgres", "mysql", "mysql2", "mongodb", "mongoose", "@prisma/client", "typeorm", "kysely",
    "drizzle-orm", "knex", "sequelize", "sequelize-typescript", "better-sqlite3", "sqlite3", "sqlite", "mssql", "tedious",
    "oracledb", "@neondatabase/serverless", "@planetscale/database", "@mikro-orm/core", "objection", "cassandra-driver",
    "redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs",
    "axios", "node-fetch", "undici", "got", "superagent", "ky", "request", "cross-fetch", "isomorphic-fetch",
    "amqplib", "amqp-connection-manager", "kafkajs", "bullmq", "bull", "bee-queue", "kue", "agenda",
    "nodemailer", "@sendgrid/mail", "mailgun.js", "mailgun-js", "stripe", "twilio", "@elastic/elasticsearch",
    "@google-cloud/pubsub", "@google-cloud/storage", "firebase-admin", "aws-sdk", "@aws-sdk",
})

# Auto-instrumentations-node covers these (database/cache drivers, messaging, and every
# client that goes over node's http/undici). An ORM is covered when the driver below it is.
AUTO_INSTRUMENTED = frozenset({
    "pg", "pg-pool", "mysql", "mysql2", "mongodb", "mongoose", "ioredis", "redis", "@redis/client", "tedious", "mssql",
    "oracledb", "cassandra-driver", "memcached", "knex", "amqplib", "kafkajs", "aws-sdk", "@aws-sdk",
    "axios", "node-fetch", "undici", "got", "superagent", "request", "cross-fetch", "isomorphic-fetch", "ky",
    "@elastic/elasticsearch", "@upstash/redis", "@google-cloud/pubsub", "@google-cloud/storage", "stripe", "twilio",
    "@sendgrid/mail", "mailgun.js", "mailgun-js",
})
ORMS = frozenset({"typeorm", "sequelize", "sequelize-typescript", "kysely", "drizzle-orm", "@mikro-orm/core", "objection", "knex"})
INSTRUMENTED_DRIVERS = frozenset({"pg", "pg-pool", "mysql", "mysql2", "mongodb", "tedious", "mssql", "oracledb"})

DB_SYSTEMS = {
    "pg": "postgresql", "pg-pool": "postgresql", "postgres": "postgresql", "@neondatabase/serverless": "postgresql",
    "mysql": "mysql", "mysql2": "mysql", "@planetscale/database": "mysql", "mongodb": "mongodb", "mongoose": "mongodb",
    "better-sqlite3": "sqlite", "sqlite3": "sqlite", "sqlite": "sqlite", "mssql": "microsoft.sql_server",
    "tedious": "microsoft.sql_server", "oracledb": "oracle.db", "cassandra-driver": "cassandra",
    "redis": "redis", "ioredis": "redis", "@redis/client": "redis", "@upstash/redis": "redis",
    "memcached": "memcached", "memjs": "memcached", "@elastic/elasticsearch": "elasticsearch",
}

PURE_ROOTS = frozenset({
    "console", "Math", "JSON", "Object", "Array", "Number", "String", "Boolean", "Date", "Reflect", "Symbol", "Map",
    "Set", "RegExp", "Error", "Buffer", "parseInt", "parseFloat", "isNaN", "structuredClone", "encodeURIComponent",
    "decodeURIComponent", "Promise",
})
LOGGERS = frozenset({"logger", "Logger", "log", "console", "debug", "Log", "winston"})
DI_LOOKUPS = frozenset({"get", "resolve", "getInstance"})
STARTUP_NAME = re.compile(r"^(connect|disconnect|init|initialize|bootstrap|setup|listen|mount|configure|start|stop|shutdown)([A-Z_0-9]|$)")
STARTUP_CLASS = re.compile(r"(Factory|Config|Configurer|Loader|Bootstrap|Module|App|Application|Server|Kernel)$")
STARTUP_FOLDERS = frozenset({"loaders", "loader", "bootstrap", "startup", "boot", "config", "configs"})
DB_LIBRARIES = frozenset(DB_SYSTEMS) - {"redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs"} | {
    "@prisma/client", "typeorm", "kysely", "drizzle-orm", "knex", "sequelize", "sequelize-typescript", "@mikro-orm/core", "objection",
}
CACHE_LIBRARIES = frozenset({"redis", "ioredis", "@redis/client", "@upstash/redis", "memcached", "memjs"})
HTTP_LIBRARIES = frozenset({"axios", "node-fetch", "undici", "got", "superagent", "ky", "request", "cross-fetch", "isomorphic-fetch"})
CATEGORY_LIBRARIES = {"database": DB_LIBRARIES, "cache": CACHE_LIBRARIES, "external-api": HTTP_LIBRARIES}
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


def _dependencies(package_json: dict[str, Any]) -> frozenset[str]:
    deps: set[str] = set()
    for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        if isinstance(package_json.get(section), dict):
            deps.update(_lib(str(d)) for d in package_json[section])
    return frozenset(deps)


def instrumented_libraries(package_json: dict[str, Any]) -> frozenset[str]:
    """The app's dependencies whose calls auto-instrumentation already traces as CLIENT spans.

    The one place that says so (the dependencies issue may later supply the list of
    active instrumentations; swap it in here)."""
    deps = set(_dependencies(package_json))
    found = {d for d in deps if d in AUTO_INSTRUMENTED or d.startswith("@aws-sdk/")}
    if deps & INSTRUMENTED_DRIVERS:
        found |= deps & ORMS
    return frozenset(found)


def _lib(module: str) -> str:
    """`mysql2/promise` -> `mysql2`, `@aws-sdk/client-s3` -> `@aws-sdk`."""
    if module.startswith("@aws-sdk/"):
        return "@aws-sdk"
    parts = module.split("/")
    return "/".join(parts[:2]) if module.startswith("@") else parts[0]


class _Roles:
    def __init__(self, result: Classification, parsed: dict[str, ParsedFile], facts: dict[str, FileFacts],
                 graph: AppGraph, project: Any, route_handlers: set[str], callees: dict[str, set[str]],
                 include_code: frozenset[str] = frozenset()):
        from otelize.analysis.symbols import Resolver
        from otelize.analysis.typeuse import value_imports

        self.result, self.parsed, self.facts, self.graph = result, parsed, facts, graph
        self.route_handlers, self.callees, self.include_code = route_handlers, callees, include_code
        self.instrumented = instrumented_libraries(project.package_json) if project is not None else frozenset()
        self.dependencies = _dependencies(project.package_json) if project is not None else frozenset()
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
                lib = _lib(imp.module)
                if lib in IO_LIBRARIES:
                    libs.add(lib)
                    for n in names:
                        io[n] = lib
            self.io_bindings[path], self.project_bindings[path] = io, proj
            self.imports_files[path], self.direct_libs[path] = files, libs
        self._reach: dict[str, frozenset[str]] = {}
        self._work: dict[str, bool] = {}
        self._module_called = self._called_at_module_load()

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
        """Locals that hold a dependency: `const repo = this.models.User`, `= Container.get(...)`."""
        out: set[str] = set()
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
            return field_type is None or field_type.lstrip("@") not in self.project_classes
        if root in self.io_bindings.get(path, {}):
            return True
        target = self.project_bindings.get(path, {}).get(root)
        if target is not None:
            tf = self.facts.get(target)
            defined = tf is not None and any(f.name == root or f.qualname.startswith(root + ".") for f in tf.functions)
            return not defined and bool(self.libs_reached(target, 2))
        return root in deps

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
            work = any(
                self._counts(path, fn, c.chain, deps) for c in self.facts[path].calls if c.caller == fn.qualname and not c.is_new
            )
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
        sid = sym_id(path, fn.qualname)
        member = fn.name.rsplit(".", 1)[-1]
        if "module-load" not in self.include_code and (
            (path, fn.qualname) in self._module_called or (fn.kind == "arrow" and (path, fn.name) in self._module_called)
        ):
            return Role("skip", reason="called at module load (startup code)")
        if sid in self.route_handlers or self._handler_params(fn):
            return Role("skip", reason="route handler or middleware (the express instrumentation traces it)")
        if STARTUP_NAME.match(member) or (fn.class_name and STARTUP_CLASS.search(fn.class_name)) or (
            STARTUP_FOLDERS & set(path.split("/")[:-1])
        ):
            return Role("skip", reason="startup code (connect/init/setup/listen, factories, configuration)")
        if "decorator-factories" not in self.include_code and self._decorator_factory(path, fn):
            return Role("skip", reason="decorator factory (runs when the class is defined)")
        if not fn.has_body or fn.is_signature or fn.is_constructor or fn.accessor or fn.is_generator:
            return None  # the span worker reports these itself
        if self._only_throws(path, fn):
            return Role("skip", reason="a stub (its body only throws)")
        if "pure-helpers" not in self.include_code and not self.does_work(path, fn):
            return Role("skip", reason="pure helper (synchronous and reaches no I/O)")
        if category == "service":
            return Role("span", "INTERNAL")
        return self._client_or_internal(path, category)

    def _client_or_internal(self, path: str, category: str) -> Role:
        """CLIENT only for a true client boundary: no auto-instrumented library below it."""
        reached = self.libs_reached(path)
        libs = reached & self.instrumented
        if libs:
            return Role("span", "INTERNAL", reason=f"its I/O goes through {', '.join(sorted(libs))} (auto-instrumented)")
        if category == "external-api" and self.facts[path].has_fetch:
            return Role("span", "INTERNAL", reason="its I/O goes through fetch (auto-instrumented undici)")
        own = CATEGORY_LIBRARIES.get(category, frozenset())
        if not (reached & own):
            # the client comes in as a dependency (`this.models`, an injected pool): when every
            # library of this kind the app depends on is auto-instrumented, so is this I/O
            deps = self.dependencies & own
            if deps and deps <= self.instrumented:
                return Role("span", "INTERNAL", reason=f"the app's {', '.join(sorted(deps))} is auto-instrumented")
        return Role("span", "CLIENT")

    def _only_throws(self, path: str, fn: FunctionFact) -> bool:
        return fn.body_start is not None and self._tree(path, fn).only_throws

    def _handler_params(self, fn: FunctionFact) -> bool:
        names = [p.name for p in fn.params]
        return len(names) >= 2 and all(rx.match(n) for rx, n in zip(HANDLER_PARAMS, names))

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
    from otelize.workers.spans import candidates, span_base_name

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


# --- code excluded by default ------------------------------------------------------

_EXCLUDED_DIRS = {
    "tests": {"__tests__", "test", "tests", "e2e", "__mocks__", "mocks", "fakes", "fixtures", "spec", "__fixtures__"},
    "migrations": {"migrations", "migration"},
    "seeders": {"seeders", "seeds", "seed", "seeding"},
    "scripts": {"scripts"},
    "decorator-factories": {"decorators"},
}
_EXCLUDED_NAMES = {
    "tests": re.compile(r"\.(test|spec|e2e-spec|e2e|test-d)\.[cm]?[jt]sx?$"),
    "migrations": re.compile(r"\.migration\.[cm]?[jt]sx?$"),
    "seeders": re.compile(r"\.(seed|seeder)\.[cm]?[jt]sx?$"),
}
EXCLUDED_REASONS = {
    "tests": "test code",
    "migrations": "a migration",
    "seeders": "a seeder",
    "scripts": "a script (scripts/)",
    "decorator-factories": "decorator factories (decorators/)",
    "nested-packages": "another package (its folder has its own package.json)",
}


def excluded_kind(path: str, nested_packages: frozenset[str] = frozenset()) -> str | None:
    """Which kind of excluded-by-default code the file is (EXCLUDABLE), or None."""
    parts = path.split("/")
    for kind, rx in _EXCLUDED_NAMES.items():
        if rx.search(parts[-1]):
            return kind
    for kind, dirs in _EXCLUDED_DIRS.items():
        if any(p in dirs for p in parts[:-1]):
            return kind
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in nested_packages:
            return "nested-packages"
    return None


def default_exclusions(project: Any, include_code: Any = ()) -> tuple[list[str], list[tuple[str, str]]]:
    """(files kept, [(file, reason)] excluded) for the files of `project`: test code,
    migrations, seeders, scripts, decorator factories and other packages get no spans
    unless the settings' `include_code` names them."""
    included = set(include_code or ())
    folders = sorted({"/".join(f.split("/")[:i]) for f in project.files for i in range(1, f.count("/") + 1)})
    nested = frozenset(d for d in folders if "node_modules" not in d and (project.root / d / "package.json").is_file())
    kept, excluded = [], []
    for path in project.files:
        kind = excluded_kind(path, nested)
        if kind is None or kind in included:
            kept.append(path)
        else:
            excluded.append((path, f"{EXCLUDED_REASONS[kind]}: excluded by default (`include_code: [{kind}]` in .otelize.yaml traces it)"))
    return kept, excluded
