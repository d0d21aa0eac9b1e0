"""Faults during an in-place write, with real processes: SIGKILL at each phase of the
commit, Ctrl-C and SIGTERM during it, two runs at once, a lock left by a killed run.

Each fault is injected into a child `otelize instrument` process at a named point of
`otelize.synthesize.write.write_changes` (its `checkpoint(phase)` hook, replaced in the child):
`staged:N` after the N-th temp file, `journal` once the commit journal is on disk,
`renamed:N` after the N-th rename. The promises (otelize.synthesize.journal):

- a kill while staging: the next run removes the temp files; the tree is as before;
- a kill during the renames: the next run completes the write; the tree is exactly
  what an uninterrupted run writes, and `strip` still undoes it byte for byte;
- Ctrl-C / SIGTERM during the renames waits for the commit, then exits 130 with
  `otelize: interrupted: every change was written ...`; while staging, 130 and nothing written;
- a second run waits for the first (and then has nothing to do), or refuses with exit 4.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from otelize.api import analyze, instrument
from otelize.synthesize.journal import JOURNAL, OtelizeWarning
from otelize.stripping.strip import strip

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import os, signal, sys, time
import otelize.synthesize.write as synthesize
point, action = os.environ["T_POINT"], os.environ["T_ACTION"]

def checkpoint(phase):
    if phase != point:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "int":
        os.kill(os.getpid(), signal.SIGINT)
    elif action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "pause":
        open(os.environ["T_READY"], "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(os.environ["T_GO"]) and time.monotonic() < deadline:
            time.sleep(0.02)

synthesize.checkpoint = checkpoint
from otelize.cli.main import main
sys.argv = ["otelize", *sys.argv[1:]]
main()
"""


