"""Service worker: an INTERNAL span around each public method / exported function."""

from __future__ import annotations

from otelize.synthesize.edits import WorkerResult
from otelize.analysis.records import FunctionFact
from otelize.plan.registry import WITH_SPAN
from otelize.workers.base import Task, WorkerContext
from otelize.workers.spans import make_spec, style_of, wrap_file


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    style = style_of(ctx, path)

    def choose(fn: FunctionFact):  # noqa: ANN202
        return make_spec(ctx, path, fn, style, WITH_SPAN, [])

    return wrap_file(ctx, task, choose, total=True)  # (choose always names the span span_name)
