"""`otelize strip`: removes exactly what otelize added, byte for byte.

- strip(instrument(x)) == x for every file of the sample-app and of every
  shape fixture (whole trees: package.json, the deleted generated files);
- instrumentation edited by hand is left alone and reported, the rest is stripped;
- manual spans are never touched;
- the CLI's exit codes;
- a hypothesis property over generated TypeScript function shapes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otelize.api import instrument
from otelize.analysis.parse import parse_source
from otelize.stripping.strip import HELPER_STILL_USED, strip
from otelize.synthesize.wrap import HELPERS, literal_spans
from test_shapes import CASES, prepare, tree

SAMPLE_APP = Path(__file__).resolve().parent.parent / "sample-app"
IGNORE = shutil.ignore_patterns("node_modules", "dist", ".git")


def sample_app_copy(dest: Path) -> Path:
    shutil.copytree(SAMPLE_APP, dest, ignore=IGNORE)
    return dest


def assert_round_trip(root: Path) -> None:
    before = tree(root)
    result = instrument(root)
    assert result.synthesis.changes, "nothing was instrumented"
    instrumented = tree(root)
    assert instrumented != before
    stripped = strip(root)
    assert stripped.kept == [], stripped.kept
    after = tree(root)
    assert sorted(after) == sorted(before), "files added or left behind"
    for path in before:
        assert after[path] == before[path], path
    # and stripping again is a no-op
    assert not strip(root, write=False).changed


@pytest.mark.parametrize("case", CASES)
def test_strip_of_instrument_is_identity_for_every_fixture(tmp_path: Path, case: str) -> None:
    assert_round_trip(prepare(case, tmp_path / case))


def test_strip_of_instrument_is_identity_for_the_sample_app(tmp_path: Path) -> None:
    assert_round_trip(sample_app_copy(tmp_path / "shop-api"))


# --- hand edits and manual code ----------------------------------------------------------


def _instrumented(tmp_path: Path, case: str = "functions") -> tuple[Path, dict[str, bytes]]:
    root = prepare(case, tmp_path / case)
    before = tree(root)
    instrument(root)
    return root, before


FUNCTIONS = "src/services/functions.ts"
EDITED = "instrumentation was edited or re-formatted since; left in place"
_WRAPPER = re.compile(rb"return withSpan(?:<[^(]*>)?\(")  # with the function's return type as type argument, or none
RESHAPED = "otelize wrapper edited by hand (no longer its body's only statement)"


def _settled_and_stripped(root: Path, before: dict[str, bytes], unwanted: str, context: str = "") -> None:
    """otelize takes what is in `root` as its own: a second run makes no edit and reports no
    skip whose reason holds `unwanted`, and strip keeps nothing and gives back `before`."""
    again = instrument(root, write=False)
    assert again.synthesis.changes == {}, context
    assert not [s for s in again.synthesis.skips if unwanted in s.reason], context
    result = strip(root)
    assert result.kept == [], context
    assert tree(root) == before, context


def _edit(root: Path, *replacements: tuple[bytes, bytes]) -> bytes:
    path = root / FUNCTIONS
    data = path.read_bytes()
    for old, new in replacements:
        assert data.count(old) >= 1, old
        data = data.replace(old, new, 1)
    path.write_bytes(data)
    return data


def test_hand_edited_wrappers_are_kept_and_reported(tmp_path: Path) -> None:
    root, before = _instrumented(tmp_path)
    _edit(
        root,
        # a line inside the wrapped body re-indented by hand: no longer what otelize wrote
        (b"    let sum = 0;\n", b"  let sum = 0;\n"),
        # a statement added after the wrapper: the wrapper is no longer the whole body
        (b"    return prices;\n  });\n", b"    return prices;\n  });\n  console.log('after');\n"),
    )
    result = strip(root)
    kept = {(k.file, k.symbol): k.reason for k in result.kept}
    assert kept[(FUNCTIONS, "totalOf")] == EDITED
    assert kept[(FUNCTIONS, "fetchPrices")] == RESHAPED
    assert kept[(FUNCTIONS, "'../otel'")] == HELPER_STILL_USED

    after = (root / FUNCTIONS).read_bytes()
    assert b"  let sum = 0;\n" in after and b"console.log('after');" in after
    assert len(_WRAPPER.findall(after)) == 2  # only the two edited wrappers are left
    assert b"return withSpan<number>('priceWithTax'" not in after and b"return withSpan<Promise<Order>>('loadOrder'" not in after
    original = before[FUNCTIONS]
    tail = original[original.index(b"// expect: wrap\nexport function describe") :]
    assert after.endswith(tail)  # the functions after the edited ones are back byte for byte
    # the kept wrappers still compile: their import, the helper module and its API package stay
    assert b"import { withSpan } from '../otel';" in after
    assert (root / "src/otel.ts").is_file() and not (root / "src/tracing.ts").exists()
    deps = json.loads((root / "package.json").read_bytes())["dependencies"]
    assert sorted(deps) == ["@opentelemetry/api", "express"]
    for rel, data_before in before.items():
        if rel not in (FUNCTIONS, "package.json"):
            assert (root / rel).read_bytes() == data_before, rel


def test_a_package_the_user_declared_at_otelize_s_own_version_survives_the_strip(tmp_path: Path) -> None:
    # The user already uses @opentelemetry/api 1.9.0 (the pinned version) for manual spans:
    # instrument leaves it alone, so strip must too (tracing.ts records what otelize added).
    root = sample_app_copy(tmp_path / "shop-api")
    pkg = json.loads((root / "package.json").read_bytes())
    pkg["dependencies"] = dict(sorted({**pkg["dependencies"], "@opentelemetry/api": "1.9.0"}.items()))
    (root / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    before = tree(root)
    instrument(root)
    tracing = (root / "src/tracing.ts").read_bytes()
    assert b"//   @opentelemetry/sdk-node\n" in tracing and b"//   @opentelemetry/api\n" not in tracing
    assert instrument(root, write=False).synthesis.changes == {}  # the record is stable on a second run
    strip(root)
    after = tree(root)
    assert after == before
    assert json.loads(after["package.json"])["dependencies"]["@opentelemetry/api"] == "1.9.0"


def test_edits_inside_the_body_survive_the_strip(tmp_path: Path) -> None:
    """A change to the user's own code inside a wrapper (same indentation) is not a change
    to the instrumentation: the wrapper comes off and the user's edit stays."""
    root, before = _instrumented(tmp_path)
    _edit(root, (b"    let sum = 0;\n", b"    let sum = 100;\n"))
    result = strip(root)
    assert result.kept == []
    assert (root / FUNCTIONS).read_bytes() == before[FUNCTIONS].replace(b"  let sum = 0;\n", b"  let sum = 100;\n", 1)
    assert not (root / "src/otel.ts").exists()


