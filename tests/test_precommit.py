"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real `pre-commit`.

`pre-commit try-repo` clones this repository at the committed HEAD (the
hooks file must be committed) and pip-installs it into its own environment,
so these tests need network access to PyPI and take ~20 s per run. Each
runs against a temporary git repository holding a copy of sample-app
(without node_modules and dist).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transform import untyped
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO_ROOT / "sample-app"
HOOKS_FILE = REPO_ROOT / ".pre-commit-hooks.yaml"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def test_hooks_file_declares_both_hooks_on_the_whole_project() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS_FILE.read_text("utf-8"))}
    assert sorted(hooks) == ["otelize", "otelize-check"]
    for hook in hooks.values():
        assert hook["pass_filenames"] is False
        assert hook["args"] == ["."]
        assert hook["language"] == "python"
    assert hooks["otelize"]["entry"] == "otelize instrument --cache --exit-nonzero-on-change"
    assert hooks["otelize-check"]["entry"] == "otelize instrument --cache --check"


@pytest.fixture(scope="module")
def pc_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not PRE_COMMIT.exists():
        pytest.skip("pre-commit is not installed (pip install -e '.[test]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(
        PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
        NO_COLOR="1",
    )
    return env


@pytest.fixture(scope="module")
def rev() -> str:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    committed = subprocess.run(["git", "cat-file", "-e", f"{sha}:.pre-commit-hooks.yaml"], cwd=REPO_ROOT)
    assert committed.returncode == 0, "commit .pre-commit-hooks.yaml first: try-repo clones the committed HEAD"
    return sha


def git(cwd: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout


def make_repo(dest: Path, env: dict[str, str], subdir: str = "") -> Path:
    """A git repository with a copy of sample-app at `subdir`; returns the app folder."""
    app = dest / subdir if subdir else dest
    shutil.copytree(SAMPLE_APP, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    git(dest, "init", "-q", env=env)
    git(dest, "add", "-A", env=env)
    git(dest, "commit", "-q", "-m", "app", env=env)
    return app


def try_repo(repo: Path, hook: str, env: dict[str, str], rev: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(REPO_ROOT), hook, "--ref", rev, "--all-files"],
        cwd=repo, capture_output=True, text=True, env=env, timeout=600,
    )


def test_check_hook_fails_on_an_uninstrumented_app_and_writes_nothing(tmp_path: Path, pc_env: dict[str, str], rev: str) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, pc_env)
    proc = try_repo(repo, "otelize-check", pc_env, rev)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "otelize (check)" in out and "Failed" in out, out
    assert "otelize: would change 13 file(s)" in out, out
    assert git(repo, "status", "--porcelain", env=pc_env) == "", "the check hook wrote files"


def test_instrument_hook_fails_when_it_changes_files_then_both_hooks_pass(tmp_path: Path, pc_env: dict[str, str], rev: str) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, pc_env)

    first = try_repo(repo, "otelize", pc_env, rev)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "files were modified by this hook" in out, out
    assert (repo / "src/tracing.ts").is_file()
    assert "withSpan('OrderService.createOrder'" in untyped((repo / "src/services/orderService.ts").read_text())
    changed = git(repo, "status", "--porcelain", env=pc_env)

    second = try_repo(repo, "otelize", pc_env, rev)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
    assert git(repo, "status", "--porcelain", env=pc_env) == changed, "the second run changed files again"

    check = try_repo(repo, "otelize-check", pc_env, rev)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Passed" in check.stdout


def test_args_point_the_hook_at_an_app_in_a_subfolder(tmp_path: Path, pc_env: dict[str, str], rev: str) -> None:
    """The README's `.pre-commit-config.yaml` snippet: `args: [path/to/app]`."""
    repo = tmp_path / "repo"
    make_repo(repo, pc_env, subdir="services/shop")
    config = {"repos": [{"repo": str(REPO_ROOT), "rev": rev, "hooks": [{"id": "otelize-check", "args": ["services/shop"]}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    git(repo, "add", ".pre-commit-config.yaml", env=pc_env)  # pre-commit refuses an unstaged config
    proc = subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files"], cwd=repo, capture_output=True, text=True, env=pc_env, timeout=600
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "otelize: would change 13 file(s)" in out, out  # not `.: no package.json found` (exit 2)
    assert "otelize: error" not in out, out
