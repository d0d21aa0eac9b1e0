"""Entry points the way real apps write them (tests/fixtures/entries/): the file that starts
the app is found, and instrument makes `import './tracing'` its first statement."""

from __future__ import annotations

from pathlib import Path

import pytest

from otelize.api import analyze, instrument

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "entries"

# fixture -> (entry file, specifier of the tracing import written there)
EXPECTED = {
    # class App { constructor() { this.app = express() } listen() { this.app.listen() } } + new App([...]).listen()
    "class-app": ("src/server.ts", "./tracing"),
    # class HttpServer { this.express = express(); listen() } held by class WarehouseApp
    # { server?: HttpServer; start() { this.server = new HttpServer(); this.server.listen() } },
    # and `new WarehouseApp().start()` in start.ts
    "class-chain": ("src/start.ts", "./tracing"),
    # a cluster: the primary forks, each worker calls a singleton that listens on its class
    # property app; `npm start` is `node dist`, tsc's output of src/index.ts
    "cluster-fork": ("src/index.ts", "./tracing"),
    # export default async ({ app }) => {...}, called from the entry that creates the app
    "loaders": ("src/app.ts", "./tracing"),
    # export default app in app.ts; `import http` first, then http.createServer(app).listen() in server.ts
    "server-file": ("src/server.ts", "./tracing"),
    # bin/www (JavaScript, not analysed) requires the built app: the file that creates the app loads tracing
    "bin-www": ("src/app.ts", "./tracing"),
    # export const app in app.ts; app.listen() in index.ts
    "index-listen": ("src/index.ts", "./tracing"),
    # routing-controllers: const app = createExpressServer({...}); app.listen()
    "routing-controllers": ("src/server.ts", "./tracing"),
    # routing-controllers on an app of one's own: useExpressServer(app, {...})
    "use-express-server": ("src/main.ts", "./tracing"),
    # Ts.ED: PlatformExpress.bootstrap(Server) builds and starts the app
    "tsed": ("src/index.ts", "./tracing"),
    # tsoa: RegisterRoutes(app) in app.ts, app.listen() in server.ts
    "tsoa": ("src/server.ts", "./tracing"),
    # inversify-express-utils: new InversifyExpressServer(container).setConfig(fn).build().listen()
    "inversify": ("src/server.ts", "./tracing"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entry_is_the_file_that_starts_the_app(name: str) -> None:
    entry, spec = EXPECTED[name]
    analysis = analyze(FIXTURES / name)
    assert analysis.entry == entry
    result = instrument(FIXTURES / name, write=False)
    old, new = result.synthesis.changes[entry]
    assert new.startswith(f"import '{spec}';\n".encode()), new[:120]
    assert new[new.index(b"\n") + 1:] == old  # nothing else in the entry changes
    assert "src/tracing.ts" in result.synthesis.created
    assert result.not_loaded == []
    # no other file imports tracing: it is loaded once, first, by the file node runs
    assert [p for p, (_, n) in result.synthesis.changes.items() if b"'./tracing'" in n or b"'../tracing'" in n] == [entry]


def test_no_entry_found_warns_names_the_line_and_check_is_not_clean(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "no-entry", app)
    report = tmp_path / "report.md"

    def otelize(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=120)

    done = otelize("instrument", str(app), "--report", str(report))
    assert done.returncode == 0, done.stderr
    line = "otelize: warning: tracing is not loaded: no entry file found"
    assert line in done.stderr
    assert "add `import './tracing';` as the first line of the file that starts your server" in done.stderr
    text = report.read_text()
    assert "None" not in text
    assert "(no entry point found, commonjs" in text
    assert "**Tracing is not loaded when the app runs**" in text
    # everything else is written: a second --check finds no edit, and still is not clean
    again = otelize("instrument", str(app), "--check")
    assert again.returncode == 1, again.stderr
    assert "otelize: no edits to make (already instrumented;" in again.stderr and "), but tracing is not loaded" in again.stderr
    assert line in again.stderr
    # -q keeps warnings
    assert line in otelize("-q", "instrument", str(app), "--check").stderr


def test_nx_entry_is_the_main_of_the_target_behind_the_start_script() -> None:
    # `npm start` = `nx serve api` -> buildTarget api:build -> main apps/api/src/main.ts, which
    # hands the app to a workspace library that listens: the graph alone finds only app.ts
    result = instrument(FIXTURES / "nx", write=False)
    changes = result.synthesis.changes
    assert result.not_loaded == []
    assert changes["apps/api/src/main.ts"][1].startswith(b"import './tracing';\n")
    # next to the entry, inside the compiled set of apps/api/tsconfig.app.json (not at the workspace root)
    assert sorted(result.synthesis.created) == ["apps/api/src/otel.ts", "apps/api/src/tracing.ts"]
    assert b"'./tracing'" not in changes.get("apps/api/src/app/app.ts", (b"", b""))[1]


def test_nx_standalone_workspace_is_compiled_as_its_build_target_says() -> None:
    # `nx build` with no project in a standalone workspace is the root project.json's target;
    # its tsconfig.app.json says `module: commonjs` over the solution root's `esnext`, so the
    # app gets the CommonJS bootstrap (the ES-module one, with import.meta and module.register,
    # does not compile there: realworld-nx went from 2 to 4 tsc errors), inside src/ where the
    # target compiles
    from otelize.project.build import analyse
    from otelize.project.discover import load_project

    root = FIXTURES / "nx-standalone"
    project = load_project(root)
    build = analyse(project.root, project.package_json)
    assert (build.tool, build.tsconfig.path if build.tsconfig else None, build.main) == ("nx", "tsconfig.app.json", "src/main.ts")
    assert project.module == "commonjs"
    result = instrument(root, write=False)
    changes = result.synthesis.changes
    assert result.not_loaded == []
    assert changes["src/main.ts"][1].startswith(b"import './tracing';\n")
    assert sorted(result.synthesis.created) == ["src/otel.ts", "src/tracing.ts"]
    tracing = changes["src/tracing.ts"][1]
    assert b"import.meta" not in tracing and b"register(" not in tracing


def test_turbo_root_names_the_express_app_to_run_on() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "otelize", "plan", str(FIXTURES / "workspaces" / "turbo")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("it is a workspace root: run otelize on its Express app: apps/api")
    # and there, the entry behind `turbo run start` (apps/api: node dist/index.js) is found
    result = instrument(FIXTURES / "workspaces" / "turbo" / "apps" / "api", write=False)
    assert result.synthesis.changes["src/index.ts"][1].startswith(b"import './tracing';\n")


def test_app_with_its_own_otel_and_tracing_modules(tmp_path: Path) -> None:
    """src/otel.ts and src/tracing.ts of the user's own: otelize's helper and bootstrap go beside
    them under other names, every import points there, and strip gives back the same bytes."""
    import shutil

    from otelize.stripping.strip import strip

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "class-app", app, ignore=shutil.ignore_patterns("node_modules", "package-lock.json"))
    own = {"src/otel.ts": b"export const meter = 'mine';\n", "src/tracing.ts": b"export function trace(): void {}\n"}
    for rel, data in own.items():
        (app / rel).write_bytes(data)
    before = {p.relative_to(app).as_posix(): p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    result = instrument(app)
    assert sorted(result.synthesis.created) == ["src/otelize-otel.ts", "src/otelize-tracing.ts"]
    for rel, data in own.items():
        assert (app / rel).read_bytes() == data
    service = (app / "src/services/greetingService.ts").read_text()
    assert "from '../otelize-otel'" in service and "from '../otel'" not in service
    assert (app / "src/server.ts").read_text().startswith("import './otelize-tracing';\n")
    assert instrument(app, write=False).synthesis.changes == {}
    strip(app)
    after = {p.relative_to(app).as_posix(): p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    assert after == before


def test_both_helper_names_taken_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "class-app", app, ignore=shutil.ignore_patterns("node_modules"))
    (app / "src/otel.ts").write_bytes(b"export const a = 1;\n")
    (app / "src/otelize-otel.ts").write_bytes(b"export const b = 1;\n")
    before = {p: p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    proc = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(app)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ("otelize: error: src/otel.ts and src/otelize-otel.ts are files of the app's own: "
                           "otelize will not overwrite them; rename one of them\n")
    assert {p: p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()} == before


def test_cached_edits_follow_a_new_helper_name(tmp_path: Path) -> None:
    """--cache: a file of the user's named src/otel.ts appearing between runs moves otelize's
    helper to src/otelize-otel.ts, and the cached edits of unchanged files must follow."""
    import shutil

    from otelize.stripping.strip import strip

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "class-app", app, ignore=shutil.ignore_patterns("node_modules"))
    instrument(app, write=False, cache=True, cached_answer=False)  # fills the cache with './otel' imports
    (app / "src/otel.ts").write_bytes(b"export const mine = 1;\n")
    result = instrument(app, write=False, cache=True, cached_answer=False)
    service = result.synthesis.changes["src/services/greetingService.ts"][1]
    assert b"from '../otelize-otel'" in service and b"from '../otel'" not in service
    strip(app)


def test_tsed_5_server_loader_bootstrap(tmp_path: Path) -> None:
    # Ts.ED 5 (found on a real app): `await ServerLoader.bootstrap(Server)` from @tsed/common
    (tmp_path / "src").mkdir()
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.2", "@tsed/common": "5.65.0"}}')
    (tmp_path / "src/Server.ts").write_text("import { ServerLoader } from '@tsed/common';\n\nexport class Server extends ServerLoader {}\n")
    (tmp_path / "src/index.ts").write_text(
        "import { ServerLoader } from '@tsed/common';\nimport { Server } from './Server';\n\n"
        "async function bootstrap(): Promise<void> {\n  const server = await ServerLoader.bootstrap(Server);\n  await server.listen();\n}\n\nbootstrap();\n")
    assert analyze(tmp_path).entry == "src/index.ts"
    assert instrument(tmp_path, write=False).synthesis.changes["src/index.ts"][1].startswith(b"import './tracing';\n")


# An InversifyExpressServer's build() is an express app, found wherever `express()` is:
# each layout, with {APP} the expression that makes the app -> the entry file
INVERSIFY_LAYOUTS = {
    # the app in a variable, listened on in the same file
    "variable": ({"src/main.ts": "const app = {APP};\napp.listen(3000);\n"}, "src/main.ts"),
    # built in app.ts, started in index.ts
    "exported": ({"src/app.ts": "export const app = {APP};\n",
                  "src/index.ts": "import { app } from './app';\napp.listen(3000);\n"}, "src/index.ts"),
    # held by a class that listens on it, started by `new Api().listen()`
    "class": ({"src/api.ts": "export class Api {\n  private app = {APP};\n  listen() { this.app.listen(3000); }\n}\n",
               "src/start.ts": "import { Api } from './api';\nnew Api().listen();\n"}, "src/start.ts"),
}


@pytest.mark.parametrize("layout", sorted(INVERSIFY_LAYOUTS))
@pytest.mark.parametrize("app", ["express()", "server.build()", "server.setConfig((a) => a.use(json())).build()"])
def test_an_inversify_server_build_is_an_app(tmp_path: Path, layout: str, app: str) -> None:
    files, entry = INVERSIFY_LAYOUTS[layout]
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.2", "inversify-express-utils": "6.5.0"}}')
    head = ("import express, { json } from 'express';\nimport { Container } from 'inversify';\n"
            "import { InversifyExpressServer } from 'inversify-express-utils';\n"
            "const server = new InversifyExpressServer(new Container());\n")
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((head if "{APP}" in body else "") + body.replace("{APP}", app))
    assert analyze(tmp_path).entry == entry


def test_a_build_of_something_else_is_no_app(tmp_path: Path) -> None:
    """`.build()` makes an app only on an InversifyExpressServer (imported from
    inversify-express-utils): a query builder's or another class's build() is not one."""
    (tmp_path / "package.json").write_text('{"name": "x", "dependencies": {"express": "4.21.2"}}')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.ts").write_text(
        "import { InversifyExpressServer } from './local-server';\n"
        "const server = new InversifyExpressServer();\nconst app = server.build();\napp.listen(3000);\n"
    )
    (tmp_path / "src" / "local-server.ts").write_text("export class InversifyExpressServer { build() { return { listen(p: number) { return p; } }; } }\n")
    a = analyze(tmp_path)
    assert a.entry is None
    assert a.facts["src/main.ts"].apps == []
