"""The dependency worker: add exactly the OpenTelemetry packages the app needs.

* A **version line** (rules/otel-packages.yaml) is chosen from the app's toolchain:
  its TypeScript compiler, ``@types/node`` and Node engine, each read from
  node_modules, the lockfile or the declared range (:func:`toolchain`). When no
  line fits, :func:`choose_line` refuses (exit 2) before anything is written,
  unless the ``force_toolchain`` setting (``--force-toolchain``) is on.
* **Instrumentations** (rules/otel-instrumentations.yaml, user-extendable): http and
  express always, then one package per library the app's package.json depends on
  (:func:`chosen_instrumentations`). :func:`active_instrumentations` is the set of
  library names those patch, for other workers that must not add a second span over
  an instrumented driver.

Versions come from the rules files only. A package the project already depends on
(in ``dependencies`` or ``devDependencies``, at any version) is left alone and
reported as a :class:`Skip`: otelize never downgrades or changes a version the user
chose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from otelize.synthesize import jsonedit

from otelize.project import npmrange

from otelize.project import yamlio
from otelize.synthesize.edits import Skip, WorkerResult
from otelize.errors import BadInput, RuleError
from otelize.resources import data_dir
from otelize.workers.base import Task, WorkerContext
from otelize.project.workspace import LOCKFILES, WORKSPACE_MARKERS, toolchain_files, workspace_root  # noqa: F401
from otelize.project.workspace import read_json as _read_json


WORKER = "dependency"
PACKAGES_FILE = "otel-packages.yaml"
INSTRUMENTATIONS_FILE = "otel-instrumentations.yaml"
PACKAGE_JSON = "package.json"
PROTOCOLS = ("http/protobuf", "grpc", "console")
TOOLS = ("typescript", "@types/node", "node")
DEPENDENCY_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")


# --- rules data -------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One OpenTelemetry JS version line: what it needs, and its pins."""

    id: str
    requires: tuple[tuple[str, str], ...]  # (tool, npm range), tool in TOOLS
    packages: tuple[tuple[str, str], ...]  # (package, exact version)
    resource_api: str  # "functions" (resourceFromAttributes) | "class" (new Resource)
    traces_only: tuple[str, ...] = ()  # NodeSDK options set to [] unless their signal's exporter is configured
    tsconfig_conflicts: tuple[tuple[tuple[str, bool], ...], ...] = ()  # compilerOptions its .d.ts fail under

    def require(self, tool: str) -> str | None:
        return dict(self.requires).get(tool)