def test_renamed_span_is_kept_and_reported(tmp_path: Path) -> None:
    root, _ = _instrumented(tmp_path)
    _edit(root, (b"return withSpan<Promise<Order>>('loadOrder', ", b"return withSpan<Promise<Order>>('orders.load', "))
    result = strip(root)
    assert (FUNCTIONS, "loadOrder") in {(k.file, k.symbol) for k in result.kept}


def test_wrappers_without_a_type_argument_from_an_earlier_otelize_are_current(tmp_path: Path) -> None:
    """An otelize before type arguments wrote `return withSpan('loadOrder', ...` where it now
    writes `return withSpan<Promise<Order>>('loadOrder', ...`: a second run makes no edit and
    reports no hand edit, and strip takes those wrappers off byte for byte."""
    root, before = _instrumented(tmp_path)
    path = root / FUNCTIONS
    typed = path.read_bytes()
    assert b"return withSpan<Promise<Order>>('loadOrder', " in typed
    earlier = re.sub(rb"return withSpan<[^(]*>\(", b"return withSpan(", typed)
    assert len(_WRAPPER.findall(earlier)) == len(_WRAPPER.findall(typed)) and earlier != typed
    path.write_bytes(earlier)
    _settled_and_stripped(root, before, "edited")


def test_a_type_argument_of_a_return_type_changed_since_is_brought_up_to_date(tmp_path: Path) -> None:
    root, _ = _instrumented(tmp_path)
    typed = (root / FUNCTIONS).read_bytes()
    _edit(root, (b"loadOrder(id: string): Promise<Order> {", b"loadOrder(id: string): Promise<Order | undefined> {"))
    changes = instrument(root).synthesis.changes
    assert sorted(changes) == [FUNCTIONS]
    after = (root / FUNCTIONS).read_bytes()
    assert after == typed.replace(b"Promise<Order>", b"Promise<Order | undefined>", 2)
    assert instrument(root, write=False).synthesis.changes == {}


