"""The config worker: generate src/tracing.ts and src/otel.ts, and load tracing first.

* ``tracing.ts`` starts the NodeSDK; it must run before express is loaded.
  Every entry file gets a side-effect import of it as its first statement
  (through an :class:`ImportRequest`; the import step writes it): tsc keeps it
  first, and every bundler follows it and keeps its side effects. An ES-module
  project whose build provably emits ``tracing.js`` (a ``tsc`` build with the
  file inside the compiled set of the tsconfig it uses, see otelize.project.build) gets
  ``node --import ./<outDir>/tracing.js`` in its start script instead, because
  static imports are loaded before the entry's own code runs.
* ``otel.ts`` holds the span helpers the other workers call.
* Both go where the build's tsconfig compiles them (:func:`placement`); a file of
  the user's with the same name makes otelize pick ``otelize-tracing.ts`` /
  ``otelize-otel.ts``, and refuse (exit 2) when those are taken too.

A file that exists and does not start with ``GENERATED_HEADER`` belongs to
the user and is never overwritten. When tracing cannot be loaded (no entry,
a start script it cannot change) the worker says so with a
``NOT_LOADED`` skip: a warning on stderr, and ``--check`` is not clean.
"""

from __future__ import annotations

import posixpath
import re

from otelize.project import build as builds
from otelize.synthesize import jsonedit
from otelize.synthesize.edits import ImportRequest, NewFile, Skip, WorkerResult
from otelize.synthesize.render import render
from otelize.workers.base import (
    GENERATED_HEADER,
    Task,
    WorkerContext,
    is_generated,
    setting,
)
from otelize.workers.spans import uses_require
from otelize.workers.dependency import missing_packages, packages_at_pins, protocol
from otelize.workers.deps.choose import called_globals, choose_line, chosen_instrumentations, line_of
from otelize.workers.deps.packagejson import PACKAGE_JSON
from otelize.plan.registry import SPAN_HELPERS
from otelize.workers.placement import in_folder, tracing_js_path

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
    for c in chosen_instrumentations(ctx.project, ctx.settings, line, called_globals(ctx.facts))[0]:  # type: ignore[arg-type]
        local, n = c.cls, 2
        while local in taken:
            local, n = f"{c.cls}{n}", n + 1
        taken.add(local)
        out.append({"package": c.package, "cls": c.cls, "local": local})
    return out


def _in_app_language(ctx: WorkerContext, source: bytes) -> bytes:
    """A rendered template as the app runs it: TypeScript, or for a JavaScript app the
    same module with its types erased, as CommonJS or ES module (otelize.synthesize.jsemit)."""
    if ctx.project.language != "js":
        return source
    from otelize.synthesize.jsemit import to_javascript

    return to_javascript(source, ctx.project.module)


def render_tracing(ctx: WorkerContext) -> bytes:
    return _in_app_language(ctx, _render_tracing_ts(ctx))


def _preloaded(ctx: WorkerContext) -> bool:
    """tracing.js is preloaded by the start script (`node --import`), before the entry runs."""
    return ctx.project.module == "esm" and (_can_preload(ctx) is None or _second_bundle_entry(ctx) is not None)


def env_load(ctx: WorkerContext) -> tuple[str, str, int] | None:
    """(form, file, line) of the .env load that leads the entry the build runs (the
    build's `main`, else the entry found; otelize.synthesize.imports.env_load_form), when
    the app depends on dotenv."""
    from otelize.synthesize.imports import env_load_form
    from otelize.workers.deps.toolchain import declared

    if "dotenv" not in declared(ctx.project.package_json):
        return None
    main = builds.analyse(ctx.project.root, ctx.project.package_json).main
    entry = main if main is not None and main in ctx.parsed else ctx.entry
    pf = ctx.parsed.get(entry) if entry is not None else None
    found = env_load_form(pf) if pf is not None and pf.ok else None
    return (found[0], entry, found[1]) if found is not None and entry is not None else None


