"""records: the facts the analysis extracts from a file, as plain data.

One `FileFacts` per source file holds its imports, exports, functions, classes,
calls and Express registrations. Records hold no tree-sitter nodes (only byte
ranges and lines), so they can be computed in worker processes, cached and
merged deterministically; importing this module loads no parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # the function of the call the handler was read out of (`wrap(fn)`, `userRouter(express,
    # db)`): in a `use()`, the router that function returns when it returns one
    via: str | None = None


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
    object_members: dict[str, str] = field(default_factory=dict)  # "obj.key" -> the identifier it holds (`{ users }`)
    factories: dict[str, str] = field(default_factory=dict)  # what a `const makeX = (deps) => ...` makes (`X`, or the returned function's own name) -> `makeX`
    constants: dict[str, str] = field(default_factory=dict)  # module-level `const NAME = 'literal'`
    # strings computed at runtime (`process.env.X`, templates), by what `constants` would key
    # them ("NAME", "obj.key", "exports.NAME") or "<function>:<name>" for a local: their source text
    computed_constants: dict[str, str] = field(default_factory=dict)
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
    controllers: list = field(default_factory=list)  # routedecorators.Controller (decorator routes)
    framework_mounts: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    dynamic_requires: list[str] = field(default_factory=list)  # `const route = require(path)`, path not a literal
    local_constants: dict[str, dict[str, str]] = field(default_factory=dict)  # function -> {const: path value}
    servers: list[str] = field(default_factory=list)  # `const app = createApp()` (from ./x) / `http.createServer(app)`
    express_imported: bool = False
    markers: list[str] = field(default_factory=list)  # "generated", "ignore-file"
    ignore_lines: list[int] = field(default_factory=list)  # lines holding `// otelize-ignore`
    fn_trees: dict = field(default_factory=dict)  # FunctionFact.start -> otelize.analysis.fntree.FunctionTree
    has_fetch: bool = False  # calls `fetch(...)` or `globalThis.fetch(...)`
    global_fetch: bool = False  # ... and that is the global fetch (no import binds `fetch` in the file)
    # entry points (see entry_call): classes holding `this.x = express()`, classes that call
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
