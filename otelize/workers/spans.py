"""Shared machinery of the span workers (service, database, cache, external-api).

Each span worker decides *which* functions of its file get a span, the span's
name, kind and attributes; this module decides *whether* a function can be
wrapped safely and produces the edit, the import request and the report entries.
"""

from __future__ import annotations

import bisect
import posixpath
from functools import lru_cache
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from otelize.synthesize.edits import Edit, ImportRequest, PlannedSpan, Skip, WorkerResult
from otelize.analysis.records import FunctionFact
from tree_sitter import Node

from otelize.analysis.parse import text
from otelize.synthesize.unwrap import find_wrapper, same_header
from otelize.synthesize.wrap import (
    FOOTER, FOOTER_NO_SEMICOLON, CannotWrap, Style, detect_style, header, import_name, literal_spans, local_names,
    return_type_argument, wrap_interior,
)
from otelize.plan.registry import WITH_SPAN, Helper
from otelize.workers.base import Task, WorkerContext
from otelize.workers.eligibility import candidates, eligibility

EDITED_HEADER = "span header edited by hand (name or attributes differ from otelize's); left as is"


@dataclass(frozen=True)
class SpanSpec:
    """What a worker wants for one function."""

    name: str
    kind: str  # the helper's span kind: INTERNAL | CLIENT | ...
    helper: str  # a helper of otelize.plan.registry: withSpan | withClientSpan | ...
    attributes: tuple[tuple[str, str], ...]  # key -> TypeScript expression
    report_attributes: tuple[tuple[str, object], ...]  # key -> value for the report (literal or "<param>")


@dataclass(frozen=True)
class TaskRole:
    """A function's role, decided by classification (otelize.classify.roles.assign_roles)."""

    action: str  # span | skip
    kind: str  # INTERNAL | CLIENT
    name: str  # span name override (unique per app), or ""
    reason: str


def task_roles(task: Task) -> dict[str, TaskRole]:
    return {q: TaskRole(a, k, n, r) for q, a, k, n, r in (task.option("roles") or ())}


def apply_role(ctx: WorkerContext, path: str, fn: FunctionFact, style: Style, spec: SpanSpec, role: TaskRole) -> SpanSpec:
    """An operation whose I/O an auto-instrumented library already traces becomes an
    INTERNAL span with no client attributes; a colliding name gets its unique form."""
    if role.kind == "INTERNAL" and spec.kind != "INTERNAL":
        spec = make_spec(ctx, path, fn, style, WITH_SPAN, [], spec.name)
    if role.name and ctx.settings.span_naming == "class.method":
        spec = replace(spec, name=role.name)
    return spec


def helper_specifier(ctx: WorkerContext, file: str) -> str:
    esm = ctx.project.module == "esm" or file.endswith((".mts", ".mjs"))
    return _specifier(ctx.helper_path, posixpath.dirname(file) or ".", esm)


@lru_cache(maxsize=4096)
def _specifier(helper_path: str, folder: str, esm: bool) -> str:
    """The import specifier of the span helper from `folder` (relpath reads the working
    directory on every call: one per folder, not per file)."""
    rel = posixpath.splitext(posixpath.relpath(helper_path, folder))[0]
    if not rel.startswith("."):
        rel = "./" + rel
    if esm:
        rel += ".js"  # ES-module resolution needs the extension (an .mts/.mjs file is ESM in any project)
    return rel


def module_mismatch(ctx: WorkerContext, file: str) -> str | None:
    """Why `file` cannot import the span helper at all (None when it can)."""
    if file.endswith((".cts", ".cjs")) and ctx.project.module == "esm":
        kind = file.rsplit(".", 1)[-1]
        return f"CommonJS file (.{kind}) in an ES-module project: it cannot require() the ES-module span helper"
    return None


