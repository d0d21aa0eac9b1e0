"""The edit phase behind `otelize.api.instrument`: run the plan's workers (the cross-file
ones in this process, the per-file ones with each file's import step, splice and
reparse in the scan's processes; otelize.run.pipeline), with the `--cache` edit
cache, and merge the results in path order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otelize.run.gcpause import gc_paused

if TYPE_CHECKING:
    from otelize.run.analysis import Analysis
    from otelize.workers.base import Task


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
        "placement": _placement(ctx),
    }
    if analysis.cache_key is None:
        parts = edit_files(jobs_list, analysis.jobs, state, analysis.pool)
    else:
        parts = _edit_with_cache(analysis, jobs_list, state)
    return merge([synthesize(analysis.project.root, {}, kept, analysed_bytes(analysis))] + parts)


def _placement(ctx: Any) -> tuple[str, str] | None:
    """Where the generated files go, found once here (it reads the build's tsconfig and
    looks for taken names on disk) for every file's context; None when it is refused
    (BadInput): then a file's worker that needs it raises that error, as before."""
    from otelize.errors import BadInput

    try:
        return ctx.placement  # type: ignore[no-any-return]
    except BadInput:
        return None


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

