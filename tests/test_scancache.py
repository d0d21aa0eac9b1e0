"""The opt-in per-file scan cache: only changed files are parsed again, and a cached
run gives exactly what an uncached one does."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from transform import untyped
from click.testing import CliRunner

import otelize.run.pipeline as pipeline
from fsutil import read_only
from otelize.run import scancache
from otelize.run import statecache
from otelize.api import analyze, instrument
from otelize.cli.main import cli
from otelize.report.plan import FORMATS

SAMPLE = Path(__file__).resolve().parent.parent / "sample-app"
CACHE = Path(".otelize-cache") / scancache.SCAN_FILE


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "shop-api"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return root


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths scan_files parses (in-process: the sample app is below the pool threshold)."""
    seen: list[str] = []
    real = pipeline.parse_source

    def counting(path: str, data: bytes):  # noqa: ANN202
        seen.append(path)
        return real(path, data)

    monkeypatch.setattr(pipeline, "parse_source", counting)
    return seen


def plan_json(root: Path, **kw: object) -> str:
    return FORMATS["json"](analyze(root, **kw))


def test_a_warm_run_parses_nothing_and_plans_the_same(app: Path, parses: list[str]) -> None:
    uncached = plan_json(app)
    n = len(parses)
    assert n == len(analyze(app).project.files) and not (app / CACHE).exists()
    parses.clear()
    assert plan_json(app, cache=True) == uncached
    assert len(parses) == n and (app / CACHE).is_file()
    parses.clear()
    assert plan_json(app, cache=True) == uncached
    assert parses == []


def test_only_a_changed_file_is_parsed_again_and_its_change_is_seen(app: Path, parses: list[str]) -> None:
    plan_json(app, cache=True)
    routes = app / "src/routes/products.ts"
    routes.write_text(routes.read_text() + "\nproductsRouter.get('/featured/list', (_req, res) => { res.json([]); });\n")
    parses.clear()
    warm = analyze(app, cache=True)
    assert parses == ["src/routes/products.ts"]
    assert ("GET", "/api/products/featured/list") in {(r.method, r.path) for r in warm.graph.routes}
    assert FORMATS["json"](warm) == plan_json(app)


def test_instrument_with_a_warm_cache_writes_the_same_bytes(app: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(app, twin)
    analyze(app, cache=True)  # warm the scan cache
    cached = instrument(app, cache=True)
    uncached = instrument(twin)
    assert cached.analysis is not None and cached.synthesis.changes == uncached.synthesis.changes
    for rel in cached.synthesis.changes:
        assert (app / rel).read_bytes() == (twin / rel).read_bytes(), rel


def test_other_rules_start_a_fresh_cache(app: Path, parses: list[str], tmp_path: Path) -> None:
    plan_json(app, cache=True)
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "latency-service.yaml").write_text("id: latency-service\ncategory: service\npriority: 80\nmatch: {path: src/utils/latency.ts}\n")
    parses.clear()
    decided = analyze(app, cache=True, rule_dirs=[rules]).classification.file("src/utils/latency.ts")
    assert decided.category == "service"
    assert len(parses) == len(analyze(app).project.files)  # nothing reused: the rules are part of the key


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_corrupt_cache_is_ignored_and_rewritten(app: Path, parses: list[str], damage: bytes) -> None:
    expected = plan_json(app, cache=True)
    (app / CACHE).write_bytes(damage)
    parses.clear()
    assert plan_json(app, cache=True) == expected
    assert len(parses) == len(analyze(app).project.files)
    parses.clear()
    plan_json(app, cache=True)
    assert parses == []  # rewritten


def test_entries_of_deleted_files_are_dropped(app: Path) -> None:
    plan_json(app, cache=True)
    key = scancache.rules_key([])
    assert "src/utils/latency.ts" in scancache.load(app, key)
    (app / "src/utils/latency.ts").unlink()
    (app / "src/utils/latency.ts").write_text("export const latency = 0;\n")
    (app / "src/utils/extra.ts").write_text("export const extra = 1;\n")
    (app / "src/utils/latency.ts").unlink()
    analyze(app, cache=True)
    entries = scancache.load(app, key)
    assert "src/utils/latency.ts" not in entries and "src/utils/extra.ts" in entries


def test_a_read_only_tree_just_gets_no_cache(app: Path) -> None:
    expected = plan_json(app)
    with read_only(app):
        assert plan_json(app, cache=True) == expected
        assert not (app / ".otelize-cache").exists()


def test_out_leaves_the_source_tree_without_a_cache(app: Path, tmp_path: Path) -> None:
    instrument(app, out_dir=tmp_path / "out", cache=True)
    assert not (app / ".otelize-cache").exists()


def test_cli_plan_and_report_use_the_scan_cache(app: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["plan", str(app), "--cache", "--format", "json"])
    assert first.exit_code == 0 and (app / CACHE).is_file()
    second = runner.invoke(cli, ["plan", str(app), "--cache", "--format", "json"])
    assert second.stdout == first.stdout
    # --report needs an analysis: with --cache it still gets one (from the scan cache)
    report = tmp_path / "r.json"
    for _ in range(2):
        done = runner.invoke(cli, ["instrument", str(app), "--check", "--cache", "--report", str(report)])
        assert done.exit_code == 1, done.output  # a pristine app has changes pending
        assert '"spans"' in report.read_text()


# --- the edit cache ------------------------------------------------------------------


