"""The line choice: the first OpenTelemetry JS version line the app's toolchain fits
(`choose_line`, refusing with exit 2 when none does, unless --force-toolchain), and
the instrumentation packages chosen for the app's libraries on that line."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from otelize.errors import BadInput
from otelize.project import npmrange
from otelize.workers.base import setting
from otelize.workers.deps.lines import Line, load_instrumentations, load_lines, type_free_requires
from otelize.workers.deps.toolchain import Toolchain, declared, node_may_be_in, resolved_version, toolchain


TOOL_NAMES = {"typescript": "TypeScript", "@types/node": "@types/node", "node": "Node"}
TYPE_TOOLS = ("typescript", "@types/node")  # what a line's type declarations need (the rest is the runtime)
BLOCKER_ORDER = ("typescript", "@types/node", "node")  # how a refusal names the tools that block


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


def _engines_admit_newer_node(project: Any, line: Line, tools: Toolchain, types: bool = True) -> bool:
    """The only misfit of `line` is the Node engine, and that engine is an `engines.node`
    range (`>=8`, `>=12.0.0`) that also admits a Node release `line` supports: the lowest
    version of the range is a floor the app promises, not the Node it runs on. A pinned
    `.nvmrc` / `.node-version`, or a range with an upper bound below the line, still refuses.
    `types=False`: whatever the line's TypeScript and @types/node requirements say."""
    others = [t for t, rng in line.requires if t != "node" and (types or t not in TYPE_TOOLS)
              and (hit := tools.get(t)) is not None
              and not npmrange.satisfies(hit[0], rng)]
    return not others and _node_floor_only(project, line, tools)


def _node_floor_only(project: Any, line: Line, tools: Toolchain) -> bool:
    """The Node engine is an `engines.node` range that also admits a Node release `line`
    supports: its lowest version is no blocker (whatever the other tools say)."""
    node = tools.get("node")
    if node is None or not node[1].startswith("engines.node"):
        return False
    engines = project.package_json.get("engines") if isinstance(project.package_json, dict) else None
    rng = engines.get("node") if isinstance(engines, dict) else None
    needed = next((r for t, r in line.requires if t == "node"), None)
    if not isinstance(rng, str) or needed is None:
        return False
    return any(npmrange.satisfies((major, 0, 0), rng) and npmrange.satisfies((major, npmrange.TOP, 0), needed)
               for major in range(14, 31))


def choose_line(project: Any, settings: Any) -> Line:
    """The first version line the app's toolchain fits; else the line its Node engine fits, with
    type-free helpers (`_type_free`). Neither: a BadInput (exit 2)
    naming the version found and the minimum, unless settings['force_toolchain'] (then
    the most lenient line, the last one)."""
    lines, _ = load_lines()
    tools = toolchain(project)
    tsconfig = project.tsconfig if isinstance(getattr(project, "tsconfig", None), dict) else {}
    for line in lines:
        if not _misfits(line, tools, tsconfig):
            return line
    oldest = lines[-1]
    if _engines_admit_newer_node(project, oldest, tools):
        return oldest  # engines.node also allows Node releases the oldest line supports: the app can run on them
    free = _type_free(project, lines, tools)
    if free is not None:
        return free
    if setting(settings, "force_toolchain"):
        return oldest
    typescript = tools.get("typescript")
    floor = dict(type_free_requires()).get("typescript")
    if (typescript is not None and floor is not None and not npmrange.satisfies(typescript[0], floor)
            and not _runtime_misfits(oldest, tools) and getattr(project, "module", "commonjs") != "esm"):
        raise BadInput(
            f"TypeScript {_show(typescript[0])} ({typescript[1]}) is older than {_minimum(floor)}, the lowest "
            f"otelize's type-free span helpers compile with (and than {_minimum(oldest.require('typescript') or '')}, "
            f"the lowest of any OpenTelemetry JS line's type declarations); nothing was written "
            f"(--force-toolchain adds the {oldest.id} packages anyway)"
        )
    if _conflicts(oldest, tsconfig) and not _misfits(oldest, tools):
        newest = lines[0]
        raise BadInput(
            f"no OpenTelemetry JS line fits: {oldest.id}: {_conflicts(oldest, tsconfig)[0]}; {newest.id}: "
            f"{'; '.join(_misfits(newest, tools, tsconfig))}; nothing was written (--force-toolchain adds the "
            f"{oldest.id} packages anyway)"
        )
    # the blockers, the compiler first (what the OpenTelemetry type declarations need most);
    # an engines.node floor that also admits a supported Node is none
    floor_only = _node_floor_only(project, oldest, tools)
    older = []
    for tool in BLOCKER_ORDER:
        rng = oldest.require(tool)
        hit = tools.get(tool)
        if rng is None or hit is None or npmrange.satisfies(hit[0], rng) or (tool == "node" and floor_only):
            continue
        low = npmrange.min_version(rng)
        if low is not None and hit[0] < low:
            older.append((f"{TOOL_NAMES[tool]} {_show(hit[0])} ({hit[1]})", _minimum(rng)))
    if older:
        (first, low), rest = older[0], older[1:]
        raise BadInput(
            f"{first} is older than the minimum {low} of any OpenTelemetry JS line otelize supports"
            + "".join(f", and {what} than {low}" for what, low in rest)
            + f"; nothing was written (--force-toolchain adds the {oldest.id} packages anyway)"
        )
    raise BadInput("no OpenTelemetry JS line fits this toolchain: " + "; ".join(_misfits(oldest, tools)))


