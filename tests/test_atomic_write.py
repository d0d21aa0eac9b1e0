"""All-or-nothing writes under failure: a full disk, an interrupted rename, a crash.

Everything goes through `otelize.synthesize.write.write_changes` (in place) or
`write_copy` (`--out`), the only functions that write project files. Failures are simulated by monkeypatching the
system calls it makes (`os.fdopen(...).write`, `os.fsync`, `os.replace`).
The invariants:

- an `OSError` anywhere leaves every target with its previous bytes (or
  absent, if it did not exist) and no `.otelize-*.tmp` behind, and is
  reported as a one-line `WriteError` (exit code 2);
- a crash at any point never leaves a target half-written: each target holds
  either its old bytes or its new bytes, never a prefix or a mix.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

import otelize.synthesize.write as synthesize_mod
from otelize.errors import EXIT_BAD_INPUT, Interrupted, OtelizeError
from otelize.synthesize.write import WriteError, write_changes

OLD = {
    "package.json": b'{"dependencies": {"express": "4.21.2"}}\n',
    "src/index.ts": b"import express from 'express';\nconst app = express();\napp.listen(3000);\n",
    "src/services/a.ts": b"export function a(): number {\n  return 1;\n}\n",
    "src/services/b.ts": b"export function b(): number {\n  return 2;\n}\n",
    "src/utils/gone.ts": b"export const gone = true;\n",
}

# Big enough that a partial write is a visible prefix, different in every byte position.
NEW: dict[str, bytes | None] = {
    "package.json": b'{"dependencies": {"express": "4.21.2", "@opentelemetry/api": "1.9.0"}}\n',
    "src/index.ts": b"import './tracing';\n" + OLD["src/index.ts"],
    "src/otel.ts": b"// generated\n" + b"export const x = 1;\n" * 2000,
    "src/services/a.ts": b"export function a(): number {\n  return withSpan('a', () => 1);\n}\n" * 50,
    "src/services/b.ts": b"export function b(): number {\n  return withSpan('b', () => 2);\n}\n" * 50,
    "src/tracing.ts": b"// generated\nimport { NodeSDK } from '@opentelemetry/sdk-node';\n",
    "src/utils/gone.ts": None,  # a deletion
}


def make_tree(root: Path) -> dict[str, bytes]:
    for rel, data in OLD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return dict(OLD)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".otelize-*.tmp"))


def folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir())


def assert_unchanged(root: Path, before: dict[str, bytes]) -> None:
    assert snapshot(root) == before
    assert leftovers(root) == []
    assert folders(root) == ["src", "src/services", "src/utils"]  # no folder created for a new file is left


class FailingFile:
    """A file object that writes half of what it is given, then fails like a full disk."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)

    def __enter__(self) -> "FailingFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def full_disk_on(monkeypatch: pytest.MonkeyPatch, nth: int) -> list[int]:
    """The temp-file write of the `nth` staged file (1-based) hits ENOSPC."""
    real_fdopen = os.fdopen
    opened: list[int] = []

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        fh = real_fdopen(fd, *args, **kwargs)
        opened.append(fd)
        return FailingFile(fh) if len(opened) == nth else fh

    monkeypatch.setattr(synthesize_mod.os, "fdopen", fdopen)
    return opened


# --- a full disk while staging -------------------------------------------------------


@pytest.mark.parametrize("nth", [1, 3, 6])
def test_full_disk_while_staging_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    before = make_tree(tmp_path)
    opened = full_disk_on(monkeypatch, nth)
    with pytest.raises(WriteError) as info:
        write_changes(tmp_path, NEW)
    assert len(opened) == nth  # it stopped at the failing file
    assert_unchanged(tmp_path, before)
    msg = str(info.value)
    assert "No space left on device" in msg and "nothing was written" in msg
    assert "\n" not in msg
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_full_disk_leaves_no_new_folders_with_debris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = make_tree(tmp_path)
    full_disk_on(monkeypatch, 2)
    with pytest.raises(WriteError):
        write_changes(tmp_path, {"src/a.ts": b"a\n", "src/new/deep/b.ts": b"b\n", "src/z.ts": b"z\n"})
    assert_unchanged(tmp_path, before)
    assert not (tmp_path / "src" / "new").exists()


