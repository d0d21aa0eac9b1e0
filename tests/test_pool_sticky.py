"""The sticky pool (otelize.run.pipeline.StickyPool): the worker that scanned a file edits it;
worker 0 is the calling process, the others forked children.

Every run here uses a real synthetic app (tests/bench/gen_app.py), real tree-sitter
and real forked children; jobs=2 forces the pool below its size threshold.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

import otelize.analysis.capindex as capindex
import otelize.analysis.parse as parse_mod
import otelize.run.pipeline as pipeline
from otelize import api
from otelize.analysis.parse import query
from otelize.errors import BadInput, OtelizeError
from otelize.synthesize.wrap import BODY_QUERY, literal_spans
from tests.bench.gen_app import generate

N_FILES = 60


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sticky") / "app"
    generate(root, N_FILES, seed=3)
    return root


def outcome(result: api.InstrumentResult) -> tuple:
    syn = result.synthesis
    return (sorted((p, c) for p, c in syn.changes.items()), syn.reverted, syn.skips, syn.spans, syn.notes)


def no_children() -> bool:
    return multiprocessing.active_children() == []


def test_pool_matches_serial_byte_for_byte(app: Path) -> None:
    serial = api.instrument(app, write=False, jobs=1)
    assert serial.synthesis.changes, "the synthetic app must get edits, else this compares nothing"
    for jobs in (2, 3):
        pooled = api.instrument(app, write=False, jobs=jobs)
        assert outcome(pooled) == outcome(serial), f"jobs={jobs} differs from jobs=1"
        assert pooled.analysis.pool is None  # synthesize_plan ended it
    assert no_children()


def test_each_file_is_parsed_once(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full parses, counted in every process (the log is appended to by the children):
    one per source file. Before the sticky pool, each edited file was parsed again."""
    log = tmp_path / "parses.log"
    real = parse_mod._parser

    class Counting:
        def __init__(self, parser: object) -> None:
            self.parser = parser

        def parse(self, source: bytes, old_tree: object = None) -> object:
            kind = b"full\n" if old_tree is None else b"incremental\n"
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, kind)
            finally:
                os.close(fd)
            return self.parser.parse(source) if old_tree is None else self.parser.parse(source, old_tree)

    monkeypatch.setattr(parse_mod, "_parser", lambda tsx: Counting(real(tsx)))
    result = api.instrument(app, write=False, jobs=2)
    kinds = log.read_text().split()
    n_sources = len(result.analysis.project.files)
    assert kinds.count("full") == n_sources
    # each changed source file is validated by one incremental reparse of its scan tree
    changed_sources = [p for p in result.synthesis.changes if p in result.analysis.facts]
    assert kinds.count("incremental") == len(changed_sources) > 0
    assert no_children()


@pytest.mark.parametrize("jobs", [1, 2])
def test_wrapping_walks_no_tree_the_scan_walked(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 jobs: int) -> None:
    """The span wrapper's question of each file (its string literals: BODY_QUERY) is asked
    in the scan's own walk of the tree, in the process that edits the file: no query
    runs over an edited file for it again (logged in every process, as above)."""
    log = tmp_path / "walks.log"
    real = capindex.captures

    def logging_captures(q: object, node: object) -> object:
        names = ",".join(sorted(q.capture_name(i) for i in range(q.capture_count)))  # type: ignore[attr-defined]
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, names.encode() + b"\n")
        finally:
            os.close(fd)
        return real(q, node)  # type: ignore[arg-type]

    monkeypatch.setattr(capindex, "captures", logging_captures)
    result = api.instrument(app, write=False, jobs=jobs)
    wrapped = {s.file for s in result.synthesis.spans}
    assert len(wrapped) > 10, "the synthetic app must get spans in many files, else this checks nothing"
    walks = log.read_text().split() if log.exists() else []
    body = ",".join(sorted(query(BODY_QUERY).capture_name(i) for i in range(query(BODY_QUERY).capture_count)))
    assert body not in walks
    assert len(walks) < len(wrapped)  # (the external-API files' own query still runs: not every file has one)
    assert no_children()


