"""JavaScript apps (issue 15): discovery, CommonJS facts, generated JavaScript, require()
imports, idempotence, --check, byte-exact strip, and "nothing to instrument".

The runtime side (span trees, the apps' own tests, verify) is tests/test_e2e_traces_js.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from js_shop import APPS as JS_SHOPS
from otelize.api import analyze, instrument
from otelize.project.discover import load_project
from otelize.analysis.facts import extract
from otelize.synthesize.jsemit import to_javascript
from otelize.analysis.parse import parse_source
from otelize.synthesize.render import render
from otelize.stripping.strip import strip

JS_APPS = JS_SHOPS  # made whole by tests/js_shop.py (the `js_shops` fixture)
HAS_NODE = shutil.which("node") is not None


def _app(tmp_path: Path, files: dict[str, str], package: dict | None = None) -> Path:
    pkg = {"name": "app", "version": "1.0.0", "dependencies": {"express": "4.22.3"}, **(package or {})}
    (tmp_path / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    for rel, body in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip())
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- discovery ------------------------------------------------------------------


def test_js_app_sources_include_bin_www_and_leave_out_tests(tmp_path):
    root = _app(tmp_path, {
        "app.js": "const express = require('express');\nmodule.exports = express();\n",
        "bin/www": "#!/usr/bin/env node\nrequire('../app').listen(3000);\n",
        "bin/notes": "plain text, no shebang\n",
        "lib/esm.mjs": "export const a = 1;\n",
        "lib/cjs.cjs": "module.exports = 1;\n",
        "views/page.jsx": "module.exports = () => <div/>;\n",
        "test/api.test.js": "require('node:test');\n",
        "lib/util.spec.js": "require('node:test');\n",
    })
    project = load_project(root)
    assert project.language == "js"
    assert project.files == ["app.js", "bin/www", "lib/cjs.cjs", "lib/esm.mjs", "views/page.jsx"]
    assert any("2 test file(s) left out" in reason for _, reason in project.skipped)


def test_javascript_in_a_typescript_project_needs_allowjs(tmp_path):
    files = {"src/index.ts": "export const a = 1;\n", "src/legacy.js": "module.exports = 1;\n", "jest.config.js": "module.exports = {};\n"}
    root = _app(tmp_path, files)
    project = load_project(root)
    assert project.language == "ts" and project.files == ["src/index.ts"]
    assert any("2 JavaScript file(s) left out" in reason for _, reason in project.skipped)
    (root / "tsconfig.json").write_text('{"compilerOptions": {"allowJs": true, "outDir": "dist"}}\n')
    project = load_project(root)
    assert project.language == "ts" and "src/legacy.js" in project.files


def test_mixed_allowjs_app_wraps_js_files_with_imports_of_the_ts_helper(tmp_path):
    root = _app(tmp_path, {
        "tsconfig.json": '{"compilerOptions": {"allowJs": true, "outDir": "dist", "rootDir": "src", "module": "commonjs"}}\n',
        "src/index.ts": "import express from 'express';\nimport { find } from './services/userService';\n"
                        "const app = express();\napp.get('/u', async (_req, res) => { res.json(await find()); });\napp.listen(3000);\n",
        "src/services/userService.js": "async function find() {\n  const rows = await Promise.resolve([]);\n  return rows;\n}\nmodule.exports = { find };\n",
    })
    result = instrument(root, write=False)
    new = result.synthesis.changes["src/services/userService.js"][1]
    assert b"const { withSpan } = require('../otel');" in new  # a CommonJS .js file requires; tsc compiles otel.ts
    assert "src/otel.ts" in result.synthesis.changes and "src/otel.js" not in result.synthesis.changes


# --- facts ------------------------------------------------------------------------


def _facts(path: str, code: str):
    return extract(parse_source(path, textwrap.dedent(code).encode()))


def test_commonjs_export_forms():
    facts = _facts("svc.js", """
        const { db } = require('./db');
        const cache = require('./cache');
        exports.find = async function (id) { return db.get(id); };
        module.exports.list = async () => { return db.all(); };
        function helper() { return 1; }
        module.exports.helper = helper;
    """)
    assert [(i.module, i.default, i.names) for i in facts.imports] == [("./db", None, (("db", "db"),)), ("./cache", "cache", ())]
    assert facts.exports == {"find": "find", "list": "list", "helper": "helper"}
    by_name = {f.name: f for f in facts.functions}
    assert by_name["find"].exported and by_name["list"].exported and by_name["helper"].exported


def test_module_exports_object_of_functions_and_instances():
    facts = _facts("orders.js", """
        module.exports = {
          async place(order) { return order; },
          cancel: async function (id) { return id; },
        };
    """)
    assert facts.exports["="] == "default"
    assert {f.qualname for f in facts.functions if f.kind == "object-method"} == {"default.place", "default.cancel"}
    facts = _facts("svc.js", "class OrderService { async place() { return 1; } }\nmodule.exports = new OrderService();\n")
    assert facts.exports["="] == "module.exports" and facts.instances["module.exports"] == "OrderService"


def test_prototype_methods_are_class_members_and_the_constructor_gets_no_span():
    facts = _facts("inventory.js", """
        function Inventory(db) {
          this.db = db;
          this.cache = new Cache();
        }
        Inventory.prototype.reserve = async function (id) {
          return this.db.update(id);
        };
        module.exports = Inventory;
    """)
    reserve = next(f for f in facts.functions if f.name == "reserve")
    assert (reserve.qualname, reserve.class_name, reserve.kind, reserve.exported) == ("Inventory.reserve", "Inventory", "method", True)
    ctor = next(f for f in facts.functions if f.name == "Inventory")
    assert ctor.is_constructor
    (cls,) = facts.classes
    assert cls.name == "Inventory" and cls.field_types == {"db": "@db", "cache": "Cache"}


def test_express_router_in_commonjs():
    facts = _facts("routes.js", """
        const express = require('express');
        const router = express.Router();
        const other = require('express').Router();
        const app = require('express')();
        router.get('/a', (req, res) => res.end());
        module.exports = router;
    """)
    assert facts.routers == ["router", "other"] and facts.apps == ["app"]
    assert [(r.owner, r.method, r.path) for r in facts.routes] == [("router", "GET", "/a")]
    assert facts.exports["="] == "router"


def test_graph_resolves_calls_through_required_modules(js_shops):
    root = js_shops["js-shop-cjs"]
    analysis = analyze(root)
    edges = {(u, v) for u, v, k in analysis.graph.graph.edges(data="kind") if k == "calls"}
    # `module.exports = new ProductService(...)`, required as `productService`
    assert ("sym:services/orderService.js::OrderService.createOrder", "sym:services/productService.js::ProductService.getProduct") in edges
    # prototype method, called through an instance exported in `module.exports = { ... }`
    assert ("sym:services/orderService.js::OrderService.createOrder", "sym:services/inventoryService.js::InventoryService.reserveStock") in edges
    assert analysis.entry == "bin/www"
    assert {r.path for r in analysis.graph.routes} >= {"/api/orders", "/api/users/:id", "/api/products/:id/inventory"}


# --- generated JavaScript --------------------------------------------------------------


@pytest.mark.parametrize("module", ["commonjs", "esm"])
@pytest.mark.parametrize("template", ["otel.ts.j2", "tracing.ts.j2"])
def test_generated_javascript_has_no_types_and_checks_with_node(template, module, tmp_path):
    if template == "tracing.ts.j2":
        ctx = {"generated_header": "// g", "added_packages": ["@opentelemetry/api"]}
        from otelize.workers.deps.lines import load_lines

        instrumentations = [
            {"package": "@opentelemetry/instrumentation-http", "cls": "HttpInstrumentation", "local": "HttpInstrumentation"},
            {"package": "@opentelemetry/instrumentation-express", "cls": "ExpressInstrumentation", "local": "ExpressInstrumentation"},
        ]
        ctx.update(service_name="s", service_version="1", protocol="http/protobuf", module=module, health_paths=["/health"],
                   line=load_lines()[0][0], instrumentations=instrumentations, express_layers=False, dotenv=None)
        ts = render(template, **ctx)
    else:
        from otelize.workers.config import render_helper

        ts = render_helper()  # the TypeScript helper, as a TypeScript app gets it
    js = to_javascript(ts, module)
    tree = parse_source("x.js", js)
    assert tree.ok
    kinds = set()
    stack = [tree.root]
    while stack:
        node = stack.pop()
        kinds.add(node.type)
        stack.extend(node.children)
    assert not kinds & {"type_annotation", "type_arguments", "type_parameters", "as_expression", "optional_parameter"}
    if module == "commonjs":
        assert b"\nimport " not in js and b"require('@opentelemetry/" in js and b"export " not in js
    else:
        assert b"require(" not in js and b"import {" in js
    if template == "otel.ts.j2":
        assert b"@param {() => T} fn" in js  # JSDoc types for editors
        if module == "commonjs":
            exported = re.findall(rb"^export function (\w+)", ts, re.M)  # every export of the TypeScript helper
            assert exported and js.rstrip().endswith(b"module.exports = { " + b", ".join(exported) + b" };")
    if HAS_NODE:
        path = tmp_path / ("out.cjs" if module == "commonjs" else "out.mjs")
        path.write_bytes(js)
        proc = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


# --- instrument / strip ---------------------------------------------------------------------


@pytest.mark.parametrize("app", JS_APPS)
def test_js_fixture_instrument_is_idempotent_and_strip_is_byte_exact(app, tmp_path, js_shops):
    root = tmp_path / app
    shutil.copytree(js_shops[app], root)
    before = _tree(root)
    first = instrument(root)
    assert first.changed and not first.partial
    written = _tree(root)
    prefix = "src/" if app.endswith("esm") else ""
    assert f"{prefix}otel.js" in written and f"{prefix}tracing.js" in written
    assert not any(p.endswith(".ts") for p in written)
    second = instrument(root, write=False)
    assert not second.changed, sorted(second.synthesis.changes)
    proc = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(root), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = strip(root)
    assert not result.kept
    assert _tree(root) == before


def test_require_goes_after_the_directive_prologue_and_merges_names(tmp_path):
    root = _app(tmp_path, {
        "server.js": """
            #!/usr/bin/env node
            'use strict';
            // the app
            const express = require('express');
            const app = express();
            app.get('/x', (req, res) => res.end());
            app.listen(3000);
        """,
        "services/userService.js": """
            'use strict';
            const { recordActiveSpanError } = require('../otel');
            const db = require('./db');

            class UserService {
              async find(id) {
                return db.get(id);
              }
            }
            module.exports = new UserService();
        """,
        "services/db.js": "module.exports = { get: async (id) => id };\n",
    })
    (root / "otel.js").write_text("// Generated by otelize. Do not edit: `otelize strip` removes this file.\n")
    result = instrument(root, write=False)
    server = result.synthesis.changes["server.js"][1].decode()
    assert server.startswith("#!/usr/bin/env node\n'use strict';\nrequire('./tracing');\n// the app\n")
    service = result.synthesis.changes["services/userService.js"][1].decode()
    assert "const { recordActiveSpanError, withSpan } = require('../otel');" in service
    assert service.count("require('../otel')") == 1


def test_cjs_file_in_an_esm_package_is_skipped_with_a_reason(tmp_path):
    root = _app(tmp_path, {
        "index.js": "import express from 'express';\nconst app = express();\napp.get('/', (q, s) => s.end());\napp.listen(1);\n",
        "services/legacyService.cjs": "class LegacyService {\n  async run() {\n    const x = await Promise.resolve(1);\n    return x;\n  }\n}\nmodule.exports = new LegacyService();\n",
    }, {"type": "module", "scripts": {"start": "node index.js"}})
    result = instrument(root, write=False)
    assert "services/legacyService.cjs" not in result.synthesis.changes
    assert any("CommonJS file (.cjs) in an ES-module project" in s.reason for s in result.synthesis.skips)
    assert json.loads(result.synthesis.changes["package.json"][1])["scripts"]["start"] == "node --import ./tracing.js index.js"


# --- nothing to instrument -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, "nothing to instrument: no source files"),
        ({"util.js": "const x = 1;\nmodule.exports = x;\n"}, "no Express app, no route and no service, database, cache or API-client function"),
    ],
)
def test_nothing_to_instrument_exits_5_and_writes_nothing(tmp_path, files, message):
    root = _app(tmp_path, files)
    before = _tree(root)
    proc = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(root)], capture_output=True, text=True)
    assert proc.returncode == 5
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otelize: error: ") and message in lines[0]
    assert _tree(root) == before


def test_browser_code_that_express_static_serves_is_left_alone(tmp_path):
    """public/ and static/ hold what the browser loads: wrapping a function there would add
    an import of otel.ts that the browser cannot fetch, and the page's module would fail."""
    service = """\
        async function findOrder(id) {
          const r = await fetch(`https://orders.example.com/${id}`);
          return r.json();
        }
        module.exports = { findOrder };
        """
    root = _app(tmp_path, {
        "app.js": """\
            const express = require('express');
            const { findOrder } = require('./services/orderService');
            const app = express();
            app.use(express.static('public'));
            app.get('/orders/:id', async (req, res) => res.json(await findOrder(req.params.id)));
            app.listen(3000);
            """,
        "services/orderService.js": service,
        "public/js/orderService.js": service.replace("module.exports = { findOrder };", "export { findOrder };"),
        "static/cart/service.js": service,
    })
    result = instrument(root, write=False)
    changed = set(result.synthesis.changes)
    assert "services/orderService.js" in changed
    assert not {p for p in changed if p.startswith(("public/", "static/"))}
    reasons = {s.file: s.reason for s in result.synthesis.skips}
    assert reasons["public/js/orderService.js"].startswith("browser code (public/, static/): excluded by default")
    assert "static/cart/service.js" in reasons
    (root / ".otelize.yaml").write_text("include_code: [browser]\n")
    assert "public/js/orderService.js" in instrument(root, write=False).synthesis.changes


def test_an_es_module_app_without_a_build_is_told_where_its_preload_comes_from(tmp_path):
    """No build step: the note names none (it said "the build, `None`, emits it" on proshop-v2)."""
    app = _app(tmp_path, {
        "server.js": "import express from 'express';\nconst app = express();\napp.listen(3000);\n",
    }, {"type": "module", "scripts": {"start": "node server.js"}})
    result = instrument(app, write=False)
    notes = [n for n in result.synthesis.notes if n.startswith("ES-module project:")]
    assert notes == ["ES-module project: scripts.start now preloads the SDK with `--import ./tracing.js` (otelize writes "
                     "it; no build step); static imports are loaded before the entry file's own code, so only a preload "
                     "starts tracing before express loads."]
