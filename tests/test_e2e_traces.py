"""End to end: the instrumented sample-app, the real OTel SDK, a real OTLP receiver.

Instrument a copy of the sample-app, install and build it, start it with the
exporter pointed at otelize's embedded receiver, drive every row of the HTTP
contract, stop it cleanly, and assert on the span trees.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nodeutil import run_node_app
from otelize.verification.receiver import OtlpReceiver, ReceivedSpan
from otelize.verification.semconv import load as load_semconv
from otelize.verification.verify import PlannedCheck, analyse_spans, telemetry_env

pytestmark = pytest.mark.node

ORDER_OK = {"userId": "u1", "items": [{"productId": "p1", "quantity": 2}], "paymentToken": "tok_visa"}
ORDER_DECLINED = {"userId": "u2", "items": [{"productId": "p2", "quantity": 1}], "paymentToken": "tok_declined"}

# (method, path, body, expected status, expected http.route or None when not traced)
CONTRACT = [
    ("GET", "/health", None, 200, None),
    ("POST", "/api/users", {"name": "Grace", "email": "grace@example.org"}, 201, "/api/users"),
    ("POST", "/api/users", {"name": "Grace"}, 400, "/api/users"),
    ("POST", "/api/users", {"name": "Grace 2", "email": "grace@example.org"}, 409, "/api/users"),
    ("GET", "/api/users/u1", None, 200, "/api/users/:id"),
    ("GET", "/api/users/nope", None, 404, "/api/users/:id"),
    ("GET", "/api/products?q=desk", None, 200, "/api/products"),
    ("GET", "/api/products?q=desk", None, 200, "/api/products"),
    ("GET", "/api/products/p1", None, 200, "/api/products/:id"),
    ("GET", "/api/products/p404", None, 404, "/api/products/:id"),
    ("GET", "/api/products/p1/inventory", None, 200, "/api/products/:id/inventory"),
    ("POST", "/api/orders", ORDER_OK, 201, "/api/orders"),
    ("POST", "/api/orders", {"userId": "u1"}, 400, "/api/orders"),
    ("POST", "/api/orders", {**ORDER_OK, "userId": "u404"}, 404, "/api/orders"),
    ("POST", "/api/orders", {**ORDER_OK, "items": [{"productId": "p5", "quantity": 1}]}, 409, "/api/orders"),
    ("POST", "/api/orders", ORDER_DECLINED, 402, "/api/orders"),
    ("GET", "/api/orders/o404", None, 404, "/api/orders/:id"),
]


def _request(base: str, method: str, path: str, body: object | None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def traced_run(instrumented_sample_app: Path):
    """Run the contract against the instrumented app; return (responses, spans)."""
    responses: list[tuple[int, object]] = []
    with OtlpReceiver() as rx:
        env = telemetry_env(rx.endpoint, "shop-api", None, "commonjs")
        env.update({"SIMULATED_LATENCY_MS": "1", "NODE_ENV": "test"})
        with run_node_app(instrumented_sample_app, env=env) as base:
            for method, path, body, _, _ in CONTRACT:
                responses.append(_request(base, method, path, body))
            order_id = responses[11][1]["id"]  # type: ignore[index]
            responses.append(_request(base, "GET", f"/api/orders/{order_id}", None))
        # run_node_app sent SIGTERM and waited: tracing.ts flushed on shutdown.
        spans = [s for s in rx.spans() if s.resource.get("service.name") == "shop-api"]
    return responses, spans


def _servers(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.kind == "SERVER"), key=lambda s: s.start_ns)


def _trace(spans: list[ReceivedSpan], root: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == root.trace_id]


def _names(spans: list[ReceivedSpan], kind: str | None = None) -> set[str]:
    return {s.name for s in spans if kind is None or s.kind == kind}


def test_contract_answers_as_specified(traced_run):
    responses, _ = traced_run
    assert [status for status, _ in responses[: len(CONTRACT)]] == [row[3] for row in CONTRACT]
    assert responses[-1][0] == 200


def test_one_server_root_per_request_with_route_and_status(traced_run):
    _, spans = traced_run
    servers = _servers(spans)
    traced_rows = [row for row in CONTRACT if row[4] is not None] + [("GET", "/api/orders/:id", None, 200, "/api/orders/:id")]
    assert len(servers) == len(traced_rows), [s.name for s in servers]
    for server, (method, _, _, status, route) in zip(servers, traced_rows):
        assert server.parent_span_id == "", f"{server.name} is not a root"
        assert server.attributes.get("http.route") == route
        assert server.attributes.get("http.request.method") == method
        assert server.attributes.get("http.response.status_code") == status
    # one SERVER span per trace: no duplicate server spans
    assert len({s.trace_id for s in servers}) == len(servers)
    # the health check is excluded from tracing by the generated config
    assert not any(s.attributes.get("url.path") == "/health" for s in spans)


def test_successful_order_trace(traced_run):
    _, spans = traced_run
    root = next(s for s in _servers(spans) if s.attributes.get("http.response.status_code") == 201 and s.attributes.get("http.route") == "/api/orders")
    trace = _trace(spans, root)
    internal = _names(trace, "INTERNAL")
    assert {"OrderService.createOrder", "InventoryService.reserveStock", "PaymentService.charge", "UserService.getUser"} <= internal
    db = [s for s in trace if s.kind == "CLIENT" and s.name.startswith("Database.")]
    assert db and all(s.attributes.get("db.system.name") and s.attributes.get("db.operation.name") for s in db)
    assert {"SELECT", "INSERT", "UPDATE"} <= {s.attributes["db.operation.name"] for s in db}
    cache_reads = [s for s in trace if s.name == "Cache.get"]
    assert cache_reads and all(isinstance(s.attributes.get("cache.hit"), bool) for s in cache_reads)
    assert all(s.kind == "CLIENT" for s in trace if s.name.startswith("Cache."))
    payment = [s for s in trace if s.name == "PaymentAPI.charge"]
    shipping = [s for s in trace if s.name == "ShippingAPI.createShipment"]
    assert len(payment) == 1 and len(shipping) == 1
    assert payment[0].kind == shipping[0].kind == "CLIENT"
    assert payment[0].attributes["server.address"] == "api.payments.example.com"
    assert shipping[0].attributes["server.address"] == "api.shipping.example.com"
    assert payment[0].attributes["http.request.method"] == "POST"
    assert shipping[0].attributes["http.request.method"] == "POST"
    ids = {s.span_id for s in trace}
    assert all(s.parent_span_id in ids for s in trace if s is not root), "a span's parent is missing from the trace"
    # the business spans nest under the route handler, not beside it
    by_id = {s.span_id: s for s in trace}
    create = next(s for s in trace if s.name == "OrderService.createOrder")
    charge = next(s for s in trace if s.name == "PaymentService.charge")
    assert by_id[charge.parent_span_id] is create
    assert by_id[payment[0].parent_span_id] is charge


def test_declined_payment_marks_errors_and_releases_stock(traced_run):
    _, spans = traced_run
    root = next(s for s in _servers(spans) if s.attributes.get("http.response.status_code") == 402)
    trace = _trace(spans, root)
    by_id = {s.span_id: s for s in trace}
    charge = next(s for s in trace if s.name == "PaymentService.charge")
    chain = []
    node = charge
    while node is not None:
        chain.append(node)
        node = by_id.get(node.parent_span_id)
    assert chain[-1] is root
    for span in chain:
        if span.scope == "otelize":
            assert span.status_code == "ERROR", f"{span.name} is not ERROR"
            assert span.attributes.get("error.type") == "PaymentDeclinedError", span.name
            assert any(name == "exception" for name, _ in span.events), f"{span.name} has no exception event"
    # the error handler answered 402: a handled client error is no server error (HTTP semantic
    # conventions), so the SERVER span keeps status UNSET, but it records the exception event
    assert root.status_code == "UNSET" and "error.type" not in root.attributes
    assert any(name == "exception" for name, _ in root.events), "the SERVER span has no exception event"
    assert {s.name for s in chain} >= {"PaymentService.charge", "OrderService.createOrder"}
    assert root.attributes["http.response.status_code"] == 402
    released = [s for s in trace if s.name == "InventoryService.releaseStock"]
    assert released and all(s.status_code == "UNSET" for s in released)


def test_success_spans_keep_status_unset(traced_run):
    _, spans = traced_run
    root = next(s for s in _servers(spans) if s.attributes.get("http.response.status_code") == 201 and s.attributes.get("http.route") == "/api/orders")
    assert all(s.status_code == "UNSET" for s in _trace(spans, root) if s.scope == "otelize")


def test_repeated_search_misses_then_hits_the_cache(traced_run):
    _, spans = traced_run
    searches = [s for s in _servers(spans) if s.attributes.get("http.route") == "/api/products" and s.attributes.get("url.query") == "q=desk"]
    assert len(searches) == 2
    hits = []
    for root in searches:
        reads = [s for s in _trace(spans, root) if s.name == "Cache.get"]
        assert len(reads) == 1
        hits.append(reads[0].attributes["cache.hit"])
    assert hits == [False, True]


def test_no_invalid_attributes_duplicates_or_unended_spans(traced_run, instrumented_sample_app):
    _, spans = traced_run
    planned = [PlannedCheck("OrderService.createOrder", "INTERNAL", "service", "", 0)]
    result = analyse_spans(planned, spans, load_semconv(instrumented_sample_app))
    assert result.invalid_attributes == []
    assert result.duplicates == []
    # every parent was exported: nothing the SDK created was left unended at shutdown
    assert result.orphans == []
    assert result.rootless == []
    assert planned[0].observed >= 1


def test_verify_cli_reports_every_planned_span(instrumented_sample_app):
    proc = subprocess.run(
        [sys.executable, "-m", "otelize", "verify", str(instrumented_sample_app), "--format", "json"],
        capture_output=True, text=True, timeout=600,
    )
    data = json.loads(proc.stdout)
    # on failure, stderr carries the exit code and the last lines of `npm test`
    assert data["command_exit"] == 0, proc.stderr
    assert data["missing"] == [], (data["missing"], proc.stderr)
    assert data["coverage"] == 100.0
    assert data["invalid_attributes"] == [] and data["duplicates"] == [] and data["orphans"] == [], data
    assert proc.returncode == 0, proc.stderr


def test_verify_requests_mode_and_missing_spans_exit_1(instrumented_sample_app, tmp_path):
    requests = tmp_path / "smoke.yaml"
    requests.write_text("- GET /health\n- {method: GET, path: /api/products/p1, expect: 200}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "otelize", "verify", str(instrumented_sample_app), "--requests", str(requests), "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )
    data = json.loads(proc.stdout)
    observed = {p["name"] for p in data["planned"] if p["observed"]}
    assert "ProductService.getProduct" in observed
    assert "OrderService.createOrder" in data["missing"]  # never requested
    assert proc.returncode == 1