def uses_require(ctx: WorkerContext, file: str) -> bool:
    """Whether `file` is a CommonJS JavaScript file, which gets `require()` rather than `import`:
    a .cjs file, or a .js one without import/export statements in a CommonJS package.
    (TypeScript files always get `import`: tsc compiles it to what the project runs.)"""
    from otelize.analysis.parse import is_javascript

    if not is_javascript(file) or file.endswith(".mjs"):
        return False
    if file.endswith(".cjs"):
        return True
    pf = ctx.parsed.get(file)
    if pf is not None and any(c.type in ("import_statement", "export_statement") for c in pf.root.named_children):
        return False  # ES-module syntax (written for a bundler or transpiler): keep to it
    return ctx.project.module != "esm"


class _Intervals:
    """Disjoint byte ranges [start, end) of the functions wrapped so far, kept sorted.

    Membership is a bisection (n log n over a file, not n²: one file of 25,000
    methods used to spend minutes comparing every function with every wrapped one).
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        i = bisect.bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, end)

    def __contains__(self, offset: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self._ends[i]


def wrap_file(
    ctx: WorkerContext,
    task: Task,
    choose: Callable[[FunctionFact], SpanSpec | str | None],
    functions: Iterable[FunctionFact] | None = None,
    *,
    total: bool = False,
) -> WorkerResult:
    """Wrap every chosen function of the task's file.

    `choose` returns a SpanSpec to wrap, a string to skip with that reason, or
    None to leave the function alone silently (not this worker's business).
    `total`: `choose` returns a SpanSpec for every function, named `span_name(ctx, fn, path)`;
    where classification makes a span INTERNAL, `apply_role` would replace that spec with
    the plain INTERNAL one, so `choose` (its attribute questions) is not asked at all.
    """
    result = WorkerResult(task.worker)
    (path,) = task.files
    pf = ctx.parsed[path]
    facts = ctx.facts[path]
    style = detect_style(pf)
    helpers: set[str] = set()
    wrapped = _Intervals()
    mismatch = module_mismatch(ctx, path)
    roles = task_roles(task)
    error_handlers = task.option("error_handlers", ())
    default_unit = _unit_of(style)
    for fn in functions if functions is not None else candidates(facts):
        role = roles.get(fn.qualname)
        reason = eligibility(fn, pf, facts, allow_private=role is not None and role.action == "span")
        if reason is None and role is not None and role.action == "skip":
            reason = role.reason
        if reason is None and mismatch is not None:
            reason = mismatch
        if reason is None and fn.qualname in error_handlers:
            reason = "error-handling middleware (the http worker records the error on the active span)"
        if reason is None and fn.start in wrapped:
            reason = "nested inside a function that is already wrapped"
        if reason is not None:
            result.skips.append(Skip(path, fn.line, fn.qualname, reason, task.worker))
            continue
        if total and role is not None and role.kind == "INTERNAL":
            spec = make_spec(ctx, path, fn, style, WITH_SPAN, [])  # what apply_role makes of any spec of choose's
        else:
            spec = choose(fn)
            if spec is None:
                continue
            if isinstance(spec, str):
                result.skips.append(Skip(path, fn.line, fn.qualname, spec, task.worker))
                continue
        if role is not None:
            spec = apply_role(ctx, path, fn, style, spec, role)
        exported_as = spec.helper
        local = local_names(pf)[exported_as]  # the name this file calls it by
        planned = PlannedSpan(spec.name, spec.kind, task.worker, path, fn.line, spec.report_attributes)
        body = pf.root.descendant_for_byte_range(fn.body_start, fn.body_end)
        existing = find_wrapper(pf, body)
        targ = return_type_argument(pf, body)
        hdr = header(local, spec.name, list(spec.attributes), fn.is_async, style.quote, targ)
        if existing is not None:
            helpers.add(exported_as)
            arrow = existing.child_by_field_name("arguments").named_children[-1]
            inner = arrow.child_by_field_name("body")
            start, end = existing.parent.start_byte, inner.start_byte + 1
            current = pf.source[start:end]
            planned = replace(planned, added=False)
            have = _type_argument(existing)
            written = hdr if have == targ else header(local, spec.name, list(spec.attributes), fn.is_async, style.quote, have)
            state = _header_state(current, hdr, written, have, targ)
            if state == "current":  # as otelize would write it now (maybe re-flowed by a formatter)
                result.spans.append(planned)
            elif state == "outdated" or _outdated_own_header(existing, current, spec, local, fn, path, style, have):
                # otelize's own header under another span_naming setting, from an otelize that set fewer
                # attributes, or for a return type since changed: bring it up to date (keeping a type
                # argument where otelize now writes none)
                result.edits.append(Edit.replace(path, start, end, hdr if targ or not have else written, task.worker))
                result.spans.append(planned)
            else:  # report the span name the code really uses, and leave the user's header alone
                name = text(next(a for a in existing.child_by_field_name("arguments").named_children if a.type != "comment"))
                result.spans.append(replace(planned, name=name[1:-1]))
                result.skips.append(Skip(path, fn.line, fn.qualname, EDITED_HEADER, task.worker))
            continue
        start, end = fn.body_start + 1, fn.body_end - 1
        try:
            footer = FOOTER if style.semicolons else FOOTER_NO_SEMICOLON
            new = wrap_interior(pf.source[start:end], start, hdr, literal_spans(pf, start, end), default_unit, footer)
        except CannotWrap as exc:
            result.skips.append(Skip(path, fn.line, fn.qualname, str(exc), task.worker))
            continue
        result.edits.append(Edit.replace(path, start, end, new, task.worker))
        wrapped.add(fn.start, fn.end)
        result.spans.append(planned)
        helpers.add(exported_as)
    if helpers:
        names = tuple(sorted(import_name(h, local_names(pf)[h]) for h in helpers))
        result.imports.append(ImportRequest(path, helper_specifier(ctx, path), names, False, task.worker, uses_require(ctx, path)))
    return result


def _unit_of(style: Style) -> Callable[[], bytes]:
    """The file's indent unit, asked for only if a body needs it (most bodies are indented
    beyond their closing brace, and that decides the unit without the whole-file guess)."""
    return lambda: style.indent_unit


def _type_argument(call: Node) -> str:
    """The text between the `<` and `>` of the wrapper call's type arguments ("" when it has none)."""
    targs = call.child_by_field_name("type_arguments")
    return text(targs)[1:-1] if targs is not None else ""


