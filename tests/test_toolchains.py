"""The packages otelize adds fit the app's toolchain: real npm registry, real tsc, real SDK.

Each fixture app is written here (no copied code): TypeScript 4.7 with @types/node 17,
TypeScript 4.9, TypeScript 5 with every strictness flag (ES modules), a workspace member,
and an app on pg and mongoose. For each: npm install, count tsc errors, instrument,
npm install the chosen set, count again (equal), build, start with the start script and
check that a SERVER span and the service span below it reach an OTLP receiver.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from nodeutil import _accepts_connections, _stop, free_port
from transform import LEDGER
from otelize.api import instrument
from otelize.verification.receiver import OtlpReceiver
from otelize.verification.verify import telemetry_env

pytestmark = pytest.mark.node

STRICT = {
    "strict": True,
    "noImplicitReturns": True,
    "noUnusedLocals": True,
    "noUnusedParameters": True,
    "noUncheckedIndexedAccess": True,
    "exactOptionalPropertyTypes": True,
    "noPropertyAccessFromIndexSignature": True,
    "isolatedModules": True,
}

SERVICE = """\
export async function greet(name: string): Promise<string> {
  await new Promise<void>((resolve) => setTimeout(resolve, 1));
  return `hello ${name}`;
}
"""

INDEX = """\
import express from 'express';
import { greet } from './services/greetService{ext}';
{extra_import}
const app = express();

app.get('/health', (_req, res) => {
  res.send('ok');
});

app.get('/hello/:name', async (req, res) => {
  res.json({ message: await greet(String(req.params['name'])) });
});

const port = Number(process.env['PORT'] || 3000);
app.listen(port, () => {
  console.log(`listening on ${port}`);
});
"""

DB = """\
import { Pool } from 'pg';
import mongoose from 'mongoose';

const pool = new Pool({ connectionString: process.env['DATABASE_URL'] });
const User = mongoose.model('User', new mongoose.Schema({ name: String }));

export async function countOrders(): Promise<number> {
  const result = await pool.query('SELECT count(*) AS n FROM orders');
  return Number(result.rows[0]?.n ?? 0);
}

