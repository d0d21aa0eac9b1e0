"""`otelize instrument` on the sample app: snapshots, determinism, the span inventory, the CLI,
and (with node) that the instrumented copy installs, type-checks and passes its own tests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelize.api import InstrumentResult, instrument
from otelize.cli.main import cli
from otelize.analysis.parse import parse_source
from otelize.report.instrument import to_json
from transform import snapshot_tree

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO_ROOT / "sample-app"
COPY_IGNORE = shutil.ignore_patterns("node_modules", "dist", ".git")

# Read from sample-app/src, not from the tool: every public method and exported
# function of the services that does real work (awaits or reaches I/O), and every
# operation of the database, cache and external-API wrappers (private members,
# constructors, module-internal helpers and pure synchronous helpers are left out
# by design: stockStatus, parseCreateOrderInput and parseCreateUserInput validate or
# compute and reach no I/O).
PURE_HELPERS = {"stockStatus", "parseCreateOrderInput", "parseCreateUserInput"}
EXPECTED_SPANS = {
    "service": {
        "InventoryService.getInventory",
        "InventoryService.checkStock",
        "InventoryService.reserveStock",
        "InventoryService.releaseStock",
        "OrderService.createOrder",
        "OrderService.getOrder",
        "OrderService.listOrdersForUser",
        "OrderService.cancelOrder",
        "OrderService.getTracking",
        "PaymentService.charge",
        "PaymentService.refund",
        "ProductService.getProduct",
        "ProductService.searchProducts",
        "ProductService.listProducts",
        "ProductService.invalidateSearchCache",
        "UserService.createUser",
        "UserService.getUser",
        "UserService.getUserByEmail",
    },
    "database": {"Database.query", "Database.findById", "Database.insert", "Database.update", "Database.delete"},
    "cache": {"Cache.get", "Cache.set", "Cache.del", "Cache.delByPrefix"},
    "external-api": {"PaymentAPI.charge", "PaymentAPI.refund", "ShippingAPI.createShipment", "ShippingAPI.getTracking"},
}
ALL_SPANS = set().union(*EXPECTED_SPANS.values())


def copy_sample(dest: Path) -> Path:
    shutil.copytree(SAMPLE_APP, dest, ignore=COPY_IGNORE, symlinks=True)
    return dest


def cli_run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def instrumented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], InstrumentResult]:
    """A copy of sample-app instrumented in place: (root, tree before, result)."""
    root = copy_sample(tmp_path_factory.mktemp("inst") / "app")
    before = snapshot_tree(root)
    result = instrument(root)
    return root, before, result


def changed_files(instrumented) -> dict[str, bytes]:  # noqa: ANN001
    root, before, _ = instrumented
    after = snapshot_tree(root)
    return {p: data for p, data in after.items() if before.get(p) != data}


# --- snapshots ---------------------------------------------------------------------


def test_changed_files_snapshot(instrumented, snapshot) -> None:  # noqa: ANN001
    changed = changed_files(instrumented)
    assert sorted(changed) == sorted(instrumented[2].synthesis.changes)
    for path, data in sorted(changed.items()):
        text = data.decode("utf-8")
        assert str(instrumented[0]) not in text
        assert text == snapshot(name=path)


def test_report_json_snapshot(instrumented, snapshot) -> None:  # noqa: ANN001
    report = to_json(instrumented[2])
    text = json.dumps(report, indent=2, ensure_ascii=False)
    assert str(instrumented[0]) not in text and str(REPO_ROOT) not in text
    assert report == snapshot(name="report.json")


def test_every_changed_file_reparses_and_nothing_was_reverted(instrumented) -> None:  # noqa: ANN001
    _, _, result = instrumented
    assert result.synthesis.reverted == [] and result.analysis.unparsable == []
    for path, data in changed_files(instrumented).items():
        if path.endswith(".ts"):
            assert parse_source(path, data).ok, path


def test_second_run_is_a_no_op(instrumented) -> None:  # noqa: ANN001
    root = instrumented[0]
    tree = snapshot_tree(root)
    again = instrument(root, write=False)
    assert again.synthesis.changes == {}
    assert snapshot_tree(root) == tree


# --- determinism -------------------------------------------------------------------


def test_two_runs_on_separate_copies_are_byte_identical(tmp_path: Path) -> None:
    first = copy_sample(tmp_path / "one" / "shop")
    second = copy_sample(tmp_path / "two" / "shop")
    instrument(first)
    instrument(second)
    a, b = snapshot_tree(first), snapshot_tree(second)
    assert sorted(a) == sorted(b)
    assert [p for p in a if a[p] != b[p]] == []
    assert "src/tracing.ts" in a and "src/otel.ts" in a


# --- span inventory ----------------------------------------------------------------


def test_report_lists_a_span_for_every_operation(instrumented) -> None:  # noqa: ANN001
    spans = to_json(instrumented[2])["spans"]
    names = [s["name"] for s in spans]
    assert len(names) == len(set(names)), "a span name is reported twice"
    for worker, expected in EXPECTED_SPANS.items():
        assert {s["name"] for s in spans if s["worker"] == worker} == expected, worker
    assert {s["worker"] for s in spans} == set(EXPECTED_SPANS)


def test_span_kinds_and_key_attributes(instrumented) -> None:  # noqa: ANN001
    spans = {s["name"]: s for s in to_json(instrumented[2])["spans"]}
    for name in EXPECTED_SPANS["service"]:
        assert spans[name]["kind"] == "INTERNAL", name
    for worker in ("database", "cache", "external-api"):
        for name in EXPECTED_SPANS[worker]:
            assert spans[name]["kind"] == "CLIENT", name
    assert spans["Database.findById"]["attributes"]["db.operation.name"] == "SELECT"
    assert spans["Database.insert"]["attributes"]["db.operation.name"] == "INSERT"
    assert spans["Database.delete"]["attributes"]["db.collection.name"] == "<table>"
    assert spans["Cache.get"]["attributes"]["db.operation.name"] == "GET"
    assert spans["PaymentAPI.charge"]["attributes"]["server.address"] == "api.payments.example.com"
    assert spans["ShippingAPI.createShipment"]["attributes"]["server.address"] == "api.shipping.example.com"
    # the verb comes from `this.roundTrip('POST', ...)` / `('GET', ...)` in each method's body
    methods = {n: s["attributes"].get("http.request.method") for n, s in spans.items() if s["worker"] == "external-api"}
    assert methods == {"PaymentAPI.charge": "POST", "PaymentAPI.refund": "POST",
                       "ShippingAPI.createShipment": "POST", "ShippingAPI.getTracking": "GET"}


def test_every_reported_span_is_in_the_code(instrumented) -> None:  # noqa: ANN001
    root, _, result = instrumented
    for s in to_json(result)["spans"]:
        code = (root / s["file"]).read_text()
        assert f"('{s['name']}', {{" in code, s["name"]


def test_private_members_and_helpers_are_skipped_with_reasons(instrumented) -> None:  # noqa: ANN001
    skipped = {(s["symbol"], s["reason"]) for s in to_json(instrumented[2])["skipped"]}
    assert ("InventoryService.load", "private member") in skipped
    assert ("OrderService.releaseReservations", "private member") in skipped
    assert ("PaymentAPI.roundTrip", "private member") in skipped
    assert ("Database.constructor", "constructor") in skipped
    assert ("clone", "module-internal helper (not exported)") in skipped
    for name in PURE_HELPERS:
        assert (name, "pure helper (synchronous and reaches no I/O)") in skipped
    assert {s[0] for s in skipped} & ALL_SPANS == set()


def test_routes_and_error_handler(instrumented) -> None:  # noqa: ANN001
    changed = changed_files(instrumented)
    assert not any(p.startswith("src/routes/") for p in changed)  # Express spans come from auto-instrumentation
    handler = changed["src/middleware/errorHandler.ts"].decode()
    assert handler.count("recordActiveSpanError(err);") == 1
    assert changed["src/index.ts"].startswith(b"import './tracing';\n")


# --- CLI ---------------------------------------------------------------------------


def test_cli_out_then_check(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pristine = snapshot_tree(copy_sample(tmp_path / "pristine"))
    code, _, err = cli_run("instrument", str(SAMPLE_APP), "--out", str(out))
    assert code == 0, err
    assert "instrumented copy in" in err
    assert not (out / "node_modules").exists()
    code, _, err = cli_run("instrument", str(out), "--check")
    assert code == 0, err
    assert "nothing to do" in err
    # the source app was not touched
    assert snapshot_tree(copy_sample(tmp_path / "again")) == pristine


def test_out_copies_everything_but_dependencies_vcs_cache_and_the_stale_build(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "app")
    for junk in ("node_modules/left-pad/index.js", "dist/index.js", ".git/HEAD", ".otelize-cache/state.json"):
        (app / junk).parent.mkdir(parents=True, exist_ok=True)
        (app / junk).write_bytes(b"junk\n")
    before = snapshot_tree(app)
    out = tmp_path / "out"
    result = instrument(app, out_dir=out)
    assert snapshot_tree(app) == before
    copied = snapshot_tree(out)
    kept = {p: b for p, b in before.items() if p.split("/")[0] not in ("node_modules", "dist", ".git", ".otelize-cache")}
    changed = {p: new for p, (_, new) in result.synthesis.changes.items()}
    assert copied == {p: b for p, b in kept.items() if p not in changed} | changed


def test_cli_check_on_pristine_copy_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "app")
    before = snapshot_tree(app)
    code, out, err = cli_run("instrument", str(app), "--check")
    assert code == 1, err
    assert "would change" in err
    assert snapshot_tree(app) == before


def test_cli_diff_prints_a_patch_that_reproduces_the_instrumented_tree(tmp_path: Path, instrumented) -> None:  # noqa: ANN001
    app = copy_sample(tmp_path / "app")
    before = snapshot_tree(app)
    code, out, err = cli_run("instrument", str(app), "--diff")
    assert code == 0, err
    assert snapshot_tree(app) == before  # --diff writes nothing
    assert "--- a/src/index.ts\n+++ b/src/index.ts\n" in out
    assert "\n+import './tracing';\n" in out
    assert "--- /dev/null\n+++ b/src/otel.ts\n" in out
    assert str(app) not in out
    if shutil.which("patch") is None:
        pytest.skip("patch not available")
    proc = subprocess.run(["patch", "-p1", "--batch", "--silent"], cwd=app, input=out, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    patched = snapshot_tree(app)
    assert patched == snapshot_tree(instrumented[0])


def test_cli_report_markdown(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "app")
    assert (app / "package-lock.json").exists()
    report = tmp_path / "r.md"
    code, _, err = cli_run("instrument", str(app), "--check", "--report", str(report))
    assert code == 1, err
    md = report.read_text()
    assert md.startswith("# otelize report: shop-api\n")
    assert f"**{len(ALL_SPANS)} spans**" in md
    for heading in ("## Spans", "## Packages", "## Skipped", "## Next steps"):
        assert f"\n{heading}\n" in md, heading
    assert "`npm install`" in md
    assert "| `OrderService.createOrder` | INTERNAL | service |" in md
    assert "`@opentelemetry/sdk-node@0.223.0`" in md
    assert str(tmp_path) not in md


def test_cli_report_json(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "app")
    report = tmp_path / "r.json"
    code, _, err = cli_run("instrument", str(app), "--report", str(report))
    assert code == 0, err
    data = json.loads(report.read_text())
    assert {"spans", "skipped", "files", "packages"} <= set(data)
    assert set(data["files"]) == {"created", "modified"}
    assert data["files"]["created"] == ["src/otel.ts", "src/tracing.ts"]
    assert "package.json" in data["files"]["modified"]
    assert {s["name"] for s in data["spans"]} == ALL_SPANS
    assert "@opentelemetry/api" in data["packages"]


def test_cli_rejects_bad_report_suffix_and_combined_modes(tmp_path: Path) -> None:
    app = copy_sample(tmp_path / "app")
    before = snapshot_tree(app)
    assert cli_run("instrument", str(app), "--report", str(tmp_path / "r.txt"))[0] == 2
    assert cli_run("instrument", str(app), "--check", "--diff")[0] == 2
    assert snapshot_tree(app) == before


# --- node: install, type-check, the app's own tests --------------------------------

NODE_CACHE = Path(tempfile.gettempdir()) / "otelize-test-node-modules"


def install_with_cache(app: Path) -> None:
    """npm install, reusing a node_modules keyed by the sha256 of package.json + lockfile."""
    key = hashlib.sha256((app / "package.json").read_bytes() + (app / "package-lock.json").read_bytes()).hexdigest()[:24]
    cached = NODE_CACHE / key / "node_modules"
    if cached.is_dir():
        subprocess.run(["cp", "-al", str(cached), str(app / "node_modules")], check=True)
    cmd = ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund"]
    proc = subprocess.run(cmd, cwd=app, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"npm install failed:\n{proc.stdout}\n{proc.stderr}"
    if not cached.is_dir():
        staging = NODE_CACHE / f"{key}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(app / "node_modules"), str(staging / "node_modules")], check=True)
        try:
            staging.rename(NODE_CACHE / key)
        except OSError:  # another session filled the cache first
            shutil.rmtree(staging, ignore_errors=True)


@pytest.mark.node
def test_instrumented_copy_installs_type_checks_and_passes_its_tests(tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    out = tmp_path / "shop"
    instrument(SAMPLE_APP, out_dir=out)
    install_with_cache(out)
    for name in json.loads((out / "package.json").read_text())["dependencies"]:
        assert (out / "node_modules" / name / "package.json").is_file(), name

    tsc = subprocess.run(["npx", "tsc", "--noEmit", "-p", "tsconfig.json"], cwd=out, capture_output=True, text=True, timeout=300)
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr

    # the app's own tests, unchanged
    assert snapshot_tree(out / "test") == {
        p: d for p, d in snapshot_tree(SAMPLE_APP / "test").items()
    }
    env = dict(os.environ, SIMULATED_LATENCY_MS="0")
    test = subprocess.run(["npm", "test"], cwd=out, capture_output=True, text=True, timeout=600, env=env)
    assert test.returncode == 0, test.stdout[-4000:] + test.stderr[-4000:]
    assert "# fail 0" in test.stdout


def test_tracing_import_moved_below_express_is_put_back_first(tmp_path: Path) -> None:
    # an editor's "organize imports" or a hand edit moved it: express would load untraced
    out = tmp_path / "out"
    instrument(SAMPLE_APP, out_dir=out)
    entry = out / "src/index.ts"
    lines = entry.read_bytes().split(b"\n")
    assert lines[0] == b"import './tracing';"
    moved = lines[1:4] + [lines[0]] + lines[4:]
    entry.write_bytes(b"\n".join(moved))
    code, _, err = cli_run("instrument", str(out), "--check")
    assert code == 1, err
    result = instrument(out)
    assert list(result.synthesis.changes) == ["src/index.ts"]
    assert entry.read_bytes().split(b"\n") == lines
    assert instrument(out, write=False).synthesis.changes == {}
