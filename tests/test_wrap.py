"""The wrapping engine: what a wrapped body looks like, and that it can be taken off again."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from otelize.analysis.facts import extract
from otelize.analysis.parse import parse_source
from otelize.report.instrument import to_json
from otelize.synthesize.unwrap import find_wrapper, unwrap_interior
from otelize.synthesize.wrap import CannotWrap, Style, detect_style, header, wrap_interior
from transform import LEDGER, run_transform, run_transform_result, source

PATH = "src/services/demoService.ts"


def bodies(path: str, data: bytes) -> dict[str, tuple[object, object]]:
    """qualname -> (parsed file, body node) for every function with a block body."""
    pf = parse_source(path, data)
    out = {}
    for fn in extract(pf).functions:
        if fn.body_start is not None:
            out[fn.qualname] = (pf, pf.root.descendant_for_byte_range(fn.body_start, fn.body_end))
    return out


def assert_round_trip(before: bytes, after: bytes, path: str = PATH) -> int:
    """unwrap_interior on every wrapped body of `after` gives back the interior in `before`."""
    old = bodies(path, before)
    new = bodies(path, after)
    unwrapped = 0
    for qualname, (pf, body) in new.items():
        if find_wrapper(pf, body) is None:
            continue
        wrapped = unwrap_interior(pf, body, detect_style(pf).indent_unit)
        assert wrapped is not None and wrapped.original is not None, qualname
        _, old_body = old[qualname]
        assert wrapped.original == before[old_body.start_byte + 1 : old_body.end_byte - 1], qualname
        assert wrapped.name == qualname
        unwrapped += 1
    return unwrapped


def wrapped_file(tmp_path: Path, text: str | bytes, path: str = PATH) -> tuple[bytes, bytes]:
    before = source(text)
    after = run_transform(tmp_path, {path: before})[path]
    return before, after


def assert_lines_only_reindented(before: bytes, after: bytes, unit: bytes, newline: bytes = b"\n") -> None:
    """Every original line is still there, unchanged or with exactly one more `unit` in front;
    the only added lines are imports, span headers and `});` footers."""
    old = before.split(newline)
    new = after.split(newline)
    matcher = difflib.SequenceMatcher(None, [l.strip() for l in old], [l.strip() for l in new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for a, b in zip(old[i1:i2], new[j1:j2]):
                assert b in (a, unit + a) or (not a.strip() and not b.strip()), (a, b)
        else:
            assert tag == "insert", (tag, old[i1:i2], new[j1:j2])
            for added in new[j1:j2]:
                s = added.strip()
                assert s.startswith(b"import ") or re.match(rb"return withSpan(<[^(]+>)?\(", s) or s == b"});", added


# --- header ------------------------------------------------------------------------


def test_header_async_and_sync() -> None:
    assert header("withSpan", "A.b", [("k", "'v'")], True, "'") == b"return withSpan('A.b', { 'k': 'v' }, async () => {"
    assert header("withSpan", "A.b", [], False, '"') == b'return withSpan("A.b", {}, () => {'
    assert header("withSpan", "it's", [], False, "'") == b"return withSpan('it\\'s', {}, () => {"


def test_header_with_a_type_argument() -> None:
    assert header("withSpan", "A.b", [], True, "'", "Promise<Result<void>>") == (
        b"return withSpan<Promise<Result<void>>>('A.b', {}, async () => {"
    )


def _type_arguments(tmp_path: Path, text: str, path: str = PATH) -> dict[str, str]:
    """Span name -> the type argument its wrapper passes ("" for none), from a real instrument run."""
    after = run_transform(tmp_path, {path: source(text)})[path]
    return {m[2].decode(): (m[1] or b"").decode() for m in re.finditer(rb"return withSpan(?:<(.*?)>)?\('([^']+)'", after)}


def test_the_declared_return_type_is_the_helpers_type_argument(tmp_path: Path) -> None:
    """What the callback returns is what the function declares: the type itself (an async
    function's `Promise<...>`), with the method's type parameters and `this`, which the body
    has in scope; none where there is no type to pass (no annotation, a type predicate) or it
    would not fit the one-line header (a line break, a comment). On the ledger every toolchain
    case of test_toolchains compiles, and a class of the shapes TypeScript 3.5 cannot compile."""
    found = _type_arguments(tmp_path, LEDGER + """
export class Edges {
  assertEntry(value: unknown): asserts value is string {
    if (typeof value !== 'string') throw new Error('no');
  }

  untyped(n: number) {
    const m = n + 1;
    return m;
  }

  spread(n: number): Promise<
    Map<string, number>
  > {
    return load(n);
  }

  commented(n: number): /* the count */ number {
    const m = n + 1;
    return m;
  }
}
""")
    assert found == {
        "Outcome.success": "Outcome<U>",
        "Ledger.record": "Promise<Outcome<void>>",
        "Ledger.first": "Promise<T | undefined>",
        "Ledger.add": "this",
        "Ledger.isEntry": "",
        "Edges.assertEntry": "",
        "Edges.untyped": "",
        "Edges.spread": "",
        "Edges.commented": "",
    }


def test_javascript_gets_no_type_argument() -> None:
    """A JavaScript file has no type arguments (a Flow-annotated one parses with a return type)."""
    from otelize.synthesize.wrap import return_type_argument

    code = b"export async function load(id): Promise<Row> {\n  return fetchRow(id);\n}\n"
    for path, expected in (("src/services/demo.ts", "Promise<Row>"), ("src/services/demo.js", "")):
        pf = parse_source(path, code)
        body = next(n for n in _nodes(pf.root) if n.type == "statement_block")
        assert return_type_argument(pf, body) == expected


def _nodes(node):  # type: ignore[no-untyped-def]
    yield node
    for child in node.children:
        yield from _nodes(child)


def test_async_stays_async_and_sync_stays_sync(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        export class DemoService {
          async load(id: string): Promise<string> {
            const key = id.trim();
            return key;
          }

          compute(n: number): number {
            const doubled = n * 2;
            return doubled;
          }

          later(n: number): Promise<number> {
            const p = Promise.resolve(n);
            return p;
          }
        }
        """,
    )
    lines = after.decode().splitlines()
    load = next(l for l in lines if "'DemoService.load'" in l)
    compute = next(l for l in lines if "'DemoService.compute'" in l)
    later = next(l for l in lines if "'DemoService.later'" in l)
    assert load.endswith(", async () => {")
    assert compute.endswith(", () => {") and "async" not in compute
    # a non-async function returning a promise is not made async (the helper handles thenables)
    assert later.endswith(", () => {") and "async" not in later
    assert assert_round_trip(before, after) == 3


