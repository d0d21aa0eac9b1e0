"""HTTP worker: enrich, never duplicate, the auto-instrumented Express spans.

Express and HTTP server spans come from the auto-instrumentation, so no span
is added per handler. The error-handling middleware gets one statement that
records the exception, ERROR status and `error.type` on the active span.
(Health-check routes are excluded from tracing by the config worker.)
"""

from __future__ import annotations

from otelize.synthesize.edits import Edit, ImportRequest, Skip, WorkerResult
from otelize.analysis.parse import ParsedFile, text
from otelize.workers.base import Task, WorkerContext
from otelize.workers.spans import helper_specifier, uses_require
from otelize.synthesize.wrap import RECORD, detect_style, has_directive, import_name, local_names

def record_statement(param: str, semicolons: bool, local: str = RECORD) -> bytes:
    return f"{local}({param}){';' if semicolons else ''}".encode()


def first_statement(pf: ParsedFile, body_start: int, body_end: int):  # noqa: ANN201
    body = pf.root.descendant_for_byte_range(body_start, body_end)
    stmts = [c for c in body.named_children if c.type != "comment"] if body is not None else []
    return body, (stmts[0] if stmts else None)


def is_record_call(node, param: str, local: str = RECORD) -> bool:  # noqa: ANN001
    if node is None or node.type != "expression_statement" or not node.named_children:
        return False
    call = node.named_children[0]
    if call.type != "call_expression":
        return False
    fn, args = call.child_by_field_name("function"), call.child_by_field_name("arguments")
    return text(fn) in (RECORD, local) and args is not None and text(args) == f"({param})"


def _above_attached_comments(src: bytes, first, body, line_start: int) -> tuple[int, str | None]:  # noqa: ANN001
    """Where the record call goes: above the comments attached to the first statement (no
    blank line between), so that a `// @ts-expect-error` or `// eslint-disable-next-line`
    keeps governing the line it was written for. A reason instead when a directive sits on
    the opening brace's line (a new line after it would be governed by it)."""
    at = line_start
    node = first.prev_sibling
    while node is not None and node.type == "comment":
        comment_line = src.rfind(b"\n", 0, node.start_byte) + 1
        if node.start_point[0] == body.start_point[0]:  # on the `{` line
            if has_directive(src[node.start_byte : node.end_byte]):
                return at, "a directive comment on the opening brace's line governs the first statement"
            break
        if src[node.end_byte : at].count(b"\n") > 1 or src[comment_line : node.start_byte].strip():
            break
        at = comment_line
        node = node.prev_sibling
    return at, None


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    result = WorkerResult(task.worker)
    (path,) = task.files
    pf, facts = ctx.parsed[path], ctx.facts[path]
    style = detect_style(pf)
    for qualname in task.option("unregistered", ()):
        fn = facts.function(qualname)
        result.skips.append(Skip(path, fn.line if fn else 0, qualname,
                                 "four parameters, but never registered with app.use() or router.use(): not an error handler",
                                 task.worker))
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
        local = local_names(pf)[RECORD]  # (another name when the file binds `recordActiveSpanError`)
        result.imports.append(ImportRequest(path, helper_specifier(ctx, path), (import_name(RECORD, local),), False, task.worker, uses_require(ctx, path)))
        if is_record_call(first, param, local):
            continue
        stmt = record_statement(param, style.semicolons, local)
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
        at, reason = _above_attached_comments(src, first, body, line_start)
        if reason is not None:
            result.skips.append(Skip(path, fn.line, qualname, reason, task.worker))
            continue
        result.edits.append(Edit.insert(path, at, indent + stmt + style.newline, task.worker))
    return result
