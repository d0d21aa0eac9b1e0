"""Packaging: the wheel installs into a fresh venv and works outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import otelize

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_and_runs_outside_source_tree(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist)], cwd=REPO_ROOT)
    wheels = sorted(dist.glob("otelize-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    for folder in ("otelize/_data/templates/", "otelize/_data/rules/"):
        assert any(n.startswith(folder) and n != folder for n in names), f"{folder} missing from {wheel.name}"
    assert "otelize/__init__.py" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    vpython = bindir / "python"
    _run([str(vpython), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(wheel)], cwd=tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    expected = f"otelize, version {otelize.__version__}"

    out = _run([str(bindir / "otelize"), "--version"], cwd=work).stdout.strip()
    assert out == expected
    out = _run([str(vpython), "-m", "otelize", "--version"], cwd=work).stdout.strip()
    assert out == expected

    code = (
        "import otelize; print(otelize.__file__)\n"
        "from otelize.resources import data_dir\n"
        "print(data_dir('templates')); print(data_dir('rules'))"
    )
    lines = _run([str(vpython), "-c", code], cwd=work).stdout.strip().splitlines()
    assert len(lines) == 3, lines
    venv_root = venv.resolve()
    repo_root = REPO_ROOT.resolve()
    for printed in lines:
        path = Path(printed).resolve()
        assert path.is_relative_to(venv_root), f"{path} is not inside the venv {venv_root}"
        assert not path.is_relative_to(repo_root), f"{path} resolves into the source tree"
        assert path.exists(), path
    templates, rules = (Path(p) for p in lines[1:])
    assert templates.is_dir() and any(templates.iterdir())
    assert rules.is_dir() and (rules / "otel-packages.yaml").is_file()
