"""The library API. The CLI (and tests) call these; they never print.

A facade: `analyze` and `instrument` read as the pipeline, and each step lives in
its stage's package (otelize.run.analysis: the scan and the cross-file steps;
otelize.run.edit: the workers, splice and merge; otelize.run.instrument: the
state cache's answer and the write). `analyze(..., keep_pool=True)` followed by
`synthesize_plan` is what `instrument` runs between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, TypedDict

from otelize.project.discover import load_project
from otelize.run.analysis import Analysis, cross_file, read_sources, refuse_if_nothing, scan
from otelize.run.edit import synthesize_plan
from otelize.run.gcpause import gc_paused
from otelize.run.instrument import InstrumentResult, cached_clean, cached_result, finish
from otelize.synthesize.journal import recover_and_warn, run_lock, sweep_temps

if TYPE_CHECKING:
    from typing import Unpack

    from otelize.project.settings import Settings

__all__ = ["Analysis", "AnalyzeOptions", "InstrumentResult", "analyze", "instrument", "synthesize_plan"]


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
    from otelize.classify.exclusions import default_exclusions
    from otelize.classify.ruleset import load_rules
    from otelize.project.settings import resolve_settings

    recover_and_warn(root)
    settings = resolve_settings(root, settings)
    project = load_project(root, include=settings.include, exclude=settings.exclude)
    project.files, excluded = default_exclusions(project, settings.include_code)
    sweep_temps(project.root, project.temp_files)
    all_rule_dirs = list(settings.rules) + list(rule_dirs or [])
    rules = load_rules(all_rule_dirs or None, switches=settings.rule_switches)
    sources, problems = read_sources(project)
    cache_key = None
    if cache:
        from otelize.run.scancache import rules_key

        cache_key = rules_key(all_rule_dirs, settings.rule_switches)
    scanned = scan(project.root, sources, rules, settings, jobs, cache_key, keep_pool)
    try:
        return cross_file(project, rules, settings, problems, scanned, excluded)
    except BaseException:
        if scanned.pool is not None:
            scanned.pool.close()
        raise


class AnalyzeOptions(TypedDict, total=False):
    """The options of `analyze` that `instrument` passes on to it (see `analyze`)."""

    rule_dirs: list[Path] | None
    settings: Settings | Mapping[str, Any] | None
    jobs: int | None
    cache: bool


@gc_paused
def instrument(
    root: str | Path,
    *,
    write: bool = True,
    out_dir: str | Path | None = None,
    cached_answer: bool = True,
    **options: Unpack[AnalyzeOptions],
) -> InstrumentResult:
    """Plan, run the workers, synthesize. Writes in place, to `out_dir`, or not at all.
    `options` are analyze's: rule_dirs, settings, jobs, cache.

    With `cache` (in place only): files unchanged since a cached run are not
    parsed again (otelize.run.scancache), and, when `cached_answer` allows it, an
    unchanged project whose last run was clean is answered from
    `.otelize-cache/` without any analysis (otelize.run.statecache; the result then
    has no analysis, so a caller that needs a diff or a report passes False).
    """
    for name in options:
        if name not in AnalyzeOptions.__annotations__:
            raise TypeError(f"instrument() got an unexpected keyword argument {name!r}")
    if write and out_dir is None:  # in place: one run at a time (otelize.synthesize.journal)
        with run_lock(root):
            return _instrument(root, write, out_dir, cached_answer, options)
    return _instrument(root, write, out_dir, cached_answer, options)


def _instrument(
    root: str | Path, write: bool, out_dir: str | Path | None, cached_answer: bool, options: AnalyzeOptions
) -> InstrumentResult:
    recover_and_warn(root)
    key = None
    cache = options.get("cache", False) and out_dir is None  # --out promises to leave PATH untouched
    if cache and cached_answer:
        from otelize.project.settings import resolve_settings

        options["settings"] = resolve_settings(root, options.get("settings"))
        key, clean = cached_clean(root, options["settings"], list(options.get("rule_dirs") or []))
        if clean:
            return cached_result()
    analysis = analyze(root, **{**options, "cache": cache}, keep_pool=True)
    try:
        refuse_if_nothing(analysis)
    except BaseException:
        analysis.close_pool()
        raise
    return finish(analysis, synthesize_plan(analysis), write, out_dir, key)  # synthesize_plan ends the pool