def _header_state(current: bytes, hdr: bytes, written: bytes, have: str, targ: str) -> str:
    """Whether the wrapper's header `current` is as otelize writes it now ("current"), its own
    but for the type argument of a return type changed since ("outdated"), or neither (""; it
    may still be otelize's, `_outdated_own_header`). `hdr`: the header otelize writes now, with
    type argument `targ` (maybe ""); `written`: the same with the wrapper's own type argument
    `have`. A header without one (from an otelize before type arguments), or with one where
    otelize writes none now (the return type annotation since removed, or the user's own), is
    current: a second run makes no edit to it, and strip takes it off. A stale type argument
    is "outdated" only in the one-line header otelize wrote; one a formatter re-flowed is "".
    """
    if _same(current, hdr):
        return "current"
    if have == targ or not _same(current, written):
        return ""
    if have and targ:
        return "outdated" if current == written else ""
    return "current"


def _same(current: bytes, hdr: bytes) -> bool:
    return current == hdr or same_header(current, hdr)


def _outdated_own_header(
    call: Node, current: bytes, spec: SpanSpec, local: str, fn: FunctionFact, path: str, style: Style, have: str = ""
) -> bool:
    """`current` is exactly a header otelize writes for this function, under any span_naming
    style, with a subset of the attributes it would set now (every one with the same value)
    that includes its own `code.function.name` / `code.file.path`: written under another
    naming setting, or by an earlier otelize before it learnt an attribute. A header with
    another name, or any attribute or value otelize would not write, is the user's.
    `local`: the name this file calls the spec's helper by."""
    args = [a for a in call.child_by_field_name("arguments").named_children if a.type != "comment"]
    if len(args) != 3 or args[0].type != "string" or args[1].type != "object":
        return False
    helper, name = text(call.child_by_field_name("function")), text(args[0])[1:-1]
    wanted = dict(spec.attributes)
    attrs: list[tuple[str, str]] = []
    for pair in args[1].named_children:
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if pair.type != "pair" or key is None or value is None or key.type != "string":
            return False
        attrs.append((text(key)[1:-1], text(value)))
    keys = [k for k, _ in attrs]
    if helper != local or name not in names_in_every_style(fn, path) | {spec.name}:
        return False
    if not {"code.function.name", "code.file.path"} <= set(keys) or any(wanted.get(k) != v for k, v in attrs):
        return False
    return current == header(helper, name, attrs, fn.is_async, style.quote, have)