@dataclass(frozen=True)
class Instrumentation:
    package: str
    cls: str
    always: bool
    lines: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]  # (line, version, ((library, range), ...))
    source: str  # the rules file it came from, for messages

    def on(self, line: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        for lid, version, supports in self.lines:
            if lid == line:
                return version, supports
        return None


def _load_yaml(path: Path, display: str) -> Any:
    try:
        return yamlio.load(path.read_bytes())
    except yaml.YAMLError as exc:
        raise RuleError(f"{display}: invalid YAML: {str(exc).splitlines()[0]}") from None


def _string_map(value: Any, display: str, key: str, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RuleError(f"{display}: key '{key}' must map {what} to strings")
    return dict(value)


def _check_range(text: str, display: str, key: str) -> None:
    if npmrange.parse_range(text) is None:
        raise RuleError(f"{display}: key '{key}': not an npm version range: {text!r}")


@cache
def load_lines() -> tuple[tuple[Line, ...], dict[str, tuple[str, ...]]]:
    """``(lines in order of preference, profiles)`` from rules/otel-packages.yaml, validated."""
    display = f"rules/{PACKAGES_FILE}"
    doc = _load_yaml(data_dir("rules") / PACKAGES_FILE, display)
    if not isinstance(doc, dict):
        raise RuleError(f"{display}: expected a mapping at the top level")
    raw_lines = doc.get("lines")
    if not isinstance(raw_lines, dict) or not raw_lines:
        raise RuleError(f"{display}: key 'lines' must map line names to their requirements and pins")
    lines = []
    for lid, body in raw_lines.items():
        where = f"lines.{lid}"
        if not isinstance(body, dict):
            raise RuleError(f"{display}: key '{where}' must be a mapping")
        for key in body:
            if key not in ("requires", "packages", "resource_api", "traces_only", "tsconfig_conflicts"):
                raise RuleError(f"{display}: key '{where}.{key}': unknown key")
        requires = _string_map(body.get("requires", {}), display, f"{where}.requires", "tools")
        for tool, rng in requires.items():
            if tool not in TOOLS:
                raise RuleError(f"{display}: key '{where}.requires.{tool}': unknown tool (one of {', '.join(TOOLS)})")
            _check_range(rng, display, f"{where}.requires.{tool}")
        packages = _string_map(body.get("packages"), display, f"{where}.packages", "package names")
        for name, version in packages.items():
            if npmrange.parse_version(version) is None:
                raise RuleError(f"{display}: key '{where}.packages.{name}': pin an exact version, not {version!r}")
        resource_api = body.get("resource_api", "functions")
        if resource_api not in ("functions", "class"):
            raise RuleError(f"{display}: key '{where}.resource_api' must be 'functions' or 'class'")
        traces_only = body.get("traces_only", [])
        if not isinstance(traces_only, list) or not set(traces_only) <= {"logRecordProcessors", "metricReaders"}:
            raise RuleError(f"{display}: key '{where}.traces_only' must list logRecordProcessors and/or metricReaders")
        conflicts = body.get("tsconfig_conflicts", [])
        if not isinstance(conflicts, list) or not all(
            isinstance(c, dict) and c and all(isinstance(k, str) and isinstance(v, bool) for k, v in c.items())
            for c in conflicts
        ):
            raise RuleError(f"{display}: key '{where}.tsconfig_conflicts' must be a list of {{option: true/false}} mappings")
        lines.append(Line(str(lid), tuple(sorted(requires.items())), tuple(sorted(packages.items())), resource_api,
                          tuple(traces_only), tuple(tuple(sorted(c.items())) for c in conflicts)))
    profiles = doc.get("profiles")
    if not isinstance(profiles, dict):
        raise RuleError(f"{display}: key 'profiles' must be a mapping")
    result: dict[str, tuple[str, ...]] = {}
    for name, members in profiles.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise RuleError(f"{display}: key 'profiles.{name}' must be a list of package names")
        for member in members:
            for line in lines:
                if member not in dict(line.packages):
                    raise RuleError(f"{display}: key 'profiles.{name}' names {member!r}, which line {line.id} does not pin")
        result[str(name)] = tuple(members)
    for needed in ("base", "esm"):
        if needed not in result:
            raise RuleError(f"{display}: key 'profiles.{needed}' is missing")
    return tuple(lines), result


def _parse_instrumentations(doc: Any, display: str, line_ids: tuple[str, ...]) -> dict[str, Instrumentation]:
    if not isinstance(doc, dict) or not isinstance(doc.get("instrumentations"), dict):
        raise RuleError(f"{display}: key 'instrumentations' must map instrumentation packages to their entries")
    for key in doc:
        if key != "instrumentations":
            raise RuleError(f"{display}: key '{key}': unknown key")
    out: dict[str, Instrumentation] = {}
    for package, body in doc["instrumentations"].items():
        where = f"instrumentations.{package}"
        if not isinstance(package, str) or not isinstance(body, dict):
            raise RuleError(f"{display}: key '{where}' must be a mapping")
        for key in body:
            if key not in ("class", "always", "lines"):
                raise RuleError(f"{display}: key '{where}.{key}': unknown key (class, always, lines)")
        cls = body.get("class")
        if not isinstance(cls, str) or not re.fullmatch(r"[A-Za-z_$][\w$]*", cls):
            raise RuleError(f"{display}: key '{where}.class' must be the exported class name")
        always = body.get("always", False)
        if not isinstance(always, bool):
            raise RuleError(f"{display}: key '{where}.always' must be true or false")
        raw = body.get("lines")
        if not isinstance(raw, dict) or not raw:
            raise RuleError(f"{display}: key '{where}.lines' must map line names to {{version, supports}}")
        entries = []
        for lid, spec in raw.items():
            here = f"{where}.lines.{lid}"
            if lid not in line_ids:
                raise RuleError(f"{display}: key '{here}': unknown line (one of {', '.join(line_ids)})")
            if not isinstance(spec, dict) or set(spec) - {"version", "supports"}:
                raise RuleError(f"{display}: key '{here}' must have only 'version' and 'supports'")
            version = spec.get("version")
            if not isinstance(version, str) or npmrange.parse_version(version) is None:
                raise RuleError(f"{display}: key '{here}.version': pin an exact version")
            supports = _string_map(spec.get("supports"), display, f"{here}.supports", "library names")
            if not supports:
                raise RuleError(f"{display}: key '{here}.supports' names no library")
            for library, rng in supports.items():
                _check_range(rng, display, f"{here}.supports.{library}")
            entries.append((str(lid), version, tuple(sorted(supports.items()))))
        out[package] = Instrumentation(package, cls, always, tuple(sorted(entries)), display)
    return out


@cache
def _instrumentations(extra: tuple[str, ...]) -> tuple[Instrumentation, ...]:
    line_ids = tuple(line.id for line in load_lines()[0])
    display = f"rules/{INSTRUMENTATIONS_FILE}"
    table = _parse_instrumentations(_load_yaml(data_dir("rules") / INSTRUMENTATIONS_FILE, display), display, line_ids)
    for folder in extra:
        path = Path(folder) / INSTRUMENTATIONS_FILE
        if path.is_file():
            display = str(path)
            table.update(_parse_instrumentations(_load_yaml(path, display), display, line_ids))
    return tuple(table.values())  # file order: the built-in table, then each folder's


def load_instrumentations(settings: Any = None) -> tuple[Instrumentation, ...]:
    """The instrumentation table: the built-in one, extended by an
    otel-instrumentations.yaml in each of the settings' `rules:` folders."""
    return _instrumentations(tuple(str(d) for d in setting(settings, "rules", ()) or ()))


def load_packages() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """``(pins of the preferred line, profiles)``."""
    lines, profiles = load_lines()
    return dict(lines[0].packages), profiles


# --- what the app depends on, and at which versions ----------------------------------


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


def resolved_version(root: Path, name: str, wanted: str | None) -> tuple[npmrange.Version, str] | None:
    """The version of `name` the app at `root` is on, and where it was read: its
    node_modules (or the workspace's), the lockfile, else the lowest version of the
    declared range `wanted`."""
    found = _from_node_modules(root, name)
    if found is not None and npmrange.parse_version(found):
        return npmrange.parse_version(found), f"node_modules/{name}"  # type: ignore[return-value]
    locked = _from_lockfile(root, name, wanted)
    if locked is not None and npmrange.parse_version(locked[0]):
        return npmrange.parse_version(locked[0]), locked[1]  # type: ignore[return-value]
    if wanted is not None:
        low = npmrange.min_version(wanted)
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


TOOL_NAMES = {"typescript": "TypeScript", "@types/node": "@types/node", "node": "Node"}


def _conflicts(line: Line, tsconfig: dict[str, Any]) -> list[str]:
    out = []
    for options in line.tsconfig_conflicts:
        if all(bool(tsconfig.get(k, False)) == v for k, v in options):
            shown = " and ".join(f"{k}: {str(v).lower()}" for k, v in options)
            out.append(f"its type declarations do not compile with tsconfig {shown}")
    return out


def _misfits(line: Line, tools: Toolchain, tsconfig: dict[str, Any] | None = None) -> list[str]:
    out = _conflicts(line, tsconfig or {})
    for tool, rng in line.requires:
        hit = tools.get(tool)
        if hit is not None and not npmrange.satisfies(hit[0], rng):
            out.append(f"{TOOL_NAMES[tool]} {_show(hit[0])} ({hit[1]}) is outside {rng!r}")
    return out


def _show(version: npmrange.Version) -> str:
    return str(version[0]) if version[1] == npmrange.TOP else npmrange.fmt(version)


def _minimum(rng: str) -> str:
    low = npmrange.min_version(rng)
    return npmrange.fmt(low) if low is not None else rng


def _engines_admit_newer_node(project: Any, line: Line, tools: Toolchain) -> bool:
    """The only misfit of `line` is the Node engine, and that engine is an `engines.node`
    range (`>=8`, `>=12.0.0`) that also admits a Node release `line` supports: the lowest
    version of the range is a floor the app promises, not the Node it runs on. A pinned
    `.nvmrc` / `.node-version`, or a range with an upper bound below the line, still refuses."""
    others = [t for t, rng in line.requires if t != "node" and (hit := tools.get(t)) is not None
              and not npmrange.satisfies(hit[0], rng)]
    node = tools.get("node")
    if others or node is None or not node[1].startswith("engines.node"):
        return False
    engines = project.package_json.get("engines") if isinstance(project.package_json, dict) else None
    rng = engines.get("node") if isinstance(engines, dict) else None
    needed = next((r for t, r in line.requires if t == "node"), None)
    if not isinstance(rng, str) or needed is None:
        return False
    return any(npmrange.satisfies((major, 0, 0), rng) and npmrange.satisfies((major, npmrange.TOP, 0), needed)
               for major in range(14, 31))


def choose_line(project: Any, settings: Any) -> Line:
    """The first version line the app's toolchain fits. None fits: a BadInput (exit 2)
    naming the version found and the minimum, unless settings['force_toolchain'] (then
    the most lenient line, the last one)."""
    lines, _ = load_lines()
    tools = toolchain(project)
    tsconfig = project.tsconfig if isinstance(getattr(project, "tsconfig", None), dict) else {}
    for line in lines:
        if not _misfits(line, tools, tsconfig):
            return line
    if setting(settings, "force_toolchain"):
        return lines[-1]
    oldest = lines[-1]
    if _conflicts(oldest, tsconfig) and not _misfits(oldest, tools):
        newest = lines[0]
        raise BadInput(
            f"no OpenTelemetry JS line fits: {oldest.id}: {_conflicts(oldest, tsconfig)[0]}; {newest.id}: "
            f"{'; '.join(_misfits(newest, tools, tsconfig))}; nothing was written (--force-toolchain adds the "
            f"{oldest.id} packages anyway)"
        )
    if _engines_admit_newer_node(project, oldest, tools):
        return oldest  # engines.node also allows Node releases the oldest line supports: the app can run on them
    for tool, rng in oldest.requires:
        hit = tools.get(tool)
        if hit is not None and not npmrange.satisfies(hit[0], rng):
            raise BadInput(
                f"{TOOL_NAMES[tool]} {_show(hit[0])} ({hit[1]}) is older than the minimum {_minimum(rng)} of any "
                f"OpenTelemetry JS line otelize supports; nothing was written (--force-toolchain adds the "
                f"{oldest.id} packages anyway)"
            )
    raise BadInput("no OpenTelemetry JS line fits this toolchain: " + "; ".join(_misfits(oldest, tools)))


def line_of(project: Any, settings: Any) -> Line:
    """The chosen line, never refusing (for readers such as strip and the classifier)."""
    try:
        return choose_line(project, settings)
    except BadInput:
        return load_lines()[0][-1]


@dataclass(frozen=True)
class Chosen:
    package: str
    version: str
    cls: str
    libraries: tuple[str, ...]  # the app's libraries it instruments
    reason: str  # "always" or the dependency that caused it


def _matches(library: str, dependency: str) -> bool:
    return dependency.startswith(library[:-1]) if library.endswith("/*") else dependency == library


def chosen_instrumentations(
    project: Any, settings: Any = None, line: Line | None = None
) -> tuple[list[Chosen], list[str]]:
    """The instrumentation packages for this app on `line`, in table order, and a note
    for each used library left out because its version is outside what the package
    supports. One package per library (the first entry that fits)."""
    line = line or line_of(project, settings)
    deps = declared(project.package_json)
    chosen: list[Chosen] = []
    notes: list[str] = []
    claimed: set[str] = set()
    for inst in load_instrumentations(settings):
        spec = inst.on(line.id)
        if spec is None:
            continue
        version, supports = spec
        used: list[str] = []
        outside: list[str] = []
        for library, rng in supports:
            for dep in sorted(d for d in deps if _matches(library, d) and d not in claimed):
                hit = resolved_version(project.root, dep, deps[dep])
                if hit is None or npmrange.satisfies(hit[0], rng):
                    used.append(dep)
                else:
                    outside.append(f"{dep} {npmrange.fmt(hit[0])} ({hit[1]}) is outside {rng!r}")
        if inst.always or used:
            claimed.update(used)
            libraries = tuple(sorted(set(used) | ({lib for lib, _ in supports if not lib.endswith("/*")} if inst.always else set())))
            reason = "always" if inst.always else ", ".join(sorted(used))
            chosen.append(Chosen(inst.package, version, inst.cls, libraries, reason))
        elif outside:
            notes.append(f"{inst.package}@{version} not added: {'; '.join(outside)}")
    return chosen, notes


def active_instrumentations(project: Any, settings: Any = None) -> frozenset[str]:
    """The npm library names (and the node builtins http, https) whose calls the generated
    tracing.ts auto-instruments for this project: a span over a call into one of them
    would duplicate the instrumentation's CLIENT span. Empty when the app starts the SDK
    itself is not decided here (see existing_sdk)."""
    chosen, _ = chosen_instrumentations(project, settings)
    return frozenset(lib for c in chosen for lib in c.libraries)


# --- the worker -------------------------------------------------------------------


def protocol(settings: Any) -> str:
    """The exporter protocol setting: http/protobuf (default), grpc or console (validated by Settings)."""
    value = setting(settings, "protocol") or "http/protobuf"
    if value not in PROTOCOLS:
        raise BadInput(f"unknown protocol {value!r} (expected one of: {', '.join(PROTOCOLS)})")
    return str(value)


def setting(settings: Any, name: str, default: Any = None) -> Any:
    """One setting from an otelize.project.settings.Settings (what workers get) or a plain mapping."""
    if settings is None:
        return default
    if isinstance(settings, dict):
        return settings.get(name, default)
    return getattr(settings, name, default)


def wanted_packages(settings: Any, module: str, project: Any = None) -> dict[str, str]:
    """The packages (name -> pinned version) a project with these settings needs: the
    line's SDK packages and, with a project, its instrumentations."""
    lines, profiles = load_lines()
    line = choose_line(project, settings) if project is not None else lines[0]
    pins = dict(line.packages)
    names = list(profiles["base"]) + (list(profiles["esm"]) if module == "esm" else [])
    out = {name: pins[name] for name in names}
    if project is not None:
        out.update({c.package: c.version for c in chosen_instrumentations(project, settings, line)[0]})
    return dict(sorted(out.items()))


def _declared(root: jsonedit.Node, section: str) -> dict[str, str]:
    member = root.get(section)
    if member is None or member.value.kind != "object":
        return {}
    return {m.key: str(m.value.value) for m in member.value.members}


def _package_root(data: bytes) -> jsonedit.Node:
    root = jsonedit.parse(data, PACKAGE_JSON)
    if root.kind != "object":
        raise BadInput(f"{PACKAGE_JSON}: the top-level value must be an object")
    return root


SDK_STARTERS_NEW = ("NodeSDK", "NodeTracerProvider")
SDK_STARTERS_CALL = ("registerInstrumentations",)
REGISTER_HOOK = "auto-instrumentations-node/register"


def existing_sdk(ctx: WorkerContext) -> str | None:
    """Where the app already starts the OpenTelemetry SDK itself (`file:line`), if it does:
    `new NodeSDK(...)`, `new NodeTracerProvider(...)` or `registerInstrumentations(...)` in
    its own code, or the auto-instrumentation register hook in a package.json script.
    otelize's own generated files do not count."""
    from otelize.workers.base import is_generated

    for path in sorted(ctx.facts):
        pf = ctx.parsed.get(path)
        if pf is not None and is_generated(pf.source):
            continue
        for call in ctx.facts[path].calls:
            name = call.chain[-1]
            if (call.is_new and name in SDK_STARTERS_NEW) or (not call.is_new and name in SDK_STARTERS_CALL):
                return f"{path}:{call.line}"
    scripts = ctx.project.package_json.get("scripts")
    if isinstance(scripts, dict):
        for name, command in sorted(scripts.items()):
            if isinstance(command, str) and REGISTER_HOOK in command:
                return f"package.json scripts.{name}"
    return None


def needed_packages(ctx: WorkerContext) -> dict[str, str]:
    """The packages this app needs from otelize: the bootstrap's and its instrumentations,
    or, when the app starts the SDK itself, only the API the span helper imports."""
    wanted = wanted_packages(ctx.settings, ctx.project.module, ctx.project)
    if ctx.sdk_bootstrap is not None:
        return {k: v for k, v in wanted.items() if k == "@opentelemetry/api"}
    return wanted


def _present(ctx: WorkerContext) -> dict[str, str]:
    root = _package_root(ctx.project.package_json_bytes)
    return {**_declared(root, "devDependencies"), **_declared(root, "dependencies")}


def missing_packages(ctx: WorkerContext) -> list[str]:
    """The wanted packages package.json does not declare yet (what this worker adds)."""
    present = _present(ctx)
    return [name for name in needed_packages(ctx) if name not in present]


def packages_at_pins(ctx: WorkerContext) -> list[str]:
    """The wanted packages package.json declares at exactly otelize's pinned version."""
    present = _present(ctx)
    return [name for name, version in needed_packages(ctx).items() if present.get(name) == version]


def strip_pins(ctx: WorkerContext) -> dict[str, str]:
    """Every package otelize may have added to this app, at the version it would have
    pinned (any line, the SDK's and every instrumentation's): what `strip` may remove."""
    lines, _ = load_lines()
    deps = _present(ctx)
    pins: dict[str, str] = {}
    for line in lines:
        pins.update({k: v for k, v in line.packages if deps.get(k) == v})
        for inst in load_instrumentations(ctx.settings):
            spec = inst.on(line.id)
            if spec is not None and deps.get(inst.package) == spec[0]:
                pins[inst.package] = spec[0]
    for name in ("@opentelemetry/auto-instrumentations-node", "@opentelemetry/exporter-trace-otlp-proto",
                 "@opentelemetry/exporter-trace-otlp-grpc", "@opentelemetry/semantic-conventions"):
        if name in deps:  # what earlier otelize versions added (strip reads their record)
            pins[name] = deps[name]
    return dict(sorted(pins.items()))


def _notes(ctx: WorkerContext, added: dict[str, str]) -> list[str]:
    line = choose_line(ctx.project, ctx.settings)
    tools = toolchain(ctx.project)
    seen = ", ".join(
        f"{TOOL_NAMES[t]} {_show(v)} ({w})" for t, v, w in tools.found
    ) or "no TypeScript, @types/node or Node engine declared"
    forced = " (forced by --force-toolchain)" if _misfits(line, tools, ctx.project.tsconfig) else ""
    notes = [f"OpenTelemetry JS {line.id} line{forced}: {seen}"]
    chosen, left_out = chosen_instrumentations(ctx.project, ctx.settings, line)
    for c in chosen:
        if c.package in added:
            why = "always (every Express app)" if c.reason == "always" else f"for {c.reason}"
            notes.append(f"added {c.package}@{c.version} {why}")
    return notes + left_out


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    result = WorkerResult(worker=WORKER)
    data = ctx.project.package_json_bytes
    root = _package_root(data)
    present = _present(ctx)
    to_add: dict[str, str] = {}
    for name, version in needed_packages(ctx).items():
        if name in present:
            if present[name] != version:
                result.skips.append(
                    Skip(
                        PACKAGE_JSON,
                        0,
                        name,
                        f"already depends on {name}@{present[name]} (otelize pins {version})",
                        WORKER,
                    )
                )
            continue
        to_add[name] = version
    if not to_add:
        return result
    if ctx.sdk_bootstrap is None:
        result.notes += _notes(ctx, to_add)

    style = jsonedit.detect_style(data, root)
    encoded = [(name, jsonedit.encode(version)) for name, version in to_add.items()]
    deps = root.get("dependencies")
    if deps is not None and deps.value.kind != "object":
        raise BadInput(f"{PACKAGE_JSON}: 'dependencies' must be an object")
    if deps is not None:
        result.edits += jsonedit.insert_members(PACKAGE_JSON, data, deps.value, encoded, style, WORKER)
    else:
        if not root.members:
            level = style.indent  # the root becomes multi-line too
        elif jsonedit.is_multiline(data, root):
            level = jsonedit.line_indent(data, root.members[0].key_start)
        else:
            level = b""
        value = jsonedit.render_object(encoded, level, style)
        # After "scripts" when present, else at the end.
        result.edits += jsonedit.insert_members(
            PACKAGE_JSON, data, root, [("dependencies", value)], style, WORKER, after="scripts"
        )
    result.packages.update(to_add)
    return result
