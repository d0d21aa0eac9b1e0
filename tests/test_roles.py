"""Per-function roles (otelize.classify.roles.assign_roles), on annotated fixtures.

Each folder of tests/fixtures/roles/ is a small Express project. On the line
before a function:

- `// expect-span: INTERNAL` or `// expect-span: CLIENT`: it gets a span of that kind;
- `// expect-skip: <text>`: it gets no span, and its skip reason contains <text>.

Every planned span must be annotated, so a span nobody asked for fails the test
(reported apart from the missed ones, Semgrep style). The other tests here build
their projects inline: code excluded by default, span names, attributes, markers.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from otelize.api import analyze, instrument, synthesize_plan
from otelize.report.instrument import to_json

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "roles"
PROJECTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "package.json").is_file())
ANNOTATION = re.compile(r"^\s*//\s*expect-(span|skip):\s*(.+?)\s*$")


def _annotations(root: Path, analysis) -> tuple[dict, list[str]]:  # noqa: ANN001
    expected: dict[tuple[str, str], tuple[str, str]] = {}
    errors = []
    for path in analysis.project.files:
        lines = (root / path).read_text("utf-8").splitlines()
        for i, line in enumerate(lines, start=1):
            m = ANNOTATION.match(line)
            if m is None:
                continue
            fn = next((f for f in analysis.facts[path].functions if f.line == i + 1 and f.kind != "signature"), None)
            if fn is None:
                errors.append(f"{path}:{i}: annotation not followed by a function")
                continue
            expected[(path, fn.qualname)] = (m.group(1), m.group(2))
    return expected, errors


@pytest.mark.parametrize("project", PROJECTS)
def test_roles_match_annotations(project: str) -> None:
    root = FIXTURES / project
    a = analyze(root)
    syn = synthesize_plan(a)
    expected, errors = _annotations(root, a)
    assert not errors, errors
    by_line = {(f.line, p): f.qualname for p, facts in a.facts.items() for f in facts.functions if f.kind != "signature"}
    spans = {(s.file, by_line[(s.line, s.file)]): s.kind for s in syn.spans if s.kind in ("INTERNAL", "CLIENT")}
    skips = {(k.file, k.symbol): k.reason for k in syn.skips}
    missed, unexpected = [], []
    for key, (what, value) in sorted(expected.items()):
        if what == "span" and spans.get(key) != value:
            missed.append(f"{key[0]}::{key[1]}: want a {value} span, got {spans.get(key) or 'none (' + skips.get(key, '?') + ')'}")
        if what == "skip" and (key in spans or value not in skips.get(key, "")):
            missed.append(f"{key[0]}::{key[1]}: want skipped for {value!r}, got {spans.get(key) or skips.get(key)}")
    for key, kind in sorted(spans.items()):
        if key not in expected:
            unexpected.append(f"{key[0]}::{key[1]}: {kind} span")
    assert not missed and not unexpected, "\nMISSED:\n" + "\n".join(missed) + "\nUNEXPECTED:\n" + "\n".join(unexpected)


# --- code excluded by default --------------------------------------------------------


def _project(root: Path, files: dict[str, str], deps: dict[str, str] | None = None) -> Path:
    pkg = {"name": "x", "version": "1.0.0", "dependencies": {"express": "4.21.2", **(deps or {})}}
    files = {"package.json": json.dumps(pkg), "src/index.ts": "import express from 'express';\nconst app = express();\napp.listen(3000);\n", **files}
    for rel, body in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(body).lstrip("\n"), "utf-8")
    return root


SERVICE = """
export class {name} {{
  async run(): Promise<number> {{
    return await Promise.resolve(1);
  }}
}}
"""

EXCLUDED = {
    "tests/fakes/FakeUserService.ts": "test code",
    "src/users/__tests__/userService.ts": "test code",
    "src/users/__mocks__/MockService.ts": "test code",
    "src/users/users.service.spec.ts": "test code",
    "src/infra/migrations/InitService.ts": "a migration",
    "src/infra/seeders/SeedService.ts": "a seeder",
    "scripts/BackfillService.ts": "a script",
    "src/decorators/LogService.ts": "decorator factories",
    "web/src/services/ApiService.ts": "another package",
}


def test_test_code_migrations_seeders_scripts_and_other_packages_are_excluded_with_a_report_line(tmp_path: Path) -> None:
    files = {path: SERVICE.format(name=Path(path).stem.split(".")[0].title().replace("-", "") or "S") for path in EXCLUDED}
    files["web/package.json"] = '{"name": "web"}'
    files["src/users/UserService.ts"] = SERVICE.format(name="UserService")
    root = _project(tmp_path / "app", files)
    result = instrument(root, write=False)
    spanned = {s.file for s in result.synthesis.spans}
    assert spanned == {"src/users/UserService.ts"}
    lines = {k.file: k.reason for k in result.synthesis.skips if k.symbol == "<file>"}
    for path, reason in EXCLUDED.items():
        assert reason in lines[path] and "excluded by default" in lines[path], path


def test_include_code_brings_test_code_back(tmp_path: Path) -> None:
    root = _project(tmp_path / "app", {
        "tests/fakes/FakeUserService.ts": SERVICE.format(name="FakeUserService"),
        "src/infra/migrations/InitService.ts": SERVICE.format(name="InitService"),
        ".otelize.yaml": "include_code: [tests]\n",
    })
    spanned = {s.file for s in instrument(root, write=False).synthesis.spans}
    assert spanned == {"tests/fakes/FakeUserService.ts"}


def test_unknown_include_code_is_a_one_line_error(tmp_path: Path) -> None:
    from otelize.errors import BadInput

    root = _project(tmp_path / "app", {".otelize.yaml": "include_code: [test]\n"})
    with pytest.raises(BadInput, match=r"include_code.test`: unknown kind of code \(did you mean `tests`\?\)"):
        analyze(root)


def test_module_load_calls_and_decorator_factories_get_no_span(tmp_path: Path) -> None:
    root = _project(tmp_path / "app", {
        "src/services/workers.ts": """
            export async function defineWorkers(): Promise<void> {
              await Promise.resolve();
            }

            export function Cached(ttl: number) {
              return function (target: object, key: string): void {
                Reflect.set(target, key, ttl);
              };
            }

            export async function doWork(): Promise<number> {
              return await Promise.resolve(2);
            }

            defineWorkers();
        """,
    })
    result = instrument(root, write=False)
    assert {s.name for s in result.synthesis.spans} == {"doWork"}
    reasons = {k.symbol: k.reason for k in result.synthesis.skips}
    assert reasons["defineWorkers"] == "called at module load (startup code)"
    assert reasons["Cached"] == "decorator factory (runs when the class is defined)"


def test_a_config_folder_function_a_route_handler_reaches_is_request_time_code(tmp_path: Path) -> None:
    """config/ is startup code (connection setup, env parsing, settings fetched at boot), except
    an asynchronous function a route handler reaches: it runs per request (an OAuth token
    revocation kept in config/, called by the account controller)."""
    root = _project(tmp_path / "app", {
        "src/config/oauth.ts": """
            export async function revokeTokens(token: string): Promise<void> {
              await fetch('https://auth.example.com/revoke', { method: 'POST', body: token });
            }

            export async function loadRemoteSettings(): Promise<unknown> {
              const res = await fetch('https://config.example.com/settings');
              return res.json();
            }
        """,
        "src/controllers/account.ts": """
            import { Request, Response } from 'express';
            import { revokeTokens } from '../config/oauth';

            export async function deleteAccount(req: Request, res: Response): Promise<void> {
              await revokeTokens(String(req.query.token));
              res.sendStatus(204);
            }
        """,
        "src/index.ts": """
            import express from 'express';
            import { loadRemoteSettings } from './config/oauth';
            import { deleteAccount } from './controllers/account';

            const app = express();
            app.post('/account/delete', deleteAccount);

            async function main(): Promise<void> {
              await loadRemoteSettings();
              app.listen(3000);
            }
            main();
        """,
    })
    result = instrument(root, write=False)
    assert {(s.file, s.name) for s in result.synthesis.spans} == {("src/config/oauth.ts", "revokeTokens")}
    reasons = {k.symbol: k.reason for k in result.synthesis.skips if k.file == "src/config/oauth.ts"}
    assert reasons == {"loadRemoteSettings": "startup code (connect/init/setup/listen, factories, configuration)"}


# --- names -------------------------------------------------------------------------


def test_span_names_are_unique_per_app_and_stable(tmp_path: Path) -> None:
    root = _project(tmp_path / "app", {
        "src/Mooc/application/CourseCreator.ts": SERVICE.format(name="CourseCreator"),
        "src/Backoffice/application/CourseCreator.ts": SERVICE.format(name="CourseCreator"),
        "src/services/a.ts": "export async function load(): Promise<number> { return await Promise.resolve(1); }\n",
        "src/services/b.ts": "export async function load(): Promise<number> { return await Promise.resolve(2); }\n",
    })
    first = instrument(root, write=False).synthesis
    names = sorted(s.name for s in first.spans)
    assert names == ["Backoffice.application.CourseCreator.run", "Mooc.application.CourseCreator.run", "a.load", "b.load"]
    # code.function.name stays the function's own name
    assert {dict(s.attributes)["code.function.name"] for s in first.spans} == {"CourseCreator.run", "load"}
    instrument(root)
    assert instrument(root, write=False).synthesis.changes == {}  # a second run makes no edits


# --- attributes ----------------------------------------------------------------------


def test_db_system_comes_from_the_driver_the_app_depends_on(tmp_path: Path) -> None:
    from otelize.analysis.records import FileFacts
    from otelize.workers.database import db_system

    project = analyze(_project(tmp_path / "app", {}, {"mysql2": "3.11.4"})).project
    # an in-house wrapper rule has no import table of its own: the one driver still decides
    assert db_system(FileFacts("src/db/x.ts"), {"db_system_default": "other_sql"}, project) == "mysql"
    assert db_system(FileFacts("src/db/x.ts"), {"db_system_reached": "redis"}, None) == "redis"


def test_db_operation_name_only_from_what_the_body_names(tmp_path: Path) -> None:
    root = _project(tmp_path / "app", {
        "src/repositories/sessionRepository.ts": """
            declare const client: { hset(k: string, v: string): Promise<void>; send(x: string): Promise<string> };

            export class SessionRepository {
              async save(id: string, data: string): Promise<void> {
                await client.hset(id, data);
              }

              async createToken(id: string): Promise<string> {
                return client.send(id);
              }
            }
        """,
    })
    spans = {s.name: dict(s.attributes) for s in instrument(root, write=False).synthesis.spans}
    assert spans["SessionRepository.save"]["db.operation.name"] == "HSET"
    assert "db.operation.name" not in spans["SessionRepository.createToken"]  # no guess from the name


# --- markers -------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "generated"), [
    ("// Code generated by protoc-gen-ts. DO NOT EDIT.\n", True),
    ("/**\n * @generated by the schema compiler\n */\n", True),
    ("// Please do not edit this list without asking the payments team.\n", False),
    ("// TODO: DO NOT EDIT the constants below by hand\n", False),
])
def test_do_not_edit_marker_is_what_generators_write_at_the_top(head: str, generated: bool) -> None:
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source

    markers = extract(parse_source("a.ts", (head + "export const a = 1;\n").encode())).markers
    assert ("generated" in markers) is generated


def test_a_marker_below_the_code_does_not_drop_the_file() -> None:
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source

    src = b"export const a = 1;\n// Code generated by x. DO NOT EDIT.\n"
    assert extract(parse_source("a.ts", src)).markers == []


# --- the building blocks -----------------------------------------------------------


def test_type_only_imports_carry_no_weight() -> None:
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source
    from otelize.analysis.typeuse import value_imports

    src = b"""import { NativeError } from 'mongoose';