def test_manual_start_active_span_is_untouched(tmp_path: Path) -> None:
    root, before = _instrumented(tmp_path, "existing")
    result = strip(root)
    assert result.kept == []
    assert tree(root) == before
    manual = (root / "src/services/manual.ts").read_bytes()
    assert manual.count(b"tracer.startActiveSpan(") == 1 and b"tracer.startSpan(" in manual


def test_manual_code_that_looks_like_ours_is_untouched(tmp_path: Path) -> None:
    """A user's own `withSpan` helper, called in a different shape, is not otelize's."""
    root = prepare("functions", tmp_path / "functions")
    path = root / "src/services/own.ts"
    own = (
        b"import { withSpan } from './tracingHelpers';\n\n"
        b"export function audited(id: string): string {\n"
        b"  return withSpan('audit', { id }, () => id.toUpperCase());\n"
        b"}\n"
    )
    path.write_bytes(own)
    (root / "src/services/tracingHelpers.ts").write_bytes(
        b"export function withSpan<T>(_name: string, _attrs: object, fn: () => T): T {\n  return fn();\n}\n"
    )
    before = tree(root)
    result = strip(root)
    assert not result.changed and result.kept == []
    assert tree(root) == before


# --- CLI ---------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=120)


def test_cli_strip_and_check(tmp_path: Path) -> None:
    root, before = _instrumented(tmp_path, "callbacks")
    check = _cli("strip", str(root), "--check")
    assert check.returncode == 1, check.stderr
    assert tree(root) != before  # --check writes nothing
    done = _cli("strip", str(root))
    assert done.returncode == 0, done.stderr
    assert tree(root) == before
    again = _cli("strip", str(root), "--check")
    assert again.returncode == 0, again.stderr


def test_cli_strip_on_a_pristine_project_is_a_no_op(tmp_path: Path) -> None:
    root = prepare("skipped", tmp_path / "skipped")
    before = tree(root)
    assert _cli("strip", str(root), "--check").returncode == 0
    assert _cli("strip", str(root)).returncode == 0
    assert tree(root) == before


# --- hypothesis: generated TypeScript shapes -------------------------------------------------

PACKAGE_JSON = json.dumps(
    {"name": "gen", "version": "1.0.0", "private": True, "scripts": {"build": "tsc", "start": "node dist/index.js"},
     "dependencies": {"express": "4.22.3"}}, indent=2).encode() + b"\n"
TSCONFIG = b'{\n  "compilerOptions": { "strict": true, "module": "commonjs", "outDir": "dist", "rootDir": "src" }\n}\n'
INDEX = b"import express from 'express';\n\nconst app = express();\napp.listen(3000);\n"

PARAMS = [
    "id: string",
    "count = 1",
    "{ a, b = 2 }: { a: number; b?: number }",
    "[x, y]: number[]",
    "opts: { name?: string } = {}",
    "...rest: string[]",
]


def _statements(i: int, is_async: bool) -> st.SearchStrategy[list[str]]:
    """Statement templates: <nl> a line break, <ind> the body's indent, <unit> one indent unit."""
    templates = [
        f"const v{i} = Math.max(1, 2);",
        f"let w{i} = 0;<nl><ind>w{i} += 1;",
        "// a comment line",
        "/* a block comment */",
        "",  # a blank line
        f"const s{i} = 'ünïcödé — 🎉 名前';",
        f"const t{i} = `first line<nl>  kept as is ${{String(1)}}<nl>\tand a tab line<nl>`;",
        f"const q{i} = `<nl>SELECT *<nl>  FROM x<nl>`;",
        "[1, 2].forEach((n) => {<nl><ind><unit>void n;<nl><ind>});",
        f"const cb{i} = function (this: unknown): number {{<nl><ind><unit>return 1;<nl><ind>}};",
        "if (Math.random() > 2) {<nl><ind><unit>throw new Error('never');<nl><ind>}",
        "try {<nl><ind><unit>void 0;<nl><ind>} finally {<nl><ind><unit>void 1;<nl><ind>}",
    ]
    if is_async:
        templates.append(f"const a{i} = await Promise.resolve({i});")
    return st.lists(st.sampled_from(templates), max_size=5)


