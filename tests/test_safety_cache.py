"""Nobody gets in through `.otelize-cache/`: planted symlinks are never followed.

The cache folder is in the project, so a repository can ship one. `instrument --check
--cache` (the pre-commit hook) must not write, create or read anything outside the
root through a symlink planted as the folder, as `clean`, `.gitignore` or a cache file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelize.api import instrument
from otelize.cli.main import cli

REPO = Path(__file__).resolve().parent.parent
CACHE = ".otelize-cache"


@pytest.fixture(scope="module")
def clean_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean") / "app"
    shutil.copytree(REPO / "sample-app", root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    instrument(root)
    return root


@pytest.fixture()
def app(clean_app: Path, tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(clean_app, root)
    return root


def check_cache(app: Path) -> int:
    result = CliRunner().invoke(cli, ["instrument", str(app), "--check", "--cache"], catch_exceptions=False)
    return result.exit_code


@pytest.mark.parametrize("name", ["clean", ".gitignore", "scan.pickle", "edit.pickle"])
def test_a_planted_symlink_to_an_outside_file_is_not_written_through(app: Path, tmp_path: Path, name: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    (app / CACHE).mkdir()
    (app / CACHE / name).symlink_to(victim)
    assert check_cache(app) == 0
    assert check_cache(app) == 0  # and the second run (which reads what the first wrote)
    assert victim.read_bytes() == b"precious\n"
    assert not (app / CACHE / name).is_symlink()  # replaced by otelize's own file


@pytest.mark.parametrize("name", ["clean", ".gitignore"])
def test_a_planted_dangling_symlink_creates_nothing_outside(app: Path, tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (app / CACHE).mkdir()
    (app / CACHE / name).symlink_to(outside / "created")
    assert check_cache(app) == 0
    assert list(outside.iterdir()) == []


def test_a_cache_folder_that_is_a_symlink_is_not_used(app: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (app / CACHE).symlink_to(outside)
    assert check_cache(app) == 0
    assert list(outside.iterdir()) == []


def test_a_planted_fifo_in_the_cache_is_not_read(app: Path, tmp_path: Path) -> None:
    """A FIFO (directly, or a symlink to one) would block a read forever."""
    (app / CACHE).mkdir()
    os.mkfifo(app / CACHE / "clean")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (app / CACHE / "scan.pickle").symlink_to(fifo)
    run = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(app), "--check", "--cache"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