def _preload_dotenv(ctx: WorkerContext) -> str | None:
    """How the preloaded tracing.ts loads .env itself ("module": `import 'dotenv/config'`,
    "call": `config()`), as the entry does after it: the OTEL_* settings a .env holds are
    then set when the SDK starts, and the entry's own load changes nothing (dotenv never
    overrides a variable that is set). None when tracing is the entry's import (placed
    after the load) or the entry passes options (a path) otelize does not repeat."""
    if not _preloaded(ctx):
        return None
    found = env_load(ctx)
    return found[0] if found is not None and found[0] in ("module", "call") else None


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
        dotenv=_preload_dotenv(ctx),
    )


def render_helper(ctx: WorkerContext | None = None) -> bytes:
    """The span helper module; with a context it also records the packages otelize added
    (as tracing.ts does), for an app whose own SDK bootstrap means there is no tracing.ts."""
    rendered = render(
        "otel.ts.j2",
        generated_header=GENERATED_HEADER.decode("utf-8").rstrip("\n"),
        helpers=SPAN_HELPERS,
        added_packages=added_packages(ctx) if ctx is not None else None,
        typed=ctx is None or line_of(ctx.project, ctx.settings).typed,
    )
    return _in_app_language(ctx, rendered) if ctx is not None else rendered


def _existing(ctx: WorkerContext, path: str) -> bytes | None:
    file = ctx.project.root / path
    return file.read_bytes() if file.is_file() else None


def _generate(ctx: WorkerContext, path: str, content: bytes, result: WorkerResult) -> None:
    from otelize.synthesize.layout import same_code

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


NOT_LOADED = "tracing is not loaded"  # the reason prefix of the skip that says so (warning; --check not clean)


ENV_UNSEEN = "OTEL_* variables in the .env file dotenv loads here are not seen by the SDK"  # (a warning)


def env_unseen(skips: list[Skip]) -> list[Skip]:
    """The config worker's skips that say the SDK starts before the entry loads .env."""
    return [s for s in skips if s.worker == WORKER and s.reason.startswith(ENV_UNSEEN)]


def not_loaded(skips: list[Skip]) -> list[Skip]:
    """The config worker's skips that say the SDK will not be loaded when the app runs."""
    return [s for s in skips if s.worker == WORKER and s.reason.startswith(NOT_LOADED)]


def _start_script(ctx: WorkerContext) -> str | None:
    scripts = ctx.project.package_json.get("scripts")
    start = scripts.get("start") if isinstance(scripts, dict) else None
    return start if isinstance(start, str) else None


def _can_preload(ctx: WorkerContext) -> str | None:
    """Why the start script cannot preload tracing.js (None: it can)."""
    build = builds.analyse(ctx.project.root, ctx.project.package_json)
    if ctx.project.language != "js" and build.emits(ctx.tracing_path) is None:  # (JavaScript runs as written)
        if build.tool is None:
            return "no build script that emits it"
        if build.tool != "tsc":
            return f"the build (`{build.command}`) emits a bundle, not tracing.js"
        return f"{ctx.tracing_path} is not compiled by {build.tsconfig.path if build.tsconfig else 'the tsconfig'}"
    command = _start_script(ctx)
    if command is None:
        return "no start script"
    if node_command_at(command) is None:
        return "the start script does not run `node ` (first, or after `&&`)"
    return None


def node_command_at(command: str) -> int | None:
    """Where the start script's `node ` command begins: at the start, or as the last step
    after `&&` (`npm run build && node dist/server.js`); None when it runs none."""
    if command.startswith("node "):
        return 0
    at = command.rfind("&& node ")
    return at + 3 if at != -1 else None


def _script_node(ctx: WorkerContext, name: str):  # type: ignore[no-untyped-def]
    root = jsonedit.parse(ctx.project.package_json_bytes, PACKAGE_JSON)
    scripts = root.get("scripts") if root.kind == "object" else None
    member = scripts.value.get(name) if scripts is not None and scripts.value.kind == "object" else None
    return member.value if member is not None and member.value.kind == "string" else None


