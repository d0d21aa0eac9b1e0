"""Opt-in content-hash cache: a re-run on an unchanged, already-clean project is instant.

The key hashes everything the result depends on: otelize's version, the
settings, every rule file, package.json, tsconfig.json and every source file
(path and bytes). When a run found nothing to change and nothing partial, the
key is remembered in `<root>/.otelize-cache/` (which carries its own
`.gitignore`, so git ignores it). A later run with the same key skips parsing
altogether. Any change to any input gives a new key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from otelize import __version__
from otelize.project import Project

CACHE_DIR = ".otelize-cache"
CLEAN_FILE = "clean"


def fingerprint(project: Project, settings: dict[str, Any], rule_dirs: list[Path]) -> str:
    from otelize.resources import data_dir

    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for folder in [data_dir("rules"), data_dir("templates"), *rule_dirs]:
        for path in sorted(Path(folder).glob("*")):
            if path.is_file():
                h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for rel in ["package.json", "tsconfig.json", *project.files]:
        path = project.root / rel
        try:
            data = path.read_bytes()
        except OSError:
            data = b"<unreadable>"
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def is_clean(root: Path, key: str) -> bool:
    try:
        return (root / CACHE_DIR / CLEAN_FILE).read_text("ascii").strip() == key
    except OSError:
        return False


def ensure_cache_dir(root: Path) -> Path | None:
    """`<root>/.otelize-cache/` with its own `.gitignore`; None when it cannot be made."""
    folder = root / CACHE_DIR
    try:
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.is_file():
            ignore.write_text("# created by otelize\n*\n")
    except OSError:
        return None  # a cache is an optimisation; a read-only tree just doesn't get one
    return folder


def remember_clean(root: Path, key: str) -> None:
    folder = ensure_cache_dir(root)
    if folder is None:
        return
    try:
        (folder / CLEAN_FILE).write_text(key + "\n")
    except OSError:
        pass
