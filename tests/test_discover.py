"""discover: which files are the project's sources, and what is read from its configs.

Sorted walk; .gitignore honoured (nested ones, and those above the root up to the
git repository's root for an app inside a monorepo); node_modules, build output
(tsconfig outDir, dist, build), coverage and declaration files always skipped;
.ts/.tsx/.mts/.cts taken; tsconfig is JSONC with `extends`.
"""

from __future__ import annotations

import json
from pathlib import Path

from otelize.project.discover import load_project

PKG = {"name": "svc", "version": "1.0.0", "dependencies": {"express": "4.21.2"}}


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def app(root: Path, **files: str) -> Path:
    return write(root, {"package.json": json.dumps(PKG), **{k.replace("__", "/"): v for k, v in files.items()}})


SOURCES = {
    "src/index.ts": "", "src/view.tsx": "", "src/esm.mts": "", "src/cjs.cts": "",
    "src/types.d.ts": "", "src/more.d.mts": "", "src/script.js": "",
    "node_modules/x/index.ts": "", "dist/index.ts": "", "build/a.ts": "", "coverage/b.ts": "", "out/c.ts": "",
    "src/nested/node_modules/y.ts": "",
}


def test_source_kinds_and_always_skipped_folders(tmp_path: Path) -> None:
    root = write(tmp_path, {"package.json": json.dumps(PKG), "tsconfig.json": '{"compilerOptions": {"outDir": "out"}}', **SOURCES})
    assert load_project(root).files == ["src/cjs.cts", "src/esm.mts", "src/index.ts", "src/view.tsx"]


def test_gitignore_files_in_the_tree_are_honoured(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "package.json": json.dumps(PKG),
        ".gitignore": "generated/\n*.gen.ts\n!keep.gen.ts\n",
        "src/.gitignore": "local-*.ts\n",
        "src/a.ts": "", "src/a.gen.ts": "", "src/keep.gen.ts": "", "src/local-x.ts": "",
        "src/generated/b.ts": "", "lib/local-y.ts": "",
    })
    assert load_project(root).files == ["lib/local-y.ts", "src/a.ts", "src/keep.gen.ts"]


def test_gitignore_above_the_app_counts_inside_a_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "mono"
    (repo / ".git").mkdir(parents=True)
    write(repo, {".gitignore": "services/api/src/legacy/\n*.gen.ts\n", "services/.gitignore": "**/fixtures/\n"})
    root = write(repo / "services" / "api", {
        "package.json": json.dumps(PKG),
        "src/a.ts": "", "src/b.gen.ts": "", "src/legacy/old.ts": "", "src/fixtures/f.ts": "",
    })
    assert load_project(root).files == ["src/a.ts"]


def test_gitignore_above_the_app_means_nothing_outside_a_repository(tmp_path: Path) -> None:
    outside = tmp_path / "not-a-repo"
    write(outside, {".gitignore": "*.ts\n"})
    root = write(outside / "api", {"package.json": json.dumps(PKG), "src/a.ts": ""})
    assert load_project(root).files == ["src/a.ts"]


def test_tsconfig_is_jsonc_with_extends(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "package.json": json.dumps(PKG),
        "tsconfig.base.json": '{\n  // shared\n  "compilerOptions": {"outDir": "lib", "baseUrl": ".", "paths": {"@x/*": ["src/x/*"]},},\n}\n',
        "tsconfig.json": '{ "extends": "./tsconfig.base.json", /* local */ "compilerOptions": {"rootDir": "src"} }',
        "src/a.ts": "", "lib/a.ts": "",
    })
    project = load_project(root)
    assert project.files == ["src/a.ts"]  # lib/ is the inherited outDir
    assert (project.out_dir, project.src_dir, project.base_url) == ("lib", "src", "")
    assert project.paths == {"@x/*": ["src/x/*"]}


def test_a_deeper_gitignore_can_re_include_what_an_outer_one_ignores(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "package.json": json.dumps(PKG),
        ".gitignore": "*.gen.ts\n",
        "src/.gitignore": "!keep.gen.ts\nlocal.ts\n",
        "src/a.gen.ts": "", "src/keep.gen.ts": "", "src/local.ts": "", "src/main.ts": "",
    })
    assert load_project(root).files == ["src/keep.gen.ts", "src/main.ts"]