def _runtime_misfits(line: Line, tools: Toolchain) -> bool:
    return any(t not in TYPE_TOOLS and (hit := tools.get(t)) is not None and not npmrange.satisfies(hit[0], rng)
               for t, rng in line.requires)


def _type_free(project: Any, lines: tuple[Line, ...], tools: Toolchain) -> Line | None:
    """The line a TypeScript app gets with type-free helpers when no line's declarations fit
    its TypeScript or @types/node (or its tsconfig) but a line's runtime fits its Node
    engine: the first such line, as `choose_line` takes them (None: refuse). Not for ES
    modules, whose helpers cannot `require`, nor below the helpers' own TypeScript minimum."""
    if getattr(project, "language", "ts") != "ts" or getattr(project, "module", "commonjs") == "esm":
        return None
    typescript = tools.get("typescript")
    if typescript is not None and not all(npmrange.satisfies(typescript[0], rng) for _, rng in type_free_requires()):
        return None
    for line in lines:
        if not _runtime_misfits(line, tools):
            return replace(line, typed=False)
    if _engines_admit_newer_node(project, lines[-1], tools, types=False):
        return replace(lines[-1], typed=False)
    return None


def line_note(project: Any, line: Line) -> str:
    """The report's note on the chosen `line`: the toolchain it was chosen by, and whether
    --force-toolchain forced it."""
    tools = toolchain(project)
    seen = ", ".join(
        f"{TOOL_NAMES[t]} {_show(v)} ({w})" for t, v, w in tools.found
    ) or "no TypeScript, @types/node or Node engine declared"
    if not line.typed:
        why = "; ".join(_misfits(line, tools, project.tsconfig))
        return (f"OpenTelemetry JS {line.id} line, type-free (otel.ts and tracing.ts import none of its types, "
                f"so tsc never reads its declarations: {why}): {seen}")
    forced = " (forced by --force-toolchain)" if _misfits(line, tools, project.tsconfig) else ""
    return f"OpenTelemetry JS {line.id} line{forced}: {seen}"


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
    reason: str  # "always", or the dependencies and globals that caused it
    globals: tuple[str, ...] = ()  # the globals the app calls that it traces (fetch)


def called_globals(facts: Any) -> frozenset[str]:
    """The globals (of deps.lines.GLOBALS) the app's code calls: `fetch` when a file calls
    the global fetch, not one it imports (`import fetch from 'node-fetch'`)."""
    return frozenset({"fetch"}) if any(f.global_fetch for f in facts.values()) else frozenset()


