"""Instrumenting never changes what the app's code means (#11 items 5 and 7, #18 "Behaviour").

Each case is a small project instrumented twice (the second run is a no-op) and then
stripped back to its original bytes; the tsc case compiles the result with the real tsc.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otelize.stripping.strip import strip
from transform import ENTRY, default_package_json, run_transform_result, snapshot_tree, source, write_project, untyped

HANDLER = "src/middleware/errors.ts"
SERVICE = "src/services/orderService.ts"


def entry(*registrations: str, imports: str = "") -> str:
    lines = ["import express from 'express';", *([imports] if imports else []), "", "const app = express();",
             *registrations, "app.listen(3000);", ""]
    return "\n".join(lines)


def instrument_and_strip(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, bytes], list]:
    changed, result = run_transform_result(tmp_path, files)
    root = tmp_path / "app"
    stripped_root = tmp_path / "original"
    write_project(stripped_root, files)
    strip(root)
    assert snapshot_tree(root) == snapshot_tree(stripped_root), "strip does not undo instrument"
    return changed, result.synthesis.skips


# --- #11.7: only real error middleware ------------------------------------------------


FACTORY = """
    import type { NextFunction, Request, Response } from 'express';

    export function validate(schema: unknown, skipMissing: boolean, whitelist: boolean, forbid: boolean) {
      return (req: Request, res: Response, next: NextFunction) => {
        Promise.resolve(schema).then(() => next(), (err) => next(err));
        void skipMissing; void whitelist; void forbid; void res; void req;
      };
    }

    export function onError(err: Error, req: Request, res: Response, next: NextFunction): void {
      res.status(500).json({ error: err.message });
    }
