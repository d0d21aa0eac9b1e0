"""The opt-in state cache: an unchanged clean project skips all work; any change invalidates it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from otelize.api import instrument
from otelize.cli.main import cli

SAMPLE = Path(__file__).resolve().parent.parent / "sample-app"


def _instrumented_copy(tmp_path: Path) -> Path:
    out = tmp_path / "app"
    instrument(SAMPLE, out_dir=out)
    return out


def test_clean_run_is_remembered_and_answered_without_analysis(tmp_path: Path) -> None:
    app = _instrumented_copy(tmp_path)
    first = instrument(app, write=False, cache=True)
    assert not first.cached and first.analysis is not None and not first.changed
    assert (app / ".otelize-cache" / "clean").is_file()
    assert (app / ".otelize-cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    second = instrument(app, write=False, cache=True)
    assert second.cached and second.analysis is None and not second.changed


def test_any_source_change_invalidates_the_cache(tmp_path: Path) -> None:
    app = _instrumented_copy(tmp_path)
    instrument(app, write=False, cache=True)
    service = app / "src" / "services" / "userService.ts"
    original = service.read_bytes()
    # strip the span of one method by hand: the next run must see the pending change
    service.write_bytes(original + b"\nexport async function audit(id: string): Promise<string> {\n  const x = await Promise.resolve(id);\n  return x;\n}\n")
    result = instrument(app, write=False, cache=True)
    assert not result.cached and result.changed
    assert "src/services/userService.ts" in result.synthesis.changes


def test_a_project_with_pending_changes_is_never_cached(tmp_path: Path) -> None:
    app = tmp_path / "pristine"
    shutil.copytree(SAMPLE, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    for _ in range(2):
        result = instrument(app, write=False, cache=True)
        assert not result.cached and result.changed
    assert not (app / ".otelize-cache" / "clean").exists()


def test_cli_check_with_cache(tmp_path: Path) -> None:
    app = _instrumented_copy(tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["instrument", str(app), "--check", "--cache"])
    second = runner.invoke(cli, ["instrument", str(app), "--check", "--cache"])
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    assert "last clean run" in second.output and "last clean run" not in first.output


# What the cached answer must not import: the analysis stack, the workers and their
# libraries, the renderer, the rule loader (an app without .otelize.yaml reads no YAML).
NOT_ON_THE_CACHED_PATH = (
    "jinja2", "networkx", "tree_sitter", "yaml", "otelize.analysis", "otelize.classify", "otelize.plan.dag",
    "otelize.run.pipeline", "otelize.synthesize.apply", "otelize.synthesize.render", "otelize.synthesize.write", "otelize.workers.config",
    "otelize.workers.dependency", "otelize.workers.eligibility", "otelize.workers.placement",
    "otelize.workers.spans",
)


def _modules_of_a_run(*args: str) -> tuple[list[str], str]:
    """(every module imported, stderr) of `otelize ARGS` run in a fresh interpreter."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stdout__))\n"
        "from otelize.cli.main import main\n"
        "sys.argv = ['otelize'] + sys.argv[1:]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), proc.stderr


def test_the_cached_check_imports_no_analysis_worker_or_yaml(tmp_path: Path) -> None:
    app = _instrumented_copy(tmp_path)
    for expect_cached in (False, True):
        loaded, stderr = _modules_of_a_run("instrument", str(app), "--check", "--cache")
        assert ("last clean run" in stderr) is expect_cached, stderr
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in NOT_ON_THE_CACHED_PATH)]
    assert heavy == []


def test_a_small_apps_cold_check_starts_no_pool_machinery(tmp_path: Path) -> None:
    # under the pool threshold the run is serial: multiprocessing and concurrent.futures
    # (~15 ms of the start) are imported only where a pool or the --out writer threads run
    loaded, _ = _modules_of_a_run("instrument", str(_instrumented_copy(tmp_path)), "--check")
    assert "otelize.analysis.facts" in loaded  # it did analyse the app
    assert [m for m in loaded if m.split(".")[0] in ("multiprocessing", "concurrent")] == []


def test_a_committed_clean_marker_does_not_pass_the_check(tmp_path: Path) -> None:
    # anyone can compute the fingerprint of a tree; only this user's otelize can sign it
    from otelize.project.discover import load_project
    from otelize.project.settings import load_settings
    from otelize.run import statecache

    app = tmp_path / "pristine"
    shutil.copytree(SAMPLE, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    settings = load_settings(app).to_api()
    key = statecache.fingerprint(load_project(app), settings, [])
    (app / ".otelize-cache").mkdir()
    for planted in (key, statecache.mac(b"k" * 32, key.encode()).hex()):
        (app / ".otelize-cache" / "clean").write_text(planted + "\n")
        result = instrument(app, write=False, cache=True)
        assert not result.cached and result.changed
    code = CliRunner().invoke(cli, ["instrument", str(app), "--check", "--cache"]).exit_code
    assert code == 1
