"""Express app shapes: each folder of tests/fixtures/express/ is a tiny project;
the route table (method, full mounted path, file, line) must be exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelize.api import analyze

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "express"

# shape -> (entry point, [(method, full path, file, line)])
EXPECTED: dict[str, tuple[str, list[tuple[str, str, str, int]]]] = {
    # router.route('/x').get().post(), one line per method
    "chained": (
        "src/index.ts",
        [
            ("GET", "/items", "src/items.ts", 7),
            ("POST", "/items", "src/items.ts", 8),
            ("GET", "/items/:id", "src/items.ts", 10),
            ("PUT", "/items/:id", "src/items.ts", 10),
            ("DELETE", "/items/:id", "src/items.ts", 10),
        ],
    ),
    # app.use('/api', api); api.use('/v1', v1); v1.use('/users', users)
    "nested": (
        "src/index.ts",
        [
            ("GET", "/", "src/index.ts", 6),
            ("GET", "/api/status", "src/api.ts", 8),
            ("GET", "/api/v1/users", "src/v1/users.ts", 4),
            ("GET", "/api/v1/users/:id", "src/v1/users.ts", 5),
            ("GET", "/api/v2/users", "src/v2.ts", 4),
        ],
    ),
    # controller.method handlers: object literal, class instance, namespace import
    "members": (
        "src/index.ts",
        [
            ("GET", "/health", "src/index.ts", 11),
            ("POST", "/orders", "src/index.ts", 9),
            ("GET", "/orders/:id", "src/index.ts", 8),
            ("GET", "/users/:id", "src/index.ts", 10),
        ],
    ),
    # export default router / export { carts as default }
    "default-export": (
        "src/index.ts",
        [
            ("GET", "/carts/mine", "src/routes/carts.ts", 4),
            ("GET", "/products", "src/routes/products.ts", 4),
            ("GET", "/products/:sku", "src/routes/products.ts", 5),
        ],
    ),
    # export const r = Router(); export { router as refunds }; export const accountsRouter = router
    "named-export": (
        "src/index.ts",
        [
            ("GET", "/accounts/:id", "src/accounts.ts", 4),
            ("GET", "/invoices", "src/invoices.ts", 4),
            ("POST", "/refunds", "src/refunds.ts", 4),
        ],
    ),
    # import express = require('express'); const express = require('express'); export = router;
    # module.exports = router; exports.adminRouter = router
    "commonjs": (
        "src/index.ts",
        [
            ("GET", "/admin/stats", "src/admin.ts", 4),
            ("GET", "/notes", "src/notes.ts", 4),
            ("POST", "/notes", "src/notes.ts", 5),
            ("GET", "/ping", "src/index.ts", 10),
            ("GET", "/tags", "src/tags.ts", 4),
            ("DELETE", "/tags/:tag", "src/tags.ts", 5),
        ],
    ),
    # paths as arrays, regular expressions and string constants (also an imported one); Express 5 splat
    "paths": (
        "src/index.ts",
        [
            # `app.use(audit, api)`: an imported middleware, not a path: api is mounted at / too
            ("GET", "/^\\/re(gex)?$/", "src/index.ts", 9),
            ("GET", "/a", "src/index.ts", 8),
            ("GET", "/api/reports/daily", "src/reports.ts", 6),
            ("GET", "/api/reports/weekly", "src/reports.ts", 7),
            ("GET", "/b", "src/index.ts", 8),
            ("GET", "/legacy/^\\/re(gex)?$/", "src/index.ts", 9),
            ("GET", "/legacy/a", "src/index.ts", 8),
            ("GET", "/legacy/b", "src/index.ts", 8),
            ("GET", "/{*splat}", "src/index.ts", 13),
        ],
    ),
    # tsconfig paths: "@routes/*" and an exact "@lib" alias (tsconfig is JSONC)
    "aliases": (
        "src/main.ts",
        [
            ("GET", "/reports/daily", "src/http/routes/reports.ts", 4),
            ("GET", "/version", "src/main.ts", 7),
        ],
    ),
    # createApp() in app.ts, listen() in server.ts
    "factory": (
        "src/server.ts",
        [
            ("GET", "/healthz", "src/app.ts", 7),
            ("GET", "/notes", "src/notes.ts", 4),
            ("POST", "/notes", "src/notes.ts", 5),
        ],
    ),
    # routes/index.ts re-exports the routers (named and `default as`)
    "barrel": (
        "src/index.ts",
        [
            ("GET", "/teams/:id", "src/routes/teams.ts", 4),
            ("GET", "/users", "src/routes/users.ts", 4),
        ],
    ),
}


def test_every_fixture_has_expectations() -> None:
    shapes = sorted(p.name for p in FIXTURES.iterdir() if (p / "package.json").is_file())
    assert shapes == sorted(EXPECTED)


@pytest.mark.parametrize("shape", sorted(EXPECTED))
def test_route_table(shape: str) -> None:
    entry, routes = EXPECTED[shape]
    a = analyze(FIXTURES / shape)
    assert a.unparsable == []
    assert a.entry == entry
    actual = [(r.method, r.path, r.file, r.line) for r in a.graph.routes]
    assert actual == routes


HANDLERS = {
    "members": {
        "GET /orders/:id": ("src/ordersController.ts", "ordersController.get"),
        "POST /orders": ("src/ordersController.ts", "ordersController.create"),
        "GET /users/:id": ("src/usersController.ts", "UsersController.show"),
        "GET /health": ("src/health.ts", "check"),
    },
    "chained": {
        "GET /items/:id": ("src/items.ts", "getItem"),
        "PUT /items/:id": ("src/items.ts", "putItem"),
        "DELETE /items/:id": ("src/items.ts", "deleteItem"),
    },
}


@pytest.mark.parametrize("shape", sorted(HANDLERS))
def test_routes_resolve_to_their_handler_functions(shape: str) -> None:
    a = analyze(FIXTURES / shape)
    g = a.graph.graph
    for route, (file, qualname) in HANDLERS[shape].items():
        targets = {(g.nodes[v]["file"], g.nodes[v]["qualname"]) for v in g.successors(f"route:{route}")}
        assert (file, qualname) in targets, (route, targets)


def test_route_handler_names() -> None:
    a = analyze(FIXTURES / "members")
    assert {(r.method, r.path): r.handler for r in a.graph.routes} == {
        ("GET", "/health"): "health.check",
        ("POST", "/orders"): "ordersController.create",
        ("GET", "/orders/:id"): "ordersController.get",
        ("GET", "/users/:id"): "users.show",
    }


def test_factory_files_are_classified() -> None:
    a = analyze(FIXTURES / "factory")
    assert a.classification.file("src/server.ts").category == "entrypoint"
    assert a.classification.file("src/app.ts").category == "entrypoint"
    assert a.classification.file("src/notes.ts").category == "http"


def test_an_imported_middleware_before_a_router_is_middleware_not_a_path() -> None:
    analysis = analyze(FIXTURES / "paths")
    assert ("src/index.ts", 12, "audit") in analysis.graph.middleware
    assert not any(name in ("API_PREFIX", "LEGACY") for _, _, name in analysis.graph.middleware)


def test_chained_registrations_are_facts_in_source_order() -> None:
    # every call of `router.route('/x').get(a).post(b)` starts at `router`: the query gives no
    # order among them, so the facts (and the scan cache) once listed the chain backwards
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source

    path = "src/items.ts"
    facts = extract(parse_source(path, (FIXTURES / "chained" / path).read_bytes()))
    order = [(r.line, r.method) for r in facts.routes]
    assert order == [(7, "GET"), (8, "POST"), (10, "GET"), (10, "PUT"), (10, "DELETE")]