def code_attributes(ctx: WorkerContext, path: str, fn: FunctionFact, quote: str) -> list[tuple[str, str, object]]:
    """(key, ts expression, report value) for code.function.name and code.file.path."""
    from otelize.synthesize.wrap import ts_string

    qual = span_base_name(fn, path)
    return [
        ("code.function.name", ts_string(qual, quote), qual),
        ("code.file.path", ts_string(path, quote), path),
    ]


def span_base_name(fn: FunctionFact, path: str) -> str:
    """`OrderService.createOrder`, `createOrder`, or the file stem for anonymous defaults."""
    if fn.name in ("default",) or fn.name.startswith("<anonymous>"):
        stem = posixpath.basename(path).split(".", 1)[0]
        return f"{stem}.default"
    if fn.class_name:
        return f"{fn.class_name}.{fn.name}"
    if fn.kind == "object-method" and fn.name.startswith("default."):  # a member of `export default { ... }`
        stem = posixpath.basename(path).split(".", 1)[0]
        return f"{stem}.{fn.name[len('default.'):]}"
    return fn.name


def span_name(ctx: WorkerContext, fn: FunctionFact, path: str) -> str:
    """The span name in the `span_naming` style of the settings (code.function.name keeps `class.method`)."""
    return name_in_style(ctx.settings.span_naming, fn, path)


def names_in_every_style(fn: FunctionFact, path: str) -> set[str]:
    from otelize.project.settings import SPAN_NAMING

    return {name_in_style(style, fn, path) for style in SPAN_NAMING}


def name_in_style(style: str, fn: FunctionFact, path: str) -> str:
    if style == "method" and not (fn.name == "default" or fn.name.startswith("<anonymous>")):
        return fn.name.rsplit(".", 1)[-1] if fn.kind == "object-method" else fn.name
    if style == "file.class.method":
        stem = posixpath.basename(path).split(".", 1)[0]
        base = span_base_name(fn, path)
        return base if base.startswith(stem + ".") else f"{stem}.{base}"
    return span_base_name(fn, path)


def make_spec(
    ctx: WorkerContext,
    path: str,
    fn: FunctionFact,
    style: Style,
    helper: Helper,
    extra: list[tuple[str, str, object]],
    name: str | None = None,
) -> SpanSpec:
    """The span for `fn`: its name, the helper's kind, the code attributes and `extra`."""
    attrs = code_attributes(ctx, path, fn, style.quote) + extra
    attrs.sort(key=lambda a: a[0])
    return SpanSpec(
        name or span_name(ctx, fn, path),
        helper.kind or "INTERNAL",
        helper.name,
        tuple((k, expr) for k, expr, _ in attrs),
        tuple((k, val) for k, _, val in attrs),
    )


def style_of(ctx: WorkerContext, path: str) -> Style:
    return detect_style(ctx.parsed[path])
