"""The library API. The CLI (and tests) call these; they never print."""

from __future__ import annotations

import functools
import gc
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from typing import TYPE_CHECKING

from otelize.project.discover import load_project
from otelize.synthesize.journal import recover_and_warn, run_lock, sweep_temps
from otelize.project.model import Project

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:  # heavy modules (networkx, tree-sitter) load lazily: a cached --check needs none of them
    from otelize.classify.engine import Classification
    from otelize.analysis.records import FileFacts
    from otelize.analysis.graph import AppGraph
    from otelize.analysis.parse import ParsedFile
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
    from otelize.project.discover import read_regular

    for path in project.files:
        try:
            sources.append((path, read_regular(project.root / path)))
        except OSError as exc:
            problems.append((path, f"unreadable ({exc.strerror})"))
    return sources, problems


def gc_paused(fn: F) -> F:
    """Run `fn` with the cyclic garbage collector paused (re-entrant).

    A run builds a large, long-lived heap of facts, trees and graph nodes and
    almost no cyclic garbage (~10,000 objects for 2,000 files), so the
    collector's full passes over that heap were pure cost: ~30% of `plan` at
    2,000 files. Pool children inherit the paused state through fork.
    """

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return run  # type: ignore[return-value]


def resolve_settings(root: str | Path, settings: Settings | Mapping[str, Any] | None) -> Settings:
    """The run's settings: the app's .otelize.yaml when none are given (the library honours
    it too), else the caller's, validated with the CLI's rules and messages."""
    from otelize.project.settings import coerce_settings, load_settings

    return load_settings(root) if settings is None else coerce_settings(settings)


@gc_paused
def analyze(
    root: str | Path,
    rule_dirs: list[Path] | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    jobs: int | None = None,
    cache: bool = False,
    keep_pool: bool = False,
) -> Analysis:
    """discover → parse → facts → graph → classify → plan.

    Per-file work (parse, facts, tree-based rules) runs in `jobs` processes
    (default: all cores for large projects, in-process for small ones). With
    `cache`, files whose bytes are unchanged since the last cached run are not
    parsed again (otelize.run.scancache). With `keep_pool`, the scan's processes stay
    up holding their trees, for `synthesize_plan` to edit each file where it was
    parsed; the caller ends them (`synthesize_plan` does, else `Analysis.close_pool`).
    """
    from otelize.run.pipeline import default_jobs, scan_files
    from otelize.classify.ruleset import load_rules

    recover_and_warn(root)
    settings = resolve_settings(root, settings)
    project = load_project(root, include=settings.include, exclude=settings.exclude)
    from otelize.classify.exclusions import default_exclusions

    project.files, excluded = default_exclusions(project, settings.include_code)
    sweep_temps(project.root, project.temp_files)
    all_rule_dirs = list(settings.rules) + list(rule_dirs or [])
    rules = load_rules(all_rule_dirs or None, switches=settings.rule_switches)
    sources, problems = read_sources(project)
    cache_key = None
    if cache:
        from otelize.run.scancache import rules_key

        cache_key = rules_key(all_rule_dirs, settings.rule_switches)
        parsed, scans, jobs, pool = _scan_with_cache(project.root, sources, rules, cache_key, jobs, settings, keep_pool)
    else:
        jobs = jobs if jobs is not None else settings.jobs or default_jobs(len(sources))
        parsed, scans, pool = scan_files(sources, rules, jobs, keep=keep_pool)
    try:
        return _analyze_rest(project, rules, settings, sources, problems, parsed, scans, jobs, cache_key, pool, excluded)
    except BaseException:
        if pool is not None:
            pool.close()
        raise


def _analyze_rest(
    project: Project, rules: Any, settings: Any, sources: Any, problems: list[tuple[str, str]],
    parsed: dict[str, Any], scans: list[Any], jobs: int, cache_key: str | None, pool: Any,
    excluded: list[tuple[str, str]],
) -> Analysis:
    """analyze after the scan: the cross-file steps (graph, classification, plan)."""
    from otelize.classify.engine import classify
    from otelize.analysis.graph import build_graph
    from otelize.analysis.parse import unparsable_reason
    from otelize.plan.dag import build_plan

    for scan in scans:
        if scan.problem:
            problems.append((scan.path, scan.problem))
        elif scan.errors:
            problems.append((scan.path, unparsable_reason(scan.errors)))
    problems.sort()
    facts = {s.path: s.facts for s in scans if s.facts is not None}
    static = {s.path: s.static for s in scans if s.static is not None}
    graph = build_graph(project, facts)
    classification = classify(rules, {p: parsed[p] for p in facts}, facts, graph, static, project,
                              settings.include_code)
    analysis = Analysis(project, parsed, facts, graph, classification, rules, [], problems, settings, jobs, cache_key,
                        excluded, pool)
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


