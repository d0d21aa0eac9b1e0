"""Cache worker: CLIENT spans around get/set/del-style operations.

Reads use `withCacheReadSpan`, which sets the boolean `cache.hit` from the
result (OpenTelemetry has no cache convention yet; `cache.hit` is otelize's
one documented extension).
"""

from __future__ import annotations

import re

from otelize.synthesize.edits import WorkerResult
from otelize.analysis.records import FunctionFact
from otelize.plan.registry import WITH_CACHE_READ_SPAN, WITH_CLIENT_SPAN
from otelize.workers.base import Task, WorkerContext
from otelize.workers.database import db_system
from otelize.workers.spans import make_spec, style_of, wrap_file
from otelize.synthesize.wrap import ts_string

OPERATIONS = (
    (r"^(get|fetch|read|lookup|peek|has|exists|mget)", "GET", True),
    (r"^(set|put|write|store|save|mset|setex|expire|touch|incr|decr)", "SET", False),
    (r"^(del|delete|remove|evict|invalidate|clear|flush|purge|unlink)", "DEL", False),
)


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    style = style_of(ctx, path)
    system = db_system(ctx.facts[path], dict(task.options))

    def choose(fn: FunctionFact):  # noqa: ANN202
        q = style.quote
        op, read = None, False
        for pattern, name, is_read in OPERATIONS:
            if re.search(pattern, fn.name, re.I):
                op, read = name, is_read
                break
        extra: list[tuple[str, str, object]] = [("db.system.name", ts_string(system, q), system)]
        if op is not None:  # an operation the name states; never the function's own name upper-cased
            extra.append(("db.operation.name", ts_string(op, q), op))
        # cache.hit only where the read's result shows it: a value, or undefined/null for a miss
        helper = WITH_CACHE_READ_SPAN if read and op == "GET" and not re.match(r"^(has|exists)", fn.name) else WITH_CLIENT_SPAN
        return make_spec(ctx, path, fn, style, helper, extra)

    return wrap_file(ctx, task, choose, total=True)  # (choose always names the span span_name)
