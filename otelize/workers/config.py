"""The config worker: generate src/tracing.ts and src/otel.ts, and load tracing first.

* ``tracing.ts`` starts the NodeSDK; it must run before express is loaded.
  CommonJS projects get a side-effect import as the first statement of the
  entry file (through an :class:`ImportRequest`; the import step writes it).
  ES-module projects get ``node --import ./<outDir>/tracing.js`` in their
  start script, because static imports are hoisted and evaluated in order,
  so an import cannot reliably run before the app's own imports.
* ``otel.ts`` holds the span helpers the other workers call.

A file that exists and does not start with ``GENERATED_HEADER`` belongs to
the user and is never overwritten.
"""

from __future__ import annotations

import posixpath
import re

from otelize import jsonedit
from otelize.edits import ImportRequest, NewFile, Skip, WorkerResult
from otelize.render import render
from otelize.workers.base import GENERATED_HEADER, Task, WorkerContext, is_generated
from otelize.workers.spans import uses_require
from otelize.workers.dependency import (
    PACKAGE_JSON,
    choose_line,
    chosen_instrumentations,
    missing_packages,
    packages_at_pins,
    protocol,
    setting,
)
from otelize.registry import SPAN_HELPERS

WORKER = "config"
HEALTH_PATH = re.compile(r"^/(health|healthz|livez|readyz|ready|live|ping)$")
HEALTH_METHODS = ("GET", "ALL")


def health_paths(ctx: WorkerContext) -> list[str]:
    """Sorted, distinct health-check paths of the route table."""
    return sorted({r.path for r in ctx.routes if r.method.upper() in HEALTH_METHODS and HEALTH_PATH.match(r.path)})


ADDED_HEADING = b"// Packages otelize added to package.json (`otelize strip` removes them):\n"
ADDED_ITEM = b"//   "


def recorded_packages(tracing: bytes | None) -> list[str] | None:
    """The packages a generated tracing.ts records as added by otelize (None: no record)."""
    if tracing is None or not is_generated(tracing):
        return None
    tracing = tracing.replace(b"\r\n", b"\n")
    at = tracing.find(ADDED_HEADING)
    if at < 0:
        return None
    names = []
    for line in tracing[at + len(ADDED_HEADING):].splitlines():
        if not line.startswith(ADDED_ITEM):
            break
        name = line[len(ADDED_ITEM):].strip().decode("utf-8", "replace")
        if name != "(none)":
            names.append(name)
    return names


def recorded_in_generated(ctx: WorkerContext) -> list[str] | None:
    """The record of added packages in the generated tracing.ts, or, for an app with its
    own SDK bootstrap (no tracing.ts), in the span helper; None when there is none."""
    tracing = _existing(ctx, ctx.tracing_path)
    if tracing is None:
        return recorded_packages(_existing(ctx, ctx.helper_path))
    return recorded_packages(tracing)


def added_packages(ctx: WorkerContext) -> list[str]:
    """What otelize added to package.json: what the dependency worker adds now, plus
    what an existing tracing.ts recorded (so a second run renders the same bytes, and
    strip never removes a package the user had declared before at the same version)."""
    existing = _existing(ctx, ctx.tracing_path)
    recorded = recorded_in_generated(ctx)
    if recorded is None and is_generated(existing):
        # written by an otelize that kept no record: it added what sits at exactly its pins
        recorded = packages_at_pins(ctx)
    return sorted(set(missing_packages(ctx)) | set(recorded or []))


def _instrumentations(ctx: WorkerContext, line: object) -> list[dict[str, str]]:
    """What tracing.ts registers: one constructor per chosen instrumentation package,
    each under a distinct local name (two packages may export the same class name)."""
    out, taken = [], set()
    for c in chosen_instrumentations(ctx.project, ctx.settings, line)[0]:  # type: ignore[arg-type]
        local, n = c.cls, 2
        while local in taken:
            local, n = f"{c.cls}{n}", n + 1
        taken.add(local)
        out.append({"package": c.package, "cls": c.cls, "local": local})
    return out


def _in_app_language(ctx: WorkerContext, source: bytes) -> bytes:
    """A rendered template as the app runs it: TypeScript, or for a JavaScript app the
    same module with its types erased, as CommonJS or ES module (otelize.jsemit)."""
    if ctx.project.language != "js":
        return source
    from otelize.jsemit import to_javascript

    return to_javascript(source, ctx.project.module)


def render_tracing(ctx: WorkerContext) -> bytes:
    return _in_app_language(ctx, _render_tracing_ts(ctx))


def _render_tracing_ts(ctx: WorkerContext) -> bytes:
    line = choose_line(ctx.project, ctx.settings)
    return render(
        "tracing.ts.j2",
        generated_header=GENERATED_HEADER.decode("utf-8").rstrip("\n"),
        service_name=ctx.settings.service_name or ctx.project.name,
        service_version=ctx.project.version,
        protocol=protocol(ctx.settings),
        module=ctx.project.module,
        health_paths=health_paths(ctx),
        added_packages=added_packages(ctx),
        line=line,
        instrumentations=_instrumentations(ctx, line),
        express_layers=bool(setting(ctx.settings, "express_layers")),
    )