def child(app: Path, point: str, action: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "T_POINT": point, "T_ACTION": action, **(extra_env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, "instrument", str(app), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def debris(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".otelize-*") if p.is_file())


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("original") / "app"
    shutil.copytree(REPO / "sample-app", root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return root


@pytest.fixture(scope="module")
def instrumented(original: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("reference") / "app"
    shutil.copytree(original, root)
    instrument(root)
    return tree(root)


@pytest.fixture()
def app(original: Path, tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(original, root)
    return root


def changed_files(original: Path, instrumented: dict[str, bytes]) -> int:
    before = tree(original)
    return sum(1 for p in set(before) | set(instrumented) if before.get(p) != instrumented.get(p))


def recover_with_plan(app: Path) -> list[str]:
    """What a following `plan` (a read-only command) says while it recovers."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OtelizeWarning)
        analyze(app)
    return [str(w.message) for w in caught if issubclass(w.category, OtelizeWarning)]


@pytest.mark.parametrize("point", ["staged:1", "staged:7", "staged:LAST"])
def test_kill_while_staging_is_rolled_back(app: Path, original: Path, instrumented: dict[str, bytes], point: str) -> None:
    point = point.replace("LAST", str(changed_files(original, instrumented)))
    proc = child(app, point, "kill")
    proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL
    assert (app / JOURNAL).exists() and debris(app)  # what a kill leaves: the journal and temp files
    messages = recover_with_plan(app)
    assert tree(app) == tree(original)
    assert debris(app) == [] and not (app / JOURNAL).exists()
    assert messages == ["an earlier run was interrupted before it changed anything; its temp files were removed"]


@pytest.mark.parametrize("point", ["journal", "renamed:1", "renamed:6", "renamed:LAST"])
def test_kill_during_the_commit_is_completed(app: Path, original: Path, instrumented: dict[str, bytes], point: str) -> None:
    n = changed_files(original, instrumented)
    point = point.replace("LAST", str(n))
    proc = child(app, point, "kill")
    proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL
    assert tree(app) != instrumented  # half done (or all renamed, journal still there)
    messages = recover_with_plan(app)
    assert tree(app) == instrumented
    assert debris(app) == [] and not (app / JOURNAL).exists()
    assert len(messages) == 1 and messages[0].startswith("an earlier run was interrupted while writing; its write was completed")


def test_after_a_killed_commit_strip_still_undoes_instrument(app: Path, original: Path) -> None:
    proc = child(app, "renamed:3", "kill")
    proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL
    # strip is the next run: it completes the write first, then removes all of it
    run = subprocess.run([sys.executable, "-m", "otelize", "strip", str(app)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "otelize: warning: an earlier run was interrupted while writing; its write was completed" in run.stderr
    assert tree(app) == tree(original)


def test_a_rerun_after_a_killed_commit_makes_no_edits(app: Path, instrumented: dict[str, bytes]) -> None:
    proc = child(app, "renamed:2", "kill")
    proc.communicate(timeout=180)
    run = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(app), "--check"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr  # recovered by --check, and then nothing left to do
    assert tree(app) == instrumented


@pytest.mark.parametrize("sig", ["int", "term"])
def test_interrupt_during_the_commit_waits_for_it(app: Path, instrumented: dict[str, bytes], sig: str) -> None:
    proc = child(app, "renamed:2", sig)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("otelize: interrupted: every change was written"), err
    assert "Traceback" not in err and "Aborted" not in err
    assert tree(app) == instrumented and debris(app) == []


@pytest.mark.parametrize("sig", ["int", "term"])
def test_interrupt_while_staging_writes_nothing(app: Path, original: Path, sig: str) -> None:
    proc = child(app, "staged:2", sig)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "otelize: interrupted: nothing was written"
    assert tree(app) == tree(original) and debris(app) == []


def start_paused(app: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = child(app, "staged:1", "pause", extra_env={"T_READY": str(ready), "T_GO": str(go)})
    deadline = time.monotonic() + 180
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc, go


def test_two_runs_at_once_second_waits_and_finds_nothing_to_do(
    app: Path, tmp_path: Path, instrumented: dict[str, bytes]
) -> None:
    first, go = start_paused(app, tmp_path)  # holds the lock, in the middle of its commit
    second = subprocess.Popen([sys.executable, "-m", "otelize", "instrument", str(app)],
                              env={**os.environ, "OTELIZE_LOCK_WAIT": "120"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert second.poll() is None  # waiting for the lock
    go.touch()
    first.communicate(timeout=180)
    _, err = second.communicate(timeout=180)
    assert first.returncode == 0 and second.returncode == 0, err
    assert "nothing to do" in err or "0 file(s)" in err or "up to date" in err, err
    assert tree(app) == instrumented  # every OpenTelemetry package listed once
    pkg = (app / "package.json").read_text()
    assert pkg.count('"@opentelemetry/api"') == 1


def test_second_run_refuses_after_a_bounded_wait(app: Path, tmp_path: Path, original: Path) -> None:
    first, go = start_paused(app, tmp_path)
    try:
        run = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(app)],
                             env={**os.environ, "OTELIZE_LOCK_WAIT": "0.2"}, capture_output=True, text=True, timeout=180)
        assert run.returncode == 4
        assert run.stderr.strip().splitlines() == [
            f"otelize: error: {app}: another otelize run is writing to this project (waited 0.2 s); "
            "nothing was written, run it again"
        ]
        # strip takes the same lock
        run = subprocess.run([sys.executable, "-m", "otelize", "strip", str(app)],
                             env={**os.environ, "OTELIZE_LOCK_WAIT": "0"}, capture_output=True, text=True, timeout=180)
        assert run.returncode == 4 and "another otelize run" in run.stderr
    finally:
        go.touch()
        first.communicate(timeout=180)


def test_lock_of_a_killed_run_is_not_in_the_way(app: Path, tmp_path: Path, instrumented: dict[str, bytes]) -> None:
    first, _ = start_paused(app, tmp_path)
    first.kill()  # SIGKILL while holding the lock and half-way through staging
    first.communicate(timeout=60)
    run = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(app)],
                         env={**os.environ, "OTELIZE_LOCK_WAIT": "0"}, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    assert "its temp files were removed" in run.stderr
    assert tree(app) == instrumented and debris(app) == []


def test_temp_files_of_an_older_otelize_are_swept(app: Path, original: Path) -> None:
    """Random-named temp files from a run killed before the journal existed (older otelize),
    also where `.gitignore` ignores `*.tmp`."""
    (app / ".gitignore").write_text("*.tmp\n")
    before = tree(app)
    for rel in ("src/.otelize-k2j4h1.tmp", "src/services/.otelize-x9a.tmp", ".otelize-q.tmp"):
        (app / rel).write_bytes(b"half")
    messages = recover_with_plan(app)
    assert debris(app) == [] and tree(app) == before
    assert messages == ["removed 3 temp file(s) (.otelize-*.tmp) left by an interrupted run"]


def test_a_running_writer_s_temp_files_are_not_swept_by_a_reader(app: Path, tmp_path: Path) -> None:
    first, go = start_paused(app, tmp_path)  # staging, holding the lock
    try:
        staged = debris(app)
        assert staged
        recover_with_plan(app)  # a concurrent `plan` must not take them away
        assert debris(app) == staged
    finally:
        go.touch()
        first.communicate(timeout=180)
    assert first.returncode == 0 and debris(app) == []


def test_a_journal_that_cannot_be_finished_is_a_warning_not_a_traceback(
    app: Path, instrumented: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = child(app, "renamed:2", "kill")
    proc.communicate(timeout=180)

    def refuse(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202  (a read-only tree; as root, simulated)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    messages = recover_with_plan(app)
    monkeypatch.undo()
    assert len(messages) == 1 and "cannot be finished now (Permission denied)" in messages[0]
    assert (app / JOURNAL).exists()
    assert recover_with_plan(app)[0].startswith("an earlier run was interrupted while writing; its write was completed")
    assert tree(app) == instrumented
