"""HTTP worker: enrich, never duplicate, the auto-instrumented Express spans.

Express and HTTP server spans come from the auto-instrumentation, so no span
is added per handler. The error-handling middleware gets one statement that
records the exception, ERROR status and `error.type` on the active span.
(Health-check routes are excluded from tracing by the config worker.)
"""

from __future__ import annotations

from otelize.edits import Edit, ImportRequest, Skip, WorkerResult
from otelize.parse import ParsedFile, text
from otelize.registry import RECORD_ERROR
from otelize.workers.base import Task, WorkerContext
from otelize.workers.spans import helper_specifier
from otelize.wrap import detect_style

RECORD = RECORD_ERROR.name


def record_statement(param: str, semicolons: bool) -> bytes:
    return f"{RECORD}({param}){';' if semicolons else ''}".encode()


def first_statement(pf: ParsedFile, body_start: int, body_end: int):  # noqa: ANN201
    body = pf.root.descendant_for_byte_range(body_start, body_end)
    stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    return body, (stmts[0] if stmts else None)


def is_record_call(node, param: str) -> bool:  # noqa: ANN001
    if node is None or node.type != "expression_statement" or not node.named_children:
        return False
    call = node.named_children[0]
    if call.type != "call_expression":
        return False
    fn, args = call.child_by_field_name("function"), call.child_by_field_name("arguments")
    return text(fn) == RECORD and args is not None and text(args) == f"({param})"


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    result = WorkerResult(task.worker)
    (path,) = task.files
    pf, facts = ctx.parsed[path], ctx.facts[path]
    style = detect_style(pf)
    for qualname in task.option("error_handlers", ()):
        fn = facts.function(qualname)
        if fn is None or fn.body_start is None or not fn.params:
            result.skips.append(Skip(path, fn.line if fn else 0, qualname, "error handler without a block body", task.worker))
            continue
        if fn.line - 1 in facts.ignore_lines:
            result.skips.append(Skip(path, fn.line, qualname, "ignored by comment", task.worker))
            continue
        param = fn.params[0].name
        if not param.isidentifier():
            result.skips.append(Skip(path, fn.line, qualname, "error parameter is destructured", task.worker))
            continue
        body, first = first_statement(pf, fn.body_start, fn.body_end)
        result.imports.append(ImportRequest(path, helper_specifier(ctx, path), (RECORD,), False, task.worker))
        if is_record_call(first, param):
            continue
        stmt = record_statement(param, style.semicolons)
        src = pf.source
        if first is None or first.start_point[0] == body.start_point[0]:
            # `{ stmt` on the brace's line, or an empty body: keep it on one line
            result.edits.append(Edit.insert(path, fn.body_start + 1, b" " + stmt, task.worker))
            continue
        line_start = src.rfind(b"\n", 0, first.start_byte) + 1
        indent = src[line_start : first.start_byte]
        if indent.strip():
            result.skips.append(Skip(path, fn.line, qualname, "first statement shares a line with code", task.worker))
            continue
        result.edits.append(Edit.insert(path, line_start, indent + stmt + style.newline, task.worker))
    return result
