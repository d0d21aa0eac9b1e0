"""The analysis phase behind `otelize.api.analyze`: what it returns (`Analysis`), the
scan (with the `--cache` scan cache), the cross-file steps after it (graph,
classification, plan), and the refusal of an app with nothing to instrument."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otelize.project.model import Project

if TYPE_CHECKING:  # heavy modules (networkx, tree-sitter) load lazily: a cached --check needs none of them
    from otelize.analysis.graph import AppGraph
    from otelize.analysis.parse import ParsedFile
    from otelize.analysis.records import FileFacts
    from otelize.classify.engine import Classification
    from otelize.classify.ruleset import RuleSet
    from otelize.project.settings import Settings
    from otelize.workers.base import Task


@dataclass
class Analysis:
    project: Project
    parsed: dict[str, ParsedFile]
    facts: dict[str, FileFacts]
    graph: AppGraph
    classification: Classification
    rules: RuleSet
    tasks: list[Task]
    unparsable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    settings: Settings = None  # type: ignore[assignment]  # always set by analyze
    jobs: int = 1
    cache_key: str | None = None  # with --cache: what the per-file caches are keyed under (otelize.run.scancache)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (file, reason): code excluded by default
    pool: Any = None  # with keep_pool: the scan's children, holding the trees (otelize.run.pipeline.StickyPool)

    def close_pool(self) -> None:
        """End the scan's pool children (if kept); the edit phase then parses in a fresh pool."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    @property
    def entry(self) -> str | None:
        return self.graph.entry

    @cached_property
    def left_alone(self) -> dict[str, str]:
        """Files never edited because of a marker in them, with the reason (for the plan and the report)."""
        reasons = {"ignore-file": "ignored by comment", "generated": "generated file (@generated / DO NOT EDIT)"}
        out: dict[str, str] = {}
        for path in sorted(self.facts):
            for marker, reason in reasons.items():
                if marker in self.facts[path].markers:
                    out[path] = reason
                    break
        return out

    @cached_property
    def editable(self) -> set[str]:
        return {p for p, pf in self.parsed.items() if pf.ok and p in self.facts and p not in self.left_alone}


def read_sources(project: Project) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    sources: list[tuple[str, bytes]] = []
    problems: list[tuple[str, str]] = []
    from otelize.project.walk import read_regular

    for path in project.files:
        try:
            sources.append((path, read_regular(project.root / path)))
        except OSError as exc:
            problems.append((path, f"unreadable ({exc.strerror})"))
    return sources, problems


@dataclass
class Scanned:
    """The scan's output: each file's tree (or bytes and errors), its scan result, the
    jobs the edit phase runs in, the `--cache` key (None without) and the kept pool."""

    parsed: dict[str, Any]
    scans: list[Any]
    jobs: int
    cache_key: str | None = None
    pool: Any = None


def scan(
    root: Path, sources: list[tuple[str, bytes]], rules: Any, settings: Settings, jobs: int | None,
    cache_key: str | None, keep_pool: bool,
) -> Scanned:
    """Parse, extract facts and run the tree-based rules of every file (otelize.run.pipeline);
    with a `cache_key` (--cache), only the files the scan cache does not hold."""
    from otelize.run.pipeline import default_jobs, scan_files

    if cache_key is not None:
        return _scan_with_cache(root, sources, rules, cache_key, jobs, settings, keep_pool)
    jobs = jobs if jobs is not None else settings.jobs or default_jobs(len(sources))
    parsed, scans, pool = scan_files(sources, rules, jobs, keep=keep_pool)
    return Scanned(parsed, scans, jobs, None, pool)


