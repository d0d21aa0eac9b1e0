"""Where an app's toolchain state lives: its workspace, its lockfiles, the installed tools.

Plain path look-ups with no otelize imports, so that the state cache's key
(otelize.run.statecache) can name the toolchain files without importing the
dependency worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PACKAGE_JSON = "package.json"
WORKSPACE_MARKERS = ("pnpm-workspace.yaml", "lerna.json")
LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock", "bun.lock", "bun.lockb")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def workspace_root(root: Path) -> Path | None:
    """The npm/yarn/pnpm workspace the app at `root` is a member of, if any: the nearest
    folder above it whose package.json has `workspaces`, or that has pnpm-workspace.yaml."""
    for folder in root.parents:
        if any((folder / m).is_file() for m in WORKSPACE_MARKERS):
            return folder
        pkg = read_json(folder / PACKAGE_JSON)
        if isinstance(pkg, dict) and pkg.get("workspaces"):
            return folder
        if (folder / ".git").exists():
            return None
    return None


def toolchain_files(root: Path) -> list[Path]:
    """The files outside package.json and tsconfig.json that choose_line and
    chosen_instrumentations read (for cache keys): the lockfile (the app's or its
    workspace's), .nvmrc, .node-version, and the installed typescript and @types/node."""
    ws = workspace_root(root)
    files = [folder / name for folder in (root, ws) if folder is not None for name in LOCKFILES]
    files += [root / ".nvmrc", root / ".node-version"]
    files += [folder / "node_modules" / tool / PACKAGE_JSON for folder in (root, ws) if folder is not None
              for tool in ("typescript", "@types/node")]
    return files
