"""Which instrumentation packages and which version line an app gets (no npm needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from otelize.project import npmrange
from otelize.project.discover import load_project
from otelize.errors import BadInput, RuleError
from otelize.project.workspace import workspace_root
from otelize.workers import dependency
from otelize.workers.deps.choose import active_instrumentations, choose_line, chosen_instrumentations
from otelize.workers.deps.lines import load_instrumentations, load_lines
from otelize.workers.deps.toolchain import toolchain

TABLE = load_instrumentations()
ALWAYS = {"@opentelemetry/instrumentation-http", "@opentelemetry/instrumentation-express"}
ROOT = Path(__file__).resolve().parent.parent

INDEX = """\
import express from 'express';
const app = express();
app.get('/x', (_req, res) => { res.send('x'); });
app.listen(3000);
"""


def make_app(root: Path, deps: dict[str, str] | None = None, dev: dict[str, str] | None = None, **extra: object) -> Path:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "index.ts").write_text(INDEX)
    pkg = {"name": "app", "version": "1.0.0", "dependencies": {"express": "4.21.2", **(deps or {})},
           "devDependencies": dev or {}, **extra}
    (root / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    return root


def instrumentations(root: Path, settings: dict | None = None) -> list[str]:
    chosen, _ = chosen_instrumentations(load_project(root), settings or {})
    return [c.package for c in chosen]


def _library_cases() -> list[tuple[str, str, str, str]]:
    """(line, library, a version it supports, package) for every library of the table."""
    cases = []
    for inst in TABLE:
        for line, _, supports in inst.lines:
            for library, rng in supports:
                if library in ("http", "https", "express"):
                    continue
                low = npmrange.min_version(rng)
                assert low is not None
                name = library.replace("/*", "/client-s3")
                cases.append((line, name, npmrange.fmt(low), inst.package))
    return sorted(cases)


@pytest.mark.parametrize(("line", "library", "version", "package"), _library_cases())
def test_each_library_yields_its_package_and_no_other(tmp_path: Path, line: str, library: str, version: str,
                                                      package: str) -> None:
    typescript = "5.4.5" if line == "2.x" else "4.9.5"
    app = make_app(tmp_path, {library: version}, {"typescript": typescript})
    assert choose_line(load_project(app), {}).id == line
    assert sorted(instrumentations(app)) == sorted(ALWAYS | {package})
    assert library in active_instrumentations(load_project(app))


def test_plain_express_app_gets_http_and_express_only(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"zod": "3.23.8", "axios": "1.7.0"})
    assert instrumentations(app) == ["@opentelemetry/instrumentation-http", "@opentelemetry/instrumentation-express"]
    assert active_instrumentations(load_project(app)) == frozenset({"http", "https", "express"})
    assert "@opentelemetry/auto-instrumentations-node" not in dependency.wanted_packages({}, "commonjs", load_project(app))


def test_redis_version_picks_the_package_on_the_old_line(tmp_path: Path) -> None:
    for version, package in (("3.1.2", "@opentelemetry/instrumentation-redis"),
                             ("^4.6.0", "@opentelemetry/instrumentation-redis-4")):
        app = make_app(tmp_path / version, {"redis": version}, {"typescript": "4.9.5"})
        assert instrumentations(app)[2:] == [package]


def test_a_library_outside_the_supported_range_is_left_out_and_said(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"pg": "7.18.2"}, {"typescript": "5.4.5"})
    chosen, left_out = chosen_instrumentations(load_project(app), {})
    assert "@opentelemetry/instrumentation-pg" not in [c.package for c in chosen]
    assert [o.reason for o in left_out] == [
        "instrumentation not added: @opentelemetry/instrumentation-pg@0.76.0 supports pg '>=8.0.3 <9', the app has "
        "7.18.2 (package.json '7.18.2'), so pg calls get no spans of their own; upgrade pg to >= 8.0.3"]


def test_prisma_before_6_1_is_a_warning_naming_the_version_and_the_upgrade(tmp_path: Path) -> None:
    """@prisma/client 5.x: @prisma/instrumentation is not added, so Prisma queries have no spans;
    the dependency worker says so in a skip (the CLI's warning, the report's JSON), also when
    the run adds nothing else."""
    from otelize.api import analyze
    from otelize.run.edit import synthesize_plan

    app = make_app(tmp_path, {"@prisma/client": "^5.0.0"}, {"typescript": "5.4.5"})
    (app / "node_modules" / "@prisma" / "client").mkdir(parents=True)
    (app / "node_modules" / "@prisma" / "client" / "package.json").write_text('{"version": "5.22.0"}')
    syn = synthesize_plan(analyze(app))
    warned = dependency.left_out(syn.skips)
    assert [(s.file, s.symbol) for s in warned] == [("package.json", "@prisma/instrumentation")]
    assert warned[0].reason.startswith("instrumentation not added: @prisma/instrumentation@")
    assert "the app has 5.22.0 (node_modules/@prisma/client)" in warned[0].reason
    assert warned[0].reason.endswith("upgrade @prisma/client to >= 6.1.0")
    assert "@prisma/instrumentation" not in syn.packages
    assert not any("not added" in n for n in syn.notes)  # said once, as the warning


def test_a_library_newer_than_every_pin_is_said_without_an_upgrade(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"@prisma/client": "7.0.0"}, {"typescript": "5.4.5"})
    _, left_out = chosen_instrumentations(load_project(app), {})
    assert [o.library for o in left_out] == ["@prisma/client"]
    assert "upgrade" not in left_out[0].reason
    assert "otelize pins no instrumentation for this version" in left_out[0].reason


def test_a_library_a_later_entry_instruments_is_not_left_out(tmp_path: Path) -> None:
    """On the 1.x line redis 4 is outside instrumentation-redis but instrumentation-redis-4 takes it."""
    app = make_app(tmp_path, {"redis": "4.6.0"}, {"typescript": "4.9.5"})
    chosen, left_out = chosen_instrumentations(load_project(app), {})
    assert "@opentelemetry/instrumentation-redis-4" in [c.package for c in chosen]
    assert left_out == []


def test_the_lockfile_version_wins_over_the_declared_range(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"mongoose": "*"}, {"typescript": "^4.0.0"})
    lock = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/typescript": {"version": "5.5.4"},
                                               "node_modules/mongoose": {"version": "9.1.0"}}}
    (app / "package-lock.json").write_text(json.dumps(lock))
    project = load_project(app)
    assert toolchain(project).get("typescript") == ((5, 5, 4), "package-lock.json")
    assert choose_line(project, {}).id == "2.x"
    assert "@opentelemetry/instrumentation-mongoose" in instrumentations(app)


def _installed(app: Path, name: str, version: str) -> None:
    (app / "node_modules" / name).mkdir(parents=True)
    (app / "node_modules" / name / "package.json").write_text(json.dumps({"version": version}))


def test_node_modules_version_wins_and_pnpm_and_yarn_lockfiles_are_read(tmp_path: Path) -> None:
    app = make_app(tmp_path / "nm", dev={"typescript": "^4.0.0"})
    _installed(app, "typescript", "4.8.4")
    assert toolchain(load_project(app)).get("typescript") == ((4, 8, 4), "node_modules/typescript")

    app = make_app(tmp_path / "pnpm", dev={"typescript": "^5.0.0"})
    (app / "pnpm-lock.yaml").write_text(yaml.safe_dump({"lockfileVersion": "9.0", "importers": {".": {
        "devDependencies": {"typescript": {"specifier": "^5.0.0", "version": "5.6.3"}}}}}))
    assert toolchain(load_project(app)).get("typescript") == ((5, 6, 3), "pnpm-lock.yaml")
    assert load_project(app).package_manager == "pnpm"

    app = make_app(tmp_path / "yarn", dev={"typescript": "^4.7.0"})
    (app / "yarn.lock").write_text('"typescript@^4.7.0":\n  version "4.9.5"\n  resolved "x"\n\n'
                                   'typescript@^3.0.0:\n  version "3.9.10"\n')
    assert toolchain(load_project(app)).get("typescript") == ((4, 9, 5), "yarn.lock")


@pytest.mark.parametrize(("files", "engines", "line"), [
    ({}, ">=18", "2.x"),           # majors compare: Node 18 runs its newest 18.x
    ({}, ">=16.0.0", "1.x"),
    ({".nvmrc": "v16.20.2\n"}, None, "1.x"),
    ({".node-version": "20\n"}, None, "2.x"),
    ({".nvmrc": "lts/*\n"}, None, "2.x"),  # not a version: no constraint
    ({}, ">=8", "1.x"),            # a floor below every line, but the range admits Node 14+: the oldest line
    ({}, ">=12.0.0", "1.x"),
])
def test_node_engine_chooses_the_line(tmp_path: Path, files: dict[str, str], engines: str | None, line: str) -> None:
    app = make_app(tmp_path, dev={"typescript": "5.4.5"}, **({"engines": {"node": engines}} if engines else {}))
    for name, text in files.items():
        (app / name).write_text(text)
    assert choose_line(load_project(app), {}).id == line


@pytest.mark.parametrize(("files", "engines"), [({}, "12.x"), ({}, ">=10 <13"), ({".nvmrc": "12\n"}, None)])
def test_a_node_engine_that_admits_no_supported_release_is_refused(tmp_path: Path, files: dict[str, str],
                                                                   engines: str | None) -> None:
    app = make_app(tmp_path, dev={"typescript": "5.4.5"}, **({"engines": {"node": engines}} if engines else {}))
    for name, text in files.items():
        (app / name).write_text(text)
    with pytest.raises(BadInput, match=r"^Node 1[02] .* is older than the minimum 14\.0\.0"):
        choose_line(load_project(app), {})


def test_an_installed_version_older_than_the_declared_range_is_stale(tmp_path: Path) -> None:
    """package.json raised TypeScript to ^5.4.0 since node_modules (and the lockfile) got 4.1.0:
    the npm install otelize asks for brings 5.4, so the line is chosen by it, not refused."""
    app = make_app(tmp_path, dev={"typescript": "^5.4.0"})
    _installed(app, "typescript", "4.1.0")
    lock = {"lockfileVersion": 3, "packages": {"": {}, "node_modules/typescript": {"version": "4.1.0"}}}
    (app / "package-lock.json").write_text(json.dumps(lock))
    assert toolchain(load_project(app)).get("typescript") == ((5, 4, 0), "package.json '^5.4.0'")
    assert choose_line(load_project(app), {}).id == "2.x"


@pytest.mark.parametrize(("dev", "engines", "installed", "message"), [
    # an engines.node floor that admits Node 14+ is no blocker: TypeScript is
    ({"typescript": "^3.9.0"}, ">=10", None,
     "TypeScript 3.9.0 (package.json '^3.9.0') is older than the minimum 4.4.0 of any OpenTelemetry JS line "
     "otelize supports; nothing was written"),
    ({"typescript": "^3.9.0"}, "^12 || ^14", None,
     "TypeScript 3.9.0 (package.json '^3.9.0') is older than the minimum 4.4.0 of any OpenTelemetry JS line "
     "otelize supports; nothing was written"),
    # both block: the compiler first, then the others
    ({"typescript": "^3.9.0", "@types/node": "^12.0.0"}, None, None,
     "TypeScript 3.9.0 (package.json '^3.9.0') is older than the minimum 4.4.0 of any OpenTelemetry JS line "
     "otelize supports, and @types/node 12.0.0 (package.json '^12.0.0') than 14.0.0; nothing was written"),
    ({"typescript": "^3.9.0"}, "12.x", None,
     "TypeScript 3.9.0 (package.json '^3.9.0') is older than the minimum 4.4.0 of any OpenTelemetry JS line "
     "otelize supports, and Node 12 (engines.node '12.x') than 14.0.0; nothing was written"),
    # the installed compiler, newer than the declared range's minimum, is the one named
    ({"typescript": "^3.5.0"}, None, "3.9.7",
     "TypeScript 3.9.7 (node_modules/typescript) is older than the minimum 4.4.0 of any OpenTelemetry JS line "
     "otelize supports; nothing was written"),
])
def test_a_refusal_names_the_real_blockers(tmp_path: Path, dev: dict[str, str], engines: str | None,
                                           installed: str | None, message: str) -> None:
    # an ES module, which gets no type-free helpers (those need `require`): refused
    app = make_app(tmp_path, dev=dev, type="module", **({"engines": {"node": engines}} if engines else {}))
    if installed:
        _installed(app, "typescript", installed)
    with pytest.raises(BadInput) as caught:
        choose_line(load_project(app), {})
    assert str(caught.value) == message + " (--force-toolchain adds the 1.x packages anyway)"


def test_an_installed_compiler_that_fits_is_not_refused(tmp_path: Path) -> None:
    """package.json says ^3.9.0, node_modules has 5.4.5 and engines.node is a floor (>=10)."""
    app = make_app(tmp_path, dev={"typescript": "^3.9.0"}, engines={"node": ">=10"})
    _installed(app, "typescript", "5.4.5")
    assert choose_line(load_project(app), {}).id == "1.x"


def test_exact_optional_property_types_without_skip_lib_check_gets_type_free_helpers(tmp_path: Path) -> None:
    app = make_app(tmp_path, dev={"typescript": "4.9.5"})
    (app / "tsconfig.json").write_text('{"compilerOptions": {"strict": true, "exactOptionalPropertyTypes": true}}')
    line = choose_line(load_project(app), {})  # 2.x needs TypeScript 5, 1.x's .d.ts fail under the option
    assert (line.id, line.typed) == ("2.x", False)
    (app / "tsconfig.json").write_text('{"compilerOptions": {"exactOptionalPropertyTypes": true, "skipLibCheck": true}}')
    line = choose_line(load_project(app), {})
    assert (line.id, line.typed) == ("1.x", True)


@pytest.mark.parametrize(("dev", "engines", "line"), [
    ({"typescript": "3.9.7"}, None, "2.x"),
    ({"typescript": "3.5.2"}, ">=14.0.0", "1.x"),  # the first line whose runtime the engine fits
    ({"typescript": "3.5.2"}, ">=8", "1.x"),       # a floor that admits Node 14+: the oldest line
    ({"typescript": "5.0.3", "@types/node": "12.12.17"}, None, "2.x"),  # too old an @types/node alone
])
def test_a_toolchain_no_lines_types_fit_gets_its_runtime_line_type_free(
    tmp_path: Path, dev: dict[str, str], engines: str | None, line: str
) -> None:
    app = make_app(tmp_path, dev=dev, **({"engines": {"node": engines}} if engines else {}))
    chosen = choose_line(load_project(app), {})
    assert (chosen.id, chosen.typed) == (line, False)
    from otelize.workers.deps.choose import line_note

    note = line_note(load_project(app), chosen)
    assert note.startswith(f"OpenTelemetry JS {line} line, type-free (otel.ts and tracing.ts import none of its types")
    assert "is outside" in note  # what kept the typed helpers out, named


@pytest.mark.parametrize(("dev", "extra", "message"), [
    ({"typescript": "3.4.5"}, {}, r"^TypeScript 3\.4\.5 .* is older than 3\.5\.0, the lowest otelize's type-free"),
    # an ES module has no require: no type-free helpers
    ({"typescript": "3.9.7"}, {"type": "module"}, r"^TypeScript 3\.9\.7 .* is older than the minimum 4\.4\.0 of any"),
    # the runtime is what no line supports: type-free helpers would not help
    ({"typescript": "3.9.7"}, {"engines": {"node": "12.x"}}, r"^TypeScript 3\.9\.7 .*, and Node 12 .* than 14\.0\.0"),
])
def test_type_free_helpers_are_not_offered_where_they_cannot_work(
    tmp_path: Path, dev: dict[str, str], extra: dict[str, object], message: str
) -> None:
    app = make_app(tmp_path, dev=dev, **extra)
    with pytest.raises(BadInput, match=message):
        choose_line(load_project(app), {})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=120)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_typescript_3_4_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    app = make_app(tmp_path, dev={"typescript": "3.4.5"})
    before = _snapshot(app)
    proc = _cli("instrument", str(app))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "otelize: error: TypeScript 3.4.5 (package.json '3.4.5') is older than 3.5.0, the lowest otelize's "
        "type-free span helpers compile with (and than 4.4.0, the lowest of any OpenTelemetry JS line's type "
        "declarations); nothing was written (--force-toolchain adds the 1.x packages anyway)"
    ]
    assert _snapshot(app) == before
    forced = _cli("instrument", str(app), "--force-toolchain")
    assert forced.returncode == 0, forced.stderr
    added = json.loads((app / "package.json").read_text())["dependencies"]
    assert added["@opentelemetry/sdk-node"] == "0.57.2"


def test_typescript_3_9_gets_type_free_helpers_that_import_no_opentelemetry_types(tmp_path: Path) -> None:
    app = make_app(tmp_path, dev={"typescript": "3.9.7"})
    proc = _cli("instrument", str(app))
    assert proc.returncode == 0, proc.stderr
    for name in ("tracing.ts", "otel.ts"):
        source = (app / "src" / name).read_text()
        assert "from '@opentelemetry/" not in source and "import type" not in source, name
        assert "declare const require: (id: string) => any;" in source, name
    tracing = (app / "src" / "tracing.ts").read_text()
    assert "const { NodeSDK } = require('@opentelemetry/sdk-node');" in tracing
    assert "OpenTelemetry JS 2.x line" in tracing
    assert "const { SpanKind, SpanStatusCode, context, trace } = require('@opentelemetry/api');" in (
        app / "src" / "otel.ts").read_text()
    again = _cli("instrument", str(app))
    assert again.returncode == 0 and "nothing to do (already instrumented" in again.stderr, again.stderr


def test_type_free_holds_the_types_node_the_app_got_from_another_package(tmp_path: Path) -> None:
    """The app declares no @types/node but has 12.0.10 through a dependency: it gets it
    declared at exactly that version (npm would hoist the SDK's newer one over it), and
    strip takes it out again."""
    app = make_app(tmp_path, dev={"typescript": "3.5.2"})
    (app / "node_modules" / "@types" / "node").mkdir(parents=True)
    (app / "node_modules" / "@types" / "node" / "package.json").write_text('{"name": "@types/node", "version": "12.0.10"}')
    original = (app / "package.json").read_bytes()
    result = _cli("instrument", str(app))
    assert result.returncode == 0, result.stderr
    deps = json.loads((app / "package.json").read_text())["dependencies"]
    assert deps["@types/node"] == "12.0.10"
    assert "//   @types/node\n" in (app / "src" / "tracing.ts").read_text()
    assert _cli("strip", str(app)).returncode == 0
    assert (app / "package.json").read_bytes() == original
    # declared by the app itself (any section): left alone
    declared = make_app(tmp_path / "declared", dev={"typescript": "3.5.2", "@types/node": "^12.0.0"})
    assert _cli("instrument", str(declared)).returncode == 0
    assert "@types/node" not in json.loads((declared / "package.json").read_text())["dependencies"]


def test_force_toolchain_is_a_setting_too(tmp_path: Path) -> None:
    app = make_app(tmp_path, dev={"typescript": "~3.5.0"})
    (app / ".otelize.yaml").write_text("force_toolchain: true\n")
    assert _cli("instrument", str(app), "--diff").returncode == 0


def test_package_manager_field_and_workspace_lockfile(tmp_path: Path) -> None:
    app = make_app(tmp_path / "one", packageManager="pnpm@9.12.0")
    (app / "package-lock.json").write_text("{}")
    assert load_project(app).package_manager == "pnpm"  # the field wins over a stray lockfile

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "package.json").write_text(json.dumps({"name": "ws", "workspaces": ["apps/*"], "packageManager": "yarn@4.5.0"}))
    member = make_app(ws / "apps" / "api")
    assert workspace_root(member) == ws
    assert load_project(member).package_manager == "yarn"
    (ws / "package.json").write_text(json.dumps({"name": "ws", "workspaces": ["apps/*"]}))
    (ws / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n")
    assert load_project(member).package_manager == "pnpm"


def test_report_names_each_added_package_and_its_cause(tmp_path: Path) -> None:
    from otelize.api import instrument

    app = make_app(tmp_path, {"ioredis": "5.4.1", "pino": "9.5.0"}, {"typescript": "5.4.5"})
    notes = instrument(app, write=False).synthesis.notes
    assert "added @opentelemetry/instrumentation-ioredis@0.71.0 for ioredis" in notes
    assert "added @opentelemetry/instrumentation-pino@0.69.0 for pino" in notes
    assert "added @opentelemetry/instrumentation-express@0.71.1 always (every Express app)" in notes
    assert any(n.startswith("OpenTelemetry JS 2.x line: TypeScript 5.4.5") for n in notes)


def test_express_layers_setting_turns_layer_spans_back_on(tmp_path: Path) -> None:
    from otelize.api import instrument

    app = make_app(tmp_path)
    lean = instrument(app, write=False).synthesis.changes["src/tracing.ts"][1]
    assert b"ignoreLayersType: [ExpressLayerType.MIDDLEWARE, ExpressLayerType.ROUTER]" in lean
    (app / ".otelize.yaml").write_text("express_layers: true\n")
    full = instrument(app, write=False).synthesis.changes["src/tracing.ts"][1]
    assert b"ignoreLayersType" not in full and b"ExpressLayerType" not in full
    assert b"new ExpressInstrumentation()," in full


# --- the rules files: validated on load, user-extendable -----------------------------------


def test_user_rules_folder_adds_and_overrides_entries(tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "otel-instrumentations.yaml").write_text(yaml.safe_dump({"instrumentations": {
        "@acme/instrumentation-widgets": {"class": "WidgetsInstrumentation",
                                          "lines": {"2.x": {"version": "1.2.3", "supports": {"widgets": "^2.0.0"}}}},
        "@opentelemetry/instrumentation-pg": {"class": "PgInstrumentation",
                                              "lines": {"2.x": {"version": "0.76.0", "supports": {"pg": ">=9.0.0"}}}},
    }}))
    app = make_app(tmp_path / "app", {"widgets": "2.1.0", "pg": "8.13.1"}, {"typescript": "5.4.5"})
    settings = {"rules": [str(rules)]}
    assert instrumentations(app, settings)[2:] == ["@acme/instrumentation-widgets"]
    assert dependency.wanted_packages(settings, "commonjs", load_project(app))["@acme/instrumentation-widgets"] == "1.2.3"
    # the built-in table is unchanged for everyone else
    assert "@opentelemetry/instrumentation-pg" in instrumentations(app)


@pytest.mark.parametrize(("doc", "key"), [
    ({"instrumentations": {"x": {"class": "X", "lines": {"9.x": {"version": "1.0.0", "supports": {"a": "*"}}}}}},
     "'instrumentations.x.lines.9.x': unknown line"),
    ({"instrumentations": {"x": {"class": "X", "lines": {"2.x": {"version": "^1.0.0", "supports": {"a": "*"}}}}}},
     "'instrumentations.x.lines.2.x.version': pin an exact version"),
    ({"instrumentations": {"x": {"class": "X", "lines": {"2.x": {"version": "1.0.0", "supports": {"a": "latest"}}}}}},
     "'instrumentations.x.lines.2.x.supports.a': not an npm version range"),
    ({"instrumentations": {"x": {"class": "not a name", "lines": {}}}}, "'instrumentations.x.class'"),
    ({"instrumentations": {"x": {"class": "X", "enabled": True, "lines": {}}}}, "'instrumentations.x.enabled': unknown key"),
    ({"instrumentation": {}}, "'instrumentations'"),
    ({"instrumentations": {"x": {"class": "X", "globals": {"WebSocket": "*"}, "lines": {
        "2.x": {"version": "1.0.0", "supports": {"a": "*"}}}}}}, "'instrumentations.x.globals.WebSocket': unknown global"),
    ({"instrumentations": {"x": {"class": "X", "globals": {"fetch": "node 18"}, "lines": {
        "2.x": {"version": "1.0.0", "supports": {"a": "*"}}}}}}, "'instrumentations.x.globals.fetch': not an npm version range"),
])
def test_bad_table_names_file_and_key(tmp_path: Path, doc: dict, key: str) -> None:
    rules = tmp_path / "r"
    rules.mkdir()
    (rules / "otel-instrumentations.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(RuleError) as err:
        load_instrumentations({"rules": [str(rules)]})
    assert str(err.value).startswith(f"{rules / 'otel-instrumentations.yaml'}: ")
    assert key in str(err.value)


def test_builtin_pins_are_exact_and_share_each_lines_instrumentation_base() -> None:
    lines, _ = load_lines()
    assert [line.id for line in lines] == ["2.x", "1.x"]
    for inst in TABLE:
        for line, version, _ in inst.lines:
            assert npmrange.parse_version(version) is not None, inst.package


@pytest.mark.parametrize(("version", "rng", "ok"), [
    ((5, 4, 5), "^5.0.4", True), ((5, 0, 3), ">=5.0.4", False), ((4, 7, 4), "~4.7", True),
    ((18, 19, 0), "^18.19.0 || >=20.6.0", True), ((20, 5, 1), "^18.19.0 || >=20.6.0", False),
    ((0, 2, 9), "^0.2.3", True), ((0, 3, 0), "^0.2.3", False), ((2, 3, 9), "1.2 - 2.3", True),
    ((1, 0, 0), "*", True), ((3, 0, 0), "latest", False),
])
def test_npm_ranges(version: tuple[int, int, int], rng: str, ok: bool) -> None:
    assert npmrange.satisfies(version, rng) is ok


def test_state_cache_key_follows_the_toolchain_files(tmp_path: Path) -> None:
    # a lockfile that moves TypeScript from 4.9 to 5.4 changes the version line: the
    # cached "clean" answer of --check --cache must not survive it
    from otelize.run import statecache

    app = make_app(tmp_path, dev={"typescript": "^4.9.0 || ^5.0.0"})
    lock = {"lockfileVersion": 3, "packages": {"node_modules/typescript": {"version": "4.9.5"}}}
    (app / "package-lock.json").write_text(json.dumps(lock))
    before = statecache.fingerprint(load_project(app), {}, [])
    assert choose_line(load_project(app), {}).id == "1.x"
    lock["packages"]["node_modules/typescript"]["version"] = "5.4.5"
    (app / "package-lock.json").write_text(json.dumps(lock))
    assert choose_line(load_project(app), {}).id == "2.x"
    assert statecache.fingerprint(load_project(app), {}, []) != before
    (app / ".nvmrc").write_text("16\n")
    assert choose_line(load_project(app), {}).id == "1.x"


# --- the global fetch: undici inside node (Node 18+), traced by the undici instrumentation --

CLIENT = """\
export async function forecast(city: string): Promise<unknown> {
  const res = await fetch(`https://weather.example.com/${city}`);
  return res.json();
}
"""


def fetch_app(root: Path, client: str = CLIENT, deps: dict[str, str] | None = None, **extra: object) -> Path:
    app = make_app(root, deps, {"typescript": "5.4.5"}, **extra)
    (app / "src" / "clients").mkdir()
    (app / "src" / "clients" / "weather.ts").write_text(client)
    return app


def _with_facts(app: Path) -> tuple[list[str], list[str]]:
    """(the chosen packages, the report's notes) of a full analysis (the facts say who calls fetch)."""
    from otelize.api import analyze, instrument
    from otelize.workers.deps.choose import called_globals

    analysis = analyze(app)
    chosen, _ = chosen_instrumentations(analysis.project, {}, calls=called_globals(analysis.facts))
    return [c.package for c in chosen], instrument(app, write=False).synthesis.notes


def test_an_app_that_calls_the_global_fetch_gets_the_undici_instrumentation(tmp_path: Path) -> None:
    from otelize.api import instrument

    app = fetch_app(tmp_path, engines={"node": ">=20"})
    packages, notes = _with_facts(app)
    assert packages == ["@opentelemetry/instrumentation-http", "@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-undici"]
    assert "added @opentelemetry/instrumentation-undici@0.33.0 for the global fetch" in notes
    changes = instrument(app, write=False).synthesis.changes
    tracing = changes["src/tracing.ts"][1]
    assert b"import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';" in tracing
    assert b"    new UndiciInstrumentation(),\n" in tracing
    assert b'"@opentelemetry/instrumentation-undici": "0.33.0"' in changes["package.json"][1]
    # without the facts (no code read), package.json alone asks for no undici
    assert "@opentelemetry/instrumentation-undici" not in instrumentations(app)


@pytest.mark.parametrize("client", [
    "import fetch from 'node-fetch';\n" + CLIENT,
    "const fetch = require('cross-fetch');\n" + CLIENT,
])
def test_a_fetch_imported_from_a_library_is_not_the_global_one(tmp_path: Path, client: str) -> None:
    app = fetch_app(tmp_path, client, {"node-fetch": "2.7.0", "cross-fetch": "4.0.0"})
    packages, _ = _with_facts(app)
    assert "@opentelemetry/instrumentation-undici" not in packages


@pytest.mark.parametrize(("files", "engines", "added"), [
    ({}, "16.x", False),                    # no global fetch before Node 18
    ({}, "^14 || ^16", False),
    ({}, ">=16", True),                     # admits Node 18 and later
    ({".nvmrc": "16\n"}, ">=16", False),    # .nvmrc says what runs
    ({".nvmrc": "v20.11.0\n"}, None, True),
    ({}, None, True),                       # nothing declared: a current Node
])
def test_the_global_fetch_needs_a_node_that_has_it(tmp_path: Path, files: dict[str, str], engines: str | None,
                                                   added: bool) -> None:
    app = fetch_app(tmp_path, **({"engines": {"node": engines}} if engines else {}))
    for name, text in files.items():
        (app / name).write_text(text)
    packages, _ = _with_facts(app)
    assert ("@opentelemetry/instrumentation-undici" in packages) is added


def test_the_old_line_gets_its_own_undici_pin_for_the_global_fetch(tmp_path: Path) -> None:
    app = fetch_app(tmp_path, engines={"node": ">=16"})  # Node 16 allowed: the 1.x line, whose undici is 0.10.1
    _, notes = _with_facts(app)
    assert "added @opentelemetry/instrumentation-undici@0.10.1 for the global fetch" in notes


@pytest.mark.parametrize(("deps", "engines", "kind"), [
    ({}, ">=20", "INTERNAL"),                  # the undici instrumentation's CLIENT span is below it
    ({}, "16.x", "CLIENT"),                    # no global fetch, no instrumented polyfill: its span is the client's
    ({"node-fetch": "2.7.0"}, "16.x", "INTERNAL"),  # a polyfill over node's http (instrumented)
])
def test_a_fetch_client_is_a_client_span_only_when_nothing_traces_its_fetch(tmp_path: Path, deps: dict[str, str],
                                                                             engines: str, kind: str) -> None:
    from otelize.api import analyze, synthesize_plan

    app = fetch_app(tmp_path, deps=deps, engines={"node": engines})
    spans = [s for s in synthesize_plan(analyze(app)).spans if s.file == "src/clients/weather.ts"]
    assert [s.kind for s in spans] == [kind]


def test_prisma_before_6_1_warns_on_stderr_and_in_both_reports(tmp_path: Path) -> None:
    """The CLI prints the left-out instrumentation as one warning line whatever the verbosity
    (-q too), the JSON report has it as the dependency worker's skip, the Markdown report
    under "Needs attention"."""
    import shutil

    app = make_app(tmp_path / "app", {"@prisma/client": "5.22.0"}, {"typescript": "5.4.5"})
    shutil.copytree(app, tmp_path / "again")

    def otelize(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=120, cwd=ROOT)

    done = otelize("instrument", "-q", str(app), "--report", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "instrumentation not added" in line]
    assert warnings == [
        "otelize: warning: instrumentation not added: @prisma/instrumentation@6.19.3 supports @prisma/client "
        "'>=6.1.0 <7', the app has 5.22.0 (package.json '5.22.0'), so @prisma/client calls get no spans of "
        "their own; upgrade @prisma/client to >= 6.1.0"]
    data = json.loads((tmp_path / "report.json").read_text())
    assert [s for s in data["skipped"] if s["worker"] == "dependency"] == [
        {"file": "package.json", "line": 0, "symbol": "@prisma/instrumentation", "reason": warnings[0][len("otelize: warning: "):],
         "worker": "dependency"}]
    # a second run adds nothing, and still says it
    again = otelize("instrument", str(app))
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr and warnings[0] in again.stderr.splitlines()
    done = otelize("instrument", str(tmp_path / "again"), "--report", str(tmp_path / "report.md"))
    assert done.returncode == 0, done.stderr
    assert "- **`@prisma/instrumentation` not added**: @prisma/instrumentation@6.19.3 supports" in (tmp_path / "report.md").read_text()