@pytest.fixture
def edits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths whose edit phase really runs (in-process: the sample app is small)."""
    seen: list[str] = []
    real = pipeline.edit_file

    def counting(job):  # noqa: ANN001, ANN202
        seen.append(job.path)
        return real(job)

    monkeypatch.setattr(pipeline, "edit_file", counting)
    return seen


def outcome(result) -> tuple:  # noqa: ANN001
    syn = result.synthesis
    return syn.changes, syn.spans, syn.skips, syn.reverted, syn.packages, syn.notes


def test_a_warm_check_edits_nothing_and_reports_the_same(app: Path, edits: list[str]) -> None:
    uncached = instrument(app, write=False)
    n = len(edits)
    assert n == 10  # the files with span tasks, the error handler and the entry point
    instrument(app, write=False, cache=True)
    assert (app / ".otelize-cache" / scancache.EDIT_FILE).is_file()
    edits.clear()
    warm = instrument(app, write=False, cache=True)
    assert edits == []
    assert outcome(warm) == outcome(uncached)


def test_only_the_changed_file_is_edited_again(app: Path, edits: list[str]) -> None:
    instrument(app, write=False, cache=True)
    service = app / "src/services/userService.ts"
    service.write_text(service.read_text() + "\nexport async function audit(id: string): Promise<string> {\n  const x = await Promise.resolve(id);\n  return x;\n}\n")
    edits.clear()
    warm = instrument(app, write=False, cache=True)
    assert edits == ["src/services/userService.ts"]
    assert outcome(warm) == outcome(instrument(app, write=False))
    assert "withSpan('audit', " in untyped(warm.synthesis.changes["src/services/userService.ts"][1].decode())


@pytest.mark.parametrize("change", ["settings", "package.json", "prisma schema"])
def test_a_changed_context_edits_everything_again(app: Path, edits: list[str], change: str) -> None:
    instrument(app, write=False, cache=True)
    if change == "settings":
        (app / ".otelize.yaml").write_text("span_naming: method\n")
    elif change == "prisma schema":  # what @prisma/client talks to is part of every edit's context
        (app / "prisma").mkdir()
        (app / "prisma/schema.prisma").write_text('datasource db {\n  provider = "mysql"\n  url = env("DB")\n}\n')
    else:
        pkg = (app / "package.json").read_text()
        (app / "package.json").write_text(pkg.replace('"version": "1.0.0"', '"version": "1.0.1"'))
    edits.clear()
    warm = instrument(app, write=False, cache=True)
    assert len(edits) == 10  # every file's edit phase ran again
    assert outcome(warm) == outcome(instrument(app, write=False))
    if change == "settings":
        assert "withSpan('createOrder', " in untyped(warm.synthesis.changes["src/services/orderService.ts"][1].decode())


# --- a cache file planted in the repository is never unpickled -----------------------


class _Trap:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path(self.marker).touch, ())


@pytest.mark.parametrize("signed_with", ["nothing", "another key"])
def test_a_planted_cache_file_is_ignored_not_run(app: Path, tmp_path: Path, parses: list[str], signed_with: str) -> None:
    import hmac
    import hashlib
    import pickle

    expected = plan_json(app)
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"key": scancache.rules_key([]), "entries": {"src/index.ts": (b"", _Trap(str(marker)))}})
    (app / ".otelize-cache").mkdir()
    if signed_with == "nothing":
        blob = payload
    else:
        blob = scancache.MAGIC + hmac.new(b"k" * 32, payload, hashlib.sha256).digest() + payload
    (app / CACHE).write_bytes(blob)
    parses.clear()
    assert plan_json(app, cache=True) == expected
    assert not marker.exists()
    assert len(parses) == len(analyze(app).project.files)  # nothing was taken from the planted file


def test_the_signing_key_is_private_to_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = statecache.user_secret()
    assert first is not None and len(first) == 32
    assert statecache.user_secret() == first  # made once, then read
    key_file = tmp_path / "xdg" / "otelize" / statecache.SECRET_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_without_a_place_for_the_key_there_is_simply_no_cache(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # ~/.cache/otelize cannot be made under a file
    assert statecache.user_secret() is None
    assert plan_json(app, cache=True) == plan_json(app)
    assert not (app / CACHE).exists()


def test_a_symlinked_cache_folder_is_never_written_through(app: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (app / ".otelize-cache").symlink_to(outside)
    assert plan_json(app, cache=True) == plan_json(app)
    instrument(app, write=False, cache=True)
    assert list(outside.iterdir()) == []


def test_a_one_file_change_pickles_that_file_s_scan_only(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rewriting the cache after a change keeps the other entries' bytes as they were read:
    the run pickles the changed file's scan, not every file's."""
    plan_json(app, cache=True)
    key = scancache.rules_key([])
    before = scancache.load(app, key)
    changed = "src/utils/latency.ts"
    (app / changed).write_text((app / changed).read_text() + "\nexport const extra = 1;\n")
    pickled: list[object] = []
    real = scancache.pickle.dumps

    def spy(obj: object, *args: object, **kwargs: object) -> bytes:
        pickled.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(scancache.pickle, "dumps", spy)
    expected = plan_json(app)
    assert plan_json(app, cache=True) == expected
    scans = [o for o in pickled if isinstance(o, pipeline.Scan)]
    assert [s.path for s in scans] == [changed]
    after = scancache.load(app, key)
    assert sorted(after) == sorted(before)
    assert after[changed] != before[changed]
    assert {p: e for p, e in after.items() if p != changed} == {p: e for p, e in before.items() if p != changed}