def _esm_start_script(ctx: WorkerContext, result: WorkerResult, js: str | None = None) -> None:
    start = _script_node(ctx, "start")
    assert start is not None  # _can_preload checked it
    command: str = start.value
    flag = f"--import {js or tracing_js_path(ctx)}"
    if flag in command:
        return
    at = node_command_at(command)
    assert at is not None  # _can_preload checked it
    result.edits.append(jsonedit.replace_string(PACKAGE_JSON, start, f"{command[:at]}node {flag} {command[at + 5:]}", WORKER))
    if js is not None:
        return  # (the caller says why the build emits it)
    command = builds.analyse(ctx.project.root, ctx.project.package_json).command
    # a JavaScript app without a build step runs the tracing.js otelize writes as it is
    source = f"the build, `{command}`, emits it" if command else "otelize writes it; no build step"
    result.notes.append(
        f"ES-module project: scripts.start now preloads the SDK with `{flag}` ({source}); static imports are "
        "loaded before the entry file's own code, so only a preload starts tracing before express loads."
    )


def _second_bundle_entry(ctx: WorkerContext) -> tuple[str, str] | None:
    """An ES-module app bundled by tsup/esbuild: the bundle's imports of express are loaded before
    any of its code runs, so tracing must be a preload of its own. When the bundler writes one
    file per entry (tsup; esbuild --outdir), tracing.ts becomes a second entry of that command:
    (the script's new text, the tracing.js it will emit). None when that would move the
    existing outputs or the command is not one otelize can extend safely."""
    build = builds.analyse(ctx.project.root, ctx.project.package_json)
    bundle = build.bundle
    if bundle is None or bundle.out_dir is None or _start_script(ctx) is None or not _start_script(ctx).startswith("node "):
        return None
    grown = builds.Bundle(bundle.script, bundle.entries + (ctx.tracing_path,), bundle.out_dir)
    if any(grown.emits(e) != bundle.emits(e) for e in bundle.entries):
        return None  # the entries' common folder would change, and with it every output path
    node = _script_node(ctx, bundle.script)
    first = bundle.entries[0]
    if node is None or node.value.count(first) != 1:
        return None
    return node.value.replace(first, f"{first} {ctx.tracing_path}", 1), grown.emits(ctx.tracing_path) or ""


def strip_bundle_entry(ctx: WorkerContext) -> list:  # type: ignore[type-arg]
    """The edit that takes tracing.ts out of the tsup/esbuild command again (`otelize strip`)."""
    bundle = builds.analyse(ctx.project.root, ctx.project.package_json).bundle
    if bundle is None or ctx.tracing_path not in bundle.entries or len(bundle.entries) < 2:
        return []
    node = _script_node(ctx, bundle.script)
    added = f" {ctx.tracing_path}"
    if node is None or node.value.count(added) != 1:
        return []
    return [jsonedit.replace_string(PACKAGE_JSON, node, node.value.replace(added, "", 1), WORKER)]