def test_fsync_failure_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = make_tree(tmp_path)
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 4:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(synthesize_mod.os, "fsync", fsync)
    with pytest.raises(WriteError, match="Input/output error"):
        write_changes(tmp_path, NEW)
    assert_unchanged(tmp_path, before)


def test_temp_file_creation_failure_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = make_tree(tmp_path)
    real_open = os.open
    calls: list[object] = []

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.path.basename(str(path)).startswith(".otelize-") and str(path).endswith(".tmp") and flags & os.O_EXCL:
            calls.append(path)
            if len(calls) == 3:
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(synthesize_mod.os, "open", open_)
    with pytest.raises(WriteError, match="nothing was written"):
        write_changes(tmp_path, NEW)
    monkeypatch.undo()
    assert len(calls) == 3
    assert_unchanged(tmp_path, before)


# --- an interrupted rename phase ------------------------------------------------------


@pytest.mark.parametrize("nth", [1, 2, 4, 6])
def test_interrupted_rename_restores_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    before = make_tree(tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(str(dst))
        if len(calls) == nth:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(synthesize_mod.os, "replace", replace)
    with pytest.raises(WriteError, match="write interrupted .*every file was restored") as info:
        write_changes(tmp_path, NEW)
    assert len(calls) == nth
    assert_unchanged(tmp_path, before)  # modified files restored, created ones removed, deleted one back
    assert isinstance(info.value, OtelizeError) and "\n" not in str(info.value)


def test_interrupted_delete_restores_every_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = make_tree(tmp_path)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == "gone.ts":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(WriteError, match="every file was restored"):
        write_changes(tmp_path, NEW)
    monkeypatch.undo()
    assert_unchanged(tmp_path, before)


def test_successful_write_is_complete(tmp_path: Path) -> None:
    """The control case: with no failure every target has exactly its new bytes."""
    make_tree(tmp_path)
    write_changes(tmp_path, NEW)
    expected = {k: v for k, v in NEW.items() if v is not None}
    assert snapshot(tmp_path) == expected
    assert leftovers(tmp_path) == []


# --- a crash between files ----------------------------------------------------------------


class Crash(BaseException):
    """A hard stop (power loss, SIGKILL): no `except OSError` handler runs."""


def count_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many write/fsync/replace steps a clean run takes."""
    steps = [0]
    install_crash(monkeypatch, steps, at=None)
    root = tmp_path / "count"
    root.mkdir()
    make_tree(root)
    write_changes(root, NEW)
    monkeypatch.undo()
    return steps[0]


def install_crash(monkeypatch: pytest.MonkeyPatch, steps: list[int], at: int | None) -> None:
    """Count (and at step `at`, crash in the middle of) every low-level write step."""
    real_fdopen, real_fsync, real_replace = os.fdopen, os.fsync, os.replace

    def tick() -> None:
        steps[0] += 1
        if steps[0] == at:
            raise Crash()

    class CrashingFile:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            tick_half = steps[0] + 1 == at
            if tick_half:  # crash after half of the bytes reached the disk
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()
            tick()
            return self.fh.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> "CrashingFile":
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return CrashingFile(real_fdopen(fd, *args, **kwargs))

    def fsync(fd: int) -> None:
        tick()
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        tick()
        real_replace(src, dst)

    monkeypatch.setattr(synthesize_mod.os, "fdopen", fdopen)
    monkeypatch.setattr(synthesize_mod.os, "fsync", fsync)
    monkeypatch.setattr(synthesize_mod.os, "replace", replace)


def test_a_crash_at_any_step_never_leaves_a_half_written_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    total = count_steps(tmp_path, monkeypatch)
    assert total >= 3 * len(NEW) - 3  # write + fsync + replace per written file
    for at in range(1, total + 1):
        root = tmp_path / f"crash-{at}"
        root.mkdir()
        make_tree(root)
        steps = [0]
        install_crash(monkeypatch, steps, at)
        with pytest.raises(Crash):
            write_changes(root, NEW)
        monkeypatch.undo()
        after = {k: v for k, v in snapshot(root).items() if not k.rsplit("/", 1)[-1].startswith(".otelize-")}
        for rel in sorted(set(OLD) | set(NEW)):
            allowed = {OLD.get(rel), NEW.get(rel)}
            assert after.get(rel) in allowed, f"crash at step {at}: {rel} is neither its old nor its new content"
        assert set(after) <= set(OLD) | set(NEW)


# --- an interrupt (Ctrl-C) mid-write -------------------------------------------------------


@pytest.mark.parametrize("phase", ["stage", "rename"])
def test_keyboard_interrupt_restores_every_file_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """Ctrl-C is not an OSError, but it must not leave some targets new and others old."""
    before = make_tree(tmp_path)
    name = "fsync" if phase == "stage" else "replace"
    real = getattr(os, name)
    calls: list[object] = []

    def interrupted(*args: Any) -> Any:
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synthesize_mod.os, name, interrupted)
    # while staging it becomes the one-line Interrupted (exit 130) that says nothing was written
    with pytest.raises(Interrupted if phase == "stage" else KeyboardInterrupt):
        write_changes(tmp_path, NEW)
    monkeypatch.undo()
    assert_unchanged(tmp_path, before)


# --- `--out` copies (write_copy) ----------------------------------------------------------


def make_source(root: Path) -> dict[str, bytes]:
    make_tree(root)
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "index.js").write_bytes(b"module.exports = 1;\n")
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "src" / "alias.ts").symlink_to("services/a.ts")
    return snapshot(root)


def copy_ignore(folder: str, entries: list[str]) -> set[str]:
    return {e for e in entries if e == "node_modules"}


def test_write_copy_applies_changes_and_copies_the_rest(tmp_path: Path) -> None:
    src, dest = tmp_path / "src-app", tmp_path / "out"
    src.mkdir()
    before = make_source(src)
    synthesize_mod.write_copy(src, dest, NEW, copy_ignore)
    assert snapshot(src) == before  # the source is never written
    got = snapshot(dest)
    expected = {k: v for k, v in NEW.items() if v is not None} | {"run.sh": before["run.sh"], "src/alias.ts": NEW["src/services/a.ts"]}
    assert got == expected  # changed, created, deleted (gone.ts), unchanged; node_modules ignored
    assert (dest / "src" / "alias.ts").is_symlink() and os.readlink(dest / "src" / "alias.ts") == "services/a.ts"
    assert (dest / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "run.sh").stat().st_mtime == (src / "run.sh").stat().st_mtime  # unchanged files keep their mtime
    assert leftovers(dest) == []


@pytest.mark.parametrize("nth", [1, 4, 7])
@pytest.mark.parametrize("dest_exists", [False, True])
def test_write_copy_failure_leaves_the_output_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int, dest_exists: bool
) -> None:
    src, dest = tmp_path / "src-app", tmp_path / "out"
    src.mkdir()
    before = make_source(src)
    if dest_exists:
        dest.mkdir()
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == nth:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(synthesize_mod.os, "fsync", fsync)
    with pytest.raises(WriteError) as info:
        synthesize_mod.write_copy(src, dest, NEW, copy_ignore, threads=1)
    assert "No space left on device" in str(info.value) and "nothing was written" in str(info.value)
    assert nth <= len(calls) <= nth + 1  # it stopped (one file may have been in flight)
    if dest_exists:
        assert list(dest.iterdir()) == []
    else:
        assert not dest.exists()
    assert snapshot(src) == before


def test_write_copy_interrupt_cleans_up_and_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dest = tmp_path / "src-app", tmp_path / "out"
    src.mkdir()
    make_source(src)
    calls: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(synthesize_mod.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        synthesize_mod.write_copy(src, dest, NEW, copy_ignore)
    assert not dest.exists()


def test_write_copy_refuses_a_new_file_outside_the_output_folder(tmp_path: Path) -> None:
    src, dest = tmp_path / "src-app", tmp_path / "out"
    src.mkdir()
    make_source(src)
    with pytest.raises(WriteError, match="outside the output folder"):
        synthesize_mod.write_copy(src, dest, {"../escaped.ts": b"x\n"}, copy_ignore)
    assert not (tmp_path / "escaped.ts").exists() and not dest.exists()