def render_helper(ctx: WorkerContext | None = None) -> bytes:
    """The span helper module; with a context it also records the packages otelize added
    (as tracing.ts does), for an app whose own SDK bootstrap means there is no tracing.ts."""
    rendered = render(
        "otel.ts.j2",
        generated_header=GENERATED_HEADER.decode("utf-8").rstrip("\n"),
        helpers=SPAN_HELPERS,
        added_packages=added_packages(ctx) if ctx is not None else None,
    )
    return _in_app_language(ctx, rendered) if ctx is not None else rendered


def _existing(ctx: WorkerContext, path: str) -> bytes | None:
    file = ctx.project.root / path
    return file.read_bytes() if file.is_file() else None


def _generate(ctx: WorkerContext, path: str, content: bytes, result: WorkerResult) -> None:
    from otelize.layout import same_code

    current = _existing(ctx, path)
    if current is None or (is_generated(current) and not same_code(path, current, content)):
        # (ours and only re-flowed by a formatter such as Prettier counts as up to date)
        result.new_files.append(NewFile(path, content, WORKER))
    elif not is_generated(current):
        result.skips.append(
            Skip(path, 1, path, "file exists and was not generated by otelize; left untouched", WORKER)
        )
    # else: ours and up to date: nothing to do.


def import_specifier(entry: str, target: str) -> str:
    """``target`` (a .ts file) as a relative specifier from ``entry``'s folder, no extension."""
    rel = posixpath.relpath(posixpath.splitext(target)[0], posixpath.dirname(entry) or ".")
    return rel if rel.startswith("../") else f"./{rel}"


def tracing_js_path(ctx: WorkerContext) -> str:
    """Where tsc emits tracing.ts, relative to the project root (posix)."""
    project = ctx.project
    if project.language == "js":  # JavaScript runs as written
        return f"./{ctx.tracing_path}"
    rel = posixpath.relpath(ctx.tracing_path, project.src_dir or ".")
    out = posixpath.join(project.out_dir or project.src_dir or ".", posixpath.splitext(rel)[0] + ".js")
    out = posixpath.normpath(out)
    return out if out.startswith("../") else f"./{out}"


def _esm_start_script(ctx: WorkerContext, result: WorkerResult) -> None:
    data = ctx.project.package_json_bytes
    root = jsonedit.parse(data, PACKAGE_JSON)
    scripts = root.get("scripts") if root.kind == "object" else None
    start = scripts.value.get("start") if scripts is not None and scripts.value.kind == "object" else None
    if start is None or start.value.kind != "string":
        result.skips.append(
            Skip(PACKAGE_JSON, 0, "scripts.start", "no start script: run node with --import for tracing.js", WORKER)
        )
        return
    command: str = start.value.value
    flag = f"--import {tracing_js_path(ctx)}"
    if flag in command:
        return
    if not command.startswith("node "):
        result.skips.append(
            Skip(
                PACKAGE_JSON,
                0,
                "scripts.start",
                f"start script does not start with 'node ': add {flag} to the node command yourself",
                WORKER,
            )
        )
        return
    result.edits.append(jsonedit.replace_string(PACKAGE_JSON, start.value, f"node {flag} {command[5:]}", WORKER))
    result.notes.append(
        f"ES-module project: scripts.start now preloads the SDK with `{flag}`; static imports are "
        "evaluated before the entry file's own code, so only a preload starts tracing before express loads."
    )


def run(ctx: WorkerContext, task: Task) -> WorkerResult:
    result = WorkerResult(worker=WORKER)
    sdk = ctx.sdk_bootstrap
    _generate(ctx, ctx.helper_path, render_helper(ctx), result)
    if sdk is not None:
        # a second SDK would register twice and double every auto-instrumented span
        result.skips.append(Skip(ctx.tracing_path, 0, "tracing", f"the app already starts the OpenTelemetry SDK ({sdk}); "
                                 "no tracing.ts: otelize adds spans only", WORKER))
        return result
    _generate(ctx, ctx.tracing_path, render_tracing(ctx), result)

    if ctx.project.module == "esm":
        _esm_start_script(ctx, result)
    elif not (task.files or ctx.entry):
        result.skips.append(Skip("", 0, "entry", "no entry file found: import ./tracing first yourself", WORKER))
    else:
        # every entry point (several apps in one repo) loads tracing first
        for entry in task.files or (ctx.entry,):
            result.imports.append(
                ImportRequest(
                    file=entry,
                    module=import_specifier(entry, ctx.tracing_path),
                    side_effect=True,
                    worker=WORKER,
                    require=uses_require(ctx, entry),
                )
            )
    return result
