"""plan: the orchestrator's task DAG (networkx), ordered deterministically.

`dependency` and `config` come first; then one task per (worker, file) for
the http, service, database, cache and external-api workers, each depending
on `config`. The number and kind of tasks follow from what was classified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otelize.workers.base import Task

if TYPE_CHECKING:
    from otelize.classify import Classification
    from otelize.facts import FileFacts

WORKERS = ("dependency", "config", "http", "service", "database", "cache", "external-api")
CATEGORY_WORKER = {"service": "service", "database": "database", "cache": "cache", "external-api": "external-api"}


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
    import networkx as nx  # imported here: `WORKERS` is read by light modules (settings)

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

    add(Task("dependency", "dependency", ("package.json",)))
    add(Task("config", "config", tuple(e for e in entries if e in editable) if entries else tuple(f for f in [entry] if f), ("dependency",)))
    base = ("config",) if "config" in tasks else ()
    for path in sorted(facts):
        decision = classification.file(path)
        if path not in editable or decision.category in disabled_categories:
            continue
        worker = CATEGORY_WORKER.get(decision.category)
        if worker is not None:
            add(Task(f"{worker}:{path}", worker, (path,), base, decision.options))
        tagged = [
            fn.qualname
            for fn in facts[path].functions
            if "error-handler" in classification.function(path, fn.qualname).tags
        ]
        if tagged:
            from otelize.graph import sym_id

            handlers = [q for q in tagged if registered is None or sym_id(path, q) in registered]
            unregistered = [q for q in tagged if q not in handlers]
            options = (("error_handlers", tuple(handlers)),) + ((("unregistered", tuple(unregistered)),) if unregistered else ())
            add(Task(f"http:{path}", "http", (path,), base, options))

    rank = {w: i for i, w in enumerate(WORKERS)}
    order = nx.lexicographical_topological_sort(dag, key=lambda tid: (rank[tasks[tid].worker], tid))
    return [tasks[tid] for tid in order]
