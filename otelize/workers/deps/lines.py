"""The rules data of the dependency worker: the OpenTelemetry JS version lines and their
pins (rules/otel-packages.yaml) and the instrumentation table
(rules/otel-instrumentations.yaml, extended by the settings' `rules:` folders),
validated on load with errors naming the file and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from otelize.errors import RuleError
from otelize.project import npmrange, yamlio
from otelize.resources import data_dir
from otelize.workers.base import setting

PACKAGES_FILE = "otel-packages.yaml"
INSTRUMENTATIONS_FILE = "otel-instrumentations.yaml"
TOOLS = ("typescript", "@types/node", "node")
GLOBALS = ("fetch",)  # the globals whose calls the analysis records (FileFacts.global_fetch)


@dataclass(frozen=True)
class Line:
    """One OpenTelemetry JS version line: what it needs, and its pins."""

    id: str
    requires: tuple[tuple[str, str], ...]  # (tool, npm range), tool in TOOLS
    packages: tuple[tuple[str, str], ...]  # (package, exact version)
    resource_api: str  # "functions" (resourceFromAttributes) | "class" (new Resource)
    traces_only: tuple[str, ...] = ()  # NodeSDK options set to [] unless their signal's exporter is configured
    tsconfig_conflicts: tuple[tuple[tuple[str, bool], ...], ...] = ()  # compilerOptions its .d.ts fail under
    typed: bool = True  # False: the generated helpers import none of its types (`type_free` in the rules file)

    def require(self, tool: str) -> str | None:
        return dict(self.requires).get(tool)


@dataclass(frozen=True)
class Instrumentation:
    package: str
    cls: str
    always: bool
    lines: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]  # (line, version, ((library, range), ...))
    source: str  # the rules file it came from, for messages
    globals: tuple[tuple[str, str], ...] = ()  # (global the app calls, the Node range in which it is what this traces)

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


def _members(value: Any, display: str, key: str, what: str) -> list[tuple[Any, Any, str]]:
    """The members of the non-empty mapping `value` (at `key`) as (name, body, the member's
    key), else a RuleError saying the key must map `what`."""
    if not isinstance(value, dict) or not value:
        raise RuleError(f"{display}: key '{key}' must map {what}")
    return [(name, body, f"{key}.{name}") for name, body in value.items()]


def _known_keys(body: dict[Any, Any], known: tuple[str, ...], display: str, where: str, hint: str = "") -> None:
    for key in body:
        if key not in known:
            raise RuleError(f"{display}: key '{where}.{key}': unknown key{hint}")


def _packages_doc(display: str) -> dict[Any, Any]:
    doc = _load_yaml(data_dir("rules") / PACKAGES_FILE, display)
    if not isinstance(doc, dict):
        raise RuleError(f"{display}: expected a mapping at the top level")
    return doc


@cache
def type_free_requires() -> tuple[tuple[str, str], ...]:
    """What the type-free helpers need of the toolchain (`type_free.requires`: TypeScript only)."""
    display = f"rules/{PACKAGES_FILE}"
    body = _packages_doc(display).get("type_free")
    if not isinstance(body, dict):
        raise RuleError(f"{display}: key 'type_free' must be a mapping")
    _known_keys(body, ("requires",), display, "type_free")
    requires = _string_map(body.get("requires", {}), display, "type_free.requires", "tools")
    for tool, rng in requires.items():
        if tool != "typescript":
            raise RuleError(f"{display}: key 'type_free.requires.{tool}': only typescript can be required")
        _check_range(rng, display, f"type_free.requires.{tool}")
    return tuple(sorted(requires.items()))


@cache
def load_lines() -> tuple[tuple[Line, ...], dict[str, tuple[str, ...]]]:
    """``(lines in order of preference, profiles)`` from rules/otel-packages.yaml, validated."""
    display = f"rules/{PACKAGES_FILE}"
    doc = _packages_doc(display)
    lines = []
    for lid, body, where in _members(doc.get("lines"), display, "lines", "line names to their requirements and pins"):
        if not isinstance(body, dict):
            raise RuleError(f"{display}: key '{where}' must be a mapping")
        _known_keys(body, ("requires", "packages", "resource_api", "traces_only", "tsconfig_conflicts"), display, where)
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
        _known_keys(body, ("class", "always", "globals", "lines"), display, where, " (class, always, globals, lines)")
        cls = body.get("class")
        if not isinstance(cls, str) or not re.fullmatch(r"[A-Za-z_$][\w$]*", cls):
            raise RuleError(f"{display}: key '{where}.class' must be the exported class name")
        always = body.get("always", False)
        if not isinstance(always, bool):
            raise RuleError(f"{display}: key '{where}.always' must be true or false")
        globals_ = _string_map(body.get("globals", {}), display, f"{where}.globals", "globals to Node ranges")
        for name, rng in globals_.items():
            if name not in GLOBALS:
                raise RuleError(f"{display}: key '{where}.globals.{name}': unknown global (one of {', '.join(GLOBALS)})")
            _check_range(rng, display, f"{where}.globals.{name}")
        entries = []
        for lid, spec, here in _members(body.get("lines"), display, f"{where}.lines", "line names to {version, supports}"):
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
        out[package] = Instrumentation(package, cls, always, tuple(sorted(entries)), display, tuple(sorted(globals_.items())))
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