def _scan_with_cache(
    root: Path, sources: list[tuple[str, bytes]], rules: Any, key: str, jobs: int | None, settings: Settings,
    keep_pool: bool,
) -> Scanned:
    """scan_files for the files the scan cache does not hold; the rest from the cache.
    With `keep_pool`, the pool that scanned the misses (if one did) is kept, holding their trees."""
    from otelize.analysis.parse import ParsedFile
    from otelize.run import scancache
    from otelize.run.pipeline import default_jobs, scan_files

    requested = jobs if jobs is not None else settings.jobs
    parsed: dict[str, ParsedFile] = {}
    pools: list[Any] = []

    def scan_misses(misses: list[tuple[str, bytes]]) -> list[Any]:
        trees, scans, pool = scan_files(misses, rules, requested or default_jobs(len(misses)), keep=keep_pool)
        parsed.update(trees)  # in-process scans keep the trees they built
        if pool is not None:
            pools.append(pool)
        return scans

    digests = {path: scancache.digest(data) for path, data in sources}
    try:
        scans = scancache.cached_map(root, key, scancache.SCAN_FILE, sources, digests, scan_misses)
    except BaseException:
        for pool in pools:
            pool.close()
        raise
    for (path, data), s in zip(sources, scans):
        if path not in parsed:
            parsed[path] = ParsedFile(path, data, errors=s.errors, problem=s.problem)
    # the edit phase that follows sizes its pool by the whole project, not by the misses
    return Scanned({p: parsed[p] for p, _ in sources}, scans, requested or default_jobs(len(sources)), key,
                   (pools or [None])[0])


def cross_file(
    project: Project, rules: Any, settings: Settings, problems: list[tuple[str, str]], scanned: Scanned,
    excluded: list[tuple[str, str]],
) -> Analysis:
    """The steps after the scan, in this process: graph, classification, plan."""
    from otelize.analysis.graph import build_graph
    from otelize.analysis.parse import unparsable_reason
    from otelize.classify.engine import classify
    from otelize.plan.dag import build_plan

    parsed, scans = scanned.parsed, scanned.scans
    for s in scans:
        if s.problem:
            problems.append((s.path, s.problem))
        elif s.errors:
            problems.append((s.path, unparsable_reason(s.errors)))
    problems.sort()
    facts = {s.path: s.facts for s in scans if s.facts is not None}
    static = {s.path: s.static for s in scans if s.static is not None}
    graph = build_graph(project, facts)
    classification = classify(rules, {p: parsed[p] for p in facts}, facts, graph, static, project,
                              settings.include_code)
    analysis = Analysis(project, parsed, facts, graph, classification, rules, [], problems, settings, scanned.jobs,
                        scanned.cache_key, excluded, scanned.pool)
    analysis.tasks = build_plan(
        facts,
        classification,
        graph.entry,
        analysis.editable,
        frozenset(settings.disabled_workers),
        frozenset(settings.disabled_categories),
        tuple(graph.entries),
        frozenset(graph.use_handlers),
    )
    return analysis


def nothing_to_instrument(analysis: Analysis) -> str | None:
    """Why otelize can do nothing useful for this app (None when it can): no source file it
    reads, or neither an Express app or route (for the HTTP spans) nor a function to wrap."""
    from otelize.plan.registry import MAIN_WORKERS
    from otelize.project.walk import JS_SOURCE_SUFFIXES, SOURCE_SUFFIXES

    project = analysis.project
    if not project.files:
        kinds = ", ".join(SOURCE_SUFFIXES + JS_SOURCE_SUFFIXES)
        return f"nothing to instrument: no source files ({kinds}) found under {project.root.name}/"
    if not analysis.facts:
        return f"nothing to instrument: none of the {len(project.files)} source file(s) could be read"
    if analysis.graph.routes or analysis.entry or any(t.worker not in MAIN_WORKERS for t in analysis.tasks):
        return None  # an app that starts (express(), listen) gets the HTTP server spans at least
    disabled = sorted(analysis.settings.disabled_workers)
    hint = f" (workers turned off: {', '.join(disabled)})" if disabled else ""
    return (
        f"nothing to instrument: {len(analysis.facts)} source file(s) read, but no Express app, no route and no "
        f"service, database, cache or API-client function to wrap{hint}; nothing written"
    )


def refuse_if_nothing(analysis: Analysis) -> None:
    from otelize.errors import NothingToInstrument

    reason = nothing_to_instrument(analysis)
    if reason is not None:
        raise NothingToInstrument(reason)
