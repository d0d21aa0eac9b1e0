"""discover: find the project's package.json, tsconfig and source files.

Walks the root in sorted order, honours .gitignore files (with pathspec's
git-exact semantics; also those above the root, up to its git repository's
root, for an app inside a monorepo), and always skips node_modules, build and coverage
output, declaration files, and symlinks (one that stays inside the root is
reported and its target walked under its real path; one that leaves it, or
loops, is reported and not followed).
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

import pathspec

from otelize.errors import BadInput
from otelize.project.jsonc import loads_json, loads_jsonc
from otelize.project.model import Project

SOURCE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts")
JS_SOURCE_SUFFIXES = (".js", ".cjs", ".mjs", ".jsx")
NODE_SHEBANG = re.compile(rb"^#![^\n]*\bnode\b")  # `bin/www`: a JavaScript file without an extension
ALWAYS_SKIP_DIRS = {"node_modules", ".git", "dist", "build", "coverage", ".nyc_output", ".otelize-cache"}
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

    module = _module_system(pkg, options)
    temps: list[str] = []
    files, skipped = _walk(root_path, out_dir, _spec(include), _spec(exclude), temps)
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
    if not _inside(str(root), str(schema)) or not schema.is_file():
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
        raise BadInput(f"{_display(root, path)}: `extends` cycle")
    data = loads_jsonc(_read(path, _display(root, path)), _display(root, path))
    if not isinstance(data, dict):
        raise BadInput(f"{_display(root, path)}: top level must be an object")
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


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _rel_option(root: Path, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        rel = Path(value).resolve().relative_to(root).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def _module_system(pkg: dict[str, Any], options: dict[str, Any]) -> str:
    if pkg.get("type") == "module":
        return "esm"
    module = str(options.get("module", "")).lower()
    if module in ("es2015", "es2020", "es2022", "esnext", "es6"):
        return "esm"
    return "commonjs"


def _spec(globs: Any) -> pathspec.PathSpec | None:
    globs = [globs] if isinstance(globs, str) else list(globs or ())
    return pathspec.GitIgnoreSpec.from_lines(globs) if globs else None


def _walk(
    root: Path,
    out_dir: str | None,
    include: pathspec.PathSpec | None = None,
    exclude: pathspec.PathSpec | None = None,
    temps: list[str] | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Sorted walk. Returns (source files, skipped (path, reason)); appends to `temps`
    the temp files an interrupted otelize write left in the folders walked."""
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    skip_dirs = {out_dir} if out_dir else set()
    seen_real: set[str] = set()

    def walk(directory: Path, rel: str, specs: list[tuple[str, pathspec.PathSpec]]) -> None:
        real = os.path.realpath(directory)
        if real in seen_real:
            skipped.append((rel or ".", "symlink loop"))
            return
        seen_real.add(real)
        ignore_file = directory / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", errors="replace").splitlines()
                specs = specs + [(rel, pathspec.GitIgnoreSpec.from_lines(lines))]
            except OSError:
                pass
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            skipped.append((rel or ".", f"unreadable directory ({exc.strerror})"))
            return
        for entry in entries:
            child_rel = posixpath.join(rel, entry.name) if rel else entry.name
            try:
                is_link = entry.is_symlink()
                if is_link:
                    target = os.path.realpath(entry.path)
                    if not _inside(str(root), target):
                        skipped.append((child_rel, "symlink points outside the root"))
                        continue
                    if not os.path.exists(target):
                        skipped.append((child_rel, "broken symlink"))
                        continue
                is_dir = entry.is_dir()
            except OSError as exc:
                skipped.append((child_rel, f"unreadable ({exc.strerror})"))
                continue
            if temps is not None and not is_link and not is_dir and _TEMP.fullmatch(entry.name):
                temps.append(child_rel)  # seen before .gitignore: `*.tmp` is often ignored
                continue
            if _ignored(specs, child_rel, is_dir):
                continue
            if exclude is not None and exclude.match_file(child_rel + "/" if is_dir else child_rel):
                continue
            if is_link:
                # inside the root: its target is walked under its real path. Following it too
                # would list the file twice, and writing through it would replace the link by a copy.
                if _inside(target, os.path.realpath(directory)):
                    skipped.append((child_rel, "symlink loop"))
                else:
                    skipped.append((child_rel, f"symlink to {_display(root, Path(target))} (handled under its real path)"))
                continue
            if is_dir:
                if entry.name in ALWAYS_SKIP_DIRS or child_rel in skip_dirs:
                    continue
                walk(Path(entry.path), child_rel, specs)
            elif (
                entry.name.endswith(SOURCE_SUFFIXES + JS_SOURCE_SUFFIXES) and not _is_declaration(entry.name)
            ) or ("." not in entry.name and _has_node_shebang(entry.path)):
                if include is None or include.match_file(child_rel):
                    if not _regular(entry):  # a FIFO would block the read forever; a device, worse
                        skipped.append((child_rel, "not a regular file"))
                        continue
                    files.append(child_rel)

    walk(root, "", _outer_specs(root))
    return sorted(files), skipped


_TEMP = re.compile(r"\.otelize-.+\.tmp")  # otelize.synthesize.write.write_changes' temp files (and older otelize's)


def _regular(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows a (checked, in-root) symlink; False for FIFOs, sockets, devices
    except OSError:
        return False


def read_regular(path: Path) -> bytes:
    """A source file's bytes; OSError when it is not (or no longer) a regular file.

    Opened non-blocking, so a file swapped for a FIFO after discovery fails
    instead of hanging the run."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _outer_specs(root: Path) -> list[tuple[str, pathspec.PathSpec]]:
    """The .gitignore files above the root, up to the root of its git repository (an app
    inside a monorepo), as (base, spec) with a base of `../..`-style steps back up; none
    when the root is not inside a git repository."""
    ancestors = []
    here = root
    while True:
        if (here / ".git").exists():
            break
        if here.parent == here:
            return []  # no repository: the .gitignore files above mean nothing here
        here = here.parent
        ancestors.append(here)
    out = []
    for folder in reversed(ancestors):
        ignore_file = folder / ".gitignore"
        if ignore_file.is_file():
            try:
                lines = ignore_file.read_text("utf-8", errors="replace").splitlines()
            except OSError:
                continue
            out.append((_UP + root.relative_to(folder).as_posix(), pathspec.GitIgnoreSpec.from_lines(lines)))
    return out


_UP = "\0up:"  # marks a base that lies above the root: paths are matched as `<root from there>/<rel>`


def _has_node_shebang(path: str) -> bool:
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as fh:
            return bool(NODE_SHEBANG.match(fh.read(128)))
    except OSError:
        return False


def _is_declaration(name: str) -> bool:
    return bool(re.search(r"\.d\.[mc]?ts$", name)) or name.endswith(".d.tsx")


def _inside(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _ignored(specs: list[tuple[str, pathspec.PathSpec]], rel: str, is_dir: bool) -> bool:
    """As git decides: the last .gitignore pattern that matches wins, and the files are
    read from the outermost to the innermost, so a deeper `!keep.ts` re-includes."""
    ignored = False
    for base, spec in specs:
        if base.startswith(_UP):  # a .gitignore above the root
            sub = base[len(_UP):] + "/" + rel
        else:
            sub = rel[len(base) + 1 :] if base else rel
        verdict = spec.check_file(sub + "/" if is_dir else sub).include
        if verdict is not None:
            ignored = verdict
    return ignored
