"""otelize and a formatter in the same pre-commit run: the real Prettier (npm), run
over the instrumented sample app, must not make otelize want to change anything,
and the same formatter configuration again must not change anything either (no
fight between the two hooks). Unit tests of the layout comparison itself sit at
the end and need no Node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from otelize.api import instrument
from otelize.synthesize.layout import same_code
from otelize.stripping.strip import strip
from otelize.synthesize.unwrap import same_header

REPO_ROOT = Path(__file__).resolve().parent.parent
PRETTIER = "3.3.3"
STYLES = {
    "prettier defaults": [],
    "no semicolons, single quotes, bare arrow params, no trailing commas":
        ["--no-semi", "--single-quote", "--arrow-parens", "avoid", "--trailing-comma", "none"],
    "tabs, 120 columns": ["--use-tabs", "--print-width", "120"],
}


@pytest.fixture(scope="module")
def prettier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    from nodeutil import npm_install_cached

    tool = tmp_path_factory.mktemp("prettier")
    (tool / "package.json").write_text(f'{{"name": "fmt", "version": "1.0.0", "private": true, '
                                       f'"dependencies": {{"prettier": "{PRETTIER}"}}}}\n')
    npm_install_cached(tool)
    return tool / "node_modules" / "prettier" / "bin" / "prettier.cjs"


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def fmt(prettier: Path, app: Path, args: list[str]) -> None:
    subprocess.run(["node", str(prettier), "--write", *args, "src/**/*.ts"], cwd=app, check=True, capture_output=True)


@pytest.mark.node
@pytest.mark.parametrize("style", sorted(STYLES))
def test_otelize_and_prettier_agree(prettier: Path, tmp_path: Path, style: str) -> None:
    app = tmp_path / "shop-api"
    shutil.copytree(REPO_ROOT / "sample-app", app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    fmt(prettier, app, STYLES[style])  # the team's code is formatted to start with
    pristine = tree(app)
    first = instrument(app)
    assert first.synthesis.changes
    fmt(prettier, app, STYLES[style])  # the formatter hook runs after the otelize hook
    formatted = tree(app)
    again = instrument(app)
    assert again.synthesis.changes == {}, sorted(again.synthesis.changes)  # otelize accepts the formatted output
    assert not [s for s in again.synthesis.skips if "edited by hand" in s.reason]
    assert {s.name for s in again.synthesis.spans} == {s.name for s in first.synthesis.spans}
    fmt(prettier, app, STYLES[style])
    assert tree(app) == formatted  # and the formatter has nothing left to do either

    # strip undoes it all: re-flowed wrappers are unwrapped by structure, not kept
    result = strip(app)
    assert result.kept == [], result.kept
    stripped = tree(app)
    assert sorted(stripped) == sorted(pristine) and stripped["package.json"] == pristine["package.json"]
    for path, data in pristine.items():
        if path.endswith(".ts"):
            # the same code as before; only where the formatter had re-flowed a wrapped body
            # may its layout differ (Prettier keeps an object it once broke over lines broken)
            assert same_code(path, stripped[path], data), path
            assert b"withSpan(" not in stripped[path] and b"withClientSpan(" not in stripped[path], path


# --- the comparison itself ---------------------------------------------------------------


def test_same_code_ignores_layout_only() -> None:
    ours = b"import { a } from 'x';\nexport function f(v: number): number {\n  return g((v) => v + 1, 'it\\'s');\n}\n"
    formatted = b'import { a } from "x"\nexport function f(v: number): number {\n  return (\n    g(v => v + 1, "it\'s",)\n  )\n}\n'
    assert same_code("a.ts", ours, formatted)
    # any change of substance is a change
    for old, new in ((b"v + 1", b"v + 2"), (b"'it\\'s'", b"'its'"), (b"(v) => v + 1", b"(w) => w + 1"), (b"{ a }", b"{ b }")):
        assert old in ours
        assert not same_code("a.ts", ours, ours.replace(old, new)), new
    # a file that no longer parses is never the same
    assert not same_code("a.ts", ours, ours.replace(b"v + 1", b"v +"))


def test_same_code_keeps_precedence_and_comments() -> None:
    assert not same_code("a.ts", b"const x = (a + b) * c;\n", b"const x = a + b * c;\n")
    assert not same_code("a.ts", b"// one\nconst x = 1;\n", b"// two\nconst x = 1;\n")
    assert same_code("a.ts", b"  // one\nconst x = 1;\n", b"// one\nconst x = 1\n")


def test_same_header_ignores_layout_only() -> None:
    ours = b"return withSpan('A.b', { 'code.file.path': 'src/a.ts', 'code.function.name': 'A.b' }, async () => {"
    reflowed = b'return withSpan(\n  "A.b",\n  {\n    "code.file.path": "src/a.ts",\n    "code.function.name": "A.b",\n  },\n  async () => {'
    assert same_header(ours, reflowed)
    assert not same_header(ours, reflowed.replace(b'"A.b",', b'"A.c",'))
    assert not same_header(ours, reflowed.replace(b"async ", b""))