def _scan_with_cache(
    root: Path, sources: list[tuple[str, bytes]], rules: Any, key: str, jobs: int | None, settings: Settings,
    keep_pool: bool = False,
) -> tuple[dict[str, Any], list[Any], int, Any]:
    """scan_files for the files the scan cache does not hold; the rest from the cache.
    With `keep_pool`, the pool that scanned the misses (if one did) is returned, holding their trees."""
    from otelize.run import scancache
    from otelize.analysis.parse import ParsedFile
    from otelize.run.pipeline import default_jobs, scan_files

    requested = jobs if jobs is not None else settings.jobs
    parsed: dict[str, ParsedFile] = {}
    pools: list[Any] = []

    def scan(misses: list[tuple[str, bytes]]) -> list[Any]:
        trees, scans, pool = scan_files(misses, rules, requested or default_jobs(len(misses)), keep=keep_pool)
        parsed.update(trees)  # in-process scans keep the trees they built
        if pool is not None:
            pools.append(pool)
        return scans

    digests = {path: scancache.digest(data) for path, data in sources}
    try:
        scans = scancache.cached_map(root, key, scancache.SCAN_FILE, sources, digests, scan)
    except BaseException:
        for pool in pools:
            pool.close()
        raise
    for (path, data), s in zip(sources, scans):
        if path not in parsed:
            parsed[path] = ParsedFile(path, data, errors=s.errors, problem=s.problem)
    # the edit phase that follows sizes its pool by the whole project, not by the misses
    return {p: parsed[p] for p, _ in sources}, scans, requested or default_jobs(len(sources)), (pools or [None])[0]


# --- instrument -----------------------------------------------------------------

@dataclass
class InstrumentResult:
    analysis: Analysis | None  # None when the state cache answered (nothing was analysed)
    synthesis: Any  # otelize.synthesize.apply.Synthesis
    written: bool = False
    out_dir: Path | None = None
    cached: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.synthesis.changes)

    @property
    def partial(self) -> bool:
        return bool((self.analysis is not None and self.analysis.unparsable) or self.synthesis.reverted)

    @property
    def not_loaded(self) -> list[Any]:
        """The config worker's word that tracing will not be loaded when the app runs (no entry
        found, ...): a warning, and `--check` is not clean while it holds."""
        if not self.synthesis.skips:  # the state cache's answer: no need to import the worker
            return []
        from otelize.workers.config import not_loaded

        return not_loaded(self.synthesis.skips)

    def exit_code(self, check: bool = False) -> int:
        """The CLI's exit code for this run: 1 when `check` and something would change (or tracing is not loaded),
        else 3 when some files were left alone (partial), else 0."""
        from otelize.errors import EXIT_CHANGES, EXIT_OK, EXIT_PARTIAL

        if check and (self.changed or self.not_loaded):
            return EXIT_CHANGES
        return EXIT_PARTIAL if self.partial else EXIT_OK


def worker_context(analysis: Analysis) -> Any:
    from otelize.workers.base import WorkerContext

    return WorkerContext(
        project=analysis.project,
        parsed=analysis.parsed,
        facts=analysis.facts,
        classification=analysis.classification,
        routes=analysis.graph.routes,
        entry=analysis.entry,
        settings=analysis.settings,
    )


def run_workers(analysis: Analysis) -> list[Any]:
    """Run every planned task in plan order, in this process. Workers return values only."""
    from otelize.run.pipeline import run_task

    ctx = worker_context(analysis)
    return [run_task(ctx, t) for t in analysis.tasks]


def ignored_files(analysis: Analysis) -> list[Any]:
    """A Skip for every file left alone for a marker in it (`// otelize-ignore-file`, `@generated`)."""
    from otelize.synthesize.edits import Skip

    out = []
    for path, reason in analysis.left_alone.items():
        source = analysis.parsed[path].source
        marker = b"otelize-ignore-file" if reason == "ignored by comment" else None
        line = source[: source.find(marker)].count(b"\n") + 1 if marker is not None else 1
        out.append(Skip(path, line, "<file>", reason, "plan"))
    return out


def excluded_files(analysis: Analysis) -> list[Any]:
    """A Skip for every file excluded by default (test code, migrations, ...: otelize.classify.exclusions)."""
    from otelize.synthesize.edits import Skip

    return [Skip(path, 1, "<file>", reason, "plan") for path, reason in analysis.excluded]


@gc_paused
def synthesize_plan(analysis: Analysis) -> Any:
    """Run the plan: cross-file workers here, per-file workers (and each file's
    import step, splice and reparse) in `analysis.jobs` processes; merge in path order.
    With the scan's pool kept (analyze(keep_pool=True)), each file is edited in the child
    that parsed it, from its tree; the pool is closed here, also on errors."""
    try:
        return _synthesize_plan(analysis)
    finally:
        analysis.close_pool()


