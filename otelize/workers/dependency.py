"""The dependency worker: add the pinned OpenTelemetry packages to package.json.

Versions come from ``rules/otel-packages.yaml`` only. A package the project
already depends on (in ``dependencies`` or ``devDependencies``, at any version)
is left alone and reported as a :class:`Skip`: otelize never downgrades or
changes a version the user chose.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import yaml

from otelize import yamlio

from otelize import jsonedit
from otelize.edits import Skip, WorkerResult
from otelize.errors import BadInput, RuleError
from otelize.resources import data_dir
from otelize.workers.base import Task, WorkerContext

if TYPE_CHECKING:
    from otelize.settings import Settings

WORKER = "dependency"
PACKAGES_FILE = "otel-packages.yaml"
PACKAGE_JSON = "package.json"
PROTOCOLS = ("http/protobuf", "grpc", "console")


@cache
def load_packages() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """``(packages, profiles)`` from rules/otel-packages.yaml, validated."""
    path = data_dir("rules") / PACKAGES_FILE
    try:
        doc = yamlio.load(path.read_bytes())
    except yaml.YAMLError as exc:
        raise RuleError(f"rules/{PACKAGES_FILE}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise RuleError(f"rules/{PACKAGES_FILE}: expected a mapping at the top level")
    packages = doc.get("packages")
    if not isinstance(packages, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in packages.items()
    ):
        raise RuleError(f"rules/{PACKAGES_FILE}: key 'packages' must map package names to version strings")
    profiles = doc.get("profiles")
    if not isinstance(profiles, dict):
        raise RuleError(f"rules/{PACKAGES_FILE}: key 'profiles' must be a mapping")
    result: dict[str, tuple[str, ...]] = {}
    for name, members in profiles.items():
        if not isinstance(members, list):
            raise RuleError(f"rules/{PACKAGES_FILE}: key 'profiles.{name}' must be a list")
        for member in members:
            if member not in packages:
                raise RuleError(f"rules/{PACKAGES_FILE}: key 'profiles.{name}' names unknown package {member!r}")
        result[str(name)] = tuple(members)
    for needed in ("base", "esm", *PROTOCOLS):
        if needed not in result:
            raise RuleError(f"rules/{PACKAGES_FILE}: key 'profiles.{needed}' is missing")
    return dict(packages), result


def protocol(settings: Settings) -> str:
    """The exporter protocol setting: http/protobuf (default), grpc or console (validated by Settings)."""
    return settings.protocol


def wanted_packages(settings: Settings, module: str) -> dict[str, str]:
    """The packages (name -> pinned version) a project with these settings needs."""
    packages, profiles = load_packages()
    names = list(profiles["base"]) + list(profiles[protocol(settings)])
    if module == "esm":
        names += profiles["esm"]
    return {name: packages[name] for name in sorted(set(names))}


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
    """The packages this app needs from otelize: all of the bootstrap's, or, when the app
    starts the SDK itself, only the API the span helper imports."""
    wanted = wanted_packages(ctx.settings, ctx.project.module)
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
