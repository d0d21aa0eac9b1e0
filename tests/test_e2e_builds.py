"""End to end, for real, per build pipeline and entry layout: instrument a copy of a fixture
(tests/fixtures/builds/, tests/fixtures/entries/; lockfiles committed), `npm install` from the
registry, `npm run build`, start it the way package.json says (`npm start`, or the dev script
under ts-node, tsx, nodemon, `node --watch`), send a request, and check that a SERVER span with
the service span below it arrives at otelize's embedded OTLP receiver."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fixture_apps import VARIANTS
from nodeutil import free_port, npm_install_cached
from otelize.api import instrument
from otelize.verification.receiver import OtlpReceiver, ReceivedSpan
from otelize.verification.verify import telemetry_env

pytestmark = pytest.mark.node

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STARTUP_S = 90.0  # ts-node and nodemon compile at start; the machine is shared

# (fixture, npm script): every build tool with its start script, and the dev scripts
CASES = [
    ("builds/tsc-esm", "start"),  # ES modules: the start script preloads build/tracing.js, which tsc -p tsconfig.build.json emits
    ("builds/tsc-esm+build-first", "start"),  # `npm run build && node ...`: the preload goes in the node step
    ("builds/tsc-cjs", "start"),
    ("builds/tsc-cjs", "dev"),  # node --watch on the build
    ("builds/tsup", "start"),  # the bundle is all tsup emits: the entry imports tracing first
    ("builds/tsup", "dev"),  # tsx watch
    ("builds/tsup-esm", "start"),  # an ES-module bundle: tsup emits dist/server.js only
    ("builds/esbuild", "start"),
    ("builds/esbuild", "dev"),  # ts-node
    ("builds/webpack", "start"),
    ("builds/webpack", "dev"),  # nodemon --exec ts-node
    ("entries/class-app", "start"),
    ("entries/class-chain", "start"),  # new WarehouseApp().start(), which starts the class that listens
    ("entries/cluster-fork", "start"),  # `node dist`: the primary forks, the worker serves and traces
    ("entries/loaders", "start"),
    ("entries/server-file", "start"),  # `import http` before the app: tracing must come first in server.ts
    ("entries/index-listen", "start"),
    ("entries/bin-www", "start"),  # node bin/www (JavaScript, requires http first, then the built app)
    ("entries/routing-controllers", "start"),
    ("entries/use-express-server", "start"),
    ("entries/tsoa", "start"),
    ("entries/tsed", "start"),  # PlatformExpress.bootstrap(Server)
    ("entries/inversify", "start"),  # new InversifyExpressServer(container).setConfig(fn).build().listen()
]

_BUILT: dict[str, Path] = {}


def _built(fixture: str, tmp_root: Path) -> Path:
    """The fixture, instrumented in place in a copy, installed and built (once per session)."""
    if fixture in _BUILT:
        return _BUILT[fixture]
    app = tmp_root / fixture.replace("/", "-").replace("+", "-")
    base, _, variant = fixture.partition("+")  # "<fixture>+<variant>": tests/fixture_apps.VARIANTS
    shutil.copytree(FIXTURES / base, app, ignore=shutil.ignore_patterns("node_modules", "dist", "build", "out"))
    if variant:
        VARIANTS[variant](app)
    result = instrument(app)
    assert result.not_loaded == [], [s.reason for s in result.not_loaded]
    assert instrument(app, write=False).synthesis.changes == {}, "a second run changed something"
    npm_install_cached(app)
    proc = subprocess.run(["npm", "run", "build"], cwd=app, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"npm run build failed:\n{proc.stdout}\n{proc.stderr}"
    _BUILT[fixture] = app
    return app


@contextmanager
def _npm_script(app: Path, script: str, env: dict[str, str]) -> Iterator[str]:
    """`npm run <script>` in its own process group; yields the base URL once it listens,
    then SIGTERMs the group (npm, nodemon and node alike) and waits for it."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["npm", "run", "--silent", script], cwd=app, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def output() -> str:
            log.seek(0)
            return log.read().decode("utf-8", "replace")

        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/greetings/probe", timeout=2):
                        break
                except OSError:
                    pass
                if proc.poll() is not None:
                    raise AssertionError(f"npm run {script} exited with {proc.returncode}:\n{output()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"npm run {script} did not listen on {port} in {STARTUP_S:.0f}s:\n{output()}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    out = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        out.append(span)
    return out


@pytest.mark.parametrize(("fixture", "script"), CASES, ids=[f"{f}:{s}" for f, s in CASES])
def test_started_as_package_json_says_it_traces(fixture: str, script: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    app = _built(fixture, tmp_path_factory.getbasetemp() / "e2e-builds")
    name = json.loads((app / "package.json").read_text())["name"]
    with OtlpReceiver() as rx:
        env = telemetry_env(rx.endpoint, name, None, "commonjs")
        with _npm_script(app, script, env) as base:
            with urllib.request.urlopen(f"{base}/greetings/ada", timeout=15) as resp:
                assert resp.status == 200
                assert json.loads(resp.read())["message"] == "hello ada"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(s.name.endswith(".greet") for s in rx.spans()):
            time.sleep(0.1)
        spans = [s for s in rx.spans() if s.resource.get("service.name") == name]
    greets = [s for s in spans if s.name == "GreetingService.greet"]
    assert greets, f"no service span; got {sorted({s.name for s in spans})}"
    by_id = {s.span_id: s for s in spans}
    servers = [a for g in greets for a in _ancestors(g, by_id) if a.kind == "SERVER"]
    assert servers, f"the service span has no SERVER span above it; got {[(s.name, s.kind) for s in spans]}"
    assert any(s.attributes.get("http.route") == "/greetings/:name" for s in servers), [s.attributes for s in servers]


@contextmanager
def _upstream() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local upstream answering GET /names/<name> with {"name": <name>}; yields its base URL
    and the path and headers of every request it received."""
    import http.server
    import threading

    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            body = json.dumps({"name": self.path.rsplit("/", 1)[-1]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_global_fetch_gets_a_client_span_that_carries_the_trace_upstream(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A service that calls an upstream with the global fetch (no undici dependency): the undici
    instrumentation otelize adds for it makes the CLIENT span below the service span, and the
    upstream receives that span's traceparent."""
    if shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    app = _built("builds/tsc-cjs+global-fetch", tmp_path_factory.getbasetemp() / "e2e-builds")
    name = json.loads((app / "package.json").read_text())["name"]
    with OtlpReceiver() as rx, _upstream() as (upstream, seen):
        env = {**telemetry_env(rx.endpoint, name, None, "commonjs"), "UPSTREAM_URL": upstream}
        with _npm_script(app, "start", env) as base:
            with urllib.request.urlopen(f"{base}/greetings/ada", timeout=15) as resp:
                assert json.loads(resp.read())["message"] == "hello ada"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(_to_ada(s) for s in rx.spans()):
            time.sleep(0.1)
        spans = [s for s in rx.spans() if s.resource.get("service.name") == name]
    by_id = {s.span_id: s for s in spans}
    clients = [s for s in spans if _to_ada(s)
               and any(a.name == "GreetingService.greet" for a in _ancestors(s, by_id))
               and any(a.kind == "SERVER" and a.attributes.get("http.route") == "/greetings/:name"
                       for a in _ancestors(s, by_id))]
    assert len(clients) == 1, [(s.name, s.kind, s.parent_span_id) for s in spans]
    client = clients[0]
    assert [h.get("traceparent") for h in seen if h["path"] == "/names/ada"] == [
        f"00-{client.trace_id}-{client.span_id}-01"], seen


def _to_ada(span: ReceivedSpan) -> bool:
    """The CLIENT span of the request for ada's name (the start-up probes ask for others)."""
    return span.kind == "CLIENT" and str(span.attributes.get("url.full", "")).endswith("/names/ada")