def test_prefetched_captures_are_the_query_s_own() -> None:
    """What the scan leaves for the wrapper is what the query finds on its own."""
    from otelize.analysis.facts import extract

    source = (b"export class A {\n  async f(x: string) {\n    const q = `SELECT *\n      FROM t`;\n"
              b"    return this.db.query(q, 'a\\\n b', \"c\");\n  }\n}\n")
    fresh = parse_mod.parse_source("a.ts", source)
    scanned = parse_mod.parse_source("a.ts", source)
    extract(scanned, BODY_QUERY)
    assert ("prefetched", BODY_QUERY) in scanned.cache
    for name in ("s", "m"):
        got = [(n.start_byte, n.end_byte) for n in capindex.indexed(scanned, BODY_QUERY, name)[1]]
        assert got == [(n.start_byte, n.end_byte) for n in capindex.indexed(fresh, BODY_QUERY, name)[1]]
        assert got, f"the source must have @{name} captures"
    assert literal_spans(scanned, 0, len(source)) == literal_spans(fresh, 0, len(source)) != []
    with pytest.raises(ValueError, match="capture names"):
        extract(parse_mod.parse_source("b.ts", b"f();\n"), "(call_expression) @call")


def failing_edit(bad: set[str]):
    real = pipeline.edit_file

    def edit(job: pipeline.EditJob) -> object:
        if job.path in bad:
            raise BadInput(f"{job.path}: refused by the test")
        return real(job)

    return edit


def test_child_errors_are_the_serial_errors(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = api.analyze(app, jobs=1)
    edited = sorted({t.files[0] for t in plan.tasks} & plan.editable)
    bad = {edited[-1], edited[len(edited) // 2]}  # two failures: the first in path order is reported
    monkeypatch.setattr(pipeline, "edit_file", failing_edit(bad))
    messages = []
    for jobs in (1, 2):
        with pytest.raises(BadInput) as info:
            api.instrument(app, write=False, jobs=jobs)
        messages.append(str(info.value))
    assert messages[0] == messages[1] == f"{min(bad)}: refused by the test"
    assert no_children()


def test_this_process_scans_its_share_and_keeps_those_trees(app: Path) -> None:
    """With jobs=2, files 0, 2, 4, ... of the sorted list are scanned here (their trees
    kept, as a serial run keeps them) and the others in one child (bytes only here)."""
    analysis = api.analyze(app, jobs=2, keep_pool=True)
    try:
        assert len(multiprocessing.active_children()) == 1
        files = sorted(analysis.facts)
        here = [p for p in files if analysis.parsed[p]._tree is not None]
        assert here == [p for i, p in enumerate(sorted(analysis.project.files)) if i % 2 == 0 and p in analysis.facts]
        assert 0 < len(here) < len(files)
    finally:
        analysis.close_pool()
    assert no_children()


def test_kept_pool_is_ended_by_close_and_by_synthesize(app: Path) -> None:
    analysis = api.analyze(app, jobs=3, keep_pool=True)
    assert len(multiprocessing.active_children()) == 2
    analysis.close_pool()
    assert no_children() and analysis.pool is None
    assert api.synthesize_plan(analysis).changes  # without a pool: parsed again, still correct
    plain = api.analyze(app, jobs=2)
    assert plain.pool is None and no_children()


def test_a_child_that_dies_is_a_one_line_error(app: Path) -> None:
    analysis = api.analyze(app, jobs=3, keep_pool=True)
    victim = analysis.pool.procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    with pytest.raises(OtelizeError, match="worker process ended without answering"):
        api.synthesize_plan(analysis)
    assert analysis.pool is None and no_children()


def test_cache_with_pool_matches_uncached(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--cache with the pool: scan-cache hits have no tree in any child and are parsed
    where they are edited; the output is the uncached run's."""
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "app"
    shutil.copytree(app, root)
    api.instrument(root, write=False, jobs=2, cache=True, cached_answer=False)  # fills the caches
    some = sorted((root / "src").rglob("*.ts"))[3]
    some.write_bytes(some.read_bytes() + b"\nexport function addedLater(): number {\n  return 1;\n}\n")
    # a changed edit context (another file's bytes) makes every edit a miss, the scan mostly hits
    warm = api.instrument(root, write=False, jobs=2, cache=True, cached_answer=False)
    cold = api.instrument(root, write=False, jobs=1)
    assert outcome(warm) == outcome(cold)
    assert no_children()
