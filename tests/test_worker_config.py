"""The config worker: generated tracing.ts / otel.ts, and how tracing gets loaded first."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from otelize.synthesize.edits import ImportRequest, apply_edits
from otelize.project.model import Project, Route
from otelize.plan.registry import ALL_HELPERS
from otelize.synthesize.render import render
from otelize.workers import config
from otelize.workers.base import GENERATED_HEADER, Task, WorkerContext

TASK = Task(id="config", worker="config")
PKG = b'{\n  "name": "shop-api",\n  "version": "1.2.3",\n  "scripts": {\n    "start": "node dist/index.js"\n  }\n}\n'


def make_ctx(
    tmp_path: Path,
    module: str = "commonjs",
    package_json: bytes = PKG,
    routes: list[Route] | None = None,
    entry: str | None = "src/index.ts",
    src_dir: str = "src",
    out_dir: str | None = "dist",
    **settings: object,
) -> WorkerContext:
    (tmp_path / "package.json").write_bytes(package_json)
    project = Project(
        root=tmp_path,
        package_json=json.loads(package_json),
        package_json_bytes=package_json,
        tsconfig={},
        files=[],
        module=module,
        express_range="4.21.2",
        express_major=4,
        src_dir=src_dir,
        out_dir=out_dir,
        base_url=None,
    )
    return WorkerContext(project, {}, {}, None, routes or [], entry, dict(settings))  # type: ignore[arg-type]


def write_new_files(tmp_path: Path, result: config.WorkerResult) -> None:
    for new in result.new_files:
        target = tmp_path / new.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(new.content)


ROUTES = [
    Route("GET", "/readyz", "src/app.ts", 9, "<anonymous>"),
    Route("GET", "/health", "src/app.ts", 8, "<anonymous>"),
    Route("GET", "/health", "src/other.ts", 3, "<anonymous>"),
    Route("POST", "/ping", "src/app.ts", 10, "<anonymous>"),
    Route("GET", "/api/health", "src/app.ts", 11, "<anonymous>"),
    Route("GET", "/api/orders/:id", "src/orders.ts", 4, "orders.get"),
]


def test_generates_both_files_with_header(tmp_path: Path) -> None:
    result = config.run(make_ctx(tmp_path), TASK)
    files = {f.path: f.content for f in result.new_files}
    assert sorted(files) == ["src/otel.ts", "src/tracing.ts"]
    for content in files.values():
        assert content.startswith(GENERATED_HEADER)
        assert b"\r" not in content and content.endswith(b"\n")
        assert str(tmp_path).encode() not in content
    assert result.spans == []
    tracing = files["src/tracing.ts"]
    assert b"process.env['OTEL_SERVICE_NAME'] || 'shop-api'" in tracing
    assert b"'service.version': '1.2.3'" in tracing
    assert b"Exporter" not in tracing  # the SDK's env config builds the exporter
    assert b"new HttpInstrumentation(" in tracing and b"new ExpressInstrumentation({" in tracing
    assert b"instrumentation-fs" not in tracing and b"auto-instrumentations" not in tracing
    assert b"ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER]" in tracing
    assert b"import.meta" not in tracing


def test_helper_imports_only_the_api_and_node_util(tmp_path: Path) -> None:
    helper = config.render_helper()
    imports = [line for line in helper.split(b"\n") if line.startswith(b"import ")]
    # the API, and Node's own util (types.isPromise): nothing that starts the SDK
    assert imports and all(line.endswith((b"from '@opentelemetry/api';", b"from 'util';")) for line in imports)
    assert any(line.endswith(b"from '@opentelemetry/api';") for line in imports)
    for h in ALL_HELPERS:  # every helper of the registry is exported
        assert f"export function {h.name}{'<T>' if h.kind else '('}".encode() in helper


def test_render_is_deterministic(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, routes=ROUTES)
    assert config.render_tracing(ctx) == config.render_tracing(ctx)
    assert config.render_helper() == config.render_helper()
    shuffled = make_ctx(tmp_path, routes=list(reversed(ROUTES)))
    assert config.render_tracing(shuffled) == config.render_tracing(ctx)


def test_strict_undefined() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("tracing.ts.j2", generated_header="//")


def test_health_routes_in_hook(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, routes=ROUTES)
    assert config.health_paths(ctx) == ["/health", "/readyz"]
    tracing = config.render_tracing(ctx)
    assert b"new Set<string>(['/health', '/readyz'])" in tracing
    assert b"ignoreIncomingRequestHook" in tracing
    assert b"indexOf('?')" in tracing  # query strings are stripped


def test_no_health_routes_no_hook(tmp_path: Path) -> None:
    tracing = config.render_tracing(make_ctx(tmp_path, routes=ROUTES[-2:]))
    assert b"ignoreIncomingRequestHook" not in tracing


@pytest.mark.parametrize(
    ("protocol", "present", "absent"),
    [
        ("grpc", b"process.env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] = 'grpc';", b"OTEL_TRACES_EXPORTER'] ="),
        ("console", b"process.env['OTEL_TRACES_EXPORTER'] = 'console';", b"PROTOCOL'] ="),
    ],
)
def test_protocols(tmp_path: Path, protocol: str, present: bytes, absent: bytes) -> None:
    tracing = config.render_tracing(make_ctx(tmp_path, protocol=protocol))
    assert present in tracing and absent not in tracing


def test_commonjs_requests_side_effect_import(tmp_path: Path) -> None:
    result = config.run(make_ctx(tmp_path), TASK)
    assert result.imports == [ImportRequest("src/index.ts", "./tracing", (), True, "config")]
    assert result.edits == []


@pytest.mark.parametrize(
    ("entry", "src_dir", "specifier"),
    [
        ("src/index.ts", "src", "./tracing"),
        ("src/server/main.ts", "src", "../tracing"),
        ("index.ts", "", "./tracing"),
        ("index.ts", "src", "./src/tracing"),
    ],
)
def test_import_specifier(tmp_path: Path, entry: str, src_dir: str, specifier: str) -> None:
    ctx = make_ctx(tmp_path, entry=entry, src_dir=src_dir)
    assert config.run(ctx, TASK).imports[0].module == specifier


def test_user_files_are_never_clobbered(tmp_path: Path) -> None:
    # a tracing.ts of the user's own: otelize's goes beside it under another name, and the entry imports that
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tracing.ts").write_bytes(b"// my own tracing\n")
    result = config.run(make_ctx(tmp_path), TASK)
    assert sorted(f.path for f in result.new_files) == ["src/otel.ts", "src/otelize-tracing.ts"]
    assert result.imports == [ImportRequest("src/index.ts", "./otelize-tracing", (), True, "config")]
    assert (tmp_path / "src" / "tracing.ts").read_bytes() == b"// my own tracing\n"


def test_user_otel_module_gets_a_helper_beside_it(tmp_path: Path) -> None:
    # src/otel.ts of the user's (also as src/otel.js or a src/otel/ folder, which './otel' would resolve to)
    for taken in ("otel.ts", "otel.js", "otel/index.ts"):
        root = tmp_path / taken.replace("/", "_")
        (root / "src" / Path(taken).parent).mkdir(parents=True)
        (root / "src" / taken).write_bytes(b"export const x = 1;\n")
        ctx = make_ctx(root)
        assert ctx.helper_path == "src/otelize-otel.ts"
        assert "src/otelize-otel.ts" in [f.path for f in config.run(ctx, TASK).new_files]
        # a second run finds its own generated file under the alternative name: same place
        write_new_files(root, config.run(ctx, TASK))
        assert make_ctx(root).helper_path == "src/otelize-otel.ts"


def test_both_names_taken_is_bad_input(tmp_path: Path) -> None:
    from otelize.errors import BadInput

    (tmp_path / "src").mkdir()
    for name in ("otel.ts", "otelize-otel.ts"):
        (tmp_path / "src" / name).write_bytes(b"export const x = 1;\n")
    with pytest.raises(BadInput, match="src/otel.ts and src/otelize-otel.ts are files of the app's own"):
        config.run(make_ctx(tmp_path), TASK)


def test_second_run_is_a_no_op_and_old_versions_are_regenerated(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    write_new_files(tmp_path, config.run(ctx, TASK))
    assert config.run(ctx, TASK).new_files == []
    (tmp_path / "src" / "otel.ts").write_bytes(GENERATED_HEADER + b"// old version\n")
    assert [f.path for f in config.run(ctx, TASK).new_files] == ["src/otel.ts"]


ESM_PKG = b'{\n  "name": "shop-api",\n  "version": "1.2.3",\n  "scripts": {\n    "build": "tsc",\n    "start": "node dist/index.js"\n  }\n}\n'
TSCONFIG = b'{"compilerOptions": {"rootDir": "src", "outDir": "dist"}, "include": ["src"]}'


def test_esm_start_script(tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_bytes(TSCONFIG)
    PKG = ESM_PKG
    ctx = make_ctx(tmp_path, module="esm", package_json=PKG)
    result = config.run(ctx, TASK)
    assert result.imports == []
    out = apply_edits(PKG, result.edits)
    assert json.loads(out)["scripts"]["start"] == "node --import ./dist/tracing.js dist/index.js"
    assert out.replace(b"--import ./dist/tracing.js ", b"") == PKG
    assert result.notes and "--import ./dist/tracing.js" in result.notes[0]
    tracing = {f.path: f.content for f in result.new_files}["src/tracing.ts"]
    assert b"register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);" in tracing
    # Second run: the flag is there, nothing changes.
    write_new_files(tmp_path, result)
    again = config.run(make_ctx(tmp_path, module="esm", package_json=out), TASK)
    assert again.edits == [] and again.new_files == [] and again.notes == []


def test_esm_start_script_that_builds_first_preloads_in_its_node_step(tmp_path: Path) -> None:
    """`npm run build && node dist/index.js`: the flag goes into the node step (the entry's
    static import would run after express is loaded); a second run leaves it."""
    (tmp_path / "tsconfig.json").write_bytes(TSCONFIG)
    pkg = ESM_PKG.replace(b'"start": "node dist/index.js"', b'"start": "npm run build && node dist/index.js"')
    result = config.run(make_ctx(tmp_path, module="esm", package_json=pkg), TASK)
    assert result.imports == []
    out = apply_edits(pkg, result.edits)
    assert json.loads(out)["scripts"]["start"] == "npm run build && node --import ./dist/tracing.js dist/index.js"
    write_new_files(tmp_path, result)
    again = config.run(make_ctx(tmp_path, module="esm", package_json=out), TASK)
    assert again.edits == [] and again.new_files == []


@pytest.mark.parametrize(
    ("package_json", "tsconfig", "why"),
    [
        (b'{"name": "x"}', TSCONFIG, "no build script that emits it"),
        (b'{"name": "x", "scripts": {"build": "tsc", "start": "ts-node src/index.ts"}}', TSCONFIG, "does not run `node ` (first, or after `&&`)"),
        (b'{"name": "x", "scripts": {"build": "tsc", "start": "ts-node src/index.ts"}}', TSCONFIG, "does not run `node ` (first, or after `&&`)"),
        (b'{"name": "x", "scripts": {"build": "webpack", "start": "node dist/index.js"}}', TSCONFIG, "(`webpack`) emits a bundle"),
        (b'{"name": "x", "scripts": {"build": "esbuild src/index.ts --bundle --outfile=dist/index.js", "start": "node dist/index.js"}}',
         TSCONFIG, "emits a bundle"),
        (b'{"name": "x", "scripts": {"build": "tsc --noEmit && esbuild src/index.ts --bundle --outfile=dist/index.js", "start": "node dist/index.js"}}',
         TSCONFIG, "(`esbuild src/index.ts --bundle --outfile=dist/index.js`) emits a bundle"),
        # the build's tsconfig compiles src/app/ only: src/tracing.ts would never be emitted
        (b'{"name": "x", "scripts": {"build": "tsc -p tsconfig.app.json", "start": "node dist/index.js"}}',
         b'{"compilerOptions": {"outDir": "dist"}, "files": ["src/index.ts"]}', "is not compiled by tsconfig.app.json"),
    ],
)
def test_esm_preloads_only_what_the_build_emits(tmp_path: Path, package_json: bytes, tsconfig: bytes, why: str) -> None:
    (tmp_path / "tsconfig.json").write_bytes(TSCONFIG)
    (tmp_path / "tsconfig.app.json").write_bytes(tsconfig)
    result = config.run(make_ctx(tmp_path, module="esm", package_json=package_json), TASK)
    assert result.edits == []
    # not preloaded: the entry imports tracing first instead (a bundler follows the import)
    # (with its extension: an ES module resolves a relative import only with it)
    assert result.imports == [ImportRequest("src/index.ts", "./tracing.js", (), True, "config")]
    assert why in result.notes[0]


def test_esm_without_out_dir(tmp_path: Path) -> None:
    (tmp_path / "tsconfig.json").write_bytes(b'{"compilerOptions": {"rootDir": "src"}}')
    ctx = make_ctx(tmp_path, module="esm", out_dir=None, package_json=ESM_PKG)
    out = apply_edits(ESM_PKG, config.run(ctx, TASK).edits)
    assert json.loads(out)["scripts"]["start"] == "node --import ./src/tracing.js dist/index.js"


@pytest.mark.parametrize(
    ("build", "tsconfig", "tracing", "emitted"),
    [
        # tsc -p tsconfig.app.json: its include is src/app/**, so tracing.ts goes there
        ("tsc -p tsconfig.app.json", b'{"compilerOptions": {"outDir": "out"}, "include": ["src/app/**/*.ts"]}',
         "src/app/tracing.ts", "./out/tracing.js"),
        # tsconfig.build.json extends tsconfig.json and keeps its rootDir; files listed by hand plus a folder
        ("rimraf dist && tsc --project tsconfig.build.json",
         b'{"extends": "./tsconfig.json", "include": ["lib"], "exclude": ["lib/**/*.spec.ts"]}',
         "src/tracing.ts", None),
        ("npm run compile", b'{"compilerOptions": {"rootDir": "lib", "outDir": "build"}, "include": ["lib"]}',
         "lib/tracing.ts", "./build/tracing.js"),
    ],
)
def test_generated_files_go_where_the_build_compiles_them(tmp_path: Path, build: str, tsconfig: bytes, tracing: str, emitted: str | None) -> None:
    (tmp_path / "tsconfig.json").write_bytes(b'{"compilerOptions": {"rootDir": "src", "outDir": "dist"}}')
    name = "tsconfig.json" if build == "npm run compile" else build.split()[-1]
    (tmp_path / "tsconfig.compile.json").write_bytes(tsconfig)
    if name != "tsconfig.json":
        (tmp_path / name).write_bytes(tsconfig)
    pkg = json.dumps({"name": "x", "scripts": {"build": build, "compile": "tsc -p tsconfig.compile.json", "start": "node dist/index.js"}}).encode()
    ctx = make_ctx(tmp_path, module="esm", package_json=pkg, entry=None)
    assert ctx.tracing_path == tracing
    result = config.run(ctx, TASK)
    if emitted is None:  # rootDir src and include lib: nothing can be both; the entry imports it (none here)
        assert result.edits == []
    else:
        assert json.loads(apply_edits(pkg, result.edits))["scripts"]["start"] == f"node --import {emitted} dist/index.js"


def test_tracing_records_the_packages_otelize_adds(tmp_path: Path) -> None:
    # the user already declares @opentelemetry/api (at any version): it is not otelize's to remove
    pkg = b'{\n  "name": "shop-api",\n  "version": "1.2.3",\n  "dependencies": {"@opentelemetry/api": "1.9.0"}\n}\n'
    ctx = make_ctx(tmp_path, package_json=pkg)
    tracing = config.render_tracing(ctx)
    recorded = config.recorded_packages(tracing)
    assert recorded == ["@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-http",
                        "@opentelemetry/resources", "@opentelemetry/sdk-node"]
    # once they are in package.json, the record comes from the existing tracing.ts: same bytes again
    (tmp_path / "src").mkdir()
    (tmp_path / "src/tracing.ts").write_bytes(tracing)
    everything = b'{"name": "shop-api", "version": "1.2.3", "dependencies": {' + b", ".join(
        b'"%s": "1"' % name.encode() for name in ["@opentelemetry/api", *recorded]) + b"}}\n"
    assert config.render_tracing(make_ctx(tmp_path, package_json=everything)) == tracing
    # a new library (pg) adds its instrumentation to what otelize added, keeping the earlier record
    with_pg = everything.replace(b'{"@opentelemetry/api"', b'{"pg": "8.11.3", "@opentelemetry/api"')
    more = config.recorded_packages(config.render_tracing(make_ctx(tmp_path, package_json=with_pg)))
    assert more == sorted(recorded + ["@opentelemetry/instrumentation-pg"])


def test_recorded_packages_needs_a_generated_file_with_a_record() -> None:
    assert config.recorded_packages(None) is None
    assert config.recorded_packages(b"// my own tracing\n" + config.ADDED_HEADING + b"//   x\n") is None
    assert config.recorded_packages(GENERATED_HEADER + b"import x from 'y';\n") is None
    assert config.recorded_packages(GENERATED_HEADER + config.ADDED_HEADING + b"//   (none)\nimport x;\n") == []


# --- an app that already starts the SDK itself ----------------------------------------------

OWN_SDK = """\
import { NodeSDK } from '@opentelemetry/sdk-node';
import { getNodeAutoInstrumentations } from '@opentelemetry/auto-instrumentations-node';

