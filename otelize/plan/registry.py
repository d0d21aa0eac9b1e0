"""The worker registry: one declaration per worker, everything else derived from it.

A worker is declared once, in `REGISTRY`: its name, the categories it serves
(with their graph colours), its module, where it runs, what the plan gives it
(`targets`) and the span helpers it calls. Read from here:

- `ruleset.CATEGORIES` (what a rule may classify a file as);
- `plan.WORKERS` and `plan.CATEGORY_WORKER` (task order and routing);
- `pipeline.run_task` (dispatch: the module's `run(ctx, task)`);
- `wrap.HELPERS` / `wrap.EXPORTS` (what counts as otelize's wrapper, and what strip removes);
- `report_plan.COLORS` (the graph colours);
- settings validation (`workers:`, `categories:`, `--enable`/`--disable`);
- the test lists.

This module imports nothing heavy: settings and the cached `--check` read it.
Adding a worker is one entry here, its module, and its rule file with its rule
test (README, "Adding a worker"); `check_registry` refuses an entry that is
half-wired at import time, and tests/test_registry.py checks the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

# What the plan gives a worker:
PROJECT = "project"  # one task over package.json
ENTRIES = "entries"  # one task over the entry files
FILES = "files"  # one task per editable file classified as one of its categories
ERROR_HANDLERS = "error-handlers"  # one task per file with functions tagged `error-handler`
TARGETS = (PROJECT, ENTRIES, FILES, ERROR_HANDLERS)
SPAN_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")


@dataclass(frozen=True)
class Category:
    name: str
    color: str  # fill colour in `otelize graph`


@dataclass(frozen=True)
class Helper:
    """A function otel.ts exports and workers insert calls to."""

    name: str  # withSpan
    kind: str | None  # the span kind it starts; None for a helper that starts no span
    cache_read: bool = False  # sets `cache.hit` from the result
    doc: str = ""


@dataclass(frozen=True)
class Worker:
    name: str
    module: str  # imported on dispatch; must define run(ctx, task) -> WorkerResult
    targets: str
    categories: tuple[Category, ...] = ()
    main_process: bool = False  # cross-file: runs in the orchestrator, before the per-file workers
    helpers: tuple[Helper, ...] = ()

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def helper(self, name: str | None = None) -> Helper:
        """The worker's span helper (the first one, or the one named)."""
        for h in self.helpers:
            if name is None or h.name == name:
                return h
        raise KeyError(f"worker {self.name}: no helper {name}")


WITH_SPAN = Helper("withSpan", "INTERNAL", doc="Runs `fn` inside an INTERNAL span; returns its result (see above for promises).")
WITH_CLIENT_SPAN = Helper("withClientSpan", "CLIENT", doc="Runs `fn` inside a CLIENT span (database, cache, outgoing API calls).")
WITH_CACHE_READ_SPAN = Helper(
    "withCacheReadSpan", "CLIENT", cache_read=True,
    doc="Like withClientSpan, and sets `cache.hit` to whether the (awaited) result is neither undefined nor null.",
)
RECORD_ERROR = Helper(
    "recordActiveSpanError", None,
    doc="Records `error` on the active span (if any): an exception event; status ERROR and `error.type` unless the error's HTTP status is below 500.",
)