def _synthesize_plan(analysis: Analysis) -> Any:
    from otelize.synthesize.edits import WorkerResult
    from otelize.run.pipeline import EditJob, edit_files, run_task
    from otelize.plan.registry import MAIN_WORKERS
    from otelize.synthesize.apply import merge, synthesize

    ctx = worker_context(analysis)
    main_results = [run_task(ctx, t) for t in analysis.tasks if t.worker in MAIN_WORKERS]
    per_file: dict[str, list[Task]] = {}
    for t in analysis.tasks:
        if t.worker not in MAIN_WORKERS:
            per_file.setdefault(t.files[0], []).append(t)
    # main-process results aimed at source files (the tracing import) travel with that file's job
    extra: dict[str, list[WorkerResult]] = {}
    kept: list[WorkerResult] = []
    for res in main_results:
        for_files: dict[str, WorkerResult] = {}
        for imp in res.imports:
            if imp.file in analysis.facts:
                for_files.setdefault(imp.file, WorkerResult(res.worker)).imports.append(imp)
        for e in res.edits:
            if e.file in analysis.facts:
                for_files.setdefault(e.file, WorkerResult(res.worker)).edits.append(e)
        for path, part in for_files.items():
            extra.setdefault(path, []).append(part)
        rest = WorkerResult(res.worker, [e for e in res.edits if e.file not in analysis.facts], res.new_files,
                            [i for i in res.imports if i.file not in analysis.facts], res.spans, res.skips, res.packages, res.notes)
        kept.append(rest)
    kept.append(WorkerResult("plan", skips=ignored_files(analysis) + excluded_files(analysis)))
    jobs_list = [
        EditJob(
            path,
            analysis.parsed[path].source,
            analysis.parsed[path].errors,
            analysis.facts[path],
            per_file.get(path, []),
            extra.get(path, []),
            analysis.parsed[path] if analysis.jobs <= 1 else None,
        )
        for path in sorted(set(per_file) | set(extra))
        if path in analysis.editable
    ]
    state = {
        "project": analysis.project,
        "entry": analysis.entry,
        "settings": analysis.settings,
        "root": str(analysis.project.root),
    }
    if analysis.cache_key is None:
        parts = edit_files(jobs_list, analysis.jobs, state, analysis.pool)
    else:
        parts = _edit_with_cache(analysis, jobs_list, state)
    return merge([synthesize(analysis.project.root, {}, kept, analysed_bytes(analysis))] + parts)


def analysed_bytes(analysis: Analysis) -> dict[str, bytes]:
    """Every file's bytes as the analysis read them (sources and package.json)."""
    out = {p: pf.source for p, pf in analysis.parsed.items()}
    out["package.json"] = analysis.project.package_json_bytes
    return out


def expected_bytes(analysis: Analysis, changes: dict[str, tuple[bytes | None, Any]]) -> dict[str, bytes | None]:
    """What every analysed or written file must still hold at write time (None: absent)."""
    out: dict[str, bytes | None] = dict(analysed_bytes(analysis))
    for path, (old, _) in changes.items():
        out.setdefault(path, old)
    return out


def _edit_with_cache(analysis: Analysis, jobs_list: list[Any], state: dict[str, Any]) -> list[Any]:
    """edit_files for the files whose edit inputs changed; the rest from the edit cache."""
    from otelize.run import scancache
    from otelize.run.pipeline import default_jobs, edit_files

    def edit(misses: list[tuple[str, Any]]) -> list[Any]:
        jobs = analysis.jobs if len(misses) >= 2 * analysis.jobs else min(analysis.jobs, default_jobs(len(misses)))
        return edit_files([job for _, job in misses], jobs, state, analysis.pool)

    key = scancache.edit_context_key(analysis.cache_key or "", analysis.project, analysis.entry, analysis.settings.to_api(),
                                     worker_context(analysis).placement)
    digests = {job.path: scancache.edit_job_digest(job.source, job.errors, job.tasks, job.extra) for job in jobs_list}
    items = [(job.path, job) for job in jobs_list]
    return scancache.cached_map(analysis.project.root, key, scancache.EDIT_FILE, items, digests, edit)


@gc_paused
def instrument(
    root: str | Path,
    *,
    write: bool = True,
    out_dir: str | Path | None = None,
    rule_dirs: list[Path] | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    jobs: int | None = None,
    cache: bool = False,
    cached_answer: bool = True,
) -> InstrumentResult:
    """Plan, run the workers, synthesize. Writes in place, to `out_dir`, or not at all.

    With `cache` (in place only): files unchanged since a cached run are not
    parsed again (otelize.run.scancache), and, when `cached_answer` allows it, an
    unchanged project whose last run was clean is answered from
    `.otelize-cache/` without any analysis (otelize.run.statecache; the result then
    has no analysis, so a caller that needs a diff or a report passes False).
    """
    if write and out_dir is None:  # in place: one run at a time (otelize.synthesize.journal)
        with run_lock(root):
            return _instrument(root, write, out_dir, rule_dirs, settings, jobs, cache, cached_answer)
    return _instrument(root, write, out_dir, rule_dirs, settings, jobs, cache, cached_answer)