# --- layout ------------------------------------------------------------------------


def test_multiline_template_literal_is_byte_identical(tmp_path: Path) -> None:
    literal = "`SELECT *\n  FROM orders\nWHERE id = ${id}\n    ORDER BY 1`"
    before = (
        "export class DemoService {\n"
        "  async query(id: string): Promise<string> {\n"
        f"    const sql = {literal};\n"
        "    const note = 'one\\\n"
        "  continued';\n"
        "    return sql + note;\n"
        "  }\n"
        "}\n"
    ).encode()
    before, after = wrapped_file(tmp_path, before)
    assert after.count(literal.encode()) == 1
    assert b"'one\\\n  continued'" in after  # a line continuation inside a string is not re-indented either
    assert b"      const sql = `SELECT *\n  FROM orders\nWHERE id = ${id}\n    ORDER BY 1`;\n" in after
    assert assert_round_trip(before, after) == 1


def test_original_lines_only_gain_one_indent_unit(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        import { readFileSync } from 'fs';

        export class DemoService {
          async read(path: string): Promise<string> {
            // read the file
            const text = readFileSync(path, 'utf8');

            if (text.length === 0) {
              throw new Error(`empty file:
        ${path}`);
            }
            return text;
          }
        }

        export function sum(values: number[]): number {
          let total = 0;
          for (const v of values) {
            total += v;
          }
          return total;
        }
        """,
    )
    assert_lines_only_reindented(before, after, b"  ")
    assert assert_round_trip(before, after) == 2


def test_non_ascii_identifiers_and_strings(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        export class GrüßeService {
          async grüßen(名前: string): Promise<string> {
            const grüße = `Grüße, ${名前} — 🎉`;
            return grüße + '✓';
          }

          zähle(n: number): number {
            const ergebnis = n * 2; // ½ × 4
            return ergebnis;
          }
        }
        """,
    )
    text = after.decode("utf-8")
    assert "return withSpan<Promise<string>>('GrüßeService.grüßen', { 'code.file.path': 'src/services/demoService.ts', 'code.function.name': 'GrüßeService.grüßen' }, async () => {" in text
    assert "      const grüße = `Grüße, ${名前} — 🎉`;\n      return grüße + '✓';\n    });\n  }\n" in text
    assert "      const ergebnis = n * 2; // ½ × 4\n      return ergebnis;\n    });\n  }\n}\n" in text
    assert_lines_only_reindented(before, after, b"  ")
    assert assert_round_trip(before, after) == 2


