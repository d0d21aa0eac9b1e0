"""TypeScript shapes: every fixture under tests/fixtures/shapes/ is instrumented
on a copy, and each annotated function is wrapped or skipped as its comment says.

Annotations (Semgrep style) mark the next function of the original file:

    // expect: wrap
    // expect: skip: <a substring of the skip reason>

For every case: each changed file reparses clean, a second run makes zero
edits, every wrapped body unwraps to the original bytes, and everything
outside the wrapped bodies is byte-identical except the added import lines.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from transform import untyped

from otelize.api import InstrumentResult, analyze, instrument
from otelize.analysis.facts import extract
from otelize.analysis.records import FunctionFact
from otelize.analysis.parse import ParsedFile, parse_source
from otelize.synthesize.unwrap import find_wrapper, unwrap_interior
from otelize.synthesize.wrap import detect_style, literal_spans

SHAPES = Path(__file__).resolve().parent / "fixtures" / "shapes"
CASES = sorted(p.name for p in SHAPES.iterdir() if (p / "package.json").is_file())
SOURCE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts")
_EXPECT = re.compile(rb"^\s*// expect: (wrap|skip: (.+?))\s*$")

LONG_FILE = "src/services/long.ts"
LONG_FUNCTIONS = 800


def long_source(functions: int = LONG_FUNCTIONS) -> bytes:
    """A very long service file (tens of thousands of lines), generated deterministically."""
    out = ["// A very long file: many exported functions and one big class.\n\n"]
    for i in range(functions):
        out.append(
            f"// expect: wrap\nexport async function step{i}(input: number): Promise<number> {{\n"
            f"  const value = await Promise.resolve(input + {i});\n"
            f"  const label = `step {i}\n  of {functions}`;\n"
            f"  return value + label.length;\n}}\n\n"
        )
    out.append("export class Pipeline {\n")
    for i in range(functions // 10):
        out.append(f"  // expect: wrap\n  run{i}(values: number[]): number {{\n    let sum = {i};\n"
                   f"    values.forEach((v) => {{\n      sum += v;\n    }});\n    return sum;\n  }}\n\n")
    out.append("}\n")
    return "".join(out).encode()


def prepare(case: str, dest: Path) -> Path:
    """A fresh copy of a shape fixture (with its generated extras) at dest."""
    shutil.copytree(SHAPES / case, dest)
    if case == "source-text":
        (dest / LONG_FILE).write_bytes(long_source())
    return dest


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Expect:
    file: str
    line: int  # the function's line in the original file
    qualname: str
    want: str  # "wrap" | "skip"
    reason: str = ""


@functools.lru_cache(maxsize=64)
def parsed_functions(path: str, data: bytes) -> tuple[ParsedFile, list[FunctionFact]]:
    pf = parse_source(path, data)
    return pf, extract(pf).functions


def expectations(files: dict[str, bytes]) -> list[Expect]:
    out = []
    for path, data in sorted(files.items()):
        if not path.endswith(SOURCE_SUFFIXES) or b"// expect:" not in data:
            continue
        _, functions = parsed_functions(path, data)
        for i, line in enumerate(data.split(b"\n"), start=1):
            m = _EXPECT.match(line)
            if m is None:
                continue
            after = [fn for fn in functions if fn.line > i]
            assert after, f"{path}:{i}: annotation without a function after it"
            fn = min(after, key=lambda f: (f.line, -f.end))
            reason = m.group(2).decode() if m.group(2) else ""
            out.append(Expect(path, fn.line, fn.qualname, "skip" if reason else "wrap", reason))
    return out


@dataclass
class Run:
    case: str
    before: dict[str, bytes]
    after: dict[str, bytes]
    result: InstrumentResult
    second: InstrumentResult
    root: Path


_RUNS: dict[str, Run] = {}


def instrumented(case: str, factory: pytest.TempPathFactory) -> Run:
    """Instrument a copy of the case once per session."""
    if case not in _RUNS:
        root = prepare(case, factory.mktemp("shape") / case)
        before = tree(root)
        result = instrument(root, write=True)
        after = tree(root)
        second = instrument(root, write=False)
        _RUNS[case] = Run(case, before, after, result, second, root)
    return _RUNS[case]


@pytest.fixture(params=CASES)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return instrumented(request.param, tmp_path_factory)


def case_fixture(case: str):  # noqa: ANN201
    @pytest.fixture
    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Run:
        return instrumented(case, tmp_path_factory)

    return _fixture


source_text = case_fixture("source-text")
file_kinds = case_fixture("file-kinds")
esm = case_fixture("esm")
alias = case_fixture("alias")
express5 = case_fixture("express5")
apps = case_fixture("apps")
existing = case_fixture("existing")


# --- every case ------------------------------------------------------------------


def test_annotated_functions_are_wrapped_or_skipped(run: Run) -> None:
    expects = expectations(run.before)
    assert expects or run.case == "existing" or run.case == "apps" or run.case == "alias", "no annotations"
    spans = {(s.file, s.line) for s in run.result.synthesis.spans}
    skips = {(s.file, s.line): s.reason for s in run.result.synthesis.skips}
    problems = []
    for e in expects:
        where = f"{e.file}:{e.line} {e.qualname}"
        if e.want == "wrap":
            if (e.file, e.line) not in spans:
                problems.append(f"MISSED wrap: {where} (skip reason: {skips.get((e.file, e.line))})")
            elif not _body_of(run.after[e.file], e.file, e.qualname, e.line, run.before[e.file]).lstrip().startswith((b"return with", b"return otelizeWith")):
                problems.append(f"NOT WRAPPED in the file: {where}")
        else:
            reason = skips.get((e.file, e.line))
            if reason is None or e.reason not in reason:
                problems.append(f"MISSED skip {e.reason!r}: {where} (got {reason!r}, wrapped={(e.file, e.line) in spans})")
    annotated = {(e.file, e.line) for e in expects}
    annotated_files = {e.file for e in expects}
    for f, line in sorted(spans | set(skips)):
        if f in annotated_files and (f, line) not in annotated:
            problems.append(f"UNEXPECTED {'span' if (f, line) in spans else 'skip ' + repr(skips[(f, line)])}: {f}:{line}")
    assert not problems, "\n".join(problems)


def _body_of(new: bytes, path: str, qualname: str, old_line: int, old: bytes) -> bytes:
    """The body interior, in the instrumented file, of the function at old_line of the original."""
    old_lines = _lines_by_qualname(path, old)[qualname]
    fn = _functions_by_qualname(path, new)[qualname][old_lines.index(old_line)]
    assert fn.body_start is not None and fn.body_end is not None
    return new[fn.body_start + 1 : fn.body_end - 1]


@functools.lru_cache(maxsize=64)
def _functions_by_qualname(path: str, data: bytes) -> dict[str, list[FunctionFact]]:
    out: dict[str, list[FunctionFact]] = {}
    for fn in parsed_functions(path, data)[1]:
        out.setdefault(fn.qualname, []).append(fn)
    return out


@functools.lru_cache(maxsize=64)
def _lines_by_qualname(path: str, data: bytes) -> dict[str, list[int]]:
    return {q: [f.line for f in fns] for q, fns in _functions_by_qualname(path, data).items()}


def test_changed_files_reparse_clean(run: Run) -> None:
    assert run.result.synthesis.reverted == []
    assert run.result.analysis.unparsable == []
    for path, data in run.after.items():
        if path.endswith(SOURCE_SUFFIXES) and data != run.before.get(path):
            pf = parse_source(path, data)
            assert pf.ok, f"{path}: {pf.errors or pf.problem}"


def test_second_run_makes_zero_edits(run: Run) -> None:
    assert run.second.synthesis.changes == {}
    assert run.second.synthesis.reverted == []
    first_spans = [(s.file, s.line, s.name) for s in run.result.synthesis.spans]
    assert len(run.second.synthesis.spans) == len(first_spans)


def test_outside_wrapped_bodies_is_byte_identical(run: Run) -> None:
    """Put every wrapped body back (by unwrapping) and drop the added helper
    import lines: the result is the original file, byte for byte."""
    for path, new in run.after.items():
        old = run.before.get(path)
        if old is None or old == new or not path.endswith(SOURCE_SUFFIXES):
            continue
        pf, functions = parsed_functions(path, new)
        unit = detect_style(pf).indent_unit
        pieces, pos = [], 0
        for fn in functions:
            if fn.body_start is None or fn.body_start < pos:
                continue
            body = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
            if find_wrapper(pf, body) is None:
                continue
            wrapped = unwrap_interior(pf, body, unit)
            assert wrapped is not None and wrapped.original is not None, f"{path}: {fn.qualname}"
            pieces += [new[pos : fn.body_start + 1], wrapped.original]
            pos = fn.body_end - 1
        pieces.append(new[pos:])
        restored = b"".join(pieces)
        # the only difference left: the helper import lines the import step added
        added = re.compile(rb"^import (\{ [\w, ]+ \} from )?['\"][./]+(otel|tracing)(\.js)?['\"];?\r?\n", re.M)
        assert not added.search(old)
        assert added.sub(b"", restored) == old, path


# --- source text -----------------------------------------------------------------


def _multiline_literals(path: str, data: bytes) -> list[bytes]:
    pf = parse_source(path, data)
    return [data[s:e] for s, e in literal_spans(pf, 0, len(data))]


def test_template_literal_bytes_unchanged(source_text: Run) -> None:
    run = source_text
    for path in ("src/services/templates.ts", "src/services/crlf.ts", LONG_FILE):
        old, new = run.before[path], run.after[path]
        assert new != old
        literals = _multiline_literals(path, old)
        assert literals and _multiline_literals(path, new) == literals, path


def test_bom_is_kept_first(source_text: Run) -> None:
    run = source_text
    new = run.after["src/services/bom.ts"]
    assert new[:3] == b"\xef\xbb\xbf" and new.count(b"\xef\xbb\xbf") == 1
    assert b"withSpan('bomGreeting'" in untyped(new)


def test_crlf_is_kept(source_text: Run) -> None:
    run = source_text
    new = run.after["src/services/crlf.ts"]
    assert new != run.before["src/services/crlf.ts"]
    assert new.count(b"\n") == new.count(b"\r\n")


def test_tabs_are_used_in_a_tab_file(source_text: Run) -> None:
    run = source_text
    new = run.after["src/services/tabs.ts"]
    assert b"\t\treturn withSpan('TabService.load'" in untyped(new) and b"\treturn withSpan('tabbed'" in untyped(new)
    for line in new.split(b"\n"):
        indent = line[: len(line) - len(line.lstrip(b" \t"))]
        assert b" " not in indent, line


def test_non_ascii_identifiers_and_strings(source_text: Run) -> None:
    run = source_text
    new = run.after["src/services/unicode.ts"].decode("utf-8")
    assert "withSpan('grüße'" in untyped(new) and "withSpan('Café.commande'" in untyped(new)
    assert "const émoji = '🎉 ünïcödé — ✓';" in new


def test_very_long_file(source_text: Run) -> None:
    run = source_text
    spans = [s for s in run.result.synthesis.spans if s.file == LONG_FILE]
    assert len(spans) == LONG_FUNCTIONS + LONG_FUNCTIONS // 10
    assert untyped(run.after[LONG_FILE]).count(b"return withSpan(") == len(spans)


# --- file kinds and modules ------------------------------------------------------------


def test_tsx_parses_with_the_tsx_grammar(file_kinds: Run) -> None:
    run = file_kinds
    path = "src/services/view.tsx"
    new = run.after[path]
    pf = parse_source(path, new)
    assert pf.tsx and pf.ok
    assert not parse_source("src/services/view.ts", new).ok  # JSX and `<T,>` need the tsx grammar
    assert b"return <ul>{rows}</ul>;" in new


def test_mts_and_cts_import_the_helper_their_way(file_kinds: Run) -> None:
    run = file_kinds
    # an .mts file is an ES module even in a CommonJS project: the specifier needs `.js`
    assert b"import { withSpan } from '../otel.js';" in run.after["src/services/esmModule.mts"]
    assert b"import { withSpan } from '../otel';" in run.after["src/services/cjsModule.cts"]


def test_esm_package(esm: Run) -> None:
    run = esm
    assert b"import { withSpan } from '../otel.js';" in run.after["src/services/catalog.ts"]
    start = json.loads(run.after["package.json"])["scripts"]["start"]
    assert start == "node --import ./dist/tracing.js dist/index.js"
    assert b"import './tracing" not in run.after["src/index.ts"]
    # the .cts file cannot require() the ES-module helper: left alone, with a reason
    assert run.after["src/services/legacy.cts"] == run.before["src/services/legacy.cts"]


def test_path_aliases_resolve_in_plan(alias: Run) -> None:
    run = alias
    proc = subprocess.run([sys.executable, "-m", "otelize", "plan", str(SHAPES / "alias"), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    routes = {(r["method"], r["path"], r["file"]) for r in plan["routes"]}
    assert routes == {("GET", "/api/orders/:id", "src/routes/orders.ts"), ("POST", "/api/orders", "src/routes/orders.ts")}
    categories = {f["path"]: f["category"] for f in plan["files"]}
    assert categories["src/routes/orders.ts"] == "http"
    assert categories["src/services/orderService.ts"] == "service"
    assert b"withSpan('OrderService.getOrder'" in untyped(run.after["src/services/orderService.ts"])


def test_express5(express5: Run) -> None:
    run = express5
    analysis = run.result.analysis
    assert analysis.project.express_major == 5
    assert {(r.method, r.path) for r in analysis.graph.routes} >= {("GET", "/items/:id"), ("GET", "/{*splat}")}
    assert run.after["src/index.ts"].startswith(b"import './tracing';\n")
    assert b"withSpan('ItemService.get'" in untyped(run.after["src/services/itemService.ts"])


def test_app_created_in_a_helper_function(apps: Run) -> None:
    run = apps
    routes = {(r.method, r.path, r.file) for r in run.result.analysis.graph.routes}
    assert ("POST", "/api/audit", "src/routes/api.ts") in routes  # mounted on the app that createApp() returns
    assert ("GET", "/audit", "src/admin/main.ts") in routes
    assert b"withSpan('AuditService.record'" in untyped(run.after["src/services/auditService.ts"])


def test_every_entry_point_loads_tracing(apps: Run) -> None:
    run = apps
    assert run.after["src/index.ts"].startswith(b"import './tracing';")
    assert run.after["src/admin/main.ts"].startswith(b"import '../tracing';")
    assert run.result.analysis.entry == "src/index.ts"  # the shallowest conventional name is primary


# --- existing instrumentation and markers ------------------------------------------------


def test_generated_files_are_untouched(existing: Run) -> None:
    run = existing
    for path in ("src/services/client.generated.ts", "src/services/schema.ts"):
        assert run.after[path] == run.before[path]
        assert "generated" in run.result.analysis.facts[path].markers


def test_manual_spans_are_skipped_with_a_reason(existing: Run) -> None:
    run = existing
    reasons = {s.symbol: s.reason for s in run.result.synthesis.skips}
    assert reasons["ManualService.charge"] == reasons["ManualService.refund"] == "already instrumented manually (startActiveSpan)"
    new = run.after["src/services/manual.ts"]
    assert untyped(new).count(b"return withSpan(") == 1 and b"withSpan('ManualService.quote'" in untyped(new)


def test_existing_otel_dependency_is_not_changed(existing: Run) -> None:
    run = existing
    deps = json.loads(run.after["package.json"])["dependencies"]
    assert deps["@opentelemetry/api"] == "1.8.0"
    assert deps["@opentelemetry/sdk-node"]  # the others are added
    skip = next(s for s in run.result.synthesis.skips if s.file == "package.json")
    assert skip.symbol == "@opentelemetry/api" and "1.8.0" in skip.reason and "1.9.0" in skip.reason


def test_analysis_of_every_fixture_is_clean() -> None:
    for case in CASES:
        analysis = analyze(SHAPES / case)
        assert analysis.unparsable == [], case
        assert analysis.entry is not None, case


# --- types are preserved: the real tsc over every instrumented fixture -------------------

HELPER_PROJECT = Path(__file__).resolve().parent / "node" / "otel-helper"
TYPECHECK_OPTIONS = {
    "target": "ES2022",
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "strict": True,
    "experimentalDecorators": True,
    "jsx": "preserve",
    "noEmit": True,
    "types": ["node"],
    "skipLibCheck": False,
}


@pytest.mark.node
def test_instrumented_fixtures_type_check(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Type predicates, `asserts`, `this:` parameters, generics, overloads, abstract
    classes, decorators, JSX, .mts/.cts and ESM: the wrapper keeps every type intact.

    Only the fixtures' service code and the generated helper are checked (the
    entry points import express, whose types the helper project does not have)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    from nodeutil import npm_install

    npm_install(HELPER_PROJECT)
    project = tmp_path_factory.mktemp("typecheck")
    (project / "node_modules").symlink_to(HELPER_PROJECT / "node_modules", target_is_directory=True)
    (project / "package.json").write_text(json.dumps({"name": "shapes-typecheck", "private": True}))
    files = []
    for case in CASES:
        run_ = instrumented(case, tmp_path_factory)
        for path, data in run_.after.items():
            keep = path == "package.json" or path in ("src/otel.ts", "src/jsx.d.ts") or (
                path.startswith("src/services/") and path.endswith(SOURCE_SUFFIXES))
            if not keep:
                continue
            target = project / "cases" / case / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            if path != "package.json":
                files.append(f"cases/{case}/{path}")
        assert f"cases/{case}/src/otel.ts" in files, case
    (project / "tsconfig.json").write_text(json.dumps({"compilerOptions": TYPECHECK_OPTIONS, "files": sorted(files)}, indent=2))
    proc = subprocess.run(
        ["node", str(HELPER_PROJECT / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(project)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"tsc found errors:\n{proc.stdout}\n{proc.stderr}"
