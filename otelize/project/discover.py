"""discover: find the project's package.json, tsconfig and source files (the walk of
the folder: otelize.project.walk), and read them into one `Project`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from otelize.errors import BadInput
from otelize.project.jsonc import loads_json, loads_jsonc
from otelize.project.model import Project
from otelize.project.walk import JS_SOURCE_SUFFIXES, display, inside, read_regular, spec, walk_sources

LOCKFILES = ("bun.lock", "bun.lockb", "package-lock.json", "pnpm-lock.yaml", "yarn.lock")


def load_project(root: str | os.PathLike[str], include: Any = (), exclude: Any = ()) -> Project:
    """Discover the project at `root`. Raises BadInput for anything unusable.

    `include` / `exclude` are .gitignore-style globs (settings): when `include`
    is given only matching source files are kept; `exclude` drops files and
    prunes folders.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise BadInput(f"{root}: no such directory")
    if not root_path.is_dir():
        raise BadInput(f"{root}: not a directory")
    if not os.access(root_path, os.R_OK | os.X_OK):
        raise BadInput(f"{root}: directory is not readable")
    root_path = root_path.resolve()

    pkg_file = root_path / "package.json"
    if not pkg_file.is_file():
        raise BadInput(f"{root}: no package.json found (otelize needs the root of a Node.js app)")
    pkg_label = (Path(root) / "package.json").as_posix()  # as the user named the app: errors say which one
    pkg_bytes = _read(pkg_file, pkg_label)
    pkg = loads_json(pkg_bytes, pkg_label)
    if not isinstance(pkg, dict):
        raise BadInput(f"{pkg_label}: top level must be a JSON object")

    express_range = _dependency_range(pkg, "express")
    if express_range is None:
        from otelize.project.model import express_workspaces

        apps = express_workspaces(root_path, pkg)
        if apps:  # a monorepo root (turbo, npm/yarn/pnpm workspaces): its Express apps are packages of their own
            raise BadInput(f"{root}: not an Express app (package.json does not depend on express); it is a workspace "
                           f"root: run otelize on its Express app{'s' if len(apps) > 1 else ''}: {', '.join(apps)}")
        raise BadInput(f"{root}: not an Express app (package.json does not depend on express)")

    tsconfig = _load_tsconfig(root_path, root_path / "tsconfig.json")
    options = tsconfig.get("compilerOptions", {}) if isinstance(tsconfig.get("compilerOptions"), dict) else {}

    out_dir = _rel_option(root_path, options.get("outDir"))
    root_dir = _rel_option(root_path, options.get("rootDir"))
    base_url = _rel_option(root_path, options.get("baseUrl"))
    paths = options.get("paths") if isinstance(options.get("paths"), dict) else {}

    module = _module_system(pkg, _build_options(root_path, pkg, options))
    temps: list[str] = []
    files, skipped = walk_sources(root_path, out_dir, spec(include), spec(exclude), temps)
    files, language = _javascript_scope(files, skipped, options)
    src_dir = root_dir if root_dir is not None else ("src" if any(f.startswith("src/") for f in files) else "")

    return Project(
        root=root_path,
        package_json=pkg,
        package_json_bytes=pkg_bytes,
        tsconfig=options,
        files=files,
        module=module,
        express_range=express_range,
        express_major=_major(express_range),
        src_dir=src_dir,
        out_dir=out_dir,
        base_url=base_url,
        paths={str(k): [str(x) for x in v] for k, v in sorted(paths.items()) if isinstance(v, list)},
        lockfiles=[name for name in LOCKFILES if (root_path / name).is_file()],
        skipped=skipped,
        temp_files=sorted(temps),
        prisma_provider=_prisma_provider(root_path, pkg),
        language=language,
    )


_JS_TEST = re.compile(r"(^|/)(tests?|__tests__|__mocks__)/|\.(test|spec)\.[cm]?jsx?$")


