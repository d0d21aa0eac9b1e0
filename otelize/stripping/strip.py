"""strip: remove exactly what otelize added, byte for byte.

- span wrappers: each is unwrapped and the result re-wrapped and compared with
  the file; a wrapper edited by hand is left alone and reported;
- `recordActiveSpanError(err);` lines in error handlers;
- imports of the span helper and the entry point's `import './tracing'`;
- the generated files (only while they are unchanged);
- package.json entries at exactly the pinned versions that tracing.ts records as
  added by otelize (all pinned ones when there is no record), and the ESM `--import`.

Manual code that is not otelize's is never touched: recognition is by AST shape
and exact bytes, not by name alone.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from otelize.synthesize import jsonedit
from otelize.run.gcpause import gc_paused
from otelize.synthesize.layout import same_code
from otelize.synthesize.edits import Edit, Skip, apply_edits
from otelize.synthesize.imports import required_module
from otelize.analysis.parse import ParsedFile, captures, parse_source, query, text
from otelize.workers.spans import EDITED_HEADER
from otelize.synthesize.unwrap import unwrap_interior, unwrap_reflowed
from otelize.synthesize.wrap import RECORD, detect_style, imported_helpers
from otelize.workers.base import HELPER_MODULE, TRACING_MODULE, is_generated

WORKER = "strip"
# every identifier callee: filtered by the names the file's helper import binds (a helper
# may be imported under another name, otelize.synthesize.wrap.local_names)
_HELPER_CALLS = """(call_expression function: (identifier) @f)"""
HELPER_STILL_USED = "the span helper is still used by instrumentation left in place"
_RECORD_QUERY = """(expression_statement (call_expression function: (identifier) @f)) @stmt"""


@dataclass
class StripResult:
    changes: dict[str, tuple[bytes, bytes | None]] = field(default_factory=dict)  # path -> (old, new or None = delete)
    kept: list[Skip] = field(default_factory=list)  # instrumentation left alone, with the reason
    unwrapped: int = 0
    lockfile: str | None = None  # the app's lockfile, when package.json lost packages it still lists
    package_manager: str = "npm"

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def exit_code(self, check: bool = False) -> int:
        """The CLI's exit code: 1 when `check` and something would be removed, else 0."""
        from otelize.errors import EXIT_CHANGES, EXIT_OK

        return EXIT_CHANGES if check and self.changed else EXIT_OK


