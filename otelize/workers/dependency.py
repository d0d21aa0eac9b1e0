"""The dependency worker: add exactly the OpenTelemetry packages the app needs.

* A **version line** (rules/otel-packages.yaml) is chosen from the app's toolchain:
  its TypeScript compiler, ``@types/node`` and Node engine, each read from
  node_modules, the lockfile or the declared range (:func:`toolchain`). When no
  line fits, :func:`choose_line` refuses (exit 2) before anything is written,
  unless the ``force_toolchain`` setting (``--force-toolchain``) is on.
* **Instrumentations** (rules/otel-instrumentations.yaml, user-extendable): http and
  express always, then one package per library the app's package.json depends on
  (:func:`chosen_instrumentations`), and undici's for an app that calls the global
  fetch (Node 18 or later). :func:`active_instrumentations` is the set of
  library names those patch, for other workers that must not add a second span over
  an instrumented driver.

Versions come from the rules files only. A package the project already depends on
(in ``dependencies`` or ``devDependencies``, at any version) is left alone and
reported as a :class:`Skip`: otelize never downgrades or changes a version the user
chose.
"""

from __future__ import annotations

from typing import Any

from otelize.errors import BadInput
from otelize.synthesize.edits import Skip, WorkerResult
from otelize.workers.base import Task, WorkerContext, setting
from otelize.workers.deps.choose import LEFT_OUT, called_globals, choose_line, chosen_instrumentations, line_note
from otelize.workers.deps.toolchain import declared, installed_version
from otelize.workers.deps.lines import load_instrumentations, load_lines
from otelize.workers.deps import packagejson
from otelize.workers.deps.packagejson import PACKAGE_JSON, add_dependencies, package_root

WORKER = "dependency"
PROTOCOLS = ("http/protobuf", "grpc", "console")


def protocol(settings: Any) -> str:
    """The exporter protocol setting: http/protobuf (default), grpc or console (validated by Settings)."""
    value = setting(settings, "protocol") or "http/protobuf"
    if value not in PROTOCOLS:
        raise BadInput(f"unknown protocol {value!r} (expected one of: {', '.join(PROTOCOLS)})")
    return str(value)


def wanted_packages(settings: Any, module: str, project: Any = None, calls: frozenset[str] = frozenset()) -> dict[str, str]:
    """The packages (name -> pinned version) a project with these settings needs: the
    line's SDK packages and, with a project, its instrumentations (`calls`: the globals
    its code calls, see chosen_instrumentations)."""
    lines, profiles = load_lines()
    line = choose_line(project, settings) if project is not None else lines[0]
    pins = dict(line.packages)
    names = list(profiles["base"]) + (list(profiles["esm"]) if module == "esm" else [])
    out = {name: pins[name] for name in names}
    if project is not None:
        out.update({c.package: c.version for c in chosen_instrumentations(project, settings, line, calls)[0]})
        held = held_types_node(project, line)
        if held is not None:
            out["@types/node"] = held[0]
    return dict(sorted(out.items()))


def held_types_node(project: Any, line: Any) -> tuple[str, str] | None:
    """With type-free helpers (the app's TypeScript reads no newer @types/node), the
    @types/node the app is on, to declare at exactly that version when the app does not
    declare it: the SDK's dependencies (protobufjs: @types/node >= 13.7.0) would otherwise
    make npm hoist the newest @types/node over the one the app got through another
    package, and a TypeScript 3 tsc cannot read it. (version, where it was read) or None."""
    if line.typed or "@types/node" in declared(project.package_json):
        return None
    return installed_version(project.root, "@types/node")


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
    wanted = wanted_packages(ctx.settings, ctx.project.module, ctx.project, called_globals(ctx.facts))
    if ctx.sdk_bootstrap is not None:
        return {k: v for k, v in wanted.items() if k == "@opentelemetry/api"}
    return wanted


def _present(ctx: WorkerContext) -> dict[str, str]:
    return packagejson.present(ctx.project.package_json_bytes)


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
    notes = [line_note(ctx.project, line)]
    chosen, _ = chosen_instrumentations(ctx.project, ctx.settings, line, called_globals(ctx.facts))
    for c in chosen:
        if c.package in added:
            why = "always (every Express app)" if c.reason == "always" else f"for {c.reason}"
            notes.append(f"added {c.package}@{c.version} {why}")
    held = held_types_node(ctx.project, line)
    if held is not None and "@types/node" in added:
        notes.append(f"added @types/node@{held[0]}, the version {held[1]} has: so that npm keeps it (the SDK's "
                     "dependencies would hoist the newest @types/node, which this TypeScript cannot read)")
    return notes


def left_out_skips(ctx: WorkerContext) -> list[Skip]:
    """A library whose version no pinned instrumentation supports (Prisma before 6.1): its
    calls get no spans from it. A skip with the reason LEFT_OUT, which the CLI prints as a
    warning (also on a second run, when nothing is added)."""
    _, left_out = chosen_instrumentations(ctx.project, ctx.settings)
    return [Skip(PACKAGE_JSON, 0, o.package, o.reason, WORKER) for o in left_out]


def left_out(skips: list[Skip]) -> list[Skip]:
    """The skips that say a library gets no instrumentation (warnings)."""
    return [s for s in skips if s.worker == WORKER and s.reason.startswith(LEFT_OUT)]


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    result = WorkerResult(worker=WORKER)
    data = ctx.project.package_json_bytes
    root = package_root(data)
    present = _present(ctx)
    to_add: dict[str, str] = {}
    if ctx.sdk_bootstrap is None:
        result.skips += left_out_skips(ctx)
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

    result.edits += add_dependencies(data, root, to_add, WORKER)
    result.packages.update(to_add)
    return result
