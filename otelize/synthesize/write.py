"""Writing a run's changes, all-or-nothing.

- in place (`write_changes`): every target is checked writable first (mode
  bits too, even as root), content goes to temp files in the same folder, every
  analysed file is compared with the bytes the analysis read (a difference
  writes nothing: StaleInput), then each is renamed into place under a journal
  that lets the next run finish a killed commit (otelize.synthesize.journal); if a rename
  fails, the files already replaced are restored;
- `--out` copies (`write_copy`) are written once per file into an empty folder
  (checked by `out_folder`), which is emptied again on any failure.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

from otelize.errors import BadInput, Interrupted, OtelizeError, StaleInput
from otelize.synthesize import journal


class WriteError(OtelizeError):
    exit_code = 2


def _safe_target(root: Path, rel: str) -> Path:
    target = (root / rel)
    resolved_parent = target.parent.resolve()
    root_real = root.resolve()
    if not (resolved_parent == root_real or str(resolved_parent).startswith(str(root_real) + os.sep)):
        raise WriteError(f"{rel}: refusing to write outside the project root")
    if target.is_symlink():
        real = target.resolve()
        if not str(real).startswith(str(root_real) + os.sep):
            raise WriteError(f"{rel}: refusing to write through a symlink that leaves the project root")
    return target


def writable(path: Path, folder: bool = False) -> bool:
    """Whether otelize may write `path`: the permission check, and the mode bits even as root.

    Root passes every `os.access` check, but a 0444 file or a 0555 folder says
    "read-only" and otelize honours it.
    """
    need = os.W_OK | (os.X_OK if folder else 0)
    if not os.access(path, need):
        return False
    mode = os.stat(path).st_mode
    if not mode & 0o222:
        return False
    return not folder or bool(mode & 0o111)


def checkpoint(phase: str) -> None:
    """A named point of the commit (no-op). The fault tests kill a child process here."""


def write_changes(
    root: Path,
    changes: dict[str, bytes | None],
    expected: dict[str, bytes | None] | None = None,
) -> None:
    """Write {path: content or None (delete)} under root, all-or-nothing, recoverably.

    `expected` holds the bytes each file had when it was analysed (None: it did
    not exist); if any differs at write time, nothing is written (StaleInput).
    The steps and the journal that makes a killed commit recoverable are
    described in otelize.synthesize.journal.
    """
    targets = {rel: _safe_target(root, rel) for rel in sorted(changes)}
    # 1. check everything first: nothing is written if any target is not writable
    for rel, target in targets.items():
        if target.exists():
            if not writable(target):
                raise WriteError(f"{rel}: file is read-only; nothing was written")
        parent = target.parent
        while not parent.exists():
            parent = parent.parent
        if not writable(parent, folder=True):
            raise WriteError(f"{rel}: folder is not writable; nothing was written")
    root = root.resolve()
    rels = {rel: target.resolve().parent.relative_to(root).joinpath(target.name).as_posix() for rel, target in targets.items()}
    missing_dirs: list[str] = []
    for rel, target in targets.items():
        if changes[rel] is not None:
            for d in [target.parent, *target.parent.parents]:
                if d.exists():
                    break
                missing_dirs.append(os.path.relpath(d, root).replace(os.sep, "/"))
    missing_dirs = sorted(set(missing_dirs), key=lambda d: (d.count("/"), d))  # shallowest first
    entries = [
        {"path": rels[rel], "tmp": journal.temp_name(rels[rel]) if changes[rel] is not None else None}
        for rel in targets
    ]
    # 2. stage every file as a temp file beside its target, listed in the journal first
    staged: dict[str, str] = {}
    made_dirs: list[Path] = []  # folders created for new files, removed again on failure
    try:
        journal.write_journal(root, "staging", entries, missing_dirs)
        for (rel, target), entry in zip(targets.items(), entries):
            content = changes[rel]
            if content is None:
                continue
            missing = [d for d in [target.parent, *target.parent.parents] if not d.exists()]
            target.parent.mkdir(parents=True, exist_ok=True)
            made_dirs += reversed(missing)
            tmp = str(root / entry["tmp"])
            try:
                os.unlink(tmp)  # a leftover of a run of an older otelize: we hold the lock
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            staged[rel] = tmp
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            if target.exists():
                os.chmod(tmp, target.stat().st_mode & 0o7777)
            else:
                os.chmod(tmp, 0o644)
            checkpoint(f"staged:{len(staged)}")
        stale = _stale(root, expected or {})
        if stale is not None:
            raise StaleInput(f"{stale}: changed while otelize was running; nothing was written (run it again)")
    except BaseException as exc:  # also Ctrl-C: never leave temp files or new folders behind
        for tmp in staged.values():
            _unlink(tmp)
        _rmdirs(made_dirs)
        journal.remove_journal(root)
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted("nothing was written") from None
        if not isinstance(exc, OSError):
            raise
        raise WriteError(f"cannot write ({exc.strerror}); nothing was written") from None
    # 3. rename into place, with Ctrl-C and SIGTERM held back until the tree is consistent;
    #    on a failure restore what was already replaced
    with journal.deferred_signals() as signals:
        done: list[tuple[Path, bytes | None]] = []
        try:
            for entry, rel in zip(entries, targets):
                entry["old"] = journal.sha(expected[rel]) if expected and rel in expected else _current_sha(targets[rel])
                entry["new"] = journal.sha(changes[rel])
            journal.write_journal(root, "commit", entries, missing_dirs)
            checkpoint("journal")
            for rel, target in targets.items():
                previous = target.read_bytes() if target.exists() else None
                if changes[rel] is None:
                    if target.exists():
                        target.unlink()
                else:
                    os.replace(staged[rel], target)
                    del staged[rel]  # only once renamed: a failed rename leaves it to the cleanup below
                done.append((target, previous))
                checkpoint(f"renamed:{len(done)}")
            for folder in sorted({t.parent for t in targets.values()}):
                journal.fsync_dir(folder)
            journal.remove_journal(root)
            _committed(len(targets))
        except BaseException as exc:  # no target is left changed while another is not
            for target, previous in reversed(done):
                try:
                    if previous is None:
                        target.unlink()
                    else:
                        target.write_bytes(previous)
                except OSError:
                    pass
            for tmp in staged.values():
                _unlink(tmp)
            _rmdirs(made_dirs)
            journal.remove_journal(root)
            if not isinstance(exc, OSError):
                raise
            raise WriteError(f"write interrupted ({exc.strerror}); every file was restored") from None
    if signals:
        raise Interrupted(f"every change was written ({len(targets)} file(s)); the tree is consistent")


COMMITTED = [0]  # files this process has committed in place (for the message of a later Ctrl-C)


def _committed(n: int) -> None:
    COMMITTED[0] += n


def _current_sha(target: Path) -> str | None:
    try:
        return journal.sha(target.read_bytes())
    except FileNotFoundError:
        return None


def _stale(root: Path, expected: dict[str, bytes | None]) -> str | None:
    """The first file whose bytes differ from `expected` (None: it must not exist)."""
    for rel in sorted(expected):
        path = root / rel
        current = journal.read_regular(path) if os.path.lexists(path) else None
        if current != expected[rel]:
            return rel
    return None


def _rmdirs(dirs: list[Path]) -> None:
    """Remove folders write_changes created (deepest first), if they are empty again."""
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_one(dest: Path, item: tuple[str, Path | None, bytes | None]) -> None:
    """One file of the copy: created with its final bytes, fsynced, with the original's mode."""
    rel, origin, content = item
    target = dest / rel
    data = content if content is not None else origin.read_bytes()  # type: ignore[union-attr]
    with open(target, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if origin is None:
        os.chmod(target, 0o644)
    elif content is None:
        shutil.copystat(origin, target, follow_symlinks=False)
    else:
        shutil.copymode(origin, target)


def write_copy(
    src: Path,
    dest: Path,
    changes: dict[str, bytes | None],
    ignore: Callable[[str, list[str]], set[str]] | None = None,
    threads: int = 8,
    expected: dict[str, bytes | None] | None = None,
) -> None:
    """Write a copy of the project at `src` with `changes` applied into `dest` (absent or empty).

    `expected`: as for write_changes; checked once the copy is written, so a file
    saved during the run or the copy leaves no copy at all (StaleInput).

    For `instrument --out`. Every file is created once, with its final bytes,
    and fsynced; the writes run in a few threads, since fsync waits on the disk,
    not the CPU. Symlinks are copied as links. `ignore(folder, entries)` works
    as in shutil.copytree. All-or-nothing: on any error, everything created in
    `dest` is removed again and `dest` is left as it was. `src` is never written.
    """
    dest_existed = dest.exists()
    folders: list[str] = []
    links: list[tuple[str, str]] = []
    files: list[tuple[str, Path | None, bytes | None]] = []  # (rel, copied from, or new content)
    for folder, dirnames, filenames in os.walk(src):
        skip = ignore(folder, dirnames + filenames) if ignore else set()
        base = Path(folder)
        for name in sorted(dirnames):
            if name in skip:
                continue
            rel = (base / name).relative_to(src).as_posix()
            if (base / name).is_symlink():
                links.append((rel, os.readlink(base / name)))
            else:
                folders.append(rel)
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not (base / d).is_symlink())
        for name in sorted(filenames):
            if name in skip:
                continue
            path = base / name
            rel = path.relative_to(src).as_posix()
            if rel in changes:
                if changes[rel] is not None:
                    files.append((rel, path, changes[rel]))
            elif path.is_symlink():
                links.append((rel, os.readlink(path)))
            else:
                files.append((rel, path, None))
    copied = {rel for rel, _, _ in files}
    for rel in sorted(changes):
        if rel not in copied and changes[rel] is not None:
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep):
                raise WriteError(f"{rel}: refusing to write outside the output folder")
            files.append((rel, None, changes[rel]))
            parent = Path(rel).parent
            while parent != Path("."):
                folders.append(parent.as_posix())
                parent = parent.parent

    failed = threading.Event()  # set by the first failing write: the items queued after it do nothing

    def write_one(item: tuple[str, Path | None, bytes | None]) -> None:
        if failed.is_set():
            return
        try:
            _write_one(dest, item)
        except BaseException:
            failed.set()
            raise

    try:
        dest.mkdir(parents=True, exist_ok=True)
        for rel in sorted(set(folders)):
            (dest / rel).mkdir(parents=True, exist_ok=True)
        for rel, link in links:
            os.symlink(link, dest / rel)
        from concurrent.futures import ThreadPoolExecutor  # only --out writes through threads

        pool = ThreadPoolExecutor(max_workers=threads)
        try:
            for _ in pool.map(write_one, files):
                pass
        finally:  # on a failure, files not yet started are never started (`failed`, and the cancel)
            pool.shutdown(wait=True, cancel_futures=True)
        stale = _stale(src, expected or {})
        if stale is not None:
            raise StaleInput(f"{stale}: changed while otelize was running; nothing was written (run it again)")
    except BaseException as exc:  # also Ctrl-C: leave dest as it was
        if dest_existed:
            for child in list(dest.iterdir()) if dest.is_dir() else []:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    _unlink(str(child))
        else:
            shutil.rmtree(dest, ignore_errors=True)
        if not isinstance(exc, OSError):
            raise
        raise WriteError(f"{dest}: cannot write the copy ({exc.strerror}); nothing was written") from None


COPY_IGNORE = ("node_modules", ".git", ".otelize-cache")


def out_folder(src: Path, dest: Path, build_dir: str | None = None) -> tuple[Path, Any]:
    """Check the `--out` folder; return it resolved and the copy's ignore function
    (node_modules, .git, the state cache, and the app's stale build folder)."""
    dest = dest.resolve()
    if dest == src or str(dest).startswith(str(src) + "/"):
        raise BadInput(f"{dest}: --out must not be inside the project")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest}: --out directory exists and is not empty")
    skip_build = (src / build_dir).resolve() if build_dir else None
    names = shutil.ignore_patterns(*COPY_IGNORE)

    def ignore(folder: str, entries: list[str]) -> set[str]:
        # a stale build of the uninstrumented app would be misleading in the copy
        out = set(names(folder, entries))
        if skip_build is not None and Path(folder).resolve() == skip_build.parent:
            out |= {e for e in entries if e == skip_build.name}
        return out

    return dest, ignore