def _line_bounds(src: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The full line(s) of [start, end) when nothing else shares them."""
    ls = src.rfind(b"\n", 0, start) + 1
    le = src.find(b"\n", end)
    le = len(src) if le < 0 else le + 1
    if src[ls:start].strip() or src[end:le].strip():
        return None
    return ls, le


def _module_spec_targets(path: str, src_dir: str, modules: tuple[str, ...] | None = None) -> set[str]:
    """Specifiers (as otelize writes them) of the helper and tracing modules, seen from `path`
    (`modules`: their paths, as the config worker placed them; default: in `src_dir`)."""
    out = set()
    if modules is None:
        modules = tuple(posixpath.join(src_dir, m) if src_dir else m for m in (HELPER_MODULE, TRACING_MODULE))
    for target in modules:
        rel = posixpath.relpath(target, posixpath.dirname(path) or ".")[: -len(".ts")]
        rel = rel if rel.startswith(".") else "./" + rel
        out |= {rel, rel + ".js"}
    return out


def strip_source(
    pf: ParsedFile,
    src_dir: str,
    function_ranges: list[tuple[int, int, int, str, int]],
    edited: frozenset[str] = frozenset(),
    modules: tuple[str, ...] | None = None,
) -> tuple[list[Edit], list[Skip]]:
    """Edits that remove otelize's additions from one TypeScript file.

    `function_ranges` are (body_start, body_end, line, qualname, fn_start) of every function with a block body.
    """
    edits: list[Edit] = []
    kept: list[Skip] = []
    src = pf.source
    unit = detect_style(pf).indent_unit
    taken: list[tuple[int, int]] = []
    for body_start, body_end, line, qualname, fn_start in sorted(function_ranges):
        if any(s <= body_start < e for s, e in taken):
            continue  # nested in a wrapper being removed: its bytes come back with the outer one
        body = pf.root.descendant_for_byte_range(body_start, body_end)
        if body is None or body.type != "statement_block":
            continue
        wrapped = unwrap_interior(pf, body, unit)
        if wrapped is None:
            continue
        if qualname in edited:
            kept.append(Skip(pf.path, line, qualname, EDITED_HEADER, WORKER))
            continue
        original = wrapped.original
        if original is None and b"\n" in wrapped.header:  # otelize's header, re-flowed by a formatter
            original = unwrap_reflowed(pf, body)
        if original is None:
            kept.append(Skip(pf.path, line, qualname, wrapped.reason, WORKER))
            continue
        edits.append(Edit.replace(pf.path, body_start + 1, body_end - 1, original, WORKER))
        taken.append((body_start, body_end))

    record = {RECORD, imported_helpers(pf).get(RECORD, RECORD)}  # (imported under another name in a file that binds it)
    for stmt in captures(query(_RECORD_QUERY, pf.tsx), pf.root).get("stmt", []):
        callee = stmt.named_children[0].child_by_field_name("function")
        if text(callee) not in record:
            continue
        if any(s <= stmt.start_byte < e for s, e in taken):
            continue
        bounds = _line_bounds(src, stmt.start_byte, stmt.end_byte)
        if bounds is not None:
            edits.append(Edit.delete(pf.path, bounds[0], bounds[1], WORKER))
        elif src[stmt.start_byte - 2 : stmt.start_byte] == b"{ ":
            edits.append(Edit.delete(pf.path, stmt.start_byte - 1, stmt.end_byte, WORKER))
        else:
            kept.append(Skip(pf.path, stmt.start_point[0] + 1, "recordActiveSpanError", "shares a line with other code", WORKER))

    # helper calls that survive this strip: a kept wrapper, or one the user reshaped
    # (e.g. a statement added after it) that is no longer recognised as otelize's
    specs = _module_spec_targets(pf.path, src_dir, modules)
    ours = _helper_imports(pf, specs)  # names bound by otelize's helper import in this file
    removed = taken + [(e.start, e.end) for e in edits if not e.text]
    kept_lines = {k.line for k in kept}
    survivors = [
        c for c in captures(query(_HELPER_CALLS, pf.tsx), pf.root).get("f", [])
        if text(c) in ours and not any(s <= c.start_byte < e for s, e in removed)
    ]
    for call in survivors:
        fn = _enclosing_function(function_ranges, call.start_byte)
        if fn is not None and fn[2] not in kept_lines and text(call) not in record:
            kept.append(Skip(pf.path, fn[2], fn[3], "otelize wrapper edited by hand (no longer its body's only statement)", WORKER))
            kept_lines.add(fn[2])

    for node in pf.root.named_children:
        required = required_module(node)
        if node.type != "import_statement" and required is None:
            continue
        source = node.child_by_field_name("source") if required is None else node
        if source is None or (text(source)[1:-1] if required is None else required[0]) not in specs:
            continue
        bounds = _line_bounds(src, node.start_byte, node.end_byte)
        if survivors and _imports_helper(node):
            kept.append(Skip(pf.path, node.start_point[0] + 1, text(source), HELPER_STILL_USED, WORKER))
            continue
        if bounds is None:
            kept.append(Skip(pf.path, node.start_point[0] + 1, text(source), "import shares a line with other code", WORKER))
            continue
        edits.append(Edit.delete(pf.path, bounds[0], bounds[1], WORKER))
    return edits, kept


def _enclosing_function(function_ranges: list[tuple[int, int, int, str, int]], pos: int) -> tuple[int, int, int, str, int] | None:
    """The innermost function whose body holds `pos`."""
    around = [r for r in function_ranges if r[0] <= pos < r[1]]
    return max(around, key=lambda r: r[0]) if around else None


def _imports_helper(node) -> bool:  # noqa: ANN001
    """Whether an import statement (or a CommonJS `const { ... } = require()`) binds one of
    the span helpers (not `import './tracing'` / `require('./tracing')`)."""
    required = required_module(node)
    if required is not None:
        return required[1] is not None
    return any(n.type == "import_clause" for n in node.named_children)


def _helper_imports(pf: ParsedFile, specs: set[str]) -> set[str]:
    names: set[str] = set()
    for node in pf.root.named_children:
        required = required_module(node)
        if required is not None and required[0] in specs and required[1] is not None:
            for prop in required[1].named_children:  # the local names: `{ withSpan }`, `{ withSpan: otelizeWithSpan }`
                local = prop if prop.type == "shorthand_property_identifier_pattern" else prop.child_by_field_name("value")
                if local is not None and prop.type in ("shorthand_property_identifier_pattern", "pair_pattern"):
                    names.add(text(local))
            continue
        source = node.child_by_field_name("source") if node.type == "import_statement" else None
        if source is not None and text(source)[1:-1] in specs:
            for spec in captures(query("(import_specifier) @s", pf.tsx), node).get("s", []):
                local = spec.child_by_field_name("alias") or spec.child_by_field_name("name")
                if local is not None:
                    names.add(text(local))
    return names


def strip_package_json(data: bytes, pins: dict[str, str], tracing_flag: str | None) -> list[Edit]:
    root = jsonedit.parse(data, "package.json")
    edits: list[Edit] = []
    deps = root.get("dependencies")
    if deps is not None and deps.value.kind == "object":
        members = deps.value.members
        ours = [m.key in pins and m.value.kind == "string" and m.value.value == pins[m.key] for m in members]
        if members and all(ours):
            edits += _remove_run(root.members, root.members.index(deps), root.members.index(deps))
        else:
            i = 0
            while i < len(members):
                if not ours[i]:
                    i += 1
                    continue
                j = i
                while j + 1 < len(members) and ours[j + 1]:
                    j += 1
                edits += _remove_run(members, i, j)
                i = j + 1
    scripts = root.get("scripts")
    start = scripts.value.get("start") if scripts is not None and scripts.value.kind == "object" else None
    if tracing_flag and start is not None and start.value.kind == "string":
        command = str(start.value.value)
        ours = f"node {tracing_flag} "
        at = 0 if command.startswith(ours) else command.rfind("&& " + ours) + 3 if ("&& " + ours) in command else None
        if at is not None:  # (first, or the last step after `&&`: where the config worker put it)
            edits.append(jsonedit.replace_string("package.json", start.value, command[:at] + "node " + command[at + len(ours):], WORKER))
    return edits


def _remove_run(members: tuple, i: int, j: int) -> list[Edit]:  # noqa: ANN001
    """Delete members[i..j] the way insert_members added them."""
    if j < len(members) - 1:
        return [Edit.delete("package.json", members[i].key_start, members[j + 1].key_start, WORKER)]
    if i > 0:
        return [Edit.delete("package.json", members[i - 1].value.end, members[j].value.end, WORKER)]
    return []  # the whole object: left as is (an empty object would not round-trip)


def strip(root: str | Path, *, write: bool = True) -> StripResult:
    if not write:
        return _strip(root, write)
    from otelize.synthesize.journal import run_lock

    with run_lock(root):  # in place: one run at a time (otelize.synthesize.journal)
        return _strip(root, write)


@gc_paused
def _strip(root: str | Path, write: bool) -> StripResult:
    from otelize.api import analyze
    from otelize.synthesize.write import write_changes
    from otelize.workers import config as config_worker
    from otelize.workers.placement import tracing_js_path
    from otelize.workers.dependency import strip_pins

    analysis = analyze(root)
    project = analysis.project
    result = StripResult()
    # a wrapper whose header differs from what instrument would write now was edited by hand
    from otelize.run.edit import run_workers

    edited = {
        (s.file, s.symbol)
        for res in run_workers(analysis)
        for s in res.skips
        if s.reason == EDITED_HEADER
    }
    from otelize.run.edit import worker_context

    ctx = worker_context(analysis)
    modules = (ctx.helper_path, ctx.tracing_path)
    edits: dict[str, list[Edit]] = defaultdict(list)
    for path in sorted(analysis.parsed):
        pf = analysis.parsed[path]
        if not pf.ok or path not in analysis.facts:
            continue
        if is_generated(pf.source):
            continue
        ranges = [
            (fn.body_start, fn.body_end, fn.line, fn.qualname, fn.start)
            for fn in analysis.facts[path].functions
            if fn.body_start is not None
        ]
        more, kept = strip_source(pf, project.src_dir, ranges, frozenset(q for f, q in edited if f == path), modules)
        edits[path] += more
        result.kept += kept
        result.unwrapped += sum(1 for e in more if e.end - e.start > 0 and e.text)

    generated = {ctx.tracing_path: config_worker.render_tracing(ctx), ctx.helper_path: config_worker.render_helper(ctx)}
    helper_needed = any(k.reason == HELPER_STILL_USED for k in result.kept)
    if helper_needed:  # kept instrumentation still imports it (and it imports @opentelemetry/api)
        generated.pop(ctx.helper_path)
    for path, expected in sorted(generated.items()):
        target = project.root / path
        if not target.is_file():
            continue
        current = target.read_bytes()
        if not is_generated(current):
            continue
        if not same_code(path, current, expected):  # re-flowed by a formatter is still ours
            result.kept.append(Skip(path, 1, path, "generated file was edited since; left in place", WORKER))
            continue
        result.changes[path] = (current, None)

    pins = strip_pins(ctx)
    recorded = config_worker.recorded_in_generated(ctx)
    if recorded is not None:  # tracing.ts says which packages otelize added: only those go
        pins = {k: v for k, v in pins.items() if k in recorded}
        if "@types/node" in recorded:  # held at the version the app was on (dependency.held_types_node)
            from otelize.workers.deps.packagejson import present

            declared_types = present(ctx.project.package_json_bytes).get("@types/node")
            if declared_types is not None:
                pins["@types/node"] = declared_types
    if helper_needed:
        pins = {k: v for k, v in pins.items() if k != "@opentelemetry/api"}
    flag = f"--import {tracing_js_path(ctx)}" if project.module == "esm" else None
    edits["package.json"] += strip_package_json(project.package_json_bytes, pins, flag)
    edits["package.json"] += config_worker.strip_bundle_entry(ctx)

    for path in sorted(edits):
        if not edits[path]:
            continue
        old = analysis.parsed[path].source if path in analysis.parsed else project.package_json_bytes
        new = apply_edits(old, edits[path])
        if new == old:
            continue
        if path != "package.json" and not parse_source(path, new).ok:
            result.kept.append(Skip(path, 1, path, "removing instrumentation would break the syntax; left as is", WORKER))
            continue
        result.changes[path] = (old, new)
    result.package_manager = project.package_manager
    if "package.json" in result.changes and project.lockfiles:
        result.lockfile = sorted(project.lockfiles)[0]
    result.kept.sort(key=lambda s: (s.file, s.line, s.symbol))
    if write and result.changes:
        from otelize.run.edit import expected_bytes

        changes = {p: new for p, (_, new) in result.changes.items()}
        write_changes(project.root, changes, expected_bytes(analysis, result.changes))
    return result