def _instrument(
    root: str | Path,
    write: bool,
    out_dir: str | Path | None,
    rule_dirs: list[Path] | None,
    settings: dict[str, Any] | None,
    jobs: int | None,
    cache: bool,
    cached_answer: bool,
) -> InstrumentResult:
    recover_and_warn(root)
    key = None
    if cache and cached_answer and out_dir is None:
        from otelize.run import statecache

        settings = resolve_settings(root, settings)
        project = load_project(root, include=settings.include, exclude=settings.exclude)
        sweep_temps(project.root, project.temp_files)
        key = statecache.fingerprint(project, settings.to_api(), list(settings.rules) + list(rule_dirs or []))
        if statecache.is_clean(project.root, key):
            from otelize.synthesize.edits import Synthesis

            return InstrumentResult(None, Synthesis(), cached=True)
    from otelize.synthesize.apply import write_changes, write_copy

    # --out promises to leave PATH untouched: no scan cache is written there
    analysis = analyze(root, rule_dirs=rule_dirs, settings=settings, jobs=jobs, cache=cache and out_dir is None,
                       keep_pool=True)
    try:
        refuse_if_nothing(analysis)
    except BaseException:
        analysis.close_pool()
        raise
    syn = synthesize_plan(analysis)  # ends the pool, also on errors
    result = InstrumentResult(analysis, syn)
    if key is not None and not result.changed and not result.partial and not result.not_loaded:
        from otelize.run import statecache

        statecache.remember_clean(analysis.project.root, key)
    if out_dir is not None:
        target, ignore = out_folder(analysis.project.root, Path(out_dir), analysis.project.out_dir)
        changes = {p: new for p, (_, new) in syn.changes.items()}
        write_copy(analysis.project.root, target, changes, ignore, expected=expected_bytes(analysis, syn.changes))
        result.written, result.out_dir = True, target
    elif write and syn.changes:
        changes = {p: new for p, (_, new) in syn.changes.items()}
        write_changes(analysis.project.root, changes, expected_bytes(analysis, syn.changes))
        result.written = True
    return result


def nothing_to_instrument(analysis: Analysis) -> str | None:
    """Why otelize can do nothing useful for this app (None when it can): no source file it
    reads, or neither an Express app or route (for the HTTP spans) nor a function to wrap."""
    from otelize.project.discover import JS_SOURCE_SUFFIXES, SOURCE_SUFFIXES
    from otelize.plan.registry import MAIN_WORKERS

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


def check_report_path(root: str | Path, report: Path) -> None:
    """Refuse a `--report` path that is an existing file of the project (package.json, a
    source file, anything), also through a symlink; an earlier otelize report may be replaced."""
    from otelize.errors import BadInput

    real_root = Path(root).resolve()
    target = report.resolve()
    if not (target == real_root or real_root in target.parents):
        return
    if not os.path.lexists(report) and not target.exists():
        return
    if target.is_file() and _is_report(target):
        return
    raise BadInput(f"{report}: is a file of the project; --report never overwrites one (choose a new path)")


def _is_report(path: Path) -> bool:
    """Whether `path` holds a report otelize wrote (markdown or JSON)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return False
    if head.startswith(b"# otelize report: "):
        return True
    try:
        import json

        data = json.loads(head)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and list(data)[:4] == ["app", "spans", "skipped", "files"]


COPY_IGNORE = ("node_modules", ".git", ".otelize-cache")


def out_folder(src: Path, dest: Path, build_dir: str | None = None) -> tuple[Path, Any]:
    """Check the `--out` folder; return it resolved and the copy's ignore function
    (node_modules, .git, the state cache, and the app's stale build folder)."""
    import shutil

    from otelize.errors import BadInput

    dest = dest.resolve()
    if dest == src or str(dest).startswith(str(src) + "/"):
        raise BadInput(f"{dest}: --out must not be inside the project")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest}: --out directory exists and is not empty")
    skip_build = (src / build_dir).resolve() if build_dir else None
    names = shutil.ignore_patterns(*COPY_IGNORE)

    def ignore(folder: str, entries: list[str]) -> set[str]:
        # a stale build of the uninstrumented app would be misleading in the copy
        out = set(names(folder, entries))
        if skip_build is not None and Path(folder).resolve() == skip_build.parent:
            out |= {e for e in entries if e == skip_build.name}
        return out

    return dest, ignore
