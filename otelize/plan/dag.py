"""plan: the orchestrator's task DAG (networkx), ordered deterministically.

The workers and what each is given come from `otelize.plan.registry`: the
main-process workers (`dependency`, then `config`) come first, each depending
on the one before; then one task per (worker, file) for the per-file workers,
each depending on the last main-process task. The number and kind of tasks
follow from what was classified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otelize.workers.base import Task

if TYPE_CHECKING:
    from otelize.classify.engine import Classification
    from otelize.analysis.records import FileFacts

from otelize.plan.registry import CATEGORY_WORKER, ENTRIES, ERROR_HANDLERS, FILES, PROJECT, REGISTRY, WORKERS

__all__ = ["CATEGORY_WORKER", "WORKERS", "build_plan"]


def build_plan(
    facts: dict[str, FileFacts],
    classification: Classification,
    entry: str | None,
    editable: set[str],
    disabled_workers: frozenset[str] = frozenset(),
    disabled_categories: frozenset[str] = frozenset(),
    entries: tuple[str, ...] = (),
    registered: frozenset[str] | None = None,
) -> list[Task]:
    """Tasks in a deterministic topological order. Files of a disabled category get no task.

    `registered`: the symbols registered with `app.use()` / `router.use()` (graph ids); a
    function tagged `error-handler` is one only when it is registered so (Express calls a
    four-parameter function given to `use` for errors only). None: no such check."""
    import networkx as nx  # imported here: plan is imported by light modules

    dag: nx.DiGraph = nx.DiGraph()
    tasks: dict[str, Task] = {}

    def add(task: Task) -> None:
        if task.worker in disabled_workers:
            return
        tasks[task.id] = task
        dag.add_node(task.id)
        for dep in task.depends_on:
            if dep in tasks:
                dag.add_edge(dep, task.id)

    main: tuple[str, ...] = ()  # the main-process tasks so far: each depends on the ones before
    for w in REGISTRY:
        if w.targets == PROJECT:
            add(Task(w.name, w.name, ("package.json",), main))
        elif w.targets == ENTRIES:
            add(Task(w.name, w.name, tuple(e for e in entries if e in editable) if entries else tuple(f for f in [entry] if f), main))
        if w.main_process:
            main = (w.name,)
    base = main if main and main[0] in tasks else ()
    per_file = [w for w in REGISTRY if w.targets in (FILES, ERROR_HANDLERS)]
    for path in sorted(facts):
        decision = classification.file(path)
        if path not in editable or decision.category in disabled_categories:
            continue
        tagged = [
            fn.qualname for fn in facts[path].functions if "error-handler" in classification.function(path, fn.qualname).tags
        ]
        for w in per_file:
            if w.targets == FILES and decision.category in w.category_names:
                # error-handling middleware is the http worker's (one statement), never also wrapped in a span
                extra = (("error_handlers", tuple(tagged)),) if tagged else ()
                add(Task(f"{w.name}:{path}", w.name, (path,), base, decision.options + extra))
            elif w.targets == ERROR_HANDLERS:
                if tagged:
                    from otelize.analysis.graph import sym_id

                    handlers = [q for q in tagged if registered is None or sym_id(path, q) in registered]
                    unregistered = [q for q in tagged if q not in handlers]
                    options = (("error_handlers", tuple(handlers)),)
                    if unregistered:
                        options += (("unregistered", tuple(unregistered)),)
                    add(Task(f"{w.name}:{path}", w.name, (path,), base, options))

    rank = {w: i for i, w in enumerate(WORKERS)}
    order = nx.lexicographical_topological_sort(dag, key=lambda tid: (rank[tasks[tid].worker], tid))
    return [tasks[tid] for tid in order]