@st.composite
def ts_function(draw: st.DrawFn, i: int) -> tuple[str, str]:
    """(kind, template) for one function; kind: function | arrow | method | static | property-arrow."""
    kind = draw(st.sampled_from(["function", "arrow", "method", "static", "property-arrow"]))
    is_async = draw(st.booleans())
    params = draw(st.lists(st.sampled_from(PARAMS[:-1]), max_size=2, unique=True))
    if draw(st.booleans()):
        params.append(PARAMS[-1])
    body = [f"const first{i} = String({i}).padStart(2);"] + draw(_statements(i, is_async)) + [f"return first{i};"]
    return kind, _render(kind, f"fn{i}", ", ".join(params), body, is_async)


def _render(kind: str, name: str, params: str, body: list[str], is_async: bool) -> str:
    """A function whose header is at <outer> and whose statements are at <ind>."""
    a = "async " if is_async else ""
    ret = "Promise<string>" if is_async else "string"
    lines = "".join(("<ind>" + s if s else "") + "<nl>" for s in body)
    if kind == "function":
        return f"export {a}function {name}({params}): {ret} {{<nl>{lines}}}<nl>"
    if kind == "arrow":
        return f"export const {name} = {a}({params}): {ret} => {{<nl>{lines}}};<nl>"
    if kind == "property-arrow":
        return f"<outer>{name} = {a}({params}): {ret} => {{<nl>{lines}<outer>}};<nl>"
    static = "static " if kind == "static" else ""
    return f"<outer>{static}{a}{name}({params}): {ret} {{<nl>{lines}<outer>}}<nl>"


@st.composite
def ts_file(draw: st.DrawFn) -> tuple[bytes, int]:
    """(file bytes, number of functions): top-level functions, then a class with the members."""
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    unit = draw(st.sampled_from(["  ", "    ", "\t"]))
    functions = [draw(ts_function(i)) for i in range(draw(st.integers(1, 4)))]
    out = ["// generated shape<nl><nl>"]
    for kind, template in functions:
        if kind in ("function", "arrow"):
            out.append(template.replace("<ind>", "<unit>") + "<nl>")
    members = [template for kind, template in functions if kind not in ("function", "arrow")]
    if members:
        out.append("export class Generated {<nl>")
        for template in members:
            body = template.replace("<ind>", "<unit><unit>").replace("<outer>", "<unit>")
            out.append("<unit>// a member<nl>" + body + "<nl>")
        out.append("}<nl>")
    text = "".join(out).replace("<unit>", unit).replace("<nl>", nl)
    return text.encode("utf-8"), len(functions)


def _write_project(root: Path, service: bytes) -> None:
    (root / "src/services").mkdir(parents=True)
    (root / "package.json").write_bytes(PACKAGE_JSON)
    (root / "tsconfig.json").write_bytes(TSCONFIG)
    (root / "src/index.ts").write_bytes(INDEX)
    (root / "src/services/x.ts").write_bytes(service)
    (root / ".otelize.yaml").write_bytes(b"include_code: [pure-helpers]\n")  # the generated shapes are sync helpers


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(ts_file())
def test_generated_shapes_round_trip(generated: tuple[bytes, int]) -> None:
    service, functions = generated
    assert parse_source("src/services/x.ts", service).ok, service.decode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        _write_project(root, service)
        before = tree(root)

        first = instrument(root)
        assert first.synthesis.reverted == []
        new = (root / "src/services/x.ts").read_bytes()
        assert parse_source("src/services/x.ts", new).ok, new.decode()
        assert len(first.synthesis.spans) == functions, (first.synthesis.skips, service.decode())
        assert len(_WRAPPER.findall(new)) == functions

        second = instrument(root, write=False)
        assert second.synthesis.changes == {}

        result = strip(root)
        assert result.kept == []
        assert tree(root) == before, new.decode()