export async function findUser(name: string): Promise<unknown> {
  return User.findOne({ name }).exec();
}
"""


def _need_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")


def write_app(
    root: Path,
    *,
    typescript: str,
    types_node: str,
    esm: bool = False,
    compiler: dict[str, Any] | None = None,
    deps: dict[str, str] | None = None,
    dev: dict[str, str] | None = None,
    db: bool = False,
    name: str = "toolchain-app",
) -> Path:
    (root / "src" / "services").mkdir(parents=True)
    options: dict[str, Any] = {
        "target": "ES2020",
        "rootDir": "src",
        "outDir": "dist",
        "esModuleInterop": True,
        "skipLibCheck": False,
        **({"module": "nodenext", "moduleResolution": "nodenext"} if esm else {"module": "commonjs"}),
        **(compiler or {}),
    }
    (root / "tsconfig.json").write_text(json.dumps({"compilerOptions": options, "include": ["src"]}, indent=2))
    package: dict[str, Any] = {
        "name": name,
        "version": "1.0.0",
        "private": True,
        **({"type": "module"} if esm else {}),
        "scripts": {"build": "tsc -p tsconfig.json", "start": "node dist/index.js"},
        "dependencies": {"express": "4.21.2", **(deps or {})},
        "devDependencies": {"@types/express": "4.17.21", "@types/node": types_node, "typescript": typescript, **(dev or {})},
    }
    (root / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    ext = ".js" if esm else ""
    extra = f"import {{ countOrders, findUser }} from './db{ext}';\nvoid countOrders;\nvoid findUser;" if db else ""
    (root / "src" / "index.ts").write_text(INDEX.replace("{ext}", ext).replace("{extra_import}", extra))
    (root / "src" / "services" / "greetService.ts").write_text(SERVICE)
    (root / "src" / "services" / "ledgerService.ts").write_text(LEDGER)
    if db:
        (root / "src" / "db.ts").write_text(DB)
    return root


def npm_install(folder: Path) -> None:
    proc = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts"],
        cwd=folder, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"npm install failed in {folder}:\n{proc.stdout}\n{proc.stderr}"


def tsc_errors(app: Path, tsc_dir: Path | None = None) -> list[str]:
    tsc = (tsc_dir or app) / "node_modules" / "typescript" / "bin" / "tsc"
    proc = subprocess.run(["node", str(tsc), "-p", str(app), "--noEmit", "--pretty", "false"],
                          capture_output=True, text=True, timeout=600)
    return sorted(line for line in proc.stdout.splitlines() if ": error TS" in line)


def build(app: Path, tsc_dir: Path | None = None) -> None:
    tsc = (tsc_dir or app) / "node_modules" / "typescript" / "bin" / "tsc"
    subprocess.run(["node", str(tsc), "-p", str(app)], capture_output=True, text=True, timeout=600)
    assert (app / "dist" / "index.js").is_file() and (app / "dist" / "tracing.js").is_file()


def run_and_trace(app: Path, service: str) -> list[Any]:
    """Start the app with its own start script, make one request, stop it (SIGTERM flushes)."""
    command = json.loads((app / "package.json").read_text())["scripts"]["start"]
    args = shlex.split(command)
    assert args[0] == "node"
    port = free_port()
    with OtlpReceiver() as rx, tempfile.TemporaryFile() as log:
        env = {**telemetry_env(rx.endpoint, service, None, "commonjs"), "PORT": str(port)}
        proc = subprocess.Popen(args, cwd=app, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not _accepts_connections(port):
                log.seek(0)
                assert proc.poll() is None, f"{command} exited {proc.returncode}:\n{log.read().decode()}"
                assert time.monotonic() < deadline, f"{command} never listened:\n{log.read().decode()}"
                time.sleep(0.1)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello/ada", timeout=10) as response:
                assert json.loads(response.read()) == {"message": "hello ada"}
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
                assert response.status == 200
            # the batch goes out after 100 ms; on a loaded machine give it time before SIGTERM
            # (whose flush is bounded to 5 s; tests/test_flush_on_exit.py covers that path)
            until = time.monotonic() + 30
            while time.monotonic() < until and not any(s.kind == "SERVER" for s in rx.spans()):
                time.sleep(0.2)
        finally:
            _stop(proc)
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
        assert proc.returncode == 0, output
        return [s for s in rx.spans() if s.resource.get("service.name") == service]


def check_traces(spans: list[Any]) -> None:
    servers = [s for s in spans if s.kind == "SERVER"]
    assert [s.attributes.get("http.route") for s in servers] == ["/hello/:name"]  # /health ignored
    greet = [s for s in spans if s.name.endswith("greet")]
    assert len(greet) == 1 and greet[0].trace_id == servers[0].trace_id
    kinds = sorted({s.name for s in spans if s.kind == "INTERNAL"})
    assert not any(n.startswith("middleware - ") or n.startswith("router - ") for n in kinds), kinds


def added(app: Path, before: dict[str, str]) -> dict[str, str]:
    after = json.loads((app / "package.json").read_text())["dependencies"]
    return {k: v for k, v in after.items() if k not in before}


CASES = {
    "ts4.7-types-node17": dict(typescript="4.7.4", types_node="17.0.45", line="1.x"),
    "ts4.9": dict(typescript="4.9.5", types_node="18.19.50", line="1.x"),
    "ts5-strict-esm": dict(typescript="5.4.5", types_node="20.19.43", line="2.x", esm=True,
                           compiler={**STRICT, "verbatimModuleSyntax": True}),
    # older than every line's declarations: type-free helpers at their lowest TypeScript
    # (rules/otel-packages.yaml type_free), 0 errors under strict before and after, with the
    # @types of its day (the newest @types/express and @types/node 12.20 need TypeScript 3.7+)
    "ts3.5-type-free": dict(typescript="3.5.3", types_node="12.12.6", line="2.x",
                            compiler={"target": "es2017", "strict": True, "noUnusedLocals": True,
                                      "noImplicitReturns": True},
                            dev={"@types/express": "4.17.2", "@types/express-serve-static-core": "4.17.0",
                                 "@types/serve-static": "1.13.3", "@types/mime": "2.0.3",
                                 "@types/range-parser": "1.2.3", "@types/qs": "6.9.0",
                                 "@types/body-parser": "1.17.1", "@types/connect": "3.4.32"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_builds_and_traces_with_as_many_tsc_errors(tmp_path: Path, case: str) -> None:
    _need_node()
    spec = dict(CASES[case])
    line = spec.pop("line")
    app = write_app(tmp_path / "app", **spec)
    npm_install(app)
    errors_before = tsc_errors(app)
    if case.endswith("type-free"):
        assert errors_before == []  # so that an error in the generated files shows
    deps_before = json.loads((app / "package.json").read_text())["dependencies"]

    result = instrument(app)
    assert not result.partial
    new = added(app, deps_before)
    assert "@opentelemetry/auto-instrumentations-node" not in new
    instrumentations = sorted(k for k in new if "instrumentation-" in k)
    assert instrumentations == ["@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-http"]
    assert f"OpenTelemetry JS {line} line" in (app / "src" / "tracing.ts").read_text()

    npm_install(app)
    assert tsc_errors(app) == errors_before
    ledger = app / "src" / "services" / "ledgerService.ts"
    wrapped = ledger.read_bytes()
    assert b"return withSpan<Promise<Outcome<void>>>('Ledger.record', " in wrapped
    if case == "ts3.5-type-free":
        # the failure the type argument avoids: the same wrappers without it (what an otelize
        # before type arguments wrote) do not type-check with this TypeScript
        ledger.write_bytes(re.sub(rb"return withSpan<[^(]*>\(", b"return withSpan(", wrapped))
        assert [e for e in tsc_errors(app) if "src/services/ledgerService.ts(" in e and "TS2322" in e]
        ledger.write_bytes(wrapped)
    build(app)
    check_traces(run_and_trace(app, f"svc-{case}"))


def test_pg_and_mongoose_get_their_instrumentations_and_no_other(tmp_path: Path) -> None:
    _need_node()
    app = write_app(tmp_path / "app", typescript="5.4.5", types_node="20.19.43", db=True,
                    deps={"pg": "8.13.1", "mongoose": "8.9.5"}, dev={"@types/pg": "8.11.10"},
                    compiler=STRICT)
    npm_install(app)
    errors_before = tsc_errors(app)
    deps_before = json.loads((app / "package.json").read_text())["dependencies"]
    result = instrument(app)
    new = added(app, deps_before)
    assert sorted(k for k in new if "instrumentation-" in k) == [
        "@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-http",
        "@opentelemetry/instrumentation-mongoose", "@opentelemetry/instrumentation-pg",
    ]  # mongoose's own mongodb driver is not a dependency of the app: no mongodb package
    notes = "\n".join(result.synthesis.notes)
    assert "added @opentelemetry/instrumentation-pg@0.76.0 for pg" in notes
    assert "added @opentelemetry/instrumentation-mongoose@0.69.0 for mongoose" in notes
    tracing = (app / "src" / "tracing.ts").read_text()
    assert "new PgInstrumentation()" in tracing and "new MongooseInstrumentation()" in tracing
    npm_install(app)
    assert tsc_errors(app) == errors_before
    build(app)
    check_traces(run_and_trace(app, "svc-pg-mongoose"))


def test_workspace_member_gets_the_packages_in_its_own_package_json(tmp_path: Path) -> None:
    _need_node()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "package.json").write_text(json.dumps(
        {"name": "monorepo", "private": True, "workspaces": ["packages/*"]}, indent=2) + "\n")
    app = write_app(root / "packages" / "api", typescript="5.4.5", types_node="20.19.43", name="@repo/api")
    npm_install(root)  # one lockfile and node_modules, at the workspace root
    assert not (app / "package-lock.json").exists() and not (app / "node_modules" / "typescript").exists()
    root_before = (root / "package.json").read_bytes()
    errors_before = tsc_errors(app, tsc_dir=root)
    deps_before = json.loads((app / "package.json").read_text())["dependencies"]

    result = instrument(app)
    assert (root / "package.json").read_bytes() == root_before
    new = added(app, deps_before)
    assert "@opentelemetry/sdk-node" in new and "@opentelemetry/instrumentation-http" in new
    # the versions came from the workspace root's node_modules (hoisted): TypeScript 5.4.5 -> 2.x
    assert "OpenTelemetry JS 2.x line: TypeScript 5.4.5 (node_modules/typescript)" in result.synthesis.notes[0]
    assert result.analysis is not None and result.analysis.project.package_manager == "npm"

    npm_install(root)
    assert tsc_errors(app, tsc_dir=root) == errors_before
    build(app, tsc_dir=root)
    check_traces(run_and_trace(app, "svc-workspace"))


# --- the generated tracing.ts compiles with the lowest TypeScript of each line -------------


def _line_pins(line: str) -> dict[str, str]:
    from otelize.workers.deps.lines import load_instrumentations, load_lines

    lines, _ = load_lines()
    chosen = next(x for x in lines if x.id == line)
    pins = dict(chosen.packages)
    for inst in load_instrumentations():
        spec = inst.on(line)
        if spec is not None and inst.package in ("@opentelemetry/instrumentation-http",
                                                  "@opentelemetry/instrumentation-express"):
            pins[inst.package] = spec[0]
    return pins


NO_EXACT = {k: v for k, v in STRICT.items() if k != "exactOptionalPropertyTypes"}


@pytest.mark.parametrize(("line", "typescript", "types_node", "flags"), [
    ("1.x", "4.4.4", "14.18.63", NO_EXACT),
    ("1.x", "4.9.5", "17.0.45", NO_EXACT),
    # the 1.x declarations need skipLibCheck under exactOptionalPropertyTypes (otherwise refused)
    ("1.x", "4.9.5", "17.0.45", {**STRICT, "skipLibCheck": True}),
    ("2.x", "5.0.4", "18.19.50", STRICT),
])
def test_tracing_compiles_at_each_lines_minimum_typescript(
    tmp_path: Path, line: str, typescript: str, types_node: str, flags: dict[str, bool]
) -> None:
    """tracing.ts (with the health-check hook, layers off) under the strict flags, with
    the lowest TypeScript and @types/node a line supports, as `npx -p typescript@X tsc`."""
    _need_node()
    app = write_app(tmp_path / "app", typescript=typescript, types_node=types_node,
                    deps=_line_pins(line), compiler={**flags, "target": "ES2019"})
    (app / "src" / "services" / "greetService.ts").unlink()
    (app / "src" / "services" / "ledgerService.ts").unlink()
    (app / "src" / "index.ts").write_text("import './tracing';\nexport {};\n")
    from otelize.project.discover import load_project
    from otelize.workers import config
    from otelize.workers.base import WorkerContext
    from otelize.project.model import Route

    project = load_project(app)
    ctx = WorkerContext(project, {}, {}, None, [Route("GET", "/health", "src/index.ts", 1, "<anonymous>")],  # type: ignore[arg-type]
                        "src/index.ts", {})
    assert b"ignoreIncomingRequestHook" in config.render_tracing(ctx)
    tracing = config.render_tracing(ctx)
    assert f"OpenTelemetry JS {line} line".encode() in tracing
    (app / "src" / "tracing.ts").write_bytes(tracing)
    npm_install(app)
    # none in the generated file, none in the OpenTelemetry type declarations it pulls in
    errors = [e for e in tsc_errors(app) if e.startswith("src/") or "@opentelemetry/" in e or "@types/shimmer" in e]
    assert errors == []