def missing_entry_message(ctx: WorkerContext) -> str:
    """The warning for an app whose entry file otelize could not find: the exact line to add, and where."""
    spec = import_specifier(in_folder(ctx.project.src_dir, "index.ts"), ctx.tracing_path)
    return (
        f"{NOT_LOADED}: no entry file found (no file calls listen() on an express app or starts one through a "
        f"framework); add `import '{spec}';` as the first line of the file that starts your server "
        f"(the path is relative to a file in {ctx.project.src_dir or 'the app root'}/; adjust it for another folder), "
        f"or start node with `--require` on the built {posixpath.basename(ctx.tracing_path)[:-3]}.js"
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
    found = env_load(ctx) if _preloaded(ctx) else None
    if found is not None and found[0] == "options":
        result.skips.append(Skip(found[1], found[2], "dotenv", f"{ENV_UNSEEN}: the start script preloads tracing "
                                 "before this load, whose options otelize does not repeat in tracing.ts; set OTEL_* "
                                 "in the environment", WORKER))

    entries = task.files or ((ctx.entry,) if ctx.entry else ())
    main = builds.analyse(ctx.project.root, ctx.project.package_json).main
    if main is not None and main in ctx.parsed:
        # the entry the build names (an Nx target's `main`) is what runs; other files that
        # listen themselves stay entries, a file found only for creating the app does not
        entries = (main,) + tuple(e for e in entries if e != main and e in ctx.facts and ctx.facts[e].listen_line is not None)
    second = _second_bundle_entry(ctx) if ctx.project.module == "esm" and _can_preload(ctx) is not None else None
    if ctx.project.module == "esm" and _can_preload(ctx) is None:
        _esm_start_script(ctx, result)
    elif second is not None:
        script, js = second
        bundle = builds.analyse(ctx.project.root, ctx.project.package_json).bundle
        assert bundle is not None
        result.edits.append(jsonedit.replace_string(PACKAGE_JSON, _script_node(ctx, bundle.script), script, WORKER))
        result.notes.append(f"ES-module bundle: {ctx.tracing_path} is now a second entry of scripts.{bundle.script}, "
                            f"so the build emits {js}, and scripts.start preloads it "
                            "(an ES-module bundle loads express before any of its own code runs).")
        _esm_start_script(ctx, result, f"./{js}" if not js.startswith("../") else js)
    elif not entries:
        result.skips.append(Skip(ctx.tracing_path, 0, "tracing", missing_entry_message(ctx), WORKER))
    else:
        if ctx.project.module == "esm":
            result.notes.append(
                f"ES-module project: {_can_preload(ctx)}, so the entry imports tracing first; a bundler keeps it "
                "first. Without a bundle, express is loaded before that import runs: preload the built "
                f"tracing.js with `node --import` for its spans."
            )
        # every entry point (several apps in one repo) loads tracing first
        for entry in entries:
            # an ES module resolves a relative import only with its extension (`node` fails
            # on './tracing' with ERR_MODULE_NOT_FOUND), as the span helper's import has it
            esm = ctx.project.module == "esm" or entry.endswith((".mts", ".mjs"))
            result.imports.append(
                ImportRequest(
                    file=entry,
                    module=import_specifier(entry, ctx.tracing_path) + (".js" if esm else ""),
                    side_effect=True,
                    worker=WORKER,
                    require=uses_require(ctx, entry),
                    after=env_module(ctx, entry),
                )
            )
    return result


TRACED_BUILTINS = frozenset({"http", "https", "http2", "net", "tls"})


def env_module(ctx: WorkerContext, entry: str) -> str | None:
    """The specifier of the entry's leading import of a project module (`import { env } from
    './config/env'`) that loads .env with dotenv at its top level and imports nothing that
    is traced (only dotenv, node builtins other than http and net, and libraries that do no
    I/O and that no instrumentation patches, such as envalid or joi): the tracing import
    goes after it (otelize.synthesize.imports.env_loads), so the SDK sees the OTEL_*
    variables of that .env. None when the entry starts otherwise."""
    from otelize.analysis.symbols import Resolver
    from otelize.analysis.typeuse import value_imports
    from otelize.classify.libraries import AUTO_INSTRUMENTED, IO_LIBRARIES, lib_name
    from otelize.synthesize.imports import _is_directive, _require_of, _source_of, _top_statements, dotenv_step, env_loads
    from otelize.workers.deps.toolchain import declared

    pf = ctx.parsed.get(entry)
    if pf is None or not pf.ok or "dotenv" not in declared(ctx.project.package_json):
        return None
    stmts = [s for s in _top_statements(pf) if not _is_directive(s)]
    if env_loads(pf, stmts):
        return None  # the entry loads .env itself
    bound: set[str] = set()
    first = next((s for s in stmts if dotenv_step(s, bound) is None), None)
    if first is None:
        return None
    if first.type == "import_statement":
        module = _source_of(first)
    else:
        node = first.named_children[0] if first.named_children else None
        if node is not None and node.type == "variable_declarator":
            node = node.child_by_field_name("value")
        module = _require_of(node)
    target = Resolver(ctx.project).resolve(entry, module) if module is not None else None
    facts = ctx.facts.get(target) if target is not None else None
    tpf = ctx.parsed.get(target) if target is not None else None
    if facts is None or tpf is None or not tpf.ok:
        return None
    traced = IO_LIBRARIES | AUTO_INSTRUMENTED | {"express"} | {
        lib for c in chosen_instrumentations(ctx.project, ctx.settings, calls=called_globals(ctx.facts))[0] for lib in c.libraries}
    for imp in value_imports(facts, tpf):
        name = imp.module.removeprefix("node:")
        if name.startswith((".", "/")) or Resolver(ctx.project).resolve(target, imp.module) is not None:
            return None  # another project file: not followed
        if name.split("/")[0] in TRACED_BUILTINS or lib_name(imp.module) in traced:
            return None
    bound = set()
    loads = [s for s in _top_statements(tpf) if dotenv_step(s, bound) == "load"]
    return module if loads else None
