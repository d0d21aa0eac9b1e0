"""The walk of an app's folder: its source files in sorted order, honouring .gitignore
files (with pathspec's git-exact semantics; also those above the root, up to its git
repository's root, for an app inside a monorepo), the settings' include/exclude globs,
and always skipping node_modules, build and coverage output, declaration files, and
symlinks (one that stays inside the root is reported and its target walked under its
real path; one that leaves it, or loops, is reported and not followed)."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

import pathspec

SOURCE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts")
JS_SOURCE_SUFFIXES = (".js", ".cjs", ".mjs", ".jsx")
NODE_SHEBANG = re.compile(rb"^#![^\n]*\bnode\b")  # `bin/www`: a JavaScript file without an extension
ALWAYS_SKIP_DIRS = {"node_modules", ".git", "dist", "build", "coverage", ".nyc_output", ".otelize-cache"}


def display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def spec(globs: Any) -> pathspec.PathSpec | None:
    globs = [globs] if isinstance(globs, str) else list(globs or ())
    return pathspec.GitIgnoreSpec.from_lines(globs) if globs else None


def walk_sources(
    root: Path,
    out_dir: str | None,
    include: pathspec.PathSpec | None = None,
    exclude: pathspec.PathSpec | None = None,
    temps: list[str] | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Sorted walk. Returns (source files, skipped (path, reason)); appends to `temps`
    the temp files an interrupted otelize write left in the folders walked."""
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    skip_dirs = {out_dir} if out_dir else set()
    seen_real: set[str] = set()

    def walk(directory: Path, rel: str, specs: list[tuple[str, pathspec.PathSpec]]) -> None:
        real = os.path.realpath(directory)
        if real in seen_real:
            skipped.append((rel or ".", "symlink loop"))
            return
        seen_real.add(real)
        ignore_file = directory / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", errors="replace").splitlines()
                specs = specs + [(rel, pathspec.GitIgnoreSpec.from_lines(lines))]
            except OSError:
                pass
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((rel or ".", f"unreadable directory ({exc.strerror})"))
            return
        for entry in entries:
            child_rel = posixpath.join(rel, entry.name) if rel else entry.name
            try:
                is_link = entry.is_symlink()
                if is_link:
                    target = os.path.realpath(entry.path)
                    if not inside(str(root), target):
                        skipped.append((child_rel, "symlink points outside the root"))
                        continue
                    if not os.path.exists(target):
                        skipped.append((child_rel, "broken symlink"))
                        continue
                is_dir = entry.is_dir()
            except OSError as exc:
                skipped.append((child_rel, f"unreadable ({exc.strerror})"))
                continue
            if temps is not None and not is_link and not is_dir and _TEMP.fullmatch(entry.name):
                temps.append(child_rel)  # seen before .gitignore: `*.tmp` is often ignored
                continue
            if _ignored(specs, child_rel, is_dir):
                continue
            if exclude is not None and exclude.match_file(child_rel + "/" if is_dir else child_rel):
                continue
            if is_link:
                # inside the root: its target is walked under its real path. Following it too
                # would list the file twice, and writing through it would replace the link by a copy.
                if inside(target, os.path.realpath(directory)):
                    skipped.append((child_rel, "symlink loop"))
                else:
                    skipped.append((child_rel, f"symlink to {display(root, Path(target))} (handled under its real path)"))
                continue
            if is_dir:
                if entry.name in ALWAYS_SKIP_DIRS or child_rel in skip_dirs:
                    continue
                walk(Path(entry.path), child_rel, specs)
            elif (
                entry.name.endswith(SOURCE_SUFFIXES + JS_SOURCE_SUFFIXES) and not _is_declaration(entry.name)
            ) or ("." not in entry.name and _has_node_shebang(entry.path)):
                if include is None or include.match_file(child_rel):
                    if not _regular(entry):  # a FIFO would block the read forever; a device, worse
                        skipped.append((child_rel, "not a regular file"))
                        continue
                    files.append(child_rel)

    walk(root, "", _outer_specs(root))
    return sorted(files), skipped


_TEMP = re.compile(r"\.otelize-.+\.tmp")  # otelize.synthesize.write.write_changes' temp files (and older otelize's)


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows a (checked, in-root) symlink; False for FIFOs, sockets, devices
    except OSError:
        return False


def read_regular(path: Path) -> bytes:
    """A source file's bytes; OSError when it is not (or no longer) a regular file.

    Opened non-blocking, so a file swapped for a FIFO after discovery fails
    instead of hanging the run."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _outer_specs(root: Path) -> list[tuple[str, pathspec.PathSpec]]:
    """The .gitignore files above the root, up to the root of its git repository (an app
    inside a monorepo), as (base, spec) with a base of `../..`-style steps back up; none
    when the root is not inside a git repository."""
    ancestors = []
    here = root
    while True:
        if (here / ".git").exists():
            break
        if here.parent == here:
            return []  # no repository: the .gitignore files above mean nothing here
        here = here.parent
        ancestors.append(here)
    out = []
    for folder in reversed(ancestors):
        ignore_file = folder / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", errors="replace").splitlines()
            except OSError:
                continue
            out.append((_UP + root.relative_to(folder).as_posix(), pathspec.GitIgnoreSpec.from_lines(lines)))
    return out


_UP = "\0up:"  # marks a base that lies above the root: paths are matched as `<root from there>/<rel>`


def _has_node_shebang(path: str) -> bool:
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as fh:
            return bool(NODE_SHEBANG.match(fh.read(128)))
    except OSError:
        return False


def _is_declaration(name: str) -> bool:
    return bool(re.search(r"\.d\.[mc]?ts$", name)) or name.endswith(".d.tsx")


def inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _ignored(specs: list[tuple[str, pathspec.PathSpec]], rel: str, is_dir: bool) -> bool:
    """As git decides: the last .gitignore pattern that matches wins, and the files are
    read from the outermost to the innermost, so a deeper `!keep.ts` re-includes."""
    ignored = False
    for base, spec in specs:
        if base.startswith(_UP):  # a .gitignore above the root
            sub = base[len(_UP):] + "/" + rel
        else:
            sub = rel[len(base) + 1 :] if base else rel
        verdict = spec.check_file(sub + "/" if is_dir else sub).include
        if verdict is not None:
            ignored = verdict
    return ignored
