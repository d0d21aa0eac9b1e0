"""build: how the app is built, read from package.json's scripts and the tsconfig the build uses.

The config worker asks two questions here:

* does the build emit a given source file as its own `.js` (so `node --import` can
  preload it)? Only a `tsc` build does, and only for a file inside the compiled set of
  the tsconfig that build passes (`tsc -p tsconfig.build.json`), under its rootDir;
  a bundler (tsup, esbuild, webpack, rollup, ncc, Nx executors) emits its bundle only.
* where must a generated file go to be compiled by that tsconfig?

Scripts are followed through `npm run x` / `yarn x` / `pnpm x` and `&&`, `;`, `||`.
Nothing here runs a tool: the compiled set is computed from `files`, `include` and
`exclude` the way tsc documents them (otelize.project.tsconfig).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from otelize.project.jsonc import loads_jsonc
from otelize.project.tsconfig import TsConfig, load_tsconfig

BUNDLERS = ("tsup", "esbuild", "webpack", "rollup", "ncc", "vite", "parcel", "rspack", "bun", "swc", "babel", "nx", "turbo")
TS_EXTENSIONS = (".ts", ".tsx", ".mts", ".cts")
_SEPARATORS = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = {"npx", "cross-env", "dotenv", "env", "pnpx", "bunx", "exec"}


@dataclass(frozen=True)
class Bundle:
    """A tsup / esbuild command line: its entry files and the folder it writes them to."""

    script: str  # the package.json script that holds the command
    entries: tuple[str, ...]  # positional .ts entries, as written
    out_dir: str | None  # None: one output file (esbuild --outfile): no second entry possible

    def emits(self, rel: str) -> str | None:
        """tsup/esbuild write each entry as <out_dir>/<path below the entries' common folder>.js."""
        entries = [posixpath.normpath(e) for e in self.entries]
        if self.out_dir is None or rel not in entries:
            return None
        base = posixpath.commonpath([posixpath.dirname(e) for e in entries]) if len(entries) > 1 else posixpath.dirname(rel)
        return posixpath.normpath(posixpath.join(self.out_dir, posixpath.splitext(posixpath.relpath(rel, base or "."))[0] + ".js"))


def _bundle(name: str, script: str, tokens: list[str]) -> Bundle | None:
    entries = tuple(t for t in tokens[1:] if not t.startswith("-") and t.endswith(TS_EXTENSIONS))
    if not entries:
        return None
    out_dir: str | None = None
    if name == "tsup":
        out_dir = "dist"
        for i, t in enumerate(tokens):
            if t in ("-d", "--out-dir") and i + 1 < len(tokens):
                out_dir = tokens[i + 1]
            elif t.startswith("--out-dir="):
                out_dir = t.split("=", 1)[1]
    elif name == "esbuild":
        out_dir = next((t.split("=", 1)[1] for t in tokens if t.startswith("--outdir=")), None)
    return Bundle(script, entries, posixpath.normpath(out_dir) if out_dir else None)


@dataclass(frozen=True)
class Build:
    tool: str | None  # "tsc", a bundler name, or None (no build script / not recognised)
    command: str | None  # the command of the build step that decided `tool`
    tsconfig: TsConfig | None  # the tsconfig the build compiles with (tsc), else tsconfig.json
    notes: tuple[str, ...] = field(default=())
    main: str | None = None  # the entry file the build names (an Nx target's `main`), relative
    bundle: Bundle | None = None  # the tsup / esbuild command, when that is the build

    def emits_bundled(self, rel: str) -> str | None:
        """The .js a tsup/esbuild build writes for `rel`, when `rel` is one of its entries."""
        return self.bundle.emits(rel) if self.bundle is not None and self.tool in ("tsup", "esbuild") else None

    def emits(self, rel: str) -> str | None:
        """The .js path the build writes for source file `rel`, when it provably does."""
        if self.tool in ("tsup", "esbuild"):
            return self.emits_bundled(rel)
        if self.tool != "tsc" or self.tsconfig is None or self.tsconfig.no_emit or not self.tsconfig.compiles(rel):
            return None
        return self.tsconfig.emitted(rel)


def script_steps(scripts: dict[str, Any], name: str) -> list[list[str]]:
    """The commands (token lists) `npm run <name>` runs, with `npm run x` references
    followed (pre/post scripts included)."""
    return [tokens for _, tokens in named_steps(scripts, name)]


def named_steps(scripts: dict[str, Any], name: str, depth: int = 0) -> list[tuple[str, list[str]]]:
    """(script name, tokens) of every command `npm run <name>` runs."""
    text = scripts.get(name)
    if not isinstance(text, str) or depth > 8:
        return []
    out: list[tuple[str, list[str]]] = []
    out += named_steps(scripts, f"pre{name}", depth + 1)
    for part in _SEPARATORS.split(text):
        try:
            tokens = shlex.split(part)
        except ValueError:
            tokens = part.split()
        tokens = strip_wrappers(tokens)
        if not tokens:
            continue
        ref = _script_ref(tokens)
        if ref is not None:
            out += named_steps(scripts, ref, depth + 1)
        else:
            out.append((name, tokens))
    out += named_steps(scripts, f"post{name}", depth + 1)
    return out


def strip_wrappers(tokens: list[str]) -> list[str]:
    """`cross-env NODE_ENV=x npx tsc -p y` -> `tsc -p y`."""
    while tokens:
        if _ENV.match(tokens[0]):
            tokens = tokens[1:]
        elif tokens[0] in _WRAPPERS:
            tokens = tokens[1:]
            if tokens and tokens[0] == "--":
                tokens = tokens[1:]
        else:
            break
    return tokens


