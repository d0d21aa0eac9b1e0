"""End to end for JavaScript apps: the sample-app's trace assertions on its JavaScript ports.

tests/fixtures/js-shop-esm (`"type": "module"`, src/) and its CommonJS port
js-shop-cjs (express-generator layout: app.js + bin/www, prototype-style and
singleton services, `exports.x = function`; derived from the ES-module code by
tests/js_shop.py, which also copies in the sample app's contract test) answer the
same HTTP contract as the sample app. Each is instrumented by otelize (`--out`), installed,
started as its start script says (CommonJS: the entry's first `require('./tracing')`;
ESM: `node --import ./src/tracing.js`), driven through the contract with the
exporter pointed at otelize's embedded receiver, and the span trees are checked by
the very tests that check the sample app's. Then: every written file passes
`node --check`, the app's own tests pass instrumented, and `otelize verify`
observes every planned span.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import test_e2e_traces as sample
from js_shop import APPS
from nodeutil import npm_install_cached, run_node_app
from otelize.verification.receiver import OtlpReceiver
from otelize.verification.semconv import load as load_semconv
from otelize.verification.verify import PlannedCheck, analyse_spans, telemetry_env

pytestmark = pytest.mark.node

# the sample app's trace assertions, run here on the JavaScript ports
test_contract_answers_as_specified = sample.test_contract_answers_as_specified
test_one_server_root_per_request_with_route_and_status = sample.test_one_server_root_per_request_with_route_and_status
test_successful_order_trace = sample.test_successful_order_trace
test_declined_payment_marks_errors_and_releases_stock = sample.test_declined_payment_marks_errors_and_releases_stock
test_success_spans_keep_status_unset = sample.test_success_spans_keep_status_unset
test_repeated_search_misses_then_hits_the_cache = sample.test_repeated_search_misses_then_hits_the_cache


@pytest.fixture(scope="module", params=APPS)
def instrumented_js_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, js_shops: dict[str, Path]) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    from otelize.api import instrument

    out = tmp_path_factory.mktemp("instrumented-js") / request.param
    result = instrument(js_shops[request.param], out_dir=out)
    assert result.synthesis.changes, "instrument made no changes to the pristine fixture"
    npm_install_cached(out)
    return out


def _start(app: Path) -> tuple[str, str]:
    """(entry, node flags) from the instrumented start script: `node [flags] <entry>`."""
    words = shlex.split(json.loads((app / "package.json").read_text())["scripts"]["start"])
    assert words[0] == "node"
    return words[-1], " ".join(words[1:-1])


@pytest.fixture(scope="module")
def traced_run(instrumented_js_app: Path):
    app = instrumented_js_app
    entry, flags = _start(app)
    module = "esm" if json.loads((app / "package.json").read_text()).get("type") == "module" else "commonjs"
    if module == "esm":
        assert flags == "--import ./src/tracing.js"  # static imports are hoisted: only a preload runs first
    else:
        assert flags == "" and "require('../tracing');" in (app / entry).read_text().splitlines()[:4]
    responses: list[tuple[int, object]] = []
    with OtlpReceiver() as rx:
        env = telemetry_env(rx.endpoint, "shop-api", None, module)
        env.update({"SIMULATED_LATENCY_MS": "1", "NODE_ENV": "test", "OTEL_SERVICE_NAME": "shop-api"})
        if flags:
            env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " " + flags).strip()
        with run_node_app(app, env=env, entry=entry) as base:
            for method, path, body, _, _ in sample.CONTRACT:
                responses.append(sample._request(base, method, path, body))
            order_id = responses[11][1]["id"]  # type: ignore[index]
            responses.append(sample._request(base, "GET", f"/api/orders/{order_id}", None))
        spans = [s for s in rx.spans() if s.resource.get("service.name") == "shop-api"]
    return responses, spans


def test_no_invalid_attributes_duplicates_or_unended_spans(traced_run, instrumented_js_app):
    _, spans = traced_run
    planned = [PlannedCheck("OrderService.createOrder", "INTERNAL", "service", "", 0)]
    result = analyse_spans(planned, spans, load_semconv(instrumented_js_app))
    assert result.invalid_attributes == [] and result.duplicates == [] and result.orphans == [] and result.rootless == []
    assert planned[0].observed >= 1


def test_prototype_and_exports_idioms_get_spans(traced_run, instrumented_js_app):
    """InventoryService is a constructor function with prototype methods in the CommonJS
    port; ProductService is the module's value (`module.exports = new ProductService()`)."""
    _, spans = traced_run
    names = {s.name for s in spans}
    assert {"InventoryService.reserveStock", "InventoryService.getInventory", "ProductService.getProduct"} <= names
    assert "InventoryService" not in names  # the constructor function itself gets no span


def test_every_written_file_passes_node_check(instrumented_js_app, js_shops):
    fixture = js_shops[instrumented_js_app.name]
    written = [
        p for p in sorted(instrumented_js_app.rglob("*"))
        if p.is_file() and "node_modules" not in p.parts and p.suffix in (".js", ".mjs", ".cjs", "")
        and p.name != "package-lock.json"
        and (not (fixture / p.relative_to(instrumented_js_app)).exists()
             or (fixture / p.relative_to(instrumented_js_app)).read_bytes() != p.read_bytes())
    ]
    assert any(p.name == "otel.js" for p in written) and any(p.name == "tracing.js" for p in written)
    assert not any(p.suffix == ".ts" for p in instrumented_js_app.rglob("*.ts") if "node_modules" not in p.parts)
    for path in written:
        proc = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{path.relative_to(instrumented_js_app)}: {proc.stderr}"


def test_the_apps_own_tests_pass_instrumented_and_verify_sees_every_span(instrumented_js_app):
    proc = subprocess.run(
        [sys.executable, "-m", "otelize", "verify", str(instrumented_js_app), "--format", "json"],
        capture_output=True, text=True, timeout=600,
    )
    data = json.loads(proc.stdout)
    assert data["command_exit"] == 0, proc.stderr  # `npm test`: the app's own node:test suite
    assert data["missing"] == [], (data["missing"], proc.stderr)
    assert data["invalid_attributes"] == [] and data["duplicates"] == [] and data["orphans"] == [], data
    assert proc.returncode == 0, proc.stderr
