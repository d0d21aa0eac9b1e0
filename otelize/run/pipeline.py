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

With more than one job the scan runs in a `StickyPool`: long-lived forked
children, each owning a fixed share of the files (file i of the sorted list
goes to child i mod jobs). A child keeps the trees it built, and the same
child edits those files after the cross-file steps, so a file is parsed once
per run: the edit reuses the scan's tree and the validation reparses
incrementally from it (otelize.analysis.parse.reparse).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import signal
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from otelize.run import progress
from otelize.classify.engine import FileStatic, scan_static
from otelize.synthesize.edits import WorkerResult
from otelize.errors import OtelizeError
from otelize.analysis.facts import extract
from otelize.analysis.records import FileFacts
from otelize.analysis.parse import ParsedFile, parse_source
from otelize.classify.ruleset import RuleSet
from otelize.synthesize.wrap import BODY_QUERY

PARALLEL_MIN_FILES = 96  # below this, a pool costs more than it saves
T = TypeVar("T")
R = TypeVar("R")



def run_task(ctx: Any, task: Any) -> WorkerResult:
    """Dispatch one task to its worker's module (otelize.plan.registry), in this process."""
    from otelize.plan.registry import BY_NAME

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
    progress callback set (otelize.run.progress), each finished item is reported
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
    import multiprocessing  # (with concurrent.futures: only for a pool, ~15 ms of a small app's start)
    from concurrent.futures import ProcessPoolExecutor

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
    facts = extract(pf, _STATE.get("prefetch"))
    rules: RuleSet = _STATE["rules"]
    return Scan(path, pf.errors, None, facts, scan_static(rules, path, facts, pf))


def scan_files(
    sources: list[tuple[str, bytes]], rules: RuleSet, jobs: int, keep: bool = False
) -> tuple[dict[str, ParsedFile], list[Scan], StickyPool | None]:
    """Scan every file; return lazily-parsed files (trees only where already built), the
    scans, and, with `keep` and a pool, the pool whose children hold the trees (for
    `edit_files`; the caller closes it). Without `keep` the pool is closed here."""
    # with an edit to follow, the scan's walk of each tree also captures what the span
    # wrapper asks of it (string literals; otelize.synthesize.wrap.BODY_QUERY), where the
    # tree stays for the edit: in this process, or in the pool child that edits the file
    state = {"rules": rules, "prefetch": BODY_QUERY if keep else None}
    if jobs <= 1 or len(sources) < 2:
        # in-process: keep the trees we build instead of parsing twice
        _init(state)
        parsed: dict[str, ParsedFile] = {}
        scans = []
        tick = progress.current()
        for path, data in sources:
            pf = parse_source(path, data)
            parsed[path] = pf
            if pf.problem is not None:
                scans.append(Scan(path, pf.errors, pf.problem, None, None))
            else:
                facts = extract(pf, state["prefetch"])
                scans.append(Scan(path, pf.errors, None, facts, scan_static(rules, path, facts, pf)))
            if tick is not None:
                tick("parsed", len(scans), len(sources))
        return parsed, scans, None
    pool = StickyPool(sources, min(jobs, len(sources)), state)
    try:
        scans = pool.scan()
    except BaseException:
        pool.close()
        raise
    data = dict(sources)
    # this process's share of the files with the trees it built, the rest as bytes
    parsed = {s.path: pool.trees[s.path] if s.path in pool.trees else
              ParsedFile(s.path, data[s.path], errors=s.errors, problem=s.problem) for s in scans}
    if not keep:
        pool.close()
        pool = None
    return parsed, scans, pool


# --- phase 2: edit ----------------------------------------------------------------


@dataclass
class EditJob:
    path: str
    source: bytes
    errors: list[tuple[int, int, str]]
    facts: FileFacts | None  # None in a job sent to the pool child that scanned the file: it holds them
    tasks: list[Any]  # Task
    extra: list[WorkerResult]  # results of main-process workers that target this file (e.g. the tracing import)
    parsed: ParsedFile | None = None  # in-process runs reuse the tree already built


def edit_file(job: EditJob) -> Any:
    """Run the file's worker tasks and synthesize the file. Returns a Synthesis for this file."""
    from otelize.synthesize.apply import synthesize
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
        known_placement=_STATE.get("placement"),  # found once in the main process (otelize.run.edit)
    )
    results = [run_task(ctx, t) for t in job.tasks] + job.extra
    return synthesize(Path(_STATE["root"]), {job.path: pf}, results)