"""


def test_a_four_parameter_factory_is_not_an_error_handler(tmp_path: Path) -> None:
    files = {HANDLER: FACTORY,
             ENTRY: entry("app.use(validate(1, true, true, false));", "app.use(onError);",
                          imports="import { onError, validate } from './middleware/errors';")}
    changed, skips = instrument_and_strip(tmp_path, files)
    text = changed[HANDLER].decode()
    assert "recordActiveSpanError(schema)" not in text
    assert "    recordActiveSpanError(err);\n" not in text.split("export function onError")[0]
    assert "export function onError(err: Error, req: Request, res: Response, next: NextFunction): void {\n  recordActiveSpanError(err);\n" in text
    # not tagged an error handler at all (its parameters are not named like one)
    assert not [s for s in skips if s.file == HANDLER and s.symbol == "validate" and s.worker == "http"]


def test_an_error_handler_never_registered_with_use_is_left_alone(tmp_path: Path) -> None:
    files = {HANDLER: FACTORY, ENTRY: entry(imports="import { onError } from './middleware/errors';\nvoid onError;")}
    changed, skips = run_transform_result(tmp_path, files)
    assert HANDLER not in changed
    assert any(s.symbol == "onError" and "never registered" in s.reason for s in skips.synthesis.skips)


def test_inline_and_router_error_handlers_count(tmp_path: Path) -> None:
    files = {
        ENTRY: entry(
            "const router = express.Router();",
            "router.use((error: Error, req: express.Request, res: express.Response, next: express.NextFunction) => {",
            "  res.status(500).end();",
            "});",
            "app.use(router);",
        ),
    }
    changed, _ = instrument_and_strip(tmp_path, files)
    assert "=> {\n  recordActiveSpanError(error);\n  res.status(500).end();" in changed[ENTRY].decode()


# --- #11.5: directive comments keep governing their line ------------------------------


@pytest.mark.parametrize("directive", ["// @ts-ignore", "// @ts-expect-error", "// eslint-disable-next-line no-console",
                                       "// prettier-ignore", "/* istanbul ignore next */", "/* c8 ignore next */"])
def test_the_record_call_goes_above_a_directive(tmp_path: Path, directive: str) -> None:
    handler = f"""
        import type {{ NextFunction, Request, Response }} from 'express';

        export function onError(err: Error, req: Request, res: Response, next: NextFunction): void {{
          {directive}
          res.status(500).json({{ error: err.message }});
        }}
    """
    files = {HANDLER: handler, ENTRY: entry("app.use(onError);", imports="import { onError } from './middleware/errors';")}
    changed, _ = instrument_and_strip(tmp_path, files)
    assert f"  recordActiveSpanError(err);\n  {directive}\n  res.status(500)" in changed[HANDLER].decode()


def test_a_directive_on_the_brace_line_skips_instead(tmp_path: Path) -> None:
    handler = """
        import type { NextFunction, Request, Response } from 'express';

        export function onError(err: Error, req: Request, res: Response, next: NextFunction): void { // @ts-ignore
          res.status(500).json({ error: err.message });
        }

        export class OrderService {
          create(input: string): string { // @ts-expect-error
            const id: number = input;
            return String(id);
          }
        }
    """
    files = {HANDLER: handler, SERVICE: "export class OrderService {\n  create(input: string): string { // @ts-ignore\n    const x = input;\n    return x;\n  }\n}\n",
             ENTRY: entry("app.use(onError);", imports="import { onError } from './middleware/errors';")}
    changed, result = run_transform_result(tmp_path, files)
    assert HANDLER not in changed or "recordActiveSpanError(err)" not in changed[HANDLER].decode()
    assert SERVICE not in changed
    reasons: dict[tuple[str, str], list[str]] = {}
    for skip in result.synthesis.skips:
        reasons.setdefault((skip.file, skip.symbol), []).append(skip.reason)
    assert any("directive" in r for r in reasons[(HANDLER, "onError")])
    assert any("directive" in r for r in reasons[(SERVICE, "OrderService.create")])


def test_imports_never_land_under_a_directive(tmp_path: Path) -> None:
    service = """
        import legacy from './legacy';
        import { helper } from './helper';
        import { other } from './other'; // @ts-ignore
        import { more } from './more';

        export class OrderService {
          create(input: string): string {
            const id = legacy(helper(other(more(input))));
            return id;
          }
        }
    """
    files = {SERVICE: service, "src/services/legacy.ts": "export default (s: string): string => s;\n",
             "src/services/helper.ts": "export const helper = (s: string): string => s;\n",
             "src/services/other.ts": "export const other = (s: string): string => s;\n",
             "src/services/more.ts": "export const more = (s: string): string => s;\n",
             ENTRY: "// @ts-ignore\n" + entry()}
    changed, _ = instrument_and_strip(tmp_path, files)
    for path in (SERVICE, ENTRY):
        lines = changed[path].decode().splitlines()
        for i, line in enumerate(lines):
            if "@ts-ignore" in line:
                assert "otel" not in lines[i + 1] and "tracing" not in lines[i + 1], lines
    assert changed[ENTRY].startswith(b"import './tracing';\n// @ts-ignore\nimport express")


def test_a_directive_still_governs_its_line_for_tsc(tmp_path: Path) -> None:
    """The real check: tsc passes before and after (a moved directive would fail twice)."""
    if shutil.which("node") is None:
        pytest.skip("node not available")
    from nodeutil import npm_install

    helper = Path(__file__).resolve().parent / "node" / "otel-helper"
    npm_install(helper)
    handler = """
        import type { NextFunction, Request, Response } from 'express';

        export function onError(err: Error, req: Request, res: Response, next: NextFunction): void {
          // @ts-expect-error -- the status is a string on purpose
          const status: number = '500';
          res.status(status).json({ error: err.message });
        }
    """
    service = """
        export class OrderService {
          create(input: string): number {
            // @ts-expect-error -- a string is returned on purpose
            const id: number = input;
            return id;
          }
        }
    """
    express_types = """
        declare module 'express' {
          export interface Request { url: string }
          export interface Response { status(code: number): Response; json(body: unknown): void }
          export type NextFunction = (err?: unknown) => void;
          interface App { use(...handlers: unknown[]): void; listen(port: number): void }
          export default function express(): App;
        }
    """
    files = {HANDLER: handler, SERVICE: service, "src/express.d.ts": express_types,
             ENTRY: entry("app.use(onError);", imports="import { onError } from './middleware/errors';")}
    changed, _ = run_transform_result(tmp_path, files)
    assert "recordActiveSpanError(err);\n  // @ts-expect-error" in changed[HANDLER].decode()
    root = tmp_path / "app"
    (root / "src" / "tracing.ts").unlink()  # (its own compile test lives with the SDK bootstrap)
    (root / "src" / "index.ts").write_bytes(source(files[ENTRY]))
    (root / "node_modules").symlink_to(helper / "node_modules", target_is_directory=True)
    config = json.loads((root / "tsconfig.json").read_text())
    config["compilerOptions"] |= {"noEmit": True, "types": ["node"]}
    (root / "tsconfig.json").write_text(json.dumps(config))
    proc = subprocess.run(["node", str(helper / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(root)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- #18: bindings ----------------------------------------------------------------------


def test_a_file_that_binds_a_helper_name_imports_it_under_another(tmp_path: Path) -> None:
    service = """
        const otelizeWithSpan = 'taken';

        export class OrderService {
          run(withSpan: (n: number) => number, n: number): number {
            const twice = withSpan(n) * 2;
            return twice;
          }

          label(): string {
            const value = otelizeWithSpan.toUpperCase();
            return value;
          }
        }
    """
    changed, _ = instrument_and_strip(tmp_path, {SERVICE: service})
    text = changed[SERVICE].decode()
    assert "import { withSpan as otelizeWithSpan2 } from '../otel';" in text
    assert "return otelizeWithSpan2('OrderService.run'" in untyped(text) and "return withSpan(" not in untyped(text)


def test_a_parameter_redeclared_with_var_is_skipped(tmp_path: Path) -> None:
    service = """
        export function withDefault(a: number | undefined): number {
          // eslint-disable-next-line no-var
          var a: number | undefined = a || 100;
          return a;
        }

        export function innerVarIsFine(a: number): number {
          const f = function () { var a = 1; return a; };
          return a + f();
        }
    """
    changed, result = run_transform_result(tmp_path, {SERVICE: service, ENTRY: entry(
        imports="import { withDefault, innerVarIsFine } from './services/orderService';\nvoid withDefault; void innerVarIsFine;")})
    reasons = {s.symbol: s.reason for s in result.synthesis.skips if s.file == SERVICE}
    assert reasons["withDefault"] == "parameter `a` is redeclared with `var` in the body"
    assert "innerVarIsFine" not in reasons
    assert "return withSpan('innerVarIsFine'" in untyped(changed[SERVICE].decode())


def test_default_package_json_is_express() -> None:  # guards the fixtures above
    assert "express" in default_package_json()["dependencies"]
