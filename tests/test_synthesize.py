"""The synthesizer: merge, apply, reparse-or-revert, and all-or-nothing writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import otelize.synthesize.write as synthesize_mod
from otelize.api import instrument
from otelize.synthesize.edits import Edit, PlannedSpan, WorkerResult
from otelize.errors import EditConflict
from otelize.analysis.parse import parse_source
from otelize.report.instrument import to_json
from otelize.synthesize.apply import synthesize
from otelize.synthesize.write import WriteError, write_changes
from otelize.workers import service
from fsutil import read_only
from transform import snapshot_tree, write_project

A = "src/a.ts"
B = "src/b.ts"
A_SRC = b"export function a(): number {\n  const x = 1;\n  return x;\n}\n"
B_SRC = b"export function b(): number {\n  const y = 2;\n  return y;\n}\n"


def parsed(**files: bytes) -> dict:
    return {path: parse_source(path, data) for path, data in files.items()}


def span(file: str) -> PlannedSpan:
    return PlannedSpan(f"span-in-{file}", "INTERNAL", "service", file, 1)


# --- validate and revert -----------------------------------------------------------


def test_edit_that_breaks_syntax_is_reverted_and_reported(tmp_path: Path) -> None:
    files = parsed(**{A: A_SRC, B: B_SRC})
    bad = WorkerResult("service", edits=[Edit.insert(A, A_SRC.index(b"return"), b"if (", "service")], spans=[span(A)])
    good = WorkerResult("database", edits=[Edit.replace(B, B_SRC.index(b"2"), B_SRC.index(b"2") + 1, b"3", "database")], spans=[span(B)])
    syn = synthesize(tmp_path, files, [bad, good])
    assert list(syn.changes) == [B]
    assert syn.changes[B] == (B_SRC, B_SRC.replace(b"2", b"3"))
    assert [path for path, _ in syn.reverted] == [A]
    assert "syntax error" in syn.reverted[0][1]
    # the reverted file's spans are not reported: the code will not emit them
    assert [s.file for s in syn.spans] == [B]


def test_file_already_broken_is_not_reverted_for_staying_broken(tmp_path: Path) -> None:
    broken = b"export function a( {\n  return 1;\n}\n"
    files = parsed(**{A: broken})
    assert not files[A].ok
    syn = synthesize(tmp_path, files, [WorkerResult("x", edits=[Edit.insert(A, 0, b"// hi\n", "x")])])
    assert syn.reverted == [] and syn.changes[A][1] == b"// hi\n" + broken


def test_invalid_json_edit_is_reverted(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_bytes(b'{"a": 1}\n')
    syn = synthesize(tmp_path, {}, [WorkerResult("dependency", edits=[Edit.insert("package.json", 8, b",", "dependency")])])
    assert syn.changes == {}
    assert syn.reverted[0][0] == "package.json" and "invalid JSON" in syn.reverted[0][1]


def test_instrument_reverts_a_broken_file_and_still_writes_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "app"
    write_project(root, {"src/services/aService.ts": A_SRC, "src/services/bService.ts": B_SRC})
    real = service.run

    def with_a_broken_edit(ctx, task):  # noqa: ANN001, ANN202
        result = real(ctx, task)
        if task.files == ("src/services/aService.ts",):
            result.edits.append(Edit.insert(task.files[0], len(A_SRC), b"}}\n", "service"))
        return result

    monkeypatch.setattr(service, "run", with_a_broken_edit)
    result = instrument(root)
    report = to_json(result)
    assert [r["file"] for r in report["reverted"]] == ["src/services/aService.ts"]
    assert result.partial
    assert (root / "src/services/aService.ts").read_bytes() == A_SRC
    assert b"withSpan<number>('b'" in (root / "src/services/bService.ts").read_bytes()
    assert [s["name"] for s in report["spans"] if s["file"].startswith("src/services/")] == ["b"]


# --- conflicts ---------------------------------------------------------------------


def test_conflict_between_two_workers_names_both(tmp_path: Path) -> None:
    files = parsed(**{A: A_SRC})
    one = WorkerResult("service", edits=[Edit.replace(A, 30, 40, b"x", "service")])
    two = WorkerResult("database", edits=[Edit.replace(A, 35, 38, b"y", "database")])
    with pytest.raises(EditConflict) as info:
        synthesize(tmp_path, files, [one, two])
    assert "worker service" in str(info.value) and "worker database" in str(info.value) and A in str(info.value)


def test_conflict_in_instrument_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "app"
    write_project(root, {"src/services/aService.ts": A_SRC})
    before = snapshot_tree(root)
    real = service.run

    def with_a_conflict(ctx, task):  # noqa: ANN001, ANN202
        result = real(ctx, task)
        body = A_SRC.index(b"{") + 1
        result.edits.append(Edit.replace(task.files[0], body, body + 3, b"", "cache"))
        return result

    monkeypatch.setattr(service, "run", with_a_conflict)
    with pytest.raises(EditConflict) as info:
        instrument(root)
    assert "service" in str(info.value) and "cache" in str(info.value)
    assert snapshot_tree(root) == before


# --- atomic writes -----------------------------------------------------------------


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a.ts": b"old a\n", "src/b.ts": b"old b\n", "src/c.ts": b"old c\n", "z.ts": b"old z\n"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".otelize-*.tmp"))


def test_write_changes_writes_creates_and_deletes(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "run.sh").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    write_changes(tmp_path, {"a.ts": b"new a\n", "src/new/d.ts": b"d\n", "z.ts": None, "run.sh": b"#!/bin/sh\necho\n"})
    tree = snapshot_tree(tmp_path)
    assert tree == {"a.ts": b"new a\n", "run.sh": b"#!/bin/sh\necho\n", "src/b.ts": b"old b\n", "src/c.ts": b"old c\n", "src/new/d.ts": b"d\n"}
    assert stat.S_IMODE((tmp_path / "run.sh").stat().st_mode) == 0o755  # mode kept
    assert leftovers(tmp_path) == []


def test_read_only_target_fails_before_anything_is_written(tmp_path: Path) -> None:
    files = make_tree(tmp_path)
    with read_only(tmp_path / "z.ts"):  # the last file in write order
        with pytest.raises(WriteError, match="z.ts: file is read-only; nothing was written"):
            write_changes(tmp_path, {"a.ts": b"new a\n", "src/b.ts": b"new b\n", "src/new.ts": b"n\n", "z.ts": b"new z\n"})
    assert snapshot_tree(tmp_path) == files
    assert leftovers(tmp_path) == []


def fail_rename(monkeypatch: pytest.MonkeyPatch, nth: int, error: OSError) -> list[str]:
    """The nth os.replace of write_changes raises error; the list collects every target it was called with."""
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src, dst):  # noqa: ANN001, ANN202
        calls.append(dst)
        if len(calls) == nth:
            raise error
        return real_replace(src, dst)

    monkeypatch.setattr(synthesize_mod.os, "replace", failing_replace)
    return calls


def test_interrupted_rename_restores_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_tree(tmp_path)
    calls = fail_rename(monkeypatch, 2, OSError(28, "No space left on device"))
    with pytest.raises(WriteError, match="every file was restored"):
        write_changes(
            tmp_path,
            {"a.ts": b"new a\n", "src/a0.ts": b"created\n", "src/b.ts": b"new b\n", "src/c.ts": None, "z.ts": b"new z\n"},
        )
    assert len(calls) == 2  # the first rename went through and had to be undone
    assert snapshot_tree(tmp_path) == files
    assert leftovers(tmp_path) == []


def test_interrupted_rename_removes_files_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_tree(tmp_path)
    calls = fail_rename(monkeypatch, 3, OSError(5, "Input/output error"))
    with pytest.raises(WriteError):
        write_changes(tmp_path, {"a.ts": b"new a\n", "b-new.ts": b"created\n", "src/b.ts": b"new b\n", "src/c.ts": b"new c\n"})
    assert len(calls) == 3
    assert snapshot_tree(tmp_path) == files
    assert leftovers(tmp_path) == []


def test_refuses_to_write_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_tree(root)
    with pytest.raises(WriteError, match="outside the project root"):
        write_changes(root, {"a.ts": b"new a\n", "../x": b"escaped\n"})
    assert not (tmp_path / "x").exists()
    assert (root / "a.ts").read_bytes() == b"old a\n"


def test_refuses_to_write_through_a_symlink_that_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    make_tree(root)
    outside = tmp_path / "outside.ts"
    outside.write_bytes(b"outside\n")
    (root / "src" / "link.ts").symlink_to(outside)
    with pytest.raises(WriteError, match="symlink that leaves the project root"):
        write_changes(root, {"a.ts": b"new a\n", "src/link.ts": b"hijacked\n"})
    assert outside.read_bytes() == b"outside\n"
    assert (root / "a.ts").read_bytes() == b"old a\n"


def test_refuses_to_write_into_a_symlinked_folder_that_leaves_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(WriteError, match="outside the project root"):
        write_changes(root, {"linked/a.ts": b"x\n"})
    assert list(elsewhere.iterdir()) == []


def test_root_prefix_sibling_is_outside(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (tmp_path / "app2").mkdir()
    with pytest.raises(WriteError, match="outside the project root"):
        write_changes(root, {"../app2/a.ts": b"x\n"})
    assert not (tmp_path / "app2" / "a.ts").exists()
