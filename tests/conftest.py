"""Shared fixtures: the sample Express app, installed and built once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nodeutil import npm_install

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_app_dir() -> Path:
    return REPO_ROOT / "sample-app"


@pytest.fixture(scope="session")
def js_shops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The JavaScript shop apps, made whole once per session (tests/js_shop.py): name -> folder.
    Read-only: a test that writes copies its app first."""
    from js_shop import APPS, materialise

    root = tmp_path_factory.mktemp("js-shops")
    return {app: materialise(app, root / app) for app in APPS}


@pytest.fixture(scope="session")
def built_sample_app(sample_app_dir: Path) -> Path:
    """sample-app with node_modules installed and dist/ built (npm run build)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    npm_install(sample_app_dir)
    proc = subprocess.run(
        ["npm", "run", "build"], cwd=sample_app_dir, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        pytest.fail(f"npm run build failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return sample_app_dir


@pytest.fixture(scope="session")
def instrumented_sample_app(sample_app_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of sample-app instrumented by otelize (`--out`), installed and built."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    from nodeutil import npm_install_cached

    from otelize.api import instrument

    out = tmp_path_factory.mktemp("instrumented") / "shop-api"
    result = instrument(sample_app_dir, out_dir=out)
    assert result.synthesis.changes, "instrument made no changes to the pristine sample-app"
    npm_install_cached(out)
    proc = subprocess.run(["npm", "run", "build"], cwd=out, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"npm run build of the instrumented app failed:\n{proc.stdout}\n{proc.stderr}")
    return out