def _script_ref(tokens: list[str]) -> str | None:
    if tokens[0] in ("npm", "pnpm", "yarn", "bun") and len(tokens) >= 2:
        if tokens[1] in ("run", "run-script") and len(tokens) >= 3:
            return tokens[2]
        if tokens[0] in ("yarn", "pnpm") and not tokens[1].startswith("-") and tokens[1] not in ("install", "add", "exec", "dlx"):
            return tokens[1]
    return None


def analyse(root: Path, package_json: dict[str, Any]) -> Build:
    return _analyse(str(root), _scripts_key(package_json))


def _scripts_key(pkg: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    scripts = pkg.get("scripts") if isinstance(pkg.get("scripts"), dict) else {}
    return tuple(sorted((str(k), v) for k, v in scripts.items() if isinstance(v, str)))


@lru_cache(maxsize=64)
def _analyse(root_s: str, scripts_t: tuple[tuple[str, str], ...]) -> Build:
    root = Path(root_s)
    scripts = dict(scripts_t)
    default = load_tsconfig(root, "tsconfig.json")
    steps = named_steps(scripts, "build")
    if not steps:
        return Build(None, None, default)
    bundle: Bundle | None = None
    tool: str | None = None
    command: str | None = None
    config = default
    for script, tokens in steps:
        name = posixpath.basename(tokens[0])
        if name == "nx":
            nx = nx_target(root, tokens)
            if nx is not None:
                return nx
        if name == "tsc":
            if "--noEmit" in tokens or "--help" in tokens:
                continue
            config = _tsc_config(root, tokens) or default
            tool, command = "tsc", " ".join(tokens)
        elif name in BUNDLERS or name.startswith(("webpack", "rollup", "esbuild")):
            # `tsc && webpack`: the last step that emits decides what runs
            tool, command = ("webpack" if name.startswith("webpack") else name), " ".join(tokens)
            bundle = _bundle(name, script, tokens) if name in ("tsup", "esbuild") else None
        elif name in ("node", "ts-node", "tsx") and any(t.endswith(("esbuild.mjs", "esbuild.js", "build.mjs", "build.js", "build.ts")) for t in tokens):
            tool, command = "esbuild", " ".join(tokens)  # a build script of the project's own (an esbuild API call)
    return Build(tool, command, config, bundle=bundle if tool in ("tsup", "esbuild") else None)


def nx_target(root: Path, tokens: list[str]) -> Build | None:
    """`nx build api` / `nx run api:build` / `nx serve api`: the project.json target behind
    it, followed through `buildTarget` (serve runs the build), with its `main` and `tsConfig`."""
    args = [t for t in tokens[1:] if not t.startswith("-")]
    if not args:
        return None
    projects = _nx_projects(root)
    if args[0] == "run" and len(args) >= 2 and ":" in args[1]:
        project, target = args[1].split(":", 1)[0], args[1].split(":")[1]
    elif len(args) >= 2:
        target, project = args[0], args[1]
    elif args[0] != "run" and (root / "project.json").is_file():
        # a standalone workspace (project.json at the root): `nx build` is the root project's target
        target, project = args[0], _root_project(root)
    else:
        return None
    for _ in range(4):
        data = projects.get(project)
        spec = (data or {}).get("targets", {}).get(target) if isinstance((data or {}).get("targets"), dict) else None
        if not isinstance(spec, dict):
            return None
        options = spec.get("options") if isinstance(spec.get("options"), dict) else {}
        build_target = options.get("buildTarget") or options.get("browserTarget")
        if isinstance(build_target, str) and ":" in build_target:  # serve -> build
            project, target = build_target.split(":")[:2]
            continue
        executor = str(spec.get("executor", ""))
        main = options.get("main") if isinstance(options.get("main"), str) else None
        ts = options.get("tsConfig") if isinstance(options.get("tsConfig"), str) else None
        config = load_tsconfig(root, posixpath.normpath(ts)) if ts else None
        # (even @nx/js:tsc writes to the target's outputPath, laid out its own way: no preload)
        return Build("nx", f"nx {target} {project} ({executor})", config, main=posixpath.normpath(main) if main else None)
    return None


def _root_project(root: Path) -> str:
    """The name of the project whose project.json is at the root (its folder's name without one)."""
    try:
        data = loads_jsonc((root / "project.json").read_bytes(), "project.json")
    except Exception:  # noqa: BLE001 - as _nx_projects: not ours to judge
        data = None
    return str(data.get("name") or root.name) if isinstance(data, dict) else root.name


def _nx_projects(root: Path) -> dict[str, dict[str, Any]]:
    """project.json files under apps/, libs/, packages/ (and the root), by project name."""
    out: dict[str, dict[str, Any]] = {}
    found = sorted(root.glob("project.json")) + sorted(root.glob("*/*/project.json")) + sorted(root.glob("*/project.json"))
    for path in found:
        if "node_modules" in path.parts:
            continue
        try:
            data = loads_jsonc(path.read_bytes(), path.name)
        except Exception:  # noqa: BLE001 - not a project file of ours to judge
            continue
        if isinstance(data, dict):
            out.setdefault(str(data.get("name") or path.parent.name), data)
    return out


def _tsc_config(root: Path, tokens: list[str]) -> TsConfig | None:
    for i, tok in enumerate(tokens):
        if tok in ("-p", "--project", "-b", "--build") and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            rel = posixpath.normpath(tokens[i + 1])
            if (root / rel).is_dir():
                rel = posixpath.join(rel, "tsconfig.json")
            return load_tsconfig(root, rel)
        if tok.startswith("--project="):
            return load_tsconfig(root, posixpath.normpath(tok.split("=", 1)[1]))
    return None
