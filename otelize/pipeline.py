"""Per-file work, run in parallel processes with a deterministic merge.

Two pure per-file functions carry everything that needs a file's tree:

- `scan_file`: parse, extract facts, and evaluate the rules that need the
  tree but not the graph;
- `edit_file`: run the file's worker tasks, the import step, the splice and
  the reparse check.

The orchestrator (`otelize.api`) does the cross-file work in between (graph,
graph rules, plan). `run_map` maps a function over the files either in this
process or in a pool of forked processes; results are merged in sorted path
order, so the output is byte-identical with and without parallelism.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from otelize import progress
from otelize.classify import FileStatic, scan_static
from otelize.edits import WorkerResult
from otelize.facts import FileFacts, extract
from otelize.parse import ParsedFile, parse_source
from otelize.ruleset import RuleSet

PARALLEL_MIN_FILES = 96  # below this, a pool costs more than it saves
T = TypeVar("T")
R = TypeVar("R")



def run_task(ctx: Any, task: Any) -> WorkerResult:
    """Dispatch one task to its worker's module (otelize.registry), in this process."""
    from otelize.registry import BY_NAME

    return importlib.import_module(BY_NAME[task.worker].module).run(ctx, task)


_STATE: dict[str, Any] = {}  # per-process read-only state, set by the pool initializer


def default_jobs(n_files: int) -> int:
    if n_files < PARALLEL_MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _init(state: dict[str, Any]) -> None:
    _STATE.clear()
    _STATE.update(state)


def _apply(index: int) -> Any:
    return _STATE["_fn"](_STATE["_items"][index])


def run_map(fn: Callable[[T], R], items: list[T], jobs: int, state: dict[str, Any], stage: str = "") -> list[R]:
    """`[fn(x) for x in items]`, in a pool of `jobs` forked processes when jobs > 1.

    The items and the state reach the children through fork (copy-on-write), not
    pickling: only an index goes in and only the result comes back. With a
    progress callback set (otelize.progress), each finished item is reported
    as (stage, done, total).
    """
    tick = progress.current()
    if jobs <= 1 or len(items) < 2:
        _init(state)
        if tick is None:
            return [fn(item) for item in items]
        out = []
        for item in items:
            out.append(fn(item))
            tick(stage, len(out), len(items))
        return out
    ctx = multiprocessing.get_context("fork")
    chunk = max(1, len(items) // (jobs * 8))
    inherited = {**state, "_fn": fn, "_items": items}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=(inherited,)) as pool:
        if tick is None:
            return list(pool.map(_apply, range(len(items)), chunksize=chunk))
        out = []
        for result in pool.map(_apply, range(len(items)), chunksize=chunk):
            out.append(result)
            tick(stage, len(out), len(items))
        return out


# --- phase 1: scan ----------------------------------------------------------------


@dataclass
class Scan:
    path: str
    errors: list[tuple[int, int, str]]
    problem: str | None
    facts: FileFacts | None
    static: FileStatic | None


def scan_file(item: tuple[str, bytes]) -> Scan:
    path, data = item
    pf = parse_source(path, data)
    if pf.problem is not None:
        return Scan(path, pf.errors, pf.problem, None, None)
    facts = extract(pf)
    rules: RuleSet = _STATE["rules"]
    return Scan(path, pf.errors, None, facts, scan_static(rules, path, facts, pf))


def scan_files(sources: list[tuple[str, bytes]], rules: RuleSet, jobs: int) -> tuple[dict[str, ParsedFile], list[Scan]]:
    """Scan every file; return lazily-parsed files (trees only where already built) and scans."""
    if jobs <= 1:
        # in-process: keep the trees we build instead of parsing twice
        _init({"rules": rules})
        parsed: dict[str, ParsedFile] = {}
        scans = []
        tick = progress.current()
        for path, data in sources:
            pf = parse_source(path, data)
            parsed[path] = pf
            if pf.problem is not None:
                scans.append(Scan(path, pf.errors, pf.problem, None, None))
            else:
                facts = extract(pf)
                scans.append(Scan(path, pf.errors, None, facts, scan_static(rules, path, facts, pf)))
            if tick is not None:
                tick("parsed", len(scans), len(sources))
        return parsed, scans
    scans = run_map(scan_file, sources, jobs, {"rules": rules}, "parsed")
    data = dict(sources)
    parsed = {s.path: ParsedFile(s.path, data[s.path], errors=s.errors, problem=s.problem) for s in scans}
    return parsed, scans


# --- phase 2: edit ----------------------------------------------------------------


@dataclass
class EditJob:
    path: str
    source: bytes
    errors: list[tuple[int, int, str]]
    facts: FileFacts
    tasks: list[Any]  # Task
    extra: list[WorkerResult]  # results of main-process workers that target this file (e.g. the tracing import)
    parsed: ParsedFile | None = None  # in-process runs reuse the tree already built


def edit_file(job: EditJob) -> Any:
    """Run the file's worker tasks and synthesize the file. Returns a Synthesis for this file."""
    from otelize.synthesize import synthesize
    from otelize.workers.base import WorkerContext

    pf = job.parsed or ParsedFile(job.path, job.source, errors=job.errors)
    ctx = WorkerContext(
        project=_STATE["project"],
        parsed={job.path: pf},
        facts={job.path: job.facts},
        classification=None,  # type: ignore[arg-type]  # per-file workers read their task's options
        routes=[],
        entry=_STATE["entry"],
        settings=_STATE["settings"],
    )
    results = [run_task(ctx, t) for t in job.tasks] + job.extra
    return synthesize(Path(_STATE["root"]), {job.path: pf}, results)


def edit_files(jobs_list: list[EditJob], jobs: int, state: dict[str, Any]) -> list[Any]:
    return run_map(edit_file, jobs_list, jobs, state, "edited")

