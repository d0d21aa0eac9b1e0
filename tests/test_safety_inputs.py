"""Nothing lost: files saved during a run, `--report` onto a project file, read-only files as root.

- a file (a source file, or package.json) that changes between analysis and the write
  makes the run write nothing and exit 4 with a one-line message naming the file;
- `--report PATH` never replaces an existing file of the project (also with `--check`);
- a 0444 file or a 0555 folder is read-only to otelize even when it runs as root
  (where `os.access` says everything is writable): exit 2, nothing written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import otelize.api as api
from otelize.cli.main import cli

REPO = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(REPO / "sample-app", root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return root


def edit_during_the_run(monkeypatch: pytest.MonkeyPatch, path: Path, edit) -> None:  # noqa: ANN001
    """Save `path` (as an editor would) after the analysis and the edits, before the write."""
    real = api.synthesize_plan

    def late(analysis):  # noqa: ANN001, ANN202
        syn = real(analysis)
        path.write_bytes(edit(path.read_bytes()))
        return syn

    monkeypatch.setattr(api, "synthesize_plan", late)


@pytest.mark.parametrize("rel", ["src/services/userService.ts", "src/routes/users.ts"])
def test_source_saved_during_the_run_is_kept_and_nothing_is_written(app: Path, monkeypatch: pytest.MonkeyPatch, rel: str) -> None:
    # userService.ts gets spans (a target); users.ts is analysed but not edited
    edit_during_the_run(monkeypatch, app / rel, lambda b: b"// saved by the user\n" + b)
    before = tree(app)
    code, err = invoke("instrument", str(app))
    assert code == 4
    assert err.splitlines() == [f"otelize: error: {rel}: changed while otelize was running; nothing was written (run it again)"]
    after = tree(app)
    assert after[rel].startswith(b"// saved by the user\n")
    assert {p: v for p, v in after.items() if p != rel} == {p: v for p, v in before.items() if p != rel}


def test_package_json_saved_during_the_run_is_kept(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = app / "package.json"
    edit_during_the_run(monkeypatch, pkg, lambda b: b.replace(b'"scripts": {', b'"scripts": {\n    "lint": "eslint .",', 1))
    code, err = invoke("instrument", str(app))
    assert code == 4
    assert err.splitlines() == ["otelize: error: package.json: changed while otelize was running; nothing was written (run it again)"]
    data = pkg.read_text()
    assert '"lint": "eslint ."' in data and "@opentelemetry" not in data


def test_strip_checks_too(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.instrument(app)
    import otelize.stripping.strip as strip_mod

    real = strip_mod.strip_package_json
    target = app / "src" / "services" / "orderService.ts"

    def late(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        target.write_bytes(target.read_bytes() + b"// saved\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(strip_mod, "strip_package_json", late)
    before = tree(app)
    code, err = invoke("strip", str(app))
    assert code == 4 and "src/services/orderService.ts: changed while otelize was running" in err
    assert {p: v for p, v in tree(app).items() if not p.endswith("orderService.ts")} == {
        p: v for p, v in before.items() if not p.endswith("orderService.ts")
    }


# --- --report onto a project file ---------------------------------------------------------


@pytest.mark.parametrize("rel", ["package.json", "tsconfig.json", "src/types.json"])
@pytest.mark.parametrize("mode", [[], ["--check"], ["--diff"]])
def test_report_onto_a_project_file_is_refused(app: Path, rel: str, mode: list[str]) -> None:
    (app / "src" / "types.json").write_text('{"not": "a report"}\n')
    before = tree(app)
    code, err = invoke("instrument", str(app), *mode, "--report", str(app / rel))
    assert code == 2
    assert err.splitlines() == [f"otelize: error: {app / rel}: is a file of the project; --report never overwrites one (choose a new path)"]
    assert tree(app) == before


def test_report_through_a_symlink_onto_a_project_file_is_refused(app: Path, tmp_path: Path) -> None:
    link = tmp_path / "report.json"
    link.symlink_to(app / "package.json")
    before = (app / "package.json").read_bytes()
    code, err = invoke("instrument", str(app), "--check", "--report", str(link))
    assert code == 2 and "is a file of the project" in err
    assert (app / "package.json").read_bytes() == before


@pytest.mark.parametrize("name", ["otelize-report.md", "otelize-report.json"])
def test_an_earlier_report_in_the_project_may_be_replaced(app: Path, name: str) -> None:
    report = app / name
    assert invoke("instrument", str(app), "--check", "--report", str(report))[0] == 1
    first = report.read_bytes()
    assert invoke("instrument", str(app), "--check", "--report", str(report))[0] == 1
    assert report.read_bytes() == first


# --- read-only as root ----------------------------------------------------------------------


@pytest.mark.parametrize("what", ["file", "folder"])
def test_mode_bits_are_honoured_even_as_root(app: Path, what: str) -> None:
    target = app / "src" / "services" / "userService.ts"
    if what == "file":
        target.chmod(0o444)
    else:
        target.parent.chmod(0o555)
    before = tree(app)
    try:
        code, err = invoke("instrument", str(app))
    finally:
        target.chmod(0o644)
        target.parent.chmod(0o755)
    assert code == 2
    kind = "file is read-only" if what == "file" else "folder is not writable"
    assert len(err.splitlines()) == 1 and kind in err and "nothing was written" in err
    assert tree(app) == before


def test_out_copy_is_not_left_behind_when_a_file_changes_during_the_run(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rel = "src/routes/users.ts"
    edit_during_the_run(monkeypatch, app / rel, lambda b: b"// saved by the user\n" + b)
    out = tmp_path / "out"
    code, err = invoke("instrument", str(app), "--out", str(out))
    assert code == 4
    assert err.splitlines() == [f"otelize: error: {rel}: changed while otelize was running; nothing was written (run it again)"]
    assert not out.exists()