@dataclass(frozen=True)
class LeftOut:
    """An instrumentation the app's library needs but does not get: the library's version is
    outside what the pinned package supports, so its calls get no spans from it (a warning)."""

    package: str
    version: str  # the pinned instrumentation's version
    library: str
    library_version: npmrange.Version
    where: str  # where the library's version was read (node_modules/..., a lockfile, package.json)
    supports: str  # the range the pinned package supports

    @property
    def reason(self) -> str:
        low = npmrange.min_version(self.supports)
        if low is not None and self.library_version < low:
            advice = f"upgrade {self.library} to >= {npmrange.fmt(low)}"
        else:
            advice = "otelize pins no instrumentation for this version (an otel-instrumentations.yaml in your rules can add one)"
        return (f"{LEFT_OUT}: {self.package}@{self.version} supports {self.library} {self.supports!r}, the app has "
                f"{npmrange.fmt(self.library_version)} ({self.where}), so {self.library} calls get no spans of their own; {advice}")


LEFT_OUT = "instrumentation not added"  # the reason prefix of the dependency worker's skip that says so (a warning)


def _matches(library: str, dependency: str) -> bool:
    return dependency.startswith(library[:-1]) if library.endswith("/*") else dependency == library


def chosen_instrumentations(
    project: Any, settings: Any = None, line: Line | None = None, calls: frozenset[str] = frozenset()
) -> tuple[list[Chosen], list[LeftOut]]:
    """The instrumentation packages for this app on `line`, in table order, and each used
    library left out because its version is outside what the package supports (when no
    other entry takes it). One package per library (the first entry that fits). `calls`:
    the globals the app calls (:func:`called_globals`); a package that traces one of them
    is added when the Node the app declares can have it (the global fetch: Node 18 or later)."""
    line = line or line_of(project, settings)
    deps = declared(project.package_json)
    chosen: list[Chosen] = []
    left_out: list[LeftOut] = []
    claimed: set[str] = set()
    for inst in load_instrumentations(settings):
        spec = inst.on(line.id)
        if spec is None:
            continue
        version, supports = spec
        used: list[str] = []
        outside: list[LeftOut] = []
        for library, rng in supports:
            for dep in sorted(d for d in deps if _matches(library, d) and d not in claimed):
                hit = resolved_version(project.root, dep, deps[dep])
                if hit is None or npmrange.satisfies(hit[0], rng):
                    used.append(dep)
                else:
                    outside.append(LeftOut(inst.package, version, dep, hit[0], hit[1], rng))
        traced = tuple(g for g, node in inst.globals
                       if g in calls and node_may_be_in(project.root, project.package_json, node))
        if inst.always or used or traced:
            claimed.update(used)
            libraries = tuple(sorted(set(used) | ({lib for lib, _ in supports if not lib.endswith("/*")} if inst.always else set())))
            reason = "always" if inst.always else ", ".join(sorted(used) + [f"the global {g}" for g in traced])
            chosen.append(Chosen(inst.package, version, inst.cls, libraries, reason, traced))
        else:
            left_out += outside
    # a library a later entry instruments (redis 4 by instrumentation-redis-4 on 1.x) is not
    # left out; one that no entry takes is named once, by the first entry that would
    named: set[str] = set()
    out = []
    for o in left_out:
        if o.library not in claimed and o.library not in named:
            named.add(o.library)
            out.append(o)
    return chosen, out


HTTP_FETCH_POLYFILLS = frozenset({"cross-fetch", "isomorphic-fetch", "node-fetch"})  # fetch over node's http


def fetch_traced(project: Any, facts: Any, settings: Any = None) -> bool:
    """Whether the app's fetch calls get an instrumentation's CLIENT span: a chosen package
    traces the global fetch, or (on a Node without one, before 18) the fetch the app
    installs comes from a library an instrumentation covers (node-fetch, cross-fetch and
    isomorphic-fetch go over node's http; undici has its own)."""
    chosen, _ = chosen_instrumentations(project, settings, calls=called_globals(facts))
    if any("fetch" in c.globals for c in chosen):
        return True
    deps = set(declared(project.package_json))
    return bool(deps & HTTP_FETCH_POLYFILLS) or any("undici" in c.libraries for c in chosen)


def active_instrumentations(project: Any, settings: Any = None) -> frozenset[str]:
    """The npm library names (and the node builtins http, https) whose calls the generated
    tracing.ts auto-instruments for this project: a span over a call into one of them
    would duplicate the instrumentation's CLIENT span. Empty when the app starts the SDK
    itself is not decided here (see existing_sdk)."""
    chosen, _ = chosen_instrumentations(project, settings)
    return frozenset(lib for c in chosen for lib in c.libraries)
