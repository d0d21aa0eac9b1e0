"""tests/js_shop.py: the CommonJS shop derived from the ES-module one, and the apps made whole.

The runtime side (the derived app answers the contract, gets its spans, passes its
tests) is tests/test_e2e_traces_js.py; here, each conversion rule on its own, the forms
it refuses, and the derived shop itself.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from js_shop import APPS, CJS_LAYOUT, CONTRACT_TEST, ESM_APP, FIXTURES, Port, Unsupported, materialise, to_commonjs


def _cjs(code: str, port: Port | None = None, path: str = "services/a.js", more: dict[str, Port] | None = None) -> str:
    layout = {path: port or Port("src/services/a.js"), "lib/db.js": Port("src/utils/db.js"),
              "services/single.js": Port("src/services/single.js", value="single"), **(more or {})}
    return to_commonjs(textwrap.dedent(code).lstrip().encode(), path, layout).decode()


def _dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip()


# --- the rules ------------------------------------------------------------------------------


def test_imports_become_requires_through_the_layout():
    assert _cjs("""
        import express from 'express';
        import { db, Db as Database } from '../utils/db.js';
        import { single } from './single.js';
        import 'dotenv/config';
        const app = express();
    """) == _dedent("""
        'use strict';

        const express = require('express');
        const { db, Db: Database } = require('../lib/db');
        const single = require('./single');
        require('dotenv/config');
        const app = express();
    """)


def test_names_from_a_package_are_read_off_it_at_each_use():
    code = """
        import { Router } from 'express';
        const a = Router();
        const b = Router({ mergeParams: true });
        a.Router = 1;
    """
    assert _cjs(code) == _dedent("""
        'use strict';

        const express = require('express');
        const a = express.Router();
        const b = express.Router({ mergeParams: true });
        a.Router = 1;
    """)
    assert _cjs(code, Port("src/services/a.js", inline_requires=("express",))) == (
        "'use strict';\n\n\nconst a = require('express').Router();\n"
        "const b = require('express').Router({ mergeParams: true });\na.Router = 1;\n"
    )


def test_exports_are_gathered_into_module_exports_in_source_order():
    assert _cjs("""
        export const LIMIT = 5;
        export function f(x) {
            return x;
        }
        export class C {
        }
        const d = 1;
        export { d };
    """) == _dedent("""
        'use strict';

        const LIMIT = 5;
        function f(x) {
            return x;
        }
        class C {
        }
        const d = 1;

        module.exports = { LIMIT, f, C, d };
    """)
    assert _cjs("const router = 1;\nexport default router;\n") == "'use strict';\n\nconst router = 1;\n\nmodule.exports = router;\n"


def test_private_members_become_underscored():
    assert _cjs("""
        class C {
            #n = 0;
            async #load(id) {
                return this.#n + id;
            }
            get() {
                return this.#load(1);
            }
        }
    """) == _dedent("""
        'use strict';

        class C {
            _n = 0;
            async _load(id) {
                return this._n + id;
            }
            get() {
                return this._load(1);
            }
        }
    """)


def test_a_value_module_exports_its_value_only():
    code = """
        export class S {
        }
        export const s = new S(1);
    """
    assert _cjs(code, Port("src/services/a.js", value="s"), path="services/s.js") == _dedent("""
        'use strict';

        class S {
        }
        // The module is the service instance: `const s = require('./s')`.
        module.exports = new S(1);
    """)
    # a value not exported in place (app.js: `const app = express()`) is exported at the end
    assert _cjs("const app = 1;\nexport { app };\n", Port("src/services/a.js", value="app")) == (
        "'use strict';\n\nconst app = 1;\n\nmodule.exports = app;\n"
    )


def test_dot_exports():
    assert _cjs("""
        export function parse(body) {
            return body;
        }
        export class S {
        }
        export const s = new S();
    """, Port("src/services/a.js", dot_exports=True)) == _dedent("""
        'use strict';

        exports.parse = function (body) {
            return body;
        };
        class S {
        }
        const s = new S();

        exports.S = S;
        exports.s = s;
    """)


def test_prototype_class():
    assert _cjs("""
        export class Inv {
            db;
            constructor(db) {
                this.db = db;
            }
            async get(id) {
                return this.#load(id);
            }
            count() {
                return 1;
            }
            async #load(id) {
                return this.db.find(id);
            }
        }
        export const inv = new Inv(1);
    """, Port("src/services/a.js", prototype="Inv")) == _dedent("""
        'use strict';

        // A constructor function with prototype methods (the pre-class style).
        function Inv(db) {
            this.db = db;
        }

        Inv.prototype.get = async function (id) {
            return this._load(id);
        };

        Inv.prototype.count = function () {
            return 1;
        };

        Inv.prototype._load = async function (id) {
            return this.db.find(id);
        };
        const inv = new Inv(1);

        module.exports = { Inv, inv };
    """)


def test_until_keeps_the_statements_before_the_marker():
    assert _cjs("""
        import express from 'express';
        const app = express();
        app.use(express.json());
        const port = 3000;
        app.listen(port);
        export { app };
    """, Port("src/index.js", value="app", until="const port = "), path="app.js") == _dedent("""
        'use strict';

        const express = require('express');
        const app = express();
        app.use(express.json());

        module.exports = app;
    """)


@pytest.mark.parametrize(
    "code, port, message",
    [
        ("import * as fs from 'fs';\n", None, "namespace_import"),
        ("export * from './x.js';\n", None, r"export \* from"),
        ("export default function () {}\n", None, "export default function"),
        ("import { other } from './single.js';\n", None, "exports only `single`"),
        ("import { x } from './nowhere.js';\n", None, "the layout maps 0 times"),
        ("import a, { b } from '../utils/db.js';\n", None, "a default and named imports"),
        ("import { Router } from 'express';\nconst o = { Router };\n", None, "shorthand property"),
        ("class C {\n    #a() {}\n    _a() {}\n}\n", None, "would meet an existing name"),
        ("export class C extends B {\n}\n", Port("src/services/a.js", prototype="C"), "extends a class"),
        ("export class C {\n    static s() {}\n}\n", Port("src/services/a.js", prototype="C"), "in class C"),
        ("export class C {\n    m() {\n        return `a\nb`;\n    }\n}\n", Port("src/services/a.js", prototype="C"), "multi-line template"),
        ("export function f() {}\nf();\n", Port("src/services/a.js", dot_exports=True), "leaves it unbound"),
        ("const a = 1;\n", Port("src/services/a.js", until="const port"), "no top-level statement"),
        ("const a = 1;\nexport default a;\nexport const b = 2;\n", None, "a default export and named exports"),
        ("const a = 1; export default a;\n", None, "shares its line"),
    ],
)
def test_unsupported_forms_are_refused(code, port, message):
    with pytest.raises(Unsupported, match=message):
        _cjs(code, port)


# --- the shop -------------------------------------------------------------------------------


def test_every_es_module_file_is_ported_once_and_nothing_is_kept_twice():
    sources = sorted(p.relative_to(ESM_APP).as_posix() for p in (ESM_APP / "src").rglob("*.js"))
    assert sorted(port.src for port in CJS_LAYOUT.values()) == sources
    hand_written = sorted(
        p.relative_to(FIXTURES / "js-shop-cjs").as_posix() for p in (FIXTURES / "js-shop-cjs").rglob("*")
        if p.is_file() and "node_modules" not in p.parts
    )
    assert hand_written == ["bin/www", "package-lock.json", "package.json"]
    for app in APPS:
        assert not list((FIXTURES / app).glob("test/*")), f"{app}: the contract test is {CONTRACT_TEST}"


def test_the_derived_shop_shows_the_commonjs_idioms_and_is_deterministic(tmp_path):
    one = materialise("js-shop-cjs", tmp_path / "one")
    two = materialise("js-shop-cjs", tmp_path / "two")
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert files == sorted(["bin/www", "package-lock.json", "package.json", "test/api.test.mjs", *CJS_LAYOUT])
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    assert (one / "test/api.test.mjs").read_bytes() == CONTRACT_TEST.read_bytes()
    text = {f: (one / f).read_text() for f in CJS_LAYOUT}
    for f, body in text.items():
        assert body.startswith("'use strict';\n\n") and "\nimport " not in body and "\nexport " not in body, f
        assert "#" not in body.replace("#/", ""), f  # no private member is left (as `#` is in no string here)
    assert "InventoryService.prototype.reserveStock = async function (productId, quantity) {" in text["services/inventoryService.js"]
    assert "\nmodule.exports = new ProductService(db, cache);\n" in text["services/productService.js"]
    assert "const productService = require('./productService');" in text["services/orderService.js"]
    assert "const productService = require('../services/productService');" in text["routes/products.js"]
    assert "\nexports.parseCreateUserInput = function (body) {" in text["services/userService.js"]
    assert "const productsRouter = require('express').Router();" in text["routes/products.js"]
    assert "const router = express.Router();" in text["routes/orders.js"]
    assert text["app.js"].endswith("app.use(errorHandler);\n\nmodule.exports = app;\n") and "listen" not in text["app.js"]
    assert "const { db } = require('../lib/database');" in text["services/inventoryService.js"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node not available")
def test_every_derived_file_loads_as_commonjs(tmp_path):
    app = materialise("js-shop-cjs", tmp_path / "app")
    for rel in sorted(CJS_LAYOUT):
        proc = subprocess.run(["node", "--check", str(app / rel)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{rel}: {proc.stderr}"
    # the modules that need no package load and export what their importers destructure
    probe = (
        "const e = require('./errors'); const i = require('./services/inventoryService');"
        "const p = require('./services/productService'); const u = require('./services/userService');"
        "console.log([typeof e.NotFoundError, typeof i.InventoryService.prototype.reserveStock,"
        " typeof p.getProduct, typeof u.parseCreateUserInput, typeof u.userService.getUser].join(' '))"
    )
    proc = subprocess.run(["node", "-e", probe], cwd=app, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["function"] * 5


def test_materialise_refuses_an_unknown_app_and_a_second_contract_test(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown JavaScript shop"):
        materialise("js-shop-umd", tmp_path / "x")
    fixtures = tmp_path / "fixtures"
    shutil.copytree(FIXTURES / "js-shop-esm", fixtures / "js-shop-esm", ignore=shutil.ignore_patterns("node_modules"))
    (fixtures / "js-shop-esm" / "test").mkdir()
    (fixtures / "js-shop-esm" / "test" / "api.test.mjs").write_text("// a second copy\n")
    monkeypatch.setattr("js_shop.FIXTURES", fixtures)
    with pytest.raises(FileExistsError, match="the contract test is"):
        materialise("js-shop-esm", tmp_path / "y")