def edit_files(jobs_list: list[EditJob], jobs: int, state: dict[str, Any], pool: StickyPool | None = None) -> list[Any]:
    """edit_file over the jobs, in path order: in the scan's sticky pool when there is one
    (each file in the child that holds its tree), else as `run_map`."""
    if pool is not None and pool.alive and len(jobs_list) >= 2:
        return pool.edit(jobs_list, state)
    return run_map(edit_file, jobs_list, jobs, state, "edited")


# --- the sticky pool ----------------------------------------------------------------


class WorkerDied(OtelizeError):
    """A pool child ended without answering (killed, out of memory)."""


def _child_main(conn: Any, parent_ends: list[Any], sources: list[tuple[str, bytes]], mine: list[int]) -> None:
    """A pool child: answer requests until "close" or the parent's end of the pipe closes
    (so a child outlives no parent). Trees of the files it scanned stay here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for end in parent_ends:  # inherited through fork; held here, they would hide the parent's exit
        end.close()
    trees: dict[str, ParsedFile] = {}
    own_facts: dict[str, FileFacts] = {}  # what the parent got from us: edit jobs come without them
    rules: RuleSet = _STATE["rules"]
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            return
        if op == "close":
            return
        if op == "scan":
            for i in mine:
                path, data = sources[i]
                try:
                    pf = parse_source(path, data)
                    if pf.problem is not None:
                        out: Any = Scan(path, pf.errors, pf.problem, None, None)
                    else:
                        trees[path] = pf
                        facts = extract(pf, _STATE.get("prefetch"))
                        own_facts[path] = facts
                        out = Scan(path, pf.errors, None, facts, scan_static(rules, path, facts, pf))
                    _send(conn, (i, True, out))
                except BaseException as exc:  # noqa: BLE001 - re-raised in the parent
                    _send(conn, (i, False, exc))
        elif op == "edit":
            state, items = payload
            _init({"rules": rules, **state})
            for i, job in items:
                try:
                    known = trees.get(job.path)
                    if known is not None and known.source == job.source:
                        job.parsed = known
                    if job.facts is None:
                        job.facts = own_facts[job.path]
                    _send(conn, (i, True, edit_file(job)))
                except BaseException as exc:  # noqa: BLE001 - re-raised in the parent
                    _send(conn, (i, False, exc))


def _send(conn: Any, message: tuple[int, bool, Any]) -> None:
    try:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - what does not pickle still reaches the parent as one line
        value = message[2] if not message[1] else exc
        payload = pickle.dumps((message[0], False, RuntimeError(f"{type(value).__name__}: {value}")))
    conn.send_bytes(payload)


def _stop(procs: list[Any], conns: list[Any], status: dict[str, bool]) -> None:
    """End the children: ask idle ones to exit, terminate busy ones (after an exception
    or Ctrl-C in the parent there is nothing to wait for)."""
    if not status["busy"]:
        for c in conns:
            try:
                c.send(("close", None))
            except (OSError, ValueError):
                pass
        for p in procs:
            p.join(timeout=5)
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(timeout=2)
        if p.is_alive():
            p.kill()
            p.join()
    for c in conns:
        c.close()


class StickyPool:
    """`jobs` workers over `sources`, worker k owning files k, k+jobs, k+2*jobs, ...:
    worker 0 is this process, workers 1..jobs-1 are forked children.

    `scan()` scans every file in its owner; `edit()` sends each edit job to the worker
    that scanned the file (which reuses its tree and its facts, so neither is sent
    again), and jobs for files no worker holds (served from the scan cache) round-robin.
    This process does its own share between reading the children's answers (so their
    pipes never fill): its files are neither pickled nor sent, and it keeps their trees,
    as a serial run does. Results come back in the order asked, whatever order the
    workers finish in; the error of the first failing item, in that order, is raised
    (as a serial run raises it). The children are always ended: `close()`, also on
    exceptions and Ctrl-C, and at garbage collection or exit.
    """

    def __init__(self, sources: list[tuple[str, bytes]], jobs: int, state: dict[str, Any]) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.sources = sources
        self.jobs = jobs
        self.rules = state["rules"]
        self.prefetch = state.get("prefetch")
        self.owner = {path: i % jobs for i, (path, _) in enumerate(sources)}
        self.trees: dict[str, ParsedFile] = {}  # worker 0's files, scanned here
        self.own_facts: dict[str, FileFacts] = {}
        self.procs: list[Any] = []  # child k is procs[k - 1]
        self.conns: list[Any] = []
        self.status = {"busy": False}
        _init(state)  # inherited by the children through fork
        self._finalizer = weakref.finalize(self, _stop, self.procs, self.conns, self.status)
        try:
            for k in range(1, jobs):
                parent, child = ctx.Pipe()
                mine = list(range(k, len(sources), jobs))
                ends = [*self.conns, parent]
                proc = ctx.Process(target=_child_main, args=(child, ends, sources, mine), daemon=True)
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
        except BaseException:
            self.close()
            raise

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def _ask(self, k: int, request: tuple[str, Any]) -> None:
        try:
            self.conns[k - 1].send(request)
        except OSError:
            self._died(k - 1)

    def _died(self, index: int) -> None:
        self.procs[index].join(timeout=1)
        raise WorkerDied(f"a worker process ended without answering (exit code {self.procs[index].exitcode})")

    def _run(self, expected: list[int], local: list[tuple[int, Any]], work: Callable[[Any], Any], total: int,
             stage: str) -> dict[int, Any]:
        """Answers for `expected` items (per child, counts) and for `local` ((index, item)
        pairs done here by `work`), ticking progress as they come."""
        from multiprocessing.connection import wait

        tick = progress.current()
        self.status["busy"] = True
        waiting = {c: n for c, n in zip(self.conns, expected) if n}
        got: dict[int, Any] = {}
        errors: dict[int, BaseException] = {}

        def receive(conn: Any) -> None:
            try:
                i, ok, value = conn.recv()
            except (EOFError, OSError):
                self._died(self.conns.index(conn))
            (got if ok else errors)[i] = value
            waiting[conn] -= 1
            if not waiting[conn]:
                del waiting[conn]
            if tick is not None:
                tick(stage, len(got) + len(errors), total)

        for i, item in local:
            try:
                got[i] = work(item)
            except Exception as exc:  # noqa: BLE001 - raised below, in item order (Ctrl-C goes up at once)
                errors[i] = exc
            if tick is not None:
                tick(stage, len(got) + len(errors), total)
            for conn in list(waiting):  # what the children finished meanwhile: their pipes stay empty
                while conn in waiting and conn.poll():
                    receive(conn)
        while waiting:
            for conn in wait(list(waiting)):
                receive(conn)
        self.status["busy"] = False
        if errors:
            raise errors[min(errors)]
        return got

    def _scan_here(self, i: int) -> Scan:
        path, data = self.sources[i]
        pf = parse_source(path, data)
        if pf.problem is not None:
            return Scan(path, pf.errors, pf.problem, None, None)
        self.trees[path] = pf
        facts = self.own_facts[path] = extract(pf, self.prefetch)
        return Scan(path, pf.errors, None, facts, scan_static(self.rules, path, facts, pf))

    def scan(self) -> list[Scan]:
        self.status["busy"] = True
        for k in range(1, self.jobs):
            self._ask(k, ("scan", None))
        counts = [len(range(k, len(self.sources), self.jobs)) for k in range(1, self.jobs)]
        local = [(i, i) for i in range(0, len(self.sources), self.jobs)]
        got = self._run(counts, local, self._scan_here, len(self.sources), "parsed")
        return [got[i] for i in range(len(self.sources))]

    def _edit_here(self, job: EditJob) -> Any:
        known = self.trees.get(job.path)
        if known is not None and known.source == job.source:
            job = dataclasses.replace(job, parsed=known)
        return edit_file(job)

    def edit(self, jobs_list: list[EditJob], state: dict[str, Any]) -> list[Any]:
        per_worker: list[list[tuple[int, EditJob]]] = [[] for _ in range(self.jobs)]
        spare = 0
        for i, job in enumerate(jobs_list):
            k = self.owner.get(job.path)
            if k is None:
                k, spare = spare % self.jobs, spare + 1
            elif k and job.facts is not None:
                # the owner holds the facts it sent us (pickling them back costs ~0.35x the parse)
                job = dataclasses.replace(job, facts=None)
            per_worker[k].append((i, job))
        self.status["busy"] = True
        for k in range(1, self.jobs):
            if per_worker[k]:
                self._ask(k, ("edit", (state, per_worker[k])))
        _init({"rules": self.rules, **state})
        got = self._run([len(items) for items in per_worker[1:]], per_worker[0], self._edit_here, len(jobs_list),
                        "edited")
        return [got[i] for i in range(len(jobs_list))]