def test_crlf_file_keeps_crlf_everywhere(tmp_path: Path) -> None:
    text = (
        "import { join } from 'path';\r\n"
        "\r\n"
        "export class DemoService {\r\n"
        "  async path(a: string): Promise<string> {\r\n"
        "    const p = join(a, `x\r\n"
        "y`);\r\n"
        "    return p;\r\n"
        "  }\r\n"
        "}\r\n"
    ).encode()
    before, after = wrapped_file(tmp_path, text)
    assert after.count(b"\n") == after.count(b"\r\n")  # no lone LF anywhere, including inserted lines
    assert b"import { withSpan } from '../otel';\r\n" in after
    assert b"async () => {\r\n      const p = join(a, `x\r\ny`);\r\n      return p;\r\n    });\r\n  }\r\n" in after
    assert_lines_only_reindented(before, after, b"  ", b"\r\n")
    assert assert_round_trip(before, after) == 1


def test_tab_indented_file_gets_tabs(tmp_path: Path) -> None:
    text = b"export class DemoService {\n\tasync run(n: number): Promise<number> {\n\t\tconst m = n + 1;\n\t\treturn m;\n\t}\n}\n"
    before, after = wrapped_file(tmp_path, text)
    assert after.endswith(
        b"\tasync run(n: number): Promise<number> {\n"
        b"\t\treturn withSpan<Promise<number>>('DemoService.run', { 'code.file.path': 'src/services/demoService.ts', 'code.function.name': 'DemoService.run' }, async () => {\n"
        b"\t\t\tconst m = n + 1;\n"
        b"\t\t\treturn m;\n"
        b"\t\t});\n"
        b"\t}\n"
        b"}\n"
    )
    assert_lines_only_reindented(before, after, b"\t")
    assert assert_round_trip(before, after) == 1


def test_four_space_file_gets_four_spaces(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        export function run(n: number): number {
            if (n > 0) {
                return n;
            }
            return -n;
        }
        """,
    )
    assert after.endswith(
        b"export function run(n: number): number {\n"
        b"    return withSpan<number>('run', { 'code.file.path': 'src/services/demoService.ts', 'code.function.name': 'run' }, () => {\n"
        b"        if (n > 0) {\n"
        b"            return n;\n"
        b"        }\n"
        b"        return -n;\n"
        b"    });\n"
        b"}\n"
    )
    assert_lines_only_reindented(before, after, b"    ")
    assert assert_round_trip(before, after) == 1


def test_double_quoted_file_gets_double_quotes(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        import { readFileSync } from "fs";

        export function load(p: string): string {
          const data = readFileSync(p, "utf8");
          return data;
        }
        """,
    )
    assert b'import { withSpan } from "../otel";\n' in after
    assert b'return withSpan<string>("load", { "code.file.path": "src/services/demoService.ts", "code.function.name": "load" }, () => {' in after
    assert b"'" not in after
    assert assert_round_trip(before, after) == 1