import type { Pool } from 'pg';
import { Container } from 'typedi';
import * as db from 'mysql2';
export function f(err: NativeError, p: Pool, c: db.Connection): unknown { return Container.get('x') as unknown; }
"""
    pf = parse_source("a.ts", src)
    assert [i.module for i in value_imports(extract(pf), pf)] == ["typedi"]


def test_a_binding_spelled_only_in_strings_comments_properties_or_longer_names_is_no_value_use() -> None:
    """typeuse finds a binding's uses where the bytes spell its name: only an identifier
    of exactly that name, outside a type position, is a value use."""
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source
    from otelize.analysis.typeuse import value_imports

    src = b"""import { db } from 'mysql2';
import { cache } from 'ioredis';
import { Pool } from 'pg';
// db is not used here
const label = 'db';
const o = { db: 1, dbx: 2 };
const dbx = o.db + o.dbx;
type T = Pool;
export function f(p: Pool): unknown { return `${label} db` + (cache as unknown as string); }
"""
    pf = parse_source("a.ts", src)
    assert [i.module for i in value_imports(extract(pf), pf)] == ["ioredis"]


def test_instrumented_libraries_cover_orms_only_over_an_instrumented_driver() -> None:
    from otelize.classify.libraries import instrumented_libraries

    assert instrumented_libraries({"dependencies": {"sequelize": "6", "mysql2": "3"}}) == {"sequelize", "mysql2"}
    assert instrumented_libraries({"dependencies": {"typeorm": "0.3", "better-sqlite3": "11"}}) == set()
    assert instrumented_libraries({"dependencies": {"@prisma/client": "5", "axios": "1"}}) == {"axios"}


def test_an_await_inside_the_span_wrapper_counts_as_the_function_s_own() -> None:
    """An instrumented body's work is in the wrapper's arrow: its awaits are the function's
    own; the same arrow passed to any other function is a function of its own."""
    from otelize.analysis.facts import extract
    from otelize.analysis.parse import parse_source

    def own_await(callee: str) -> bool:
        src = (f"import {{ withSpan }} from './otel';\nconst other = withSpan;\n"
               f"export class A {{\n  m() {{\n    return {callee}('A.m', {{}}, async (span) => {{\n"
               f"      await this.g();\n    }});\n  }}\n  async g() {{}}\n}}\n").encode()
        pf = parse_source("a.ts", src)
        facts = extract(pf)
        m = next(fn for fn in facts.functions if fn.qualname == "A.m")
        return facts.fn_trees[m.start].own_await

    assert own_await("withSpan")
    assert not own_await("other")