OLD_HEADER = b"'code.function.name': 'PaymentAPI.charge', 'http.request.method': 'POST', 'server.address'"


@pytest.mark.parametrize(("edit", "upgraded"), [
    # what an otelize that did not yet set http.request.method wrote: brought up to date
    ((b"'code.function.name': 'PaymentAPI.charge', 'server.address'"), True),
    # an attribute otelize never writes, or a value it would not write: the user's, left alone
    ((b"'app.tenant': 'acme', 'code.function.name': 'PaymentAPI.charge', 'http.request.method': 'POST', 'server.address'"), False),
    ((b"'code.function.name': 'PaymentAPI.charge', 'http.request.method': 'PUT', 'server.address'"), False),
])
def test_headers_from_an_older_otelize_are_upgraded_hand_edits_are_not(tmp_path: Path, edit: bytes, upgraded: bool) -> None:
    root = sample_app_copy(tmp_path / "shop-api")
    before = tree(root)
    instrument(root)
    api_file = root / "src/utils/externalAPI.ts"
    code = api_file.read_bytes()
    assert code.count(OLD_HEADER) == 1
    api_file.write_bytes(code.replace(OLD_HEADER, edit))
    again = instrument(root)
    edited = [k for k in again.synthesis.skips if k.symbol == "PaymentAPI.charge" and "edited by hand" in k.reason]
    if upgraded:
        assert api_file.read_bytes() == code and edited == []
        stripped = strip(root)
        assert stripped.kept == [] and tree(root) == before
    else:
        assert api_file.read_bytes() == code.replace(OLD_HEADER, edit) and len(edited) == 1
        stripped = strip(root)
        assert [k.symbol for k in stripped.kept if "edited" in k.reason] == ["PaymentAPI.charge"]
        assert edit in api_file.read_bytes()


def test_a_tracing_ts_without_a_package_record_keeps_the_pinned_ones_as_otelize_s(tmp_path: Path) -> None:
    # an app instrumented by an otelize that kept no record in tracing.ts, then re-run and stripped
    root = sample_app_copy(tmp_path / "shop-api")
    before = tree(root)
    instrument(root)
    tracing = root / "src/tracing.ts"
    text = tracing.read_text()
    start = text.index("//\n// Packages otelize added")
    end = text.index("import ", start)
    tracing.write_text(text[:start] + text[end:])
    instrument(root)
    assert tracing.read_text() == text  # the record is back, listing all six
    strip(root)
    assert tree(root) == before


# --- hypothesis: the same shapes, re-flowed by a formatter between instrument and strip -----------

_HEADER_LINE = re.compile(
    rb"^(?P<ind>[ \t]*)return (?P<helper>(?:" + "|".join(HELPERS).encode() + rb")(?:<[^(]*>)?)\((?P<name>'[^']*'), "
    rb"(?P<attrs>\{.*\}), (?P<arrow>(?:async )?\(\) => \{)$"
)


def reflow(path: str, data: bytes, unit: bytes) -> bytes:
    """What Prettier does to a header too long for its line: one argument per line and the
    arrow's body one level deeper (the inside of multi-line literals untouched)."""
    nl = b"\r\n" if b"\r\n" in data else b"\n"
    literals = literal_spans(parse_source(path, data), 0, len(data))
    lines = data.split(nl)
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + len(nl)
    out: list[bytes] = []
    i = 0
    while i < len(lines):
        m = _HEADER_LINE.match(lines[i])
        if m is None:
            out.append(lines[i])
            i += 1
            continue
        ind = m["ind"]
        footer = next(j for j in range(i + 1, len(lines)) if lines[j] in (ind + b"});", ind + b"})"))
        out += [ind + b"return " + m["helper"] + b"(", ind + unit + m["name"] + b",", ind + unit + m["attrs"] + b",",
                ind + unit + m["arrow"]]
        for j in range(i + 1, footer):
            inside = any(s < offsets[j] < e for s, e in literals)
            out.append(lines[j] if inside or not lines[j] else unit + lines[j])
        out += [ind + unit + b"},", ind + b");" if lines[footer].endswith(b";") else ind + b")"]
        i = footer + 1
    return nl.join(out)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(ts_file())
