"""Route layouts of real apps (issue #14): each folder of tests/fixtures/routes/ is a
small project; plan's route table (method, full mounted path, file, line) must be
exact, and each route's handler edge must reach the function that serves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelize.api import analyze
from otelize.cli.main import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "routes"

# layout -> [(method, full path, file, line)] in plan's order
EXPECTED: dict[str, list[tuple[str, str, str, int]]] = {
    # Router().use(ordersRouter).use(usersRouter), then app.use('/api', api)
    "chained-routers": [
        ("GET", "/admin/audit/log", "src/index.ts", 6),
        ("GET", "/admin/stats", "src/index.ts", 8),
        ("GET", "/api/orders", "src/orders.ts", 4),
        ("POST", "/api/orders", "src/orders.ts", 5),
        ("GET", "/api/users/:id", "src/users.ts", 4),
    ],
    # export default (app: Router) => { app.use('/accounts', route); route.post(...) },
    # called as accounts(app) on the router a factory returns, mounted at config.api.prefix
    "param-mount": [
        ("POST", "/api/accounts/login", "src/api/routes/accounts.ts", 8),
        ("GET", "/api/accounts/me", "src/api/routes/accounts.ts", 9),
        ("GET", "/api/health", "src/api/routes/health.ts", 4),
        ("GET", "/status", "src/loaders/express.ts", 6),
    ],
    # public path = '/invoices'; public router = Router(); this.router.get(`${this.path}/:id`)
    # in initializeRoutes() / the constructor; app.use('/', route.router) in a class-based app
    # (this.app.get('env') reads a setting: not a route)
    "class-routers": [
        ("GET", "/customers/:id", "src/routes/customers.route.ts", 10),
        ("DELETE", "/customers/:id", "src/routes/customers.route.ts", 10),
        ("GET", "/invoices", "src/routes/invoices.route.ts", 15),
        ("GET", "/invoices/:id(\\d+)", "src/routes/invoices.route.ts", 16),
    ],
    # template literals over module constants (an imported one too); router.route().get().post()
    "templates": [
        ("GET", "/v2/shop/items", "src/index.ts", 8),
        ("POST", "/v2/shop/items", "src/index.ts", 8),
        ("GET", "/v2/shop/items/:id", "src/index.ts", 9),
    ],
    # @JsonController('/users') / @Controller() with @Get('/:id'), @Post() (imported as
    # HttpPost), and routePrefix from a constant
    "routing-controllers": [
        ("GET", "/api/health", "src/controllers/HealthController.ts", 5),
        ("GET", "/api/users", "src/controllers/UserController.ts", 5),
        ("POST", "/api/users", "src/controllers/UserController.ts", 15),
        ("GET", "/api/users/:id", "src/controllers/UserController.ts", 10),
    ],
    # @Controller({ path, children }) and the mount configuration (two mount points)
    "tsed": [
        ("GET", "/", "src/controllers/pages/IndexController.ts", 6),
        ("POST", "/rest/users", "src/controllers/rest/UsersController.ts", 13),
        ("GET", "/rest/users/:id", "src/controllers/rest/UsersController.ts", 8),
        ("GET", "/rest/users/:userId/posts", "src/controllers/rest/PostsController.ts", 6),
    ],
    # @Route('users') with @Get('{userId}'); tsoa.json routes.basePath; the generated
    # routes file is not listed a second time
    "tsoa": [
        ("POST", "/v1/users", "src/users/usersController.ts", 10),
        ("GET", "/v1/users/:userId", "src/users/usersController.ts", 5),
        ("DELETE", "/v1/users/:userId/sessions/:sessionId", "src/users/usersController.ts", 15),
    ],
    # `route = require(<glob result>); route.register(router)`: every `register` export
    # under the folder, on an express-promise-router Router mounted by a class-based app
    "dynamic-register": [
        ("PUT", "/v1/courses/:id", "src/routes/courses.route.ts", 4),
        ("GET", "/v1/status", "src/routes/status.route.ts", 4),
    ],
    # `/${apiPrefix}` with `const apiPrefix = Locals.config().apiPrefix`, a static method
    # returning `{ apiPrefix }` where `apiPrefix = process.env.API_PREFIX || 'api'`: the default
    "config-getter": [
        ("GET", "/api", "src/routes/Api.ts", 4),
        ("POST", "/api/auth/login", "src/routes/Api.ts", 5),
    ],
    # Express 5 path syntax: named wildcards, optional braces
    "express5": [
        ("GET", "/files/*splat", "src/index.ts", 4),
        ("GET", "/files/:name{.:ext}", "src/index.ts", 5),
        ("GET", "/users{/:id}", "src/index.ts", 8),
        ("ALL", "/{*rest}", "src/index.ts", 10),
    ],
    # routers mounted in a loop over a literal array: forEach and for...of
    "loop-mounts": [
        ("GET", "/v1/accounts", "src/routes/accounts.ts", 4),
        ("POST", "/v1/accounts/:id", "src/routes/accounts.ts", 5),
        ("GET", "/v1/invoices", "src/routes/invoices.ts", 4),
        ("POST", "/v1/invoices/:id", "src/routes/invoices.ts", 5),
        ("GET", "/v1/reports", "src/routes/reports.ts", 4),
        ("POST", "/v1/reports/:id", "src/routes/reports.ts", 5),
    ],
    # paths built from constants (`SHOP + '/cart'`, an imported one too), one route per
    # element of a literal array (or `new Map`) a loop registers over, and paths computed
    # at runtime kept as their source text in `${...}`, never a path the app does not serve
    "computed": [
        ("GET", "/assets/app.css", "src/index.ts", 15),
        ("GET", "/assets/app.js", "src/index.ts", 15),
        ("GET", "/files/guide.pdf", "src/index.ts", 18),
        ("GET", "/files/terms.pdf", "src/index.ts", 18),
        ("GET", "/health/${process.env.PROBE_PATH as string}", "src/index.ts", 22),
        ("GET", "/reports/${new Date().getFullYear()}", "src/index.ts", 24),
        ("GET", "/shop/cart", "src/index.ts", 12),
        ("POST", "/v1/shop/orders", "src/index.ts", 13),
    ],
    # inversify-express-utils: @controller('/parcels', middleware) with @httpGet…, an aliased
    # @httpPost, @httpMethod('put', p) and @all; the server's rootPath from a constant
    "inversify": [
        ("GET", "/api/v2/parcels", "src/controllers/parcels.ts", 14),
        ("POST", "/api/v2/parcels", "src/controllers/parcels.ts", 24),
        ("GET", "/api/v2/parcels/:parcelId", "src/controllers/parcels.ts", 19),
        ("PUT", "/api/v2/parcels/:parcelId", "src/controllers/parcels.ts", 29),
        ("PATCH", "/api/v2/parcels/:parcelId", "src/controllers/parcels.ts", 34),
        ("DELETE", "/api/v2/parcels/:parcelId", "src/controllers/parcels.ts", 39),
        ("HEAD", "/api/v2/parcels/:parcelId", "src/controllers/parcels.ts", 44),
        ("ALL", "/api/v2/parcels/legacy/*", "src/controllers/parcels.ts", 49),
        ("GET", "/api/v2/status", "src/controllers/status.ts", 5),
    ],
    # `app.use(prefix, router)` with the prefix in a variable: an imported constant taken at
    # its `process.env.X || '/api/v1'` default, a member of a default-exported object, a
    # function-local constant; a string computed at runtime (`process.env.DOCS_PREFIX`, a
    # `base: string` parameter) as `${...}`; routers held by an object (`routes.reports`);
    # `app.use(audit, health)` is middleware, not a prefix
    "variable-mounts": [
        ("GET", "/${base}/live", "src/index.ts", 10),
        ("GET", "/${config.docsPrefix}/users/:id", "src/routes/users.ts", 4),
        ("GET", "/admin/reports", "src/routes/reports.ts", 4),
        ("GET", "/api/v1/users/:id", "src/routes/users.ts", 4),
        ("GET", "/internal/live", "src/index.ts", 10),
        ("GET", "/live", "src/index.ts", 10),
    ],
    # CommonJS constants: `exports.API_PREFIX = '/api'`, `module.exports.USERS_PATH = ...`,
    # `module.exports = { ORDERS: '/orders', admin: { root: '/admin' } }`, read through
    # `const { API_PREFIX } = require(...)` and `paths.ORDERS + '/:id'`; `new Router()`, a
    # router a required module exports (`routes.api`), and an `(app) => ...` module passed a router
    "commonjs-constants": [
        ("GET", "/admin/stats", "routes/admin.js", 6),
        ("POST", "/api/orders", "routes/orders.js", 8),
        ("GET", "/api/orders/:id", "routes/orders.js", 7),
        ("GET", "/api/users/:id", "routes/users.js", 10),
    ],
    # `export default Router().use('/v1', v1)`: a chained router as the module's default
    # export, mounted without a path (`server.use(api)`); a router built from a parameter
    # typed `typeof express`, mounted as `server.use('/ops', healthRoutes(express, t))`
    "default-chain": [
        ("GET", "/ops/health", "src/routes/health.ts", 6),
        ("GET", "/ping", "src/server.ts", 9),
        ("GET", "/v1/books", "src/routes/books.ts", 4),
        ("GET", "/v1/books/:isbn", "src/routes/books.ts", 5),
        ("POST", "/v1/loans", "src/routes/loans.ts", 4),
    ],
    # `module.exports = express.Router().use('/music', albums)`, mounted as `app.use(routes)`
    "exported-chain-cjs": [
        ("GET", "/music/albums", "routes/albums.js", 4),
        ("PUT", "/music/albums/:id", "routes/albums.js", 5),
    ],
    # routers built by functions that are passed express (`function r(express, store) {
    # const router = express.Router(); ...; return router }`), mounted by a routes function
    # passed the app (`app.use('/desk/tickets', ticketRoutes(express, store))`)
    "injected-express": [
        ("POST", "/desk/session", "lib/routes/session.js", 6),
        ("GET", "/desk/tickets", "lib/routes/tickets.js", 7),
        ("POST", "/desk/tickets", "lib/routes/tickets.js", 7),
        ("GET", "/desk/tickets/:ticketId", "lib/routes/tickets.js", 10),
        ("DELETE", "/desk/tickets/:ticketId", "lib/routes/tickets.js", 11),
    ],
    # a router never mounted is not a route at /
    "unmounted": [
        ("GET", "/orders", "src/index.ts", 4),
    ],
}

# layout -> {"METHOD path": (file, qualname)} the route's handler edge reaches
HANDLERS: dict[str, dict[str, tuple[str, str]]] = {
    "class-routers": {
        "GET /invoices": ("src/controllers/invoices.controller.ts", "InvoicesController.getInvoices"),
        "GET /invoices/:id(\\d+)": ("src/controllers/invoices.controller.ts", "InvoicesController.getInvoiceById"),
    },
    "routing-controllers": {
        "GET /api/users/:id": ("src/controllers/UserController.ts", "UserController.getOne"),
        "POST /api/users": ("src/controllers/UserController.ts", "UserController.create"),
    },
    "tsed": {
        "GET /rest/users/:userId/posts": ("src/controllers/rest/PostsController.ts", "PostsController.list"),
    },
    "tsoa": {
        "GET /v1/users/:userId": ("src/users/usersController.ts", "UsersController.getUser"),
    },
    "inversify": {
        "PUT /api/v2/parcels/:parcelId": ("src/controllers/parcels.ts", "ParcelsController.replace"),
        "POST /api/v2/parcels": ("src/controllers/parcels.ts", "ParcelsController.add"),
    },
}


def test_every_fixture_has_expectations() -> None:
    layouts = sorted(p.name for p in FIXTURES.iterdir() if (p / "package.json").is_file())
    assert layouts == sorted(EXPECTED)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_route_table(layout: str) -> None:
    a = analyze(FIXTURES / layout)
    assert a.unparsable == []
    assert [(r.method, r.path, r.file, r.line) for r in a.graph.routes] == EXPECTED[layout]


@pytest.mark.parametrize("layout", sorted(HANDLERS))
def test_route_handler_edges(layout: str) -> None:
    g = analyze(FIXTURES / layout).graph.graph
    for route, target in HANDLERS[layout].items():
        reached = {(g.nodes[v]["file"], g.nodes[v]["qualname"]) for v in g.successors(f"route:{route}")}
        assert target in reached, (route, reached)


def test_an_unmounted_router_is_reported_as_unmounted() -> None:
    a = analyze(FIXTURES / "unmounted")
    assert [(r.method, r.path, r.file, r.line) for r in a.graph.unmounted] == [("GET", "/old-orders", "src/legacy.ts", 5)]
    assert not any(r.path == "/old-orders" for r in a.graph.routes)

    runner = CliRunner()
    text = runner.invoke(cli, ["plan", str(FIXTURES / "unmounted")])
    assert text.exit_code == 0, text.output
    assert "unmounted (1): routes of routers no app mounts, paths as written:" in text.output
    assert "GET     /old-orders → src/legacy.ts:5 <anonymous>" in text.output
    data = json.loads(runner.invoke(cli, ["plan", str(FIXTURES / "unmounted"), "--format", "json"]).output)
    assert [(r["method"], r["path"]) for r in data["unmounted_routes"]] == [("GET", "/old-orders")]
    assert ("GET", "/old-orders") not in [(r["method"], r["path"]) for r in data["routes"]]


def test_a_tsed_controller_no_mount_names_is_unmounted(tmp_path: Path) -> None:
    src = FIXTURES / "tsed"
    for path in sorted(src.rglob("*")):
        if path.is_file():
            dest = tmp_path / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())
    server = tmp_path / "src" / "Server.ts"
    server.write_text(server.read_text().replace("    '/': [IndexController],\n", ""))
    a = analyze(tmp_path)
    assert [(r.method, r.path) for r in a.graph.unmounted] == [("GET", "/")]
    assert ("GET", "/") not in [(r.method, r.path) for r in a.graph.routes]


# A decorator with a call chain is valid TypeScript (tsc compiles it) that the grammar
# otelize pins, tree-sitter-typescript 0.23.2 (the newest release on PyPI), does not
# parse. The file is left alone, and the message blames the grammar, not the code.
DECORATOR_CHAIN = """import { Controller, Get } from '@tsed/common';
import { Returns } from '@tsed/schema';

