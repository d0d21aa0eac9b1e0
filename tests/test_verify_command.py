"""`otelize verify` when the command itself fails: the user sees why, not just 0% coverage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otelize.api import instrument

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def instrumented_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "shop-api"
    instrument(REPO_ROOT / "sample-app", out_dir=out)
    return out


def run_verify(app: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otelize", "verify", str(app), *args],
                          capture_output=True, text=True, timeout=120)


def test_a_failing_command_shows_its_exit_code_and_last_output_lines(instrumented_copy: Path) -> None:
    lines = "; ".join(f"echo line-{i}" for i in range(40))
    proc = run_verify(instrumented_copy, "--command", f"{lines}; echo to-stderr >&2; exit 3", "--format", "json")
    data = json.loads(proc.stdout)
    assert data["command_exit"] == 3
    # only the tail, in order, stderr included
    assert data["command_output_tail"][-1] == "to-stderr"
    assert data["command_output_tail"][-2] == "line-39"
    assert "line-0" not in data["command_output_tail"]
    assert data["coverage"] == 0.0 and proc.returncode == 1
    assert "exited with 3" in proc.stderr and "  | to-stderr" in proc.stderr


def test_a_passing_command_prints_no_warning(instrumented_copy: Path) -> None:
    proc = run_verify(instrumented_copy, "--command", "echo quiet-success")
    assert "exited with" not in proc.stderr and "quiet-success" not in proc.stderr
    assert "command: echo quiet-success (exit 0)" in proc.stdout


def test_quiet_hides_the_output_tail_but_keeps_the_warning(instrumented_copy: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "otelize", "-q", "verify", str(instrumented_copy), "--command",
                           "echo noisy; exit 5"], capture_output=True, text=True, timeout=120)
    assert "exited with 5" in proc.stderr
    assert "  | noisy" not in proc.stderr


def test_config_file_changes_what_verify_plans(instrumented_copy: Path, tmp_path: Path) -> None:
    default = json.loads(run_verify(instrumented_copy, "--command", "true", "--format", "json").stdout)
    config = tmp_path / "no-cache.yaml"
    config.write_text("workers: {cache: false}\n")
    proc = run_verify(instrumented_copy, "--config", str(config), "--command", "true", "--format", "json")
    narrowed = json.loads(proc.stdout)
    by_worker = lambda data: {p["name"] for p in data["planned"] if p["worker"] == "cache"}  # noqa: E731
    assert by_worker(default) == {"Cache.get", "Cache.set", "Cache.del", "Cache.delByPrefix"}
    assert by_worker(narrowed) == set()
    assert {p["name"] for p in narrowed["planned"]} == {p["name"] for p in default["planned"]} - by_worker(default)


def test_a_bad_config_file_is_a_one_line_error(instrumented_copy: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("servce_name: x\n")
    proc = run_verify(instrumented_copy, "--config", str(config), "--command", "true")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "did you mean `service_name`" in proc.stderr