def test_generated_shapes_survive_a_formatter_between_instrument_and_strip(generated: tuple[bytes, int]) -> None:
    service, functions = generated
    path = "src/services/x.ts"
    unit = b"\t" if b"\n\t" in service else b"  "  # any indent unit makes a valid re-flow
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "app"
        _write_project(root, service)
        before = tree(root)
        instrument(root)
        target = root / path
        reflowed = reflow(path, target.read_bytes(), unit)
        assert len(re.findall(rb"return withSpan(?:<[^(]*>)?\(\r?\n", reflowed)) == functions
        assert parse_source(path, reflowed).ok, reflowed.decode()
        target.write_bytes(reflowed)

        # otelize accepts the re-flowed wrappers as its own
        _settled_and_stripped(root, before, "edited", reflowed.decode())


def test_generated_files_with_crlf_line_endings_are_still_otelize_s(tmp_path: Path) -> None:
    # git's autocrlf or a formatter set to CRLF rewrote the generated files' line endings
    root = sample_app_copy(tmp_path / "shop-api")
    before = tree(root)
    instrument(root)
    for name in ("src/tracing.ts", "src/otel.ts"):
        f = root / name
        f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    _settled_and_stripped(root, before, "not generated by otelize")


def test_strip_takes_the_preload_out_of_a_start_script_that_builds_first(tmp_path: Path) -> None:
    """`npm run build && node build/index.js` gets `--import ./build/tracing.js` in its node
    step; strip takes exactly that out again."""
    from fixture_apps import build_first

    fixture = Path(__file__).resolve().parent / "fixtures" / "builds" / "tsc-esm"

    def copy(name: str) -> Path:
        root = tmp_path / name
        shutil.copytree(fixture, root, ignore=shutil.ignore_patterns("node_modules", "build"))
        build_first(root)
        return root

    instrumented = copy("instrumented")
    instrument(instrumented)
    start = json.loads((instrumented / "package.json").read_text())["scripts"]["start"]
    assert start == "npm run build && node --import ./build/tracing.js build/index.js"
    assert_round_trip(copy("round-trip"))


# --- a .env load at the top of the entry ---------------------------------------------------

ENV_SERVICE = "export class Settings {\n  async read(): Promise<string> {\n    return process.env.NAME ?? '';\n  }\n}\n"


