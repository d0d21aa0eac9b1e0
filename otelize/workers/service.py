"""Service worker: an INTERNAL span around each public method / exported function."""

from __future__ import annotations

from otelize.edits import WorkerResult
from otelize.facts import FunctionFact
from otelize.registry import WITH_SPAN
from otelize.workers.base import Task, WorkerContext
from otelize.workers.spans import make_spec, style_of, wrap_file


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    (path,) = task.files
    style = style_of(ctx, path)

    def choose(fn: FunctionFact):  # noqa: ANN202
        return make_spec(ctx, path, fn, style, WITH_SPAN, [])

    return wrap_file(ctx, task, choose)