# --- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("  run(): number {\n    const a = 1;\n    return a; }\n", "closing brace shares a line with code"),
        ("  run(): number { const a = 1;\n    return a;\n  }\n", "opening brace shares a line with code"),
    ],
)
def test_brace_sharing_a_line_with_code_is_skipped(tmp_path: Path, body: str, reason: str) -> None:
    text = "export class DemoService {\n" + body + "}\n"
    changed, result = run_transform_result(tmp_path, {PATH: text})
    assert PATH not in changed
    skips = [(s["symbol"], s["reason"]) for s in to_json(result)["skipped"] if s["file"] == PATH]
    assert skips == [("DemoService.run", reason)]


def test_comment_after_opening_brace_is_kept_and_wrapped(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        export function run(n: number): number { // eslint-disable-line complexity
          const m = n + 1;
          return m;
        }
        """,
    )
    assert b"export function run(n: number): number { // eslint-disable-line complexity\n  return withSpan<number>('run'" in after
    assert assert_round_trip(before, after) == 1


def test_wrap_interior_refusals() -> None:
    with pytest.raises(CannotWrap, match="empty body"):
        wrap_interior(b"\n\n", 0, b"return withSpan('x', {}, () => {", [], b"  ")
    with pytest.raises(CannotWrap, match="closing brace"):
        wrap_interior(b"\n  a();\n  b(); ", 0, b"return withSpan('x', {}, () => {", [], b"  ")


def test_wrap_interior_asks_for_the_file_unit_only_when_the_body_does_not_decide_it() -> None:
    hdr = b"return withSpan('x', {}, () => {"
    asked: list[int] = []

    def unit() -> bytes:
        asked.append(1)
        return b"\t"

    # indented beyond the closing brace's line: the body's own indentation is the unit
    assert wrap_interior(b"\n    a();\n  ", 0, hdr, [], unit) == b"\n    " + hdr + b"\n      a();\n    });\n  "
    assert asked == []
    # not beyond it: the file's unit (here a tab), asked for once
    assert wrap_interior(b"\na();\n", 0, hdr, [], unit) == b"\n" + hdr + b"\n\ta();\n});\n"
    assert asked == [1]


def test_style_indent_unit_is_the_whole_file_guess() -> None:
    style = Style(b"\n", "'", True, b"class A {\n    f() {\n        g();\n    }\n}\n")
    assert style.indent_unit == b"    "
    assert "source" not in repr(style)


def test_single_line_body_is_wrapped_on_one_line(tmp_path: Path) -> None:
    before, after = wrapped_file(
        tmp_path,
        """
        export function run(n: number): number { const m = n + 1; return m; }
        """,
    )
    assert after.endswith(
        b"export function run(n: number): number { return withSpan<number>('run', { 'code.file.path': 'src/services/demoService.ts', "
        b"'code.function.name': 'run' }, () => { const m = n + 1; return m; }); }\n"
    )
    assert assert_round_trip(before, after) == 1


# --- unwrap ------------------------------------------------------------------------

WRAPPED = """
    export class DemoService {
      async run(n: number): Promise<number> {
        const m = n + 1;
        if (m > 2) {
          return m;
        }
        return 0;
      }
    }
"""


def test_unwrap_detects_hand_edited_inner_line(tmp_path: Path) -> None:
    before, after = wrapped_file(tmp_path, WRAPPED)
    edited = after.replace(b"\n      const m = n + 1;", b"\n    const m = n + 1;")  # dedented by hand
    assert edited != after
    (pf, body) = bodies(PATH, edited)["DemoService.run"]
    wrapped = unwrap_interior(pf, body, b"  ")
    assert wrapped is not None and wrapped.original is None
    assert wrapped.reason == "instrumentation was edited or re-formatted since; left in place"


def test_unwrap_detects_hand_edited_footer(tmp_path: Path) -> None:
    _, after = wrapped_file(tmp_path, WRAPPED)
    edited = after.replace(b"\n    });\n", b"\n  });\n")
    assert edited != after
    (pf, body) = bodies(PATH, edited)["DemoService.run"]
    wrapped = unwrap_interior(pf, body, b"  ")
    assert wrapped is not None and wrapped.original is None


def test_unwrap_ignores_bodies_that_are_not_ours() -> None:
    src = source(
        """
        export function run(n: number): number {
          return compute('run', {}, () => {
            return n;
          });
        }
        """
    )
    (pf, body) = bodies(PATH, src)["run"]
    assert find_wrapper(pf, body) is None
    assert unwrap_interior(pf, body, b"  ") is None


# --- already instrumented ----------------------------------------------------------


def test_body_already_wrapped_by_hand_with_our_helper_is_left_alone(tmp_path: Path) -> None:
    text = """
        import { withSpan } from '../otel';

        export function run(n: number): number {
          return withSpan('custom.name', { 'team': 'core' }, () => {
            return n + 1;
          });
        }
    """
    changed, result = run_transform_result(tmp_path, {PATH: text})
    assert PATH not in changed
    # the report names the span the code really emits
    assert [s["name"] for s in to_json(result)["spans"] if s["file"] == PATH] == ["custom.name"]


def test_manual_start_active_span_is_skipped(tmp_path: Path) -> None:
    text = """
        import { trace } from '@opentelemetry/api';

        const tracer = trace.getTracer('demo');

        export function run(n: number): number {
          return tracer.startActiveSpan('run', (span) => {
            span.end();
            return n;
          });
        }

        export function other(n: number): number {
          const m = n * 3;
          return m;
        }
    """
    changed, result = run_transform_result(tmp_path, {PATH: text})
    skipped = {s["symbol"]: s["reason"] for s in to_json(result)["skipped"] if s["file"] == PATH}
    assert skipped == {"run": "already instrumented manually (startActiveSpan)"}
    assert b"return withSpan<number>('other'" in changed[PATH]
    assert re.search(rb"withSpan(<[^(]*>)?\('run'", changed[PATH]) is None


def test_a_file_without_semicolons_gets_a_footer_without_one(tmp_path) -> None:
    """`})` not `});` where the file's statements end without semicolons; strip still round-trips."""
    from otelize.api import instrument
    from otelize.stripping.strip import strip

    root = tmp_path / "app"
    (root / "src" / "services").mkdir(parents=True)
    (root / "package.json").write_text('{\n  "name": "nosemi",\n  "dependencies": {\n    "express": "4.22.3"\n  }\n}\n')
    original = (
        b"import { db } from '../db'\n"
        b"\n"
        b"export class UserService {\n"
        b"  async getUser(id: string) {\n"
        b"    const user = await db.find(id)\n"
        b"    return user\n"
        b"  }\n"
        b"}\n"
    )
    (root / "src" / "db.ts").write_text("export const db = { async find(id: string) { return { id } } }\n")
    service = root / "src" / "services" / "userService.ts"
    service.write_bytes(original)
    instrument(root)
    wrapped = service.read_bytes()
    assert b"\n    })\n  }\n}\n" in wrapped and b"});" not in wrapped
    assert b"import { withSpan } from '../otel'\n" in wrapped
    assert not instrument(root, write=False).synthesis.changes
    strip(root)
    assert service.read_bytes() == original


def test_unwrap_reflowed_dedents_to_the_return_and_keeps_literals() -> None:
    from otelize.synthesize.unwrap import unwrap_reflowed

    src = (
        b"export async function f(id: string): Promise<string> {\n"
        b"  return withSpan(\n"
        b'    "f",\n'
        b'    { "code.file.path": "src/a.ts", "code.function.name": "f" },\n'
        b"    async () => {\n"
        b"      const sql = `\n"
        b"    SELECT *\n"
        b"        FROM t`;\n"
        b"\n"
        b"      return run(sql, id);\n"
        b"    },\n"
        b"  );\n"
        b"}\n"
    )
    pf = parse_source("src/a.ts", src)
    body = pf.root.named_children[0].named_children[0].child_by_field_name("body")
    assert unwrap_reflowed(pf, body) == (
        b"\n  const sql = `\n    SELECT *\n        FROM t`;\n\n  return run(sql, id);\n"
    )
    # a one-line (not re-flowed) header is not this function's business
    one_line = parse_source("src/b.ts", b"function g() {\n  return withSpan('g', {}, () => {\n    return 1;\n  });\n}\n")
    assert unwrap_reflowed(one_line, one_line.root.named_children[0].child_by_field_name("body")) is None
