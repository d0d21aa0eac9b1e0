"""The before/after helper every worker test goes through.

`run_transform` writes a tiny Express + TypeScript project, runs
`otelize.api.instrument` on it in place and returns the files that changed.
Whatever the test checks, it always asserts the two properties no worker may
break (as Ruff's and OpenRewrite's test helpers do):

- every changed `.ts` file reparses with no ERROR or MISSING node;
- a second `instrument` run makes zero edits (idempotence).

`assert_transform` compares exact bytes of the files a test names.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any, Mapping

from otelize.api import InstrumentResult, instrument
from otelize.analysis.parse import parse_source

EXPRESS_VERSION = "4.22.3"
ENTRY = "src/index.ts"
ENTRY_SOURCE = "import express from 'express';\n\nconst app = express();\napp.listen(3000);\n"

# Generic results inferred from the declared return type (`return Outcome.success();` in a
# method declared `Promise<Outcome<void>>`), a method's own type parameter and `this` in the
# return type, and a type predicate: TypeScript before 4.1 cannot infer the first through the
# span's callback, so the wrapper passes the return type as the helper's type argument. Compiled
# by every toolchain case of tests/test_toolchains.py (TypeScript 3.5 to 5: no `asserts`), and
# its type arguments read in tests/test_wrap.py.
LEDGER = """\
export class Outcome<T> {
  private constructor(readonly ok: boolean, readonly value: T | undefined) {}

  static success<U>(value?: U): Outcome<U> {
    return new Outcome<U>(true, value);
  }
}

export class Ledger {
  private readonly entries: string[] = [];

  async record(entry: string): Promise<Outcome<void>> {
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
    this.entries.push(entry);
    return Outcome.success();
  }

  async first<T>(items: T[]): Promise<T | undefined> {
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
    return items[0];
  }

  add(entry: string): this {
    this.entries.push(entry);
    return this;
  }

  isEntry(value: unknown): value is string {
    return typeof value === 'string' && this.entries.includes(value);
  }
}
"""


TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "commonjs",
        "strict": True,
        "esModuleInterop": True,
        "outDir": "dist",
        "rootDir": "src",
    },
    "include": ["src"],
}


def default_package_json(**extra_deps: str) -> dict[str, Any]:
    return {
        "name": "tiny-app",
        "version": "1.0.0",
        "private": True,
        "scripts": {"build": "tsc", "start": "node dist/index.js"},
        "dependencies": {"express": EXPRESS_VERSION, **extra_deps},
        "devDependencies": {"typescript": "5.6.3"},
    }


def source(text: str | bytes) -> bytes:
    """Dedented test source: a str is dedented and loses its leading newline; bytes are taken as-is."""
    if isinstance(text, bytes):
        return text
    return textwrap.dedent(text).lstrip("\n").encode("utf-8")


def write_project(
    root: Path,
    files: Mapping[str, str | bytes],
    package_json: dict[str, Any] | bytes | None = None,
) -> dict[str, bytes]:
    """Write the project and return {path: bytes} of everything written."""
    written: dict[str, bytes] = {}
    if isinstance(package_json, bytes):
        written["package.json"] = package_json
    else:
        written["package.json"] = (json.dumps(package_json or default_package_json(), indent=2) + "\n").encode()
    written["tsconfig.json"] = (json.dumps(TSCONFIG, indent=2) + "\n").encode()
    if ".otelize.yaml" not in files:
        # these projects test how a span wraps a function: their toy functions are
        # synchronous helpers, which otelize would otherwise leave alone (tests/test_roles.py)
        written[".otelize.yaml"] = b"include_code: [pure-helpers]\n"
    if ENTRY not in files:
        written[ENTRY] = ENTRY_SOURCE.encode()
    for path, text in files.items():
        written[path] = source(text)
    for path, data in written.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return written


def snapshot_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_transform_result(
    tmp_path: Path,
    files: Mapping[str, str | bytes],
    package_json: dict[str, Any] | bytes | None = None,
) -> tuple[dict[str, bytes], InstrumentResult]:
    """Instrument a tiny project in place. Returns ({path: new bytes} of changed files, result)."""
    root = tmp_path / "app"
    root.mkdir()
    before = write_project(root, files, package_json)
    result = instrument(root)
    after = snapshot_tree(root)
    changed = {p: data for p, data in after.items() if before.get(p) != data}

    # what was written is exactly what the synthesis said it would write
    assert {p: new for p, (_, new) in result.synthesis.changes.items()} == changed

    for path, data in changed.items():
        if path.endswith((".ts", ".tsx")):
            reparsed = parse_source(path, data)
            assert reparsed.ok, f"{path} does not reparse cleanly: {reparsed.errors or reparsed.problem}\n{data.decode()}"

    again = instrument(root)
    assert again.synthesis.changes == {}, f"second run is not a no-op: {sorted(again.synthesis.changes)}"
    assert again.synthesis.reverted == []
    assert snapshot_tree(root) == after
    return changed, result


def run_transform(
    tmp_path: Path,
    files: Mapping[str, str | bytes],
    package_json: dict[str, Any] | bytes | None = None,
) -> dict[str, bytes]:
    """Instrument a tiny project; return {path: new bytes} of every changed or created file."""
    return run_transform_result(tmp_path, files, package_json)[0]


def assert_transform(
    tmp_path: Path,
    before: Mapping[str, str | bytes],
    expected_after: Mapping[str, str | bytes],
    package_json: dict[str, Any] | bytes | None = None,
) -> InstrumentResult:
    """Every path of `expected_after` ends with exactly those bytes; every other
    path of `before` stays byte-identical. Returns the first run's result."""
    changed, result = run_transform_result(tmp_path, before, package_json)
    for path, want in expected_after.items():
        got = changed.get(path, source(before[path]) if path in before else None)
        assert got is not None, f"{path} was not created"
        want_bytes = source(want)
        assert got.decode("utf-8") == want_bytes.decode("utf-8"), path
        assert got == want_bytes, path  # bytes too (line endings, BOM)
    for path in before:
        if path not in expected_after:
            assert path not in changed, f"{path} changed unexpectedly:\n{changed[path].decode()}"
    return result


def untyped(code: str | bytes) -> Any:
    """`code` with the helpers' type arguments taken out of otelize's span headers
    (`return withSpan<Promise<Order>>('X', ` -> `return withSpan('X', `), for tests about
    other things than the type argument (tests/test_wrap.py checks it)."""
    if isinstance(code, str):
        return untyped(code.encode("utf-8")).decode("utf-8")
    return re.sub(rb"\b(\w*[Ss]pan\d*)<[^(]*>\((['\"])", rb"\1(\2", code)
