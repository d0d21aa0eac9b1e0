"""The project model: what `discover` found at the root. Read-only after discovery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Route:
    """One route of the app with its full mounted path."""

    method: str  # GET, POST, ..., ALL, USE
    path: str  # full path, e.g. /api/orders/:id
    file: str  # file where the route is registered (relative, posix)
    line: int  # 1-based
    handler: str  # a readable handler name: "ordersController.getOrder", "<anonymous>"

    @property
    def computed(self) -> bool:
        """Part of the path is computed at runtime: its `${...}` is the source text, not a path."""
        return "${" in self.path

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path, "file": self.file, "line": self.line, "handler": self.handler}
        if self.computed:
            out["computed"] = True
        return out


@dataclass
class Project:
    root: Path  # absolute, resolved
    package_json: dict[str, Any]
    package_json_bytes: bytes
    tsconfig: dict[str, Any]  # merged compilerOptions (after `extends`)
    files: list[str]  # source files, posix paths relative to root, sorted
    module: str  # "commonjs" | "esm"
    express_range: str  # the version range from package.json, e.g. "4.21.2"
    express_major: int | None
    src_dir: str  # e.g. "src" (tsconfig rootDir, or the folder of the entry)
    out_dir: str | None  # tsconfig outDir, relative
    base_url: str | None  # tsconfig baseUrl, relative ("" = root)
    paths: dict[str, list[str]] = field(default_factory=dict)  # tsconfig compilerOptions.paths
    lockfiles: list[str] = field(default_factory=list)
    prisma_provider: str | None = None  # `provider` of the datasource in the Prisma schema, when there is one
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) seen during discovery
    temp_files: list[str] = field(default_factory=list)  # `.otelize-*.tmp` left by an interrupted write
    language: str = "ts"  # "ts", or "js" for an app without TypeScript sources (otelize writes .js files then)

    @property
    def name(self) -> str:
        return str(self.package_json.get("name") or self.root.name)

    @property
    def version(self) -> str:
        return str(self.package_json.get("version") or "0.0.0")

    @property
    def package_manager(self) -> str:
        """npm, pnpm, yarn or bun: the `packageManager` field, else the lockfile, each the
        app's own or else its workspace root's (otelize.workers.deps.toolchain.package_manager)."""
        from otelize.workers.deps.toolchain import package_manager

        return package_manager(self.root, self.package_json)


def express_workspaces(root: Path, package_json: dict[str, Any]) -> list[str]:
    """The workspace packages of a monorepo root (npm/yarn `workspaces`, pnpm-workspace.yaml)
    that depend on express: where otelize must be pointed when the root itself does not."""
    import json

    patterns: list[str] = []
    ws = package_json.get("workspaces")
    if isinstance(ws, dict):
        ws = ws.get("packages")
    if isinstance(ws, list):
        patterns += [p for p in ws if isinstance(p, str)]
    pnpm = root / "pnpm-workspace.yaml"
    if pnpm.is_file():
        from otelize.project import yamlio

        try:
            data = yamlio.load(pnpm.read_text("utf-8"))
        except Exception:  # noqa: BLE001 - an unreadable workspace file names no package
            data = None
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            patterns += [p for p in data["packages"] if isinstance(p, str)]
    out = set()
    for pattern in patterns:
        if pattern.startswith("!") or ".." in pattern.split("/"):
            continue
        for folder in sorted(root.glob(pattern.rstrip("/"))):
            pkg = folder / "package.json"
            try:
                data = json.loads(pkg.read_bytes()) if pkg.is_file() else None
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            sections = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
            if any(isinstance(data.get(s), dict) and "express" in data[s] for s in sections):
                out.add(folder.relative_to(root).as_posix())
    return sorted(out)
