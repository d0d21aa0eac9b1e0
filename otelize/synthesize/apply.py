"""synthesize: merge the workers' edits, apply, validate, and write atomically.

- edits are merged per file and sorted; overlaps raise EditConflict naming both workers;
- one splice per file;
- every changed TypeScript file is reparsed: a file that parsed cleanly before
  and has ERROR/MISSING nodes after is reverted and reported;
- writing is all-or-nothing: every target is checked writable first (mode
  bits too, even as root), content goes to temp files in the same folder, every
  analysed file is compared with the bytes the analysis read (a difference
  writes nothing: StaleInput), then each is renamed into place under a journal
  that lets the next run finish a killed commit (otelize.synthesize.journal); if a rename
  fails, the files already replaced are restored (`write_changes`);
- `--out` copies are written once per file into an empty folder, which is
  emptied again on any failure (`write_copy`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Callable

from otelize.synthesize.edits import Edit, PlannedSpan, Synthesis, WorkerResult, apply_edits
from otelize.synthesize import journal
from otelize.errors import BadInput, EditConflict, Interrupted, OtelizeError, StaleInput
from otelize.synthesize.imports import import_edits
from otelize.analysis.parse import ParsedFile, parse_source, reparse


def synthesize(
    root: Path, parsed: dict[str, ParsedFile], results: list[WorkerResult], analysed: dict[str, bytes] | None = None
) -> Synthesis:
    """`analysed`: the bytes the analysis read (package.json, sources); edits are applied to
    those, never to a fresh read that could differ from what the workers saw."""
    syn = Synthesis()
    analysed = analysed or {}
    edits: dict[str, list[Edit]] = defaultdict(list)
    requests = defaultdict(list)
    spans_by_file: dict[str, list[PlannedSpan]] = defaultdict(list)
    for res in results:
        for e in res.edits:
            edits[e.file].append(e)
        for r in res.imports:
            requests[r.file].append(r)
        for s in res.spans:
            spans_by_file[s.file].append(s)
        syn.skips += res.skips
        syn.packages.update(res.packages)
        syn.notes += res.notes
    for path in sorted(requests):
        pf = parsed.get(path)
        if pf is None:
            continue
        more, skips = import_edits(pf, requests[path])
        edits[path] += more
        syn.skips += skips

    for path in sorted(edits):
        if not edits[path]:
            continue
        old = parsed[path].source if path in parsed else analysed[path] if path in analysed else _read(root / path)
        new = apply_edits(old, edits[path])
        if new == old:
            continue
        problem = _validate(path, old, new, parsed.get(path), edits[path])
        if problem is not None:
            syn.reverted.append((path, problem))
            spans_by_file.pop(path, None)
            continue
        syn.changes[path] = (old, new)
        if path in spans_by_file:
            spans_by_file[path] = shift_lines(old, edits[path], spans_by_file[path])

    for res in results:
        for nf in res.new_files:
            target = root / nf.path
            old = analysed[nf.path] if nf.path in analysed else _read(target) if target.exists() else None
            if old != nf.content:
                syn.changes[nf.path] = (old, nf.content)

    for path in sorted(spans_by_file):
        syn.spans += spans_by_file[path]
    syn.spans.sort(key=lambda s: (s.file, s.line, s.name))
    syn.skips.sort(key=lambda s: (s.file, s.line, s.symbol, s.reason))
    return syn


def shift_lines(old: bytes, edits: list[Edit], spans: list[PlannedSpan]) -> list[PlannedSpan]:
    """The spans with `new_line` set: each function's line once `edits` are applied to `old`.

    A function's line moves by the newlines that the edits wholly before the
    start of that line add or remove (one pass over edits and spans, both sorted).
    """
    line_starts = [0]
    pos = old.find(b"\n")
    while pos != -1:
        line_starts.append(pos + 1)
        pos = old.find(b"\n", pos + 1)
    ordered = sorted(set(edits), key=lambda e: (e.start, e.end))
    out: list[PlannedSpan] = []
    i, delta = 0, 0
    for span in sorted(spans, key=lambda s: s.line):
        at = line_starts[min(span.line, len(line_starts)) - 1]
        while i < len(ordered) and ordered[i].end <= at:
            e = ordered[i]
            delta += e.text.count(b"\n") - old.count(b"\n", e.start, e.end)
            i += 1
        out.append(replace(span, new_line=span.line + delta))
    return out


def merge(parts: list[Synthesis]) -> Synthesis:
    """Combine per-file syntheses deterministically (sorted, whatever the order of parts)."""
    out = Synthesis()
    for part in parts:
        for path, change in part.changes.items():
            if path in out.changes:
                raise EditConflict(f"{path}: changed by two independent jobs")
            out.changes[path] = change
        out.deletions.update(part.deletions)
        out.reverted += part.reverted
        out.spans += part.spans
        out.skips += part.skips
        out.packages.update(part.packages)
        out.notes += part.notes
    out.changes = dict(sorted(out.changes.items()))
    out.reverted.sort()
    out.spans.sort(key=lambda s: (s.file, s.line, s.name))
    out.skips.sort(key=lambda s: (s.file, s.line, s.symbol, s.reason))
    out.packages = dict(sorted(out.packages.items()))
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path.name}: cannot read ({exc.strerror})") from None


def _validate(path: str, old: bytes, new: bytes, before: ParsedFile | None, edits: list[Edit]) -> str | None:
    """None when `new` is as sound as `old`, else why not. A source file is re-parsed
    incrementally from the tree it was analysed with (otelize.analysis.parse.reparse)."""
    if path.endswith(".json"):
        try:
            json.loads(new.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            return f"edit produced invalid JSON ({exc})"
        return None
    if before is not None and before.source == old:
        after = reparse(before, new, ((e.start, e.end, e.text) for e in edits))
    else:
        after = parse_source(path, new)
    was_ok = before.ok if before is not None else parse_source(path, old).ok
    if was_ok and not after.ok:
        line, col, kind = after.errors[0] if after.errors else (0, 0, after.problem or "?")
        return f"edit introduced a syntax error ({kind} at line {line} column {col}); file left unchanged"
    return None


# --- writing ------------------------------------------------------------------


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

    def write_one(item: tuple[str, Path | None, bytes | None]) -> None:
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
        finally:  # on a failure, files not yet started are never started
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
