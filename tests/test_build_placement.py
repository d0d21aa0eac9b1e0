"""otelize.project.tsconfig's compiled set of a tsconfig, checked against the real tsc (`--listFilesOnly`):
where otelize puts tracing.ts must be where the build's tsconfig compiles it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from otelize.project.tsconfig import load_tsconfig

pytestmark = pytest.mark.node

FILES = ["src/index.ts", "src/app/main.ts", "src/app/x.spec.ts", "lib/util.ts", "test/a.test.ts", "index.ts",
         "src/deep/er/file.ts", "apps/api/src/main.ts"]

# tsconfig files: (name -> content); the one tsc -p reads is the first
LAYOUTS = {
    "include-folder": {"tsconfig.build.json": {"include": ["src"]}},
    "include-globs": {"tsconfig.build.json": {"include": ["src/**/*.ts"], "exclude": ["src/**/*.spec.ts"]}},
    "include-star": {"tsconfig.build.json": {"include": ["src/*"]}},
    "files-only": {"tsconfig.build.json": {"files": ["src/index.ts", "lib/util.ts"]}},
    "default-all": {"tsconfig.build.json": {"compilerOptions": {}}},
    "exclude-folder": {"tsconfig.build.json": {"exclude": ["test", "src/app"]}},
    "extends-inherits-include": {
        "tsconfig.build.json": {"extends": "./tsconfig.json", "compilerOptions": {"outDir": "dist"}},
        "tsconfig.json": {"include": ["lib", "src/app"]},
    },
    "nested-config": {
        "apps/api/tsconfig.app.json": {"extends": "../../tsconfig.json", "include": ["src/**/*.ts"]},
        "tsconfig.json": {"compilerOptions": {"strict": True}},
    },
}


def _tsc() -> str:
    local = Path(__file__).resolve().parent.parent / "sample-app" / "node_modules" / ".bin" / "tsc"
    if local.exists():
        return str(local)
    if shutil.which("tsc"):
        return "tsc"
    pytest.skip("no tsc: run the sample-app tests first (npm ci in sample-app)")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compiled_set_matches_tsc(tmp_path: Path, layout: str, built_sample_app: Path) -> None:
    configs = LAYOUTS[layout]
    for rel in FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("export const x = 1;\n")
    for name, content in configs.items():
        content = {**content, "compilerOptions": {"skipLibCheck": True, "types": [], **content.get("compilerOptions", {})}}
        (tmp_path / name).write_text(json.dumps(content))
    name = next(iter(configs))
    proc = subprocess.run([_tsc(), "-p", name, "--listFilesOnly"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    listed = {Path(line).resolve().relative_to(tmp_path.resolve()).as_posix()
              for line in proc.stdout.splitlines() if line.strip() and str(tmp_path.resolve()) in str(Path(line).resolve())}
    config = load_tsconfig(tmp_path, name)
    assert config is not None
    assert {f for f in FILES if config.compiles(f)} == listed, proc.stdout + proc.stderr