def is_js_source(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(JS_SOURCE_SUFFIXES) or "." not in name


def _javascript_scope(files: list[str], skipped: list[tuple[str, str]], options: dict[str, Any]) -> tuple[list[str], str]:
    """The sources otelize analyses, and the app's language ("ts" or "js").

    An app without TypeScript sources is a JavaScript app: its .js/.cjs/.mjs/.jsx
    files (and `bin/www`-style scripts) are its sources. In a TypeScript app they are
    sources only with `allowJs` (tsc compiles them then); otherwise they are config
    files or build helpers that tsc never sees, left out with one line in the report."""
    ts_files = [f for f in files if not is_js_source(f)]
    js_files = [f for f in files if is_js_source(f)]
    if not ts_files:
        tests = [f for f in files if _JS_TEST.search(f)]
        if tests:  # the app's own tests run the app: they get no spans (and must pass unchanged)
            skipped.append((tests[0], f"{len(tests)} test file(s) left out (test/, tests/, __tests__/, *.test.js, *.spec.js)"))
        return [f for f in files if not _JS_TEST.search(f)], "js"
    if js_files and options.get("allowJs") is not True:
        skipped.append((js_files[0], f"{len(js_files)} JavaScript file(s) left out: a TypeScript project without allowJs"))
        return ts_files, "ts"
    return files, "ts"


_DATASOURCE = re.compile(r'datasource\s+\w+\s*\{[^}]*?\bprovider\s*=\s*"([^"]+)"', re.S)


def _prisma_provider(root: Path, pkg: dict[str, Any]) -> str | None:
    """The datasource provider of the Prisma schema (package.json `prisma.schema`, else
    prisma/schema.prisma), which says what database `@prisma/client` talks to."""
    config = pkg.get("prisma") if isinstance(pkg.get("prisma"), dict) else {}
    rel = config.get("schema") if isinstance(config.get("schema"), str) else "prisma/schema.prisma"
    schema = (root / rel).resolve()
    if not inside(str(root), str(schema)) or not schema.is_file():
        return None
    try:
        m = _DATASOURCE.search(schema.read_text("utf-8", errors="replace"))
    except OSError:
        return None
    return m.group(1) if m else None


def _read(path: Path, what: str) -> bytes:
    try:
        return read_regular(path)
    except OSError as exc:
        raise BadInput(f"{what}: cannot read ({exc.strerror})") from None


def _dependency_range(pkg: dict[str, Any], name: str) -> str | None:
    for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        deps = pkg.get(section)
        if isinstance(deps, dict) and name in deps:
            return str(deps[name])
    return None


def _major(version_range: str) -> int | None:
    m = re.search(r"(\d+)", version_range)
    return int(m.group(1)) if m else None


def _load_tsconfig(root: Path, path: Path, seen: frozenset[Path] = frozenset()) -> dict[str, Any]:
    """Load tsconfig.json following `extends` (relative files only; package
    presets in node_modules are read when present). Child options win."""
    if not path.is_file():
        return {}
    if path in seen:
        raise BadInput(f"{display(root, path)}: `extends` cycle")
    data = loads_jsonc(_read(path, display(root, path)), display(root, path))
    if not isinstance(data, dict):
        raise BadInput(f"{display(root, path)}: top level must be an object")
    base: dict[str, Any] = {}
    extends = data.get("extends")
    for ext in [extends] if isinstance(extends, str) else (extends or []):
        if not isinstance(ext, str):
            continue
        if ext.startswith("."):
            target = (path.parent / ext).resolve()
        else:
            target = root / "node_modules" / ext
        if target.is_dir():
            target = target / "tsconfig.json"
        elif not target.suffix:
            target = target.with_suffix(".json")
        parent = _load_tsconfig(root, target, seen | {path})
        # paths in the parent are relative to the parent's folder
        popts = dict(parent.get("compilerOptions", {}))
        for key in ("outDir", "rootDir", "baseUrl"):
            if isinstance(popts.get(key), str):
                popts[key] = str((target.parent / popts[key]).resolve())
        base = {**base, **parent, "compilerOptions": {**base.get("compilerOptions", {}), **popts}}
    options = dict(data.get("compilerOptions") or {})
    for key in ("outDir", "rootDir", "baseUrl"):
        if isinstance(options.get(key), str):
            options[key] = str((path.parent / options[key]).resolve())
    return {**base, **data, "compilerOptions": {**base.get("compilerOptions", {}), **options}}


def _rel_option(root: Path, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        rel = Path(value).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def _build_options(root: Path, pkg: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The compilerOptions of the tsconfig the build compiles with (`tsc -p tsconfig.build.json`,
    an Nx target's `tsConfig`), when that is another file than tsconfig.json: its `module`
    is the one the app's code is compiled to (an Nx workspace's root tsconfig says `esnext`
    and its tsconfig.app.json `commonjs`)."""
    from otelize.project.build import analyse

    config = analyse(root, pkg).tsconfig
    if config is None or config.path == "tsconfig.json":
        return options
    loaded = _load_tsconfig(root, root / config.path)
    return loaded.get("compilerOptions", {}) if isinstance(loaded.get("compilerOptions"), dict) else options


def _module_system(pkg: dict[str, Any], options: dict[str, Any]) -> str:
    if pkg.get("type") == "module":
        return "esm"
    module = str(options.get("module", "")).lower()
    if module in ("es2015", "es2020", "es2022", "esnext", "es6"):
        return "esm"
    return "commonjs"