const sdk = new NodeSDK({ instrumentations: [getNodeAutoInstrumentations()] });
sdk.start();
"""
SERVICE = """\
export class BillingService {
  async charge(amount: number): Promise<number> {
    const cents = Math.round(amount * 100);
    return cents;
  }
}
"""


@pytest.mark.parametrize("api_declared", [True, False])
def test_an_app_with_its_own_sdk_gets_spans_but_no_second_sdk(tmp_path: Path, api_declared: bool) -> None:
    from otelize.api import instrument
    from otelize.stripping.strip import strip

    deps = {"express": "4.21.2", "@opentelemetry/sdk-node": "0.200.0", "@opentelemetry/auto-instrumentations-node": "0.60.0"}
    if api_declared:
        deps["@opentelemetry/api"] = "1.9.0"  # at otelize's own pin: still the user's
    root = tmp_path / "app"
    (root / "src/services").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "own-sdk", "version": "1.0.0", "dependencies": deps}, indent=2) + "\n")
    (root / "src/instrumentation.ts").write_text(OWN_SDK)
    (root / "src/index.ts").write_text("import './instrumentation';\nimport express from 'express';\nconst app = express();\napp.listen(3000);\n")
    (root / "src/services/billingService.ts").write_text(SERVICE)
    before = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    result = instrument(root)
    assert not (root / "src/tracing.ts").exists()
    assert "./tracing" not in (root / "src/index.ts").read_text()
    assert [s.name for s in result.synthesis.spans] == ["BillingService.charge"]
    skip = next(s for s in result.synthesis.skips if s.symbol == "tracing")
    assert "already starts the OpenTelemetry SDK (src/instrumentation.ts:4)" in skip.reason
    pkg = json.loads((root / "package.json").read_text())["dependencies"]
    assert pkg == {**deps, "@opentelemetry/api": "1.9.0"}  # only the API the span helper needs, and only if missing
    assert instrument(root, write=False).synthesis.changes == {}

    strip(root)
    after = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert after == before  # the user's own @opentelemetry/api stays; the one otelize added goes


def test_the_auto_instrumentation_register_hook_counts_as_an_existing_sdk(tmp_path: Path) -> None:
    pkg = b'{"name": "x", "version": "1.0.0", "scripts": {"start": "node --require @opentelemetry/auto-instrumentations-node/register dist/index.js"}}\n'
    result = config.run(make_ctx(tmp_path, package_json=pkg), TASK)
    assert [f.path for f in result.new_files] == ["src/otel.ts"]  # the helper, no tracing.ts
    assert result.imports == []
    assert "package.json scripts.start" in next(s.reason for s in result.skips if s.symbol == "tracing")


@pytest.mark.parametrize(
    ("build", "entry", "grown", "emitted"),
    [
        ("tsup src/index.ts --format esm", "src/index.ts", "tsup src/index.ts src/tracing.ts --format esm", "./dist/tracing.js"),
        ("tsup src/index.ts -d out --format esm", "src/index.ts", "tsup src/index.ts src/tracing.ts -d out --format esm", "./out/tracing.js"),
        ("rimraf dist && esbuild src/index.ts --bundle --platform=node --packages=external --format=esm --outdir=dist",
         "src/index.ts",
         "rimraf dist && esbuild src/index.ts src/tracing.ts --bundle --platform=node --packages=external --format=esm --outdir=dist",
         "./dist/tracing.js"),
    ],
)
def test_esm_bundle_gets_tracing_as_a_second_entry(tmp_path: Path, build: str, entry: str, grown: str, emitted: str) -> None:
    """An ES-module bundle loads express before any of its code runs: tracing.ts becomes a second
    entry of the tsup/esbuild command, and the start script preloads what that emits."""
    from otelize.stripping.strip import strip_package_json

    (tmp_path / "tsconfig.json").write_bytes(TSCONFIG)
    pkg = json.dumps({"name": "x", "scripts": {"build": build, "start": "node dist/index.js"}}).encode()
    ctx = make_ctx(tmp_path, module="esm", package_json=pkg, entry=entry)
    result = config.run(ctx, TASK)
    out = apply_edits(pkg, result.edits)
    scripts = json.loads(out)["scripts"]
    assert scripts == {"build": grown, "start": f"node --import {emitted} dist/index.js"}
    assert result.imports == []
    # a second run: the build now emits tracing.js, nothing more to do
    (tmp_path / "package.json").write_bytes(out)
    again = make_ctx(tmp_path, module="esm", package_json=out, entry=entry)
    write_new_files(tmp_path, result)
    assert config.run(again, TASK).edits == []
    # strip takes both out again, byte for byte
    undo = strip_package_json(out, {}, f"--import {emitted}") + config.strip_bundle_entry(again)
    assert apply_edits(out, undo) == pkg


@pytest.mark.parametrize(
    "build",
    [
        "esbuild src/index.ts --bundle --outfile=dist/index.js",  # one output file: no second entry
        "tsup src/app/index.ts --format esm",  # src/tracing.ts would move the output to dist/app/index.js
    ],
)
def test_esm_bundle_that_cannot_take_a_second_entry_imports_it(tmp_path: Path, build: str) -> None:
    (tmp_path / "tsconfig.json").write_bytes(TSCONFIG)
    pkg = json.dumps({"name": "x", "scripts": {"build": build, "start": "node dist/index.js"}}).encode()
    entry = build.split()[1]
    result = config.run(make_ctx(tmp_path, module="esm", package_json=pkg, entry=entry), TASK)
    assert result.edits == []
    assert [i.file for i in result.imports] == [entry]