def _env_app(root: Path, index: str, module: str = "commonjs") -> Path:
    """An Express app whose entry starts by loading .env with dotenv (ES modules: a tsc build
    whose start script otelize makes preload tracing.js)."""
    (root / "src" / "services").mkdir(parents=True)
    pkg = {"name": "env-app", "version": "1.0.0", "scripts": {"build": "tsc", "start": "node dist/index.js"},
           "dependencies": {"dotenv": "16.4.5", "express": "4.21.2"}, "devDependencies": {"typescript": "5.4.5"}}
    if module == "esm":
        pkg["type"] = "module"
    (root / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    (root / "tsconfig.json").write_text('{"compilerOptions": {"rootDir": "src", "outDir": "dist"}, "include": ["src"]}\n')
    (root / "src" / "index.ts").write_text(index)
    (root / "src" / "services" / "settings.ts").write_text(ENV_SERVICE)
    return root


REST = "import express from 'express';\nconst app = express();\napp.listen(3000);\n"


@pytest.mark.parametrize("load", [
    "import 'dotenv/config';\n",
    "import dotenv from 'dotenv';\ndotenv.config({ path: '.env.local' });\n",
])
def test_the_entry_imports_tracing_after_its_env_load_and_strip_takes_it_out(tmp_path: Path, load: str) -> None:
    app = _env_app(tmp_path / "app", load + REST)
    instrument(app)
    assert (app / "src" / "index.ts").read_text() == load + "import './tracing';\n" + REST
    assert b"dotenv" not in (app / "src" / "tracing.ts").read_bytes()  # the entry's own load runs first
    assert instrument(app, write=False).synthesis.changes == {}, "a second run changed something"
    assert_round_trip(_env_app(tmp_path / "round-trip", load + REST))


@pytest.mark.parametrize(("load", "expected"), [
    ("import 'dotenv/config';\n", [b"import 'dotenv/config';\n"]),
    ("import dotenv from 'dotenv';\ndotenv.config();\n", [b"import { config } from 'dotenv';\n", b"\nconfig();\n"]),
])
def test_a_preloaded_tracing_loads_env_itself_as_the_entry_does(tmp_path: Path, load: str, expected: list[bytes]) -> None:
    app = _env_app(tmp_path / "app", load + REST, module="esm")
    result = instrument(app)
    assert json.loads((app / "package.json").read_text())["scripts"]["start"] == "node --import ./dist/tracing.js dist/index.js"
    tracing = (app / "src" / "tracing.ts").read_bytes()
    for part in expected:
        assert part in tracing
    # before the SDK reads OTEL_* (and before the protocol default looks at them)
    assert tracing.index(expected[-1]) < tracing.index(b"new NodeSDK(")
    assert not [s for s in result.synthesis.skips if s.symbol == "dotenv"]
    assert instrument(app, write=False).synthesis.changes == {}, "a second run changed something"
    assert_round_trip(_env_app(tmp_path / "round-trip", load + REST, module="esm"))


def test_a_preloaded_tracing_says_it_cannot_see_an_env_file_loaded_with_options(tmp_path: Path) -> None:
    load = "import dotenv from 'dotenv';\ndotenv.config({ path: '.env.local' });\n"
    app = _env_app(tmp_path / "app", load + REST, module="esm")
    result = instrument(app)
    assert b"dotenv" not in (app / "src" / "tracing.ts").read_bytes()
    warned = [s for s in result.synthesis.skips if s.symbol == "dotenv"]
    assert [(s.file, s.line) for s in warned] == [("src/index.ts", 2)]
    assert "OTEL_* variables" in warned[0].reason
    proc = _cli("instrument", str(_env_app(tmp_path / "cli", load + REST, module="esm")))
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "warning" in line] == [
        f"otelize: warning: src/index.ts:2: {warned[0].reason}"]


CONFIG_MODULE = "import dotenv from 'dotenv';\nimport { z } from 'zod';\n\ndotenv.config();\n\nexport const env = z.object({ PORT: z.string() }).parse(process.env);\n"


@pytest.mark.parametrize(("config_module", "after"), [
    (CONFIG_MODULE, True),
    ("import 'dotenv/config';\nimport path from 'node:path';\nexport const root = path.resolve('.');\n", True),
    (CONFIG_MODULE + "import pino from 'pino';\nexport const logger = pino();\n", False),  # pino is instrumented
    (CONFIG_MODULE + "import { log } from '../log';\nlog('env read');\n", False),  # another project file: not followed
    ("export const env = process.env;\n", False),  # loads no .env
])
def test_a_leading_config_module_that_loads_env_and_nothing_traced_comes_before_tracing(
        tmp_path: Path, config_module: str, after: bool) -> None:
    def make(root: Path) -> Path:
        app = _env_app(root, "import { env } from './config/env';\n" + REST)
        (app / "src" / "config").mkdir()
        (app / "src" / "config" / "env.ts").write_text(config_module)
        (app / "src" / "log.ts").write_text("export const log = console.log;\n")
        pkg = json.loads((app / "package.json").read_text())
        pkg["dependencies"].update({"pino": "9.5.0", "zod": "3.23.8"})
        (app / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
        return app

    app = make(tmp_path / "app")
    instrument(app)
    index = (app / "src" / "index.ts").read_text()
    first, tracing = "import { env } from './config/env';\n", "import './tracing';\n"
    assert index == (first + tracing if after else tracing + first) + REST
    assert instrument(app, write=False).synthesis.changes == {}, "a second run changed something"
    assert_round_trip(make(tmp_path / "round-trip"))