class User {}
class Page {}

@Controller('/users')
export class UsersController {
  @Get('/')
  @Returns(200, Page).Of(User)
  list() {
    return [];
  }
}
"""


def test_the_pinned_grammar_does_not_parse_a_decorator_call_chain() -> None:
    from otelize.analysis.parse import grammar_version, parse_source

    assert grammar_version() == "0.23.2"
    # when a newer grammar parses this, bump the pin and drop this test's premise
    assert parse_source("src/users.ts", DECORATOR_CHAIN.encode()).errors != []


def test_an_unparsable_file_is_blamed_on_the_grammar(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.0"}}')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "users.ts").write_text(DECORATOR_CHAIN)
    (tmp_path / "src" / "index.ts").write_text("import express from 'express';\nexpress().listen(3000);\n")
    reasons = dict(analyze(tmp_path).unparsable)
    assert reasons["src/users.ts"] == (
        "the TypeScript grammar (tree-sitter-typescript 0.23.2) could not parse it at line 10 column 22 (ERROR): "
        "a syntax error, or syntax the grammar does not support"
    )
    assert "syntax error at" not in reasons["src/users.ts"]


def test_parameter_routers_are_keyed_by_the_deduplicated_qualname() -> None:
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source

    source = b"""import { Router } from 'express';
