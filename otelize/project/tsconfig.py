"""tsconfig: the compiled set of one tsconfig file, computed from `files`, `include` and
`exclude` the way tsc documents them (with `extends` followed), and where tsc emits a file.
Nothing here runs tsc."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from otelize.project.jsonc import loads_jsonc


@dataclass(frozen=True)
class TsConfig:
    """The compiled set of one tsconfig file (paths relative to the project root, posix)."""

    path: str  # e.g. "tsconfig.build.json"
    files: tuple[str, ...] | None
    include: tuple[str, ...] | None
    exclude: tuple[str, ...]
    root_dir: str | None
    out_dir: str | None
    no_emit: bool = False

    def compiles(self, rel: str) -> bool:
        """`rel` (a .ts file) is part of the compilation and allowed by rootDir."""
        if self.root_dir is not None and not _under(rel, self.root_dir):
            return False
        if self.files is not None and rel in self.files:
            return True
        include = self.include if self.include is not None else (() if self.files is not None else ("**/*",))
        if not any(_glob_match(p, rel) for p in include):
            return False
        return not any(_glob_match(p, rel) for p in self.exclude)

    def emitted(self, rel: str) -> str:
        """Where tsc writes `rel`'s .js (relative to the project root)."""
        base = self.root_dir if self.root_dir is not None else _common_root(self)
        sub = posixpath.relpath(rel, base or ".")
        out = posixpath.join(self.out_dir, sub) if self.out_dir is not None else rel
        stem, ext = posixpath.splitext(out)
        return posixpath.normpath(stem + {".mts": ".mjs", ".cts": ".cjs"}.get(ext, ".js"))

    def folders(self) -> list[str]:
        """Folders this tsconfig compiles, most specific first: rootDir, then the static
        part of each include pattern (in order), then the folders of `files`."""
        out: list[str] = []
        if self.root_dir is not None:
            out.append(self.root_dir)
        for pattern in self.include or ():
            out.append(_static_prefix(pattern))
        for f in self.files or ():
            out.append(posixpath.dirname(f))
        seen: list[str] = []
        for f in out:
            if f not in seen:
                seen.append(f)
        return seen


def load_tsconfig(root: Path, rel: str) -> TsConfig | None:
    """The compiled set of `rel`, with `extends` followed (files/include/exclude are
    inherited as a whole, relative to the file that declares them)."""
    try:
        merged = _load(root, (root / rel).resolve(), frozenset())
    except (OSError, ValueError, RecursionError):
        return None
    if merged is None:
        return None
    options = merged.get("compilerOptions", {})

    def rel_dir(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        try:
            out = Path(value).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return None
        return "" if out == "." else out

    out_dir = rel_dir(options.get("outDir"))
    exclude = merged.get("exclude")
    if exclude is None:
        exclude = ["node_modules", "bower_components", "jspm_packages"] + ([out_dir] if out_dir else [])
    return TsConfig(
        path=rel,
        files=tuple(merged["files"]) if merged.get("files") is not None else None,
        include=tuple(merged["include"]) if merged.get("include") is not None else None,
        exclude=tuple(exclude),
        root_dir=rel_dir(options.get("rootDir")),
        out_dir=out_dir,
        no_emit=bool(options.get("noEmit")),
    )


def _load(root: Path, path: Path, seen: frozenset[Path]) -> dict[str, Any] | None:
    if not path.is_file() or path in seen or len(seen) > 16:
        return None
    try:
        data = loads_jsonc(path.read_bytes(), path.name)
    except Exception:  # noqa: BLE001 - a broken tsconfig: discover reports it; here it compiles nothing known
        return None
    if not isinstance(data, dict):
        return None
    folder = path.parent
    merged: dict[str, Any] = {}
    extends = data.get("extends")
    for ext in [extends] if isinstance(extends, str) else (extends if isinstance(extends, list) else []):
        if not isinstance(ext, str):
            continue
        target = (folder / ext) if ext.startswith(".") else (root / "node_modules" / ext)
        if target.is_dir():
            target = target / "tsconfig.json"
        elif not target.suffix:
            target = target.with_suffix(".json")
        parent = _load(root, target.resolve(), seen | {path})
        if parent is not None:
            merged = {**merged, **parent, "compilerOptions": {**merged.get("compilerOptions", {}), **parent.get("compilerOptions", {})}}
    options = dict(data.get("compilerOptions") or {}) if isinstance(data.get("compilerOptions"), dict) else {}
    for key in ("outDir", "rootDir"):
        if isinstance(options.get(key), str):
            options[key] = str((folder / options[key]).resolve())
    own: dict[str, Any] = {"compilerOptions": {**merged.get("compilerOptions", {}), **options}}
    for key in ("files", "include", "exclude"):
        value = data.get(key)
        if isinstance(value, list):
            own[key] = [_rel_to_root(root, folder, str(v)) for v in value if isinstance(v, str)]
        elif key in merged:
            own[key] = merged[key]
    return own


def _rel_to_root(root: Path, folder: Path, pattern: str) -> str:
    absolute = posixpath.normpath(posixpath.join(folder.resolve().as_posix(), pattern))
    base = root.resolve().as_posix()
    rel = posixpath.relpath(absolute, base)
    return "" if rel == "." else rel


def _under(rel: str, folder: str) -> bool:
    return not folder or rel.startswith(folder.rstrip("/") + "/")


def _static_prefix(pattern: str) -> str:
    parts = []
    for part in pattern.split("/"):
        if any(c in part for c in "*?[") or "." in part and part == pattern.split("/")[-1]:
            break
        parts.append(part)
    return "/".join(parts)


def _glob_match(pattern: str, rel: str) -> bool:
    """tsc's include/exclude semantics: `*` within a segment, `**/` any folders, `?` one
    character; a pattern whose last segment has no extension or wildcard is a folder."""
    pattern = pattern.rstrip("/")
    if pattern in ("", "."):
        pattern = "**/*"
    last = pattern.split("/")[-1]
    if not any(c in last for c in "*?") and "." not in last:
        pattern = pattern + "/**/*"
    return re.fullmatch(_glob_regex(pattern), rel) is not None


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _common_root(config: TsConfig) -> str:
    """tsc's default rootDir: the longest common folder of the compiled inputs. Without
    listing the files, the static part of the include patterns stands for it."""
    # (declaration files in `files`, such as node_modules/@types/x/index.d.ts, emit nothing
    # and take no part in it, as in tsc)
    folders = [_static_prefix(p) for p in (config.include or ())] + [
        posixpath.dirname(f) for f in (config.files or ()) if not f.endswith((".d.ts", ".d.mts", ".d.cts"))]
    if not folders:
        return ""
    common = posixpath.commonpath(folders) if all(folders) else ""
    return common
