"""What the app depends on and at which versions: declared ranges, node_modules, the
lockfile (npm, pnpm, yarn), the package manager, and the toolchain (TypeScript,
@types/node, the Node engine) a version line is chosen by."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from otelize.project import npmrange, yamlio
from otelize.project.workspace import LOCKFILES, workspace_root
from otelize.project.workspace import read_json as _read_json

PACKAGE_JSON = "package.json"
DEPENDENCY_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


def declared(package_json: dict[str, Any]) -> dict[str, str]:
    """Every dependency package.json declares (name -> range), runtime sections winning."""
    out: dict[str, str] = {}
    for section in reversed(DEPENDENCY_SECTIONS):
        deps = package_json.get(section)
        if isinstance(deps, dict):
            out.update({str(k): str(v) for k, v in deps.items()})
    return dict(sorted(out.items()))


_LOCK_MANAGER = {"pnpm-lock.yaml": "pnpm", "yarn.lock": "yarn", "bun.lock": "bun", "bun.lockb": "bun"}


def _lockfile(root: Path) -> Path | None:
    for folder in (root, workspace_root(root)):
        if folder is None:
            continue
        for name in LOCKFILES:
            if (folder / name).is_file():
                return folder / name
    return None


def package_manager(root: Path, package_json: dict[str, Any]) -> str:
    """npm, pnpm, yarn or bun: the `packageManager` field (the app's, else its
    workspace's), else the lockfile (the app's, else its workspace's), else npm."""
    ws = workspace_root(root)
    for pkg in (package_json, _read_json(ws / PACKAGE_JSON) if ws else None):
        field = pkg.get("packageManager") if isinstance(pkg, dict) else None
        if isinstance(field, str):
            name = field.split("@", 1)[0].strip()
            if name in ("npm", "pnpm", "yarn", "bun"):
                return name
    lock = _lockfile(root)
    if lock is not None:
        return _LOCK_MANAGER.get(lock.name, "npm")
    return "npm"


def package_manager_note(root: Path, package_json: dict[str, Any]) -> str | None:
    """Why this package manager, when the app's folder holds lockfiles of more than one
    (None when the choice is not in doubt)."""
    present = [name for name in LOCKFILES if (root / name).is_file()]
    managers = {_LOCK_MANAGER.get(name, "npm") for name in present}
    if len(managers) < 2:
        return None
    chosen = package_manager(root, package_json)
    field = package_json.get("packageManager") if isinstance(package_json, dict) else None
    why = (f"the packageManager field says {field}" if isinstance(field, str) and field.split("@", 1)[0].strip() == chosen
           else f"{present[0]} comes first in otelize's order ({', '.join(LOCKFILES)})")
    return f"lockfiles of several package managers ({', '.join(present)}): using {chosen}, because {why}"


def _from_node_modules(root: Path, name: str) -> str | None:
    ws = workspace_root(root)
    for folder in [root, *root.parents]:
        pkg = _read_json(folder / "node_modules" / name / PACKAGE_JSON)
        if isinstance(pkg, dict) and isinstance(pkg.get("version"), str):
            return str(pkg["version"])
        if ws is None or folder == ws:
            break
    return None


@cache
def _lock_text(path: Path, stamp: tuple[int, int]) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except OSError:
        return ""


def _from_lockfile(root: Path, name: str, wanted: str | None) -> tuple[str, str] | None:
    lock = _lockfile(root)
    if lock is None:
        return None
    stat = lock.stat()
    text = _lock_text(lock, (stat.st_mtime_ns, stat.st_size))
    member = root.relative_to(lock.parent).as_posix() if root != lock.parent else ""
    if lock.name in ("package-lock.json", "npm-shrinkwrap.json"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        packages = data.get("packages") if isinstance(data, dict) else None
        if isinstance(packages, dict):
            for key in ([f"{member}/node_modules/{name}"] if member else []) + [f"node_modules/{name}"]:
                entry = packages.get(key)
                if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                    return str(entry["version"]), lock.name
        deps = data.get("dependencies") if isinstance(data, dict) else None  # lockfileVersion 1
        entry = deps.get(name) if isinstance(deps, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            return str(entry["version"]), lock.name
        return None
    if lock.name == "pnpm-lock.yaml":
        try:
            data = yamlio.load(text.encode("utf-8"))
        except yaml.YAMLError:
            return None
        if not isinstance(data, dict):
            return None
        sections = []
        importers = data.get("importers")
        if isinstance(importers, dict) and isinstance(importers.get(member or "."), dict):
            sections.append(importers[member or "."])
        sections.append(data)
        for holder in sections:
            for section in DEPENDENCY_SECTIONS:
                deps = holder.get(section)
                entry = deps.get(name) if isinstance(deps, dict) else None
                version = entry.get("version") if isinstance(entry, dict) else entry
                if isinstance(version, (str, int, float)):
                    m = re.match(r"\d+\.\d+\.\d+", str(version))
                    if m:
                        return m.group(0), lock.name
        return None
    if lock.name == "yarn.lock":
        # blocks: `"name@^1.2.0", name@~1.2:` then `  version "1.2.3"` (yarn 1) / `version: 1.2.3` (berry)
        found = []
        for block in re.split(r"\n(?=\S)", text):
            head, _, body = block.partition("\n")
            specs = [s.strip().strip('"') for s in head.rstrip(":").split(",")]
            ranges = [s.rpartition("@")[2].removeprefix("npm:") for s in specs if s.rpartition("@")[0] == name]
            if not ranges:
                continue
            m = re.search(r'^\s+version:?\s+"?([^"\s]+)"?', body, re.M)
            if m:
                found.append((wanted in ranges, m.group(1)))
        if found:
            return max(found)[1], lock.name
    return None


def installed_version(root: Path, name: str) -> tuple[str, str] | None:
    """The exact version of `name` the app is on (node_modules, else the lockfile) and
    where it was read; None when neither has it."""
    found = _from_node_modules(root, name)
    if found is not None and npmrange.parse_version(found):
        return found, f"node_modules/{name}"
    locked = _from_lockfile(root, name, None)
    if locked is not None and npmrange.parse_version(locked[0]):
        return locked
    return None


def resolved_version(root: Path, name: str, wanted: str | None) -> tuple[npmrange.Version, str] | None:
    """The version of `name` the app at `root` is on, and where it was read: its
    node_modules (or the workspace's), the lockfile, else the lowest version of the
    declared range `wanted`. An installed or locked version older than that lowest one
    is stale (package.json was raised since; the `npm install` otelize asks for brings
    the declared one) and is passed over."""
    low = npmrange.min_version(wanted) if wanted is not None else None

    def current(text: str | None) -> npmrange.Version | None:
        version = npmrange.parse_version(text) if text is not None else None
        return version if version is not None and (low is None or version >= low) else None

    found = current(_from_node_modules(root, name))
    if found is not None:
        return found, f"node_modules/{name}"
    locked = _from_lockfile(root, name, wanted)
    if locked is not None and (version := current(locked[0])) is not None:
        return version, locked[1]
    if low is not None:
        return low, f"package.json {wanted!r}"
    return None


@dataclass(frozen=True)
class Toolchain:
    """What the app compiles and runs with: tool -> (version, where it was read)."""

    found: tuple[tuple[str, npmrange.Version, str], ...]

    def get(self, tool: str) -> tuple[npmrange.Version, str] | None:
        for name, version, where in self.found:
            if name == tool:
                return version, where
        return None


def _node_engine(root: Path, package_json: dict[str, Any]) -> tuple[npmrange.Version, str] | None:
    """The lowest Node major the app says it runs on, from engines.node (the lowest
    version of its range), .nvmrc and .node-version. Majors are compared, not releases:
    an app on Node 18 runs its newest 18.x, so `>=18` fits a line that needs ^18.19.0."""
    candidates = []
    engines = package_json.get("engines")
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        low = npmrange.min_version(engines["node"])
        if low is not None:
            candidates.append(((low[0], npmrange.TOP, 0), f"engines.node {engines['node']!r}"))
    for name in (".nvmrc", ".node-version"):
        path = root / name
        if not path.is_file():
            continue
        text = path.read_text("utf-8", errors="replace").strip().splitlines()
        m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text[0].strip() if text else "")
        if m:
            candidates.append(((int(m.group(1)), npmrange.TOP, 0), f"{name} {text[0].strip()!r}"))
    return min(candidates) if candidates else None


def node_may_be_in(root: Path, package_json: dict[str, Any], rng: str) -> bool:
    """Whether the Node the app runs on can be in `rng` (an npm range): the major that
    .nvmrc or .node-version pins, else any major engines.node admits; True when the app
    declares neither (otelize cannot tell, and a current Node is the likely one)."""
    for name in (".nvmrc", ".node-version"):
        path = root / name
        if path.is_file():
            text = path.read_text("utf-8", errors="replace").strip().splitlines()
            m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text[0].strip() if text else "")
            if m:
                return npmrange.satisfies((int(m.group(1)), npmrange.TOP, 0), rng)
    engines = package_json.get("engines")
    declared_range = engines.get("node") if isinstance(engines, dict) else None
    if not isinstance(declared_range, str) or npmrange.parse_range(declared_range) is None:
        return True
    # probes: each major's first and last release, and every bound either range names
    probes = {v for major in range(0, 41) for v in ((major, 0, 0), (major, npmrange.TOP, 0))}
    probes |= {b for text in (declared_range, rng) for alt in npmrange.parse_range(text) or () for _, b in alt}
    return any(npmrange.satisfies(v, declared_range) and npmrange.satisfies(v, rng) for v in sorted(probes))


def toolchain(project: Any) -> Toolchain:
    """The app's TypeScript, @types/node and Node engine (each only when found)."""
    root = project.root
    pkg = project.package_json
    deps = declared(pkg)
    found = []
    for tool in ("typescript", "@types/node"):
        if tool in deps or _from_node_modules(root, tool) is not None:
            hit = resolved_version(root, tool, deps.get(tool))
            if hit is not None:
                found.append((tool, hit[0], hit[1]))
    node = _node_engine(root, pkg)
    if node is not None:
        found.append(("node", node[0], node[1]))
    return Toolchain(tuple(found))