function a() { function register(x: number) { return x; } return register(1); }
function b() { function register(router: Router) { router.get('/b', (req, res) => res.end()); } }
"""
    facts = extract(parse_source("src/r.ts", source))
    assert [f.qualname for f in facts.functions if f.name == "register"] == ["register", "register#2"]
    assert facts.param_routers == {"register#2": [(0, "register#2:router")]}


def test_every_owner_type_and_untyped_name_passes_the_parameter_prefilter() -> None:
    """routefacts looks closer only at parameters whose text matches _OWNER_HINT: every
    type and name that makes a parameter a route owner must match it, or its routes go."""
    from otelize.analysis import routefacts as rf

    for word in sorted(rf.ROUTER_TYPES | rf.APP_TYPES | rf.UNTYPED_APP_NAMES | rf.UNTYPED_ROUTER_NAMES):
        assert rf._OWNER_HINT.search(word.encode()), word


def test_a_computed_path_is_said_once_and_is_no_health_path(tmp_path: Path) -> None:
    """`probes.get(process.env.PROBE_PATH, h)` mounted at /health is not the route /health:
    plan says which paths are computed, and the tracing config ignores no request for it."""
    from otelize.workers import config

    a = analyze(FIXTURES / "computed")
    assert [r.path for r in a.graph.routes if r.computed] == ["/health/${process.env.PROBE_PATH as string}", "/reports/${new Date().getFullYear()}"]
    ctx = type("Ctx", (), {"routes": a.graph.routes})()
    assert config.health_paths(ctx) == []
    out = CliRunner().invoke(cli, ["plan", str(FIXTURES / "computed")]).output
    notes = [line for line in out.splitlines() if "computed at runtime" in line]
    assert notes == ["  (2 with a path computed at runtime, not resolved statically: each ${...} is the source text, "
                     "not the path; src/index.ts:22, src/index.ts:24)"]
    data = json.loads(CliRunner().invoke(cli, ["plan", str(FIXTURES / "computed"), "--format", "json"]).output)
    assert [r["line"] for r in data["routes"] if r.get("computed")] == [22, 24]


def test_a_loop_over_a_let_item_or_a_map_foreach_is_not_expanded(tmp_path: Path) -> None:
    """Only a `const` for...of item (a `let` one can be reassigned) and only for...of over a
    Map (its forEach passes the value first) give one route per element."""
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.0"}}')
    (tmp_path / "index.js").write_text(
        "const express = require('express');\nconst app = express();\n"
        "const URLS = ['/a', '/b'];\nconst FILES = new Map([['/c', 'c.txt']]);\n"
        "for (let url of URLS) { app.get(url, (req, res) => res.end()); }\n"
        "FILES.forEach(([url]) => app.get(url, (req, res) => res.end()));\n"
        "URLS.forEach((url) => app.get(url, (req, res) => res.end()));\n"
        "app.listen(3000);\n"
    )
    a = analyze(tmp_path)
    assert [(r.path, r.line) for r in a.graph.routes] == [("/${url}", 5), ("/${url}", 6), ("/a", 7), ("/b", 7)]


@pytest.mark.parametrize(("config", "prefix"), [
    ("", ""),  # no routing config: inversify's default root
    (", null, { rootPath: '/v3' }", "/v3"),
    (", null, { rootPath: process.env.API_ROOT as string }", "/${process.env.API_ROOT as string}"),
    (", null, routing", "/${routing}"),  # a config object built elsewhere: its rootPath is not read
])
def test_an_inversify_root_path_prefixes_every_controller(tmp_path: Path, config: str, prefix: str) -> None:
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.2", "inversify-express-utils": "6.5.0"}}')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "things.ts").write_text(
        "import { controller, httpGet } from 'inversify-express-utils';\n"
        "@controller('/things')\nexport class Things {\n  @httpGet('/:id')\n  one() { return 1; }\n}\n"
    )
    (tmp_path / "src" / "index.ts").write_text(
        "import { Container } from 'inversify';\nimport { InversifyExpressServer } from 'inversify-express-utils';\n"
        "import './things';\nconst routing = { rootPath: '/v9' };\n"
        f"new InversifyExpressServer(new Container(){config}).build().listen(3000);\n"
    )
    a = analyze(tmp_path)
    assert a.entry == "src/index.ts"
    assert [(r.method, r.path) for r in a.graph.routes] == [("GET", prefix + "/things/:id")]


def test_two_inversify_servers_each_serve_every_controller(tmp_path: Path) -> None:
    """Controllers register through their decorators, not per server: a second server with
    another rootPath serves them all again."""
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.2", "inversify-express-utils": "6.5.0"}}')
    (tmp_path / "things.ts").write_text(
        "import { controller, httpGet } from 'inversify-express-utils';\n"
        "@controller('/things')\nexport class Things {\n  @httpGet('/')\n  all() { return []; }\n}\n"
    )
    (tmp_path / "index.ts").write_text(
        "import { Container } from 'inversify';\nimport { InversifyExpressServer } from 'inversify-express-utils';\n"
        "import './things';\nconst c = new Container();\n"
        "new InversifyExpressServer(c, null, { rootPath: '/public' }).build().listen(3000);\n"
        "new InversifyExpressServer(c, null, { rootPath: '/admin' }).build().listen(3001);\n"
    )
    assert [r.path for r in analyze(tmp_path).graph.routes] == ["/admin/things", "/public/things"]


def test_a_mount_prefix_is_told_from_middleware() -> None:
    """Only a first argument known to be a string is a mount prefix: `cors()`, `audit` (a
    function) and `API_PREFIX` before middleware stay what they are."""
    a = analyze(FIXTURES / "variable-mounts")
    assert a.graph.middleware == [("src/index.ts", 12, "cors"), ("src/index.ts", 16, "audit")]
    a = analyze(FIXTURES / "commonjs-constants")
    assert a.graph.middleware == [("app.js", 11, "express.json"), ("app.js", 12, "audit")]


@pytest.mark.parametrize(("head", "mount"), [
    ("const limiter = rateLimit();\n", "app.use(limiter, api);"),  # a call's value: middleware
    ("function mount(prefix) { app.use(prefix, api); }\nmount('/x');\n", ""),  # an untyped parameter
    ("const { prefix } = settings;\n", "app.use(prefix, api);"),  # read from something unknown
    ("const n = 3;\n", "app.use(n, api);"),
])
def test_a_first_argument_not_known_to_be_a_string_is_no_prefix(tmp_path: Path, head: str, mount: str) -> None:
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.0"}}')
    (tmp_path / "index.js").write_text(
        "const express = require('express');\nconst rateLimit = require('express-rate-limit');\n"
        "const settings = require('./settings.json');\nconst app = express();\nconst api = express.Router();\n"
        "api.get('/ping', (req, res) => res.end());\n" + head + mount + "\napp.listen(3000);\n"
    )
    assert [r.path for r in analyze(tmp_path).graph.routes] == ["/ping"]


def test_a_required_module_s_constants_and_its_own_locals_do_not_mix(tmp_path: Path) -> None:
    """`exports.BASE = '/v2'` beside a module variable `BASE`: a requirer reads the export."""
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.0"}}')
    (tmp_path / "c.js").write_text("const BASE = '/local';\nexports.BASE = '/v2';\nexports.ROOT = BASE;\n")
    (tmp_path / "index.js").write_text(
        "const express = require('express');\nconst c = require('./c');\nconst { ROOT } = require('./c');\n"
        "const app = express();\napp.get(c.BASE + '/a', (req, res) => res.end());\n"
        "app.get(`${c.ROOT}/b`, (req, res) => res.end());\napp.listen(3000);\n"
    )
    assert [r.path for r in analyze(tmp_path).graph.routes] == ["/local/b", "/v2/a"]