REGISTRY: tuple[Worker, ...] = (
    Worker("dependency", "otelize.workers.dependency", PROJECT, main_process=True),
    Worker("config", "otelize.workers.config", ENTRIES, (Category("entrypoint", "#f4cccc"),), main_process=True),
    Worker(
        "http", "otelize.workers.http", ERROR_HANDLERS,
        (Category("http", "#cfe2f3"), Category("middleware", "#e6e6e6")), helpers=(RECORD_ERROR,),
    ),
    Worker("service", "otelize.workers.service", FILES, (Category("service", "#d9ead3"),), helpers=(WITH_SPAN,)),
    Worker("database", "otelize.workers.database", FILES, (Category("database", "#fce5cd"),), helpers=(WITH_CLIENT_SPAN,)),
    Worker(
        "cache", "otelize.workers.cache", FILES, (Category("cache", "#fff2cc"),),
        helpers=(WITH_CACHE_READ_SPAN, WITH_CLIENT_SPAN),
    ),
    Worker("external-api", "otelize.workers.external_api", FILES, (Category("external-api", "#d9d2e9"),), helpers=(WITH_CLIENT_SPAN,)),
    Worker(
        "messaging", "otelize.workers.messaging", FILES, (Category("messaging", "#d0e0e3"),),
        helpers=(
            Helper("withConsumerSpan", "CONSUMER", doc="Runs `fn` inside a CONSUMER span (a queue or stream consumer's handler)."),
            Helper("withProducerSpan", "PRODUCER", doc="Runs `fn` inside a PRODUCER span (a function that adds a job to a queue)."),
            WITH_SPAN,
        ),
    ),
)

OTHER = Category("other", "#ffffff")  # classified as nothing a worker serves
ROUTE_COLOR = "#ffffff"  # route nodes in `otelize graph`


def check_registry(registry: tuple[Worker, ...]) -> None:
    """Refuse a half-wired registry with one clear line (raised at import time)."""
    seen_workers: set[str] = set()
    owner: dict[str, str] = {}
    helpers: dict[str, Helper] = {}
    for w in registry:
        where = f"worker registry: `{w.name}`"
        if w.name in seen_workers:
            raise ValueError(f"{where}: declared twice")
        seen_workers.add(w.name)
        if w.targets not in TARGETS:
            raise ValueError(f"{where}: targets must be one of {', '.join(TARGETS)}")
        if not w.module.startswith("otelize.workers."):
            raise ValueError(f"{where}: module must be under otelize.workers")
        if w.targets == FILES and not w.categories:
            raise ValueError(f"{where}: a per-file worker must serve at least one category")
        if w.main_process != (w.targets in (PROJECT, ENTRIES)):
            raise ValueError(f"{where}: only project- and entry-wide workers run in the main process")
        for c in w.categories:
            if c.name in owner or c.name == OTHER.name:
                raise ValueError(f"{where}: category `{c.name}` is already served by `{owner.get(c.name, 'other')}`")
            owner[c.name] = w.name
        for h in w.helpers:
            if h.kind is not None and h.kind not in SPAN_KINDS:
                raise ValueError(f"{where}: helper `{h.name}` has unknown span kind {h.kind}")
            if helpers.setdefault(h.name, h) != h:
                raise ValueError(f"{where}: helper `{h.name}` is declared twice with different kinds")


check_registry(REGISTRY)

WORKERS: tuple[str, ...] = tuple(w.name for w in REGISTRY)  # plan order
BY_NAME: dict[str, Worker] = {w.name: w for w in REGISTRY}
MAIN_WORKERS: tuple[str, ...] = tuple(w.name for w in REGISTRY if w.main_process)
CATEGORY_WORKER: dict[str, str] = {c.name: w.name for w in REGISTRY if w.targets == FILES for c in w.categories}
CATEGORY_LIST: tuple[Category, ...] = tuple(c for w in REGISTRY for c in w.categories) + (OTHER,)
CATEGORIES: tuple[str, ...] = tuple(c.name for c in CATEGORY_LIST)
COLORS: dict[str, str] = {**{c.name: c.color for c in CATEGORY_LIST}, "route": ROUTE_COLOR}


def _helpers() -> tuple[Helper, ...]:
    out: dict[str, Helper] = {}
    for w in REGISTRY:
        for h in w.helpers:
            out.setdefault(h.name, h)
    return tuple(out.values())


ALL_HELPERS: tuple[Helper, ...] = _helpers()  # in registry order, each once
SPAN_HELPERS: tuple[Helper, ...] = tuple(h for h in ALL_HELPERS if h.kind is not None)
