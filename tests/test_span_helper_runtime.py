"""The generated span helper and SDK bootstrap, type-checked by tsc and run on Node.

tests/node/otel-helper/ is a small npm project pinned to the same OTel
versions as rules/otel-packages.yaml (plus sdk-trace-base/-node for the
in-memory exporter). Each test renders the templates into a temporary folder
whose node_modules links to that project.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nodeutil import npm_install
from otelize.project.model import Project, Route
from otelize.workers import config
from otelize.workers.deps.lines import load_packages
from otelize.workers.base import WorkerContext

pytestmark = pytest.mark.node

HELPER_PROJECT = Path(__file__).resolve().parent / "node" / "otel-helper"

STRICT = {
    "target": "ES2022",
    "strict": True,
    "noUnusedLocals": True,
    "noUnusedParameters": True,
    "noImplicitReturns": True,
    "noUncheckedIndexedAccess": True,
    "exactOptionalPropertyTypes": True,
    "noPropertyAccessFromIndexSignature": True,
    "isolatedModules": True,
    "rootDir": "src",
    "outDir": "dist",
    "types": ["node"],
}
FLAVOURS = {
    "commonjs": ({"type": "commonjs"}, {"module": "commonjs", "moduleResolution": "node10"}),
    "esm": ({"type": "module"}, {"module": "nodenext", "moduleResolution": "nodenext", "verbatimModuleSyntax": True}),
}
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 0, 2
STATUS_UNSET, STATUS_ERROR = 0, 2


@pytest.fixture(scope="module")
def helper_modules() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    npm_install(HELPER_PROJECT)
    return HELPER_PROJECT / "node_modules"


def make_project(tmp: Path, modules: Path, flavour: str, protocol: str = "http/protobuf") -> Path:
    package, compiler = FLAVOURS[flavour]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "node_modules").symlink_to(modules, target_is_directory=True)
    (tmp / "package.json").write_text(json.dumps({"name": "helper-test", "private": True, **package}))
    (tmp / "tsconfig.json").write_text(json.dumps({"compilerOptions": {**STRICT, **compiler}, "include": ["src"]}))
    pkg = b'{"name": "helper-test", "version": "1.0.0"}'
    project = Project(tmp, json.loads(pkg), pkg, {}, [], "esm" if flavour == "esm" else "commonjs",
                      "4.21.2", 4, "src", "dist", None)
    routes = [Route("GET", "/healthz", "src/app.ts", 1, "<anonymous>")]
    ctx = WorkerContext(project, {}, {}, None, routes, "src/index.ts", {"protocol": protocol})  # type: ignore[arg-type]
    (tmp / "src").mkdir()
    (tmp / "src" / "tracing.ts").write_bytes(config.render_tracing(ctx))
    (tmp / "src" / "otel.ts").write_bytes(config.render_helper())
    return tmp


def tsc(project: Path, *args: str) -> None:
    proc = subprocess.run(
        ["node", str(project / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(project), *args],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"tsc failed:\n{proc.stdout}\n{proc.stderr}"


def test_pins_match_the_rules_file() -> None:
    pins, _ = load_packages()
    declared = json.loads((HELPER_PROJECT / "package.json").read_text())["dependencies"]
    assert {k: v for k, v in declared.items() if k in pins} == pins


@pytest.mark.parametrize(("flavour", "protocol"), [("commonjs", "http/protobuf"), ("commonjs", "grpc"), ("esm", "console")])
def test_generated_files_type_check(tmp_path: Path, helper_modules: Path, flavour: str, protocol: str) -> None:
    tsc(make_project(tmp_path, helper_modules, flavour, protocol), "--noEmit")


def run_checks(tmp_path: Path, helper_modules: Path, *flags: str) -> dict[str, Any]:
    project = make_project(tmp_path, helper_modules, "commonjs")
    (project / "src" / "tracing.ts").unlink()  # the runtime checks register their own provider
    tsc(project)
    proc = subprocess.run(
        ["node", str(HELPER_PROJECT / "check-helper.js"), str(project / "dist" / "otel.js"), *flags],
        capture_output=True, text=True, timeout=60, cwd=project,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def checks(tmp_path_factory: pytest.TempPathFactory, helper_modules: Path) -> dict[str, Any]:
    return run_checks(tmp_path_factory.mktemp("with-sdk"), helper_modules)


def spans_by_name(checks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in checks["spans"]}


def test_values_and_errors_pass_through(checks: dict[str, Any]) -> None:
    assert checks["sameValue"] is True
    assert checks["sameError"] is True
    # a sync function's native promise comes back as the promise `then` derives from it
    assert checks["samePromise"] is False and checks["returnedPromise"] is True
    assert checks["asyncValue"] == "late"
    assert checks["sameRejection"] is True


def test_lazy_thenables_are_never_started(checks: dict[str, Any]) -> None:
    """A query builder returned by a sync function is not run by the helper: the caller can
    still add `.sort()`, and its own `await` is the only `then` call (#11.1)."""
    assert checks["lazyThenCallsAfterReturn"] == 0
    assert checks["lazySortable"] is True
    assert checks["lazyValue"] == "sorted rows"
    assert checks["lazyThenCalls"] == 1
    assert checks["lazyCacheHit"] == 0
    spans = spans_by_name(checks)
    assert spans["lazy.thenable"]["status"]["code"] == STATUS_UNSET  # ended at return


def test_a_real_knex_builder_is_not_executed(checks: dict[str, Any]) -> None:
    assert checks["knexStarted"] == 0
    assert checks["knexSql"] == 'select * from "users" where "id" = 1 order by "id" asc limit 2'
    assert "knex.builder" in spans_by_name(checks)


def test_returned_objects_are_never_read(checks: dict[str, Any]) -> None:
    """No `then` getter read, no Proxy trap, for any returned value (#18)."""
    assert checks["sameGetterObject"] is True and checks["thenGetterReads"] == 0
    assert checks["sameProxy"] is True and checks["proxyTraps"] == []


def test_a_rejection_nobody_handles_is_still_reported(checks: dict[str, Any]) -> None:
    """The helper marks no rejection as handled: exactly the one nobody handles is reported."""
    assert checks["unhandledRejections"] == 1 and checks["unhandledIsTheError"] is True
    assert spans_by_name(checks)["sync.reject.unhandled"]["status"]["code"] == STATUS_ERROR


def test_timing_and_stack_cost(checks: dict[str, Any]) -> None:
    """Documented in README ("What a span costs"): the helper adds no microtask tick to an
    async function (the 2 extra come from the wrapper's outer `async` adopting the inner
    promise), one to a sync function's promise; and a few frames to each recursion level."""
    ticks = checks["ticks"]
    assert ticks["wrapped"] - ticks["bare"] == 2
    assert ticks["wrappedAwait"] - ticks["bareAwait"] == 1
    assert ticks["wrappedSyncPromise"] - ticks["syncPromise"] == 1
    depth = checks["depth"]
    assert depth["bare"] > depth["wrapped"] > depth["bare"] // 10


def test_success_leaves_status_unset(checks: dict[str, Any]) -> None:
    span = spans_by_name(checks)["sync.ok"]
    assert span["status"]["code"] == STATUS_UNSET
    assert span["kind"] == SPAN_KIND_INTERNAL
    assert span["attributes"] == {"x.y": "z"}
    assert span["events"] == []


@pytest.mark.parametrize(("name", "error_type", "message"), [("sync.throw", "NotFoundError", "missing"),
                                                            ("async.reject", "TypeError", "bad")])
def test_errors_mark_the_span(checks: dict[str, Any], name: str, error_type: str, message: str) -> None:
    span = spans_by_name(checks)[name]
    assert span["status"] == {"code": STATUS_ERROR, "message": message}
    assert span["attributes"]["error.type"] == error_type
    assert [e["name"] for e in span["events"]] == ["exception"]
    assert span["events"][0]["attributes"]["exception.message"] == message


def test_promise_span_ends_after_settling(checks: dict[str, Any]) -> None:
    span = spans_by_name(checks)["async.ok"]
    assert span["kind"] == SPAN_KIND_CLIENT
    assert checks["endedBeforeResolve"] is False
    assert int(span["durationNanos"]) >= 25_000_000  # the 30 ms timer


def test_cache_hit(checks: dict[str, Any]) -> None:
    spans = spans_by_name(checks)
    assert spans["cache.miss"]["attributes"] == {"cache.hit": False}
    assert spans["cache.null"]["attributes"] == {"cache.hit": False}
    assert spans["cache.hit"]["attributes"] == {"cache.hit": True}
    assert spans["cache.hit"]["kind"] == SPAN_KIND_CLIENT


def test_nesting(checks: dict[str, Any]) -> None:
    spans = spans_by_name(checks)
    assert spans["inner"]["parentSpanId"] == spans["outer"]["spanId"]
    assert spans["inner.async"]["parentSpanId"] == spans["outer.async"]["spanId"]
    assert spans["outer"]["parentSpanId"] is None


def test_record_active_span_error(checks: dict[str, Any]) -> None:
    spans = spans_by_name(checks)
    assert spans["handler"]["status"] == {"code": STATUS_ERROR, "message": "r"}
    assert spans["handler"]["attributes"] == {"error.type": "RangeError"}
    assert spans["handler.string"]["attributes"] == {"error.type": "_OTHER"}
    assert spans["handler.string"]["status"]["message"] == "plain string"


def test_without_sdk(tmp_path: Path, helper_modules: Path) -> None:
    result = run_checks(tmp_path, helper_modules, "--no-sdk")
    assert result["spans"] == []
    for key in ("sameValue", "sameError", "samePromise", "sameRejection", "lazySortable", "sameProxy"):
        assert result[key] is True
    assert result["asyncValue"] == "late" and result["cacheHitValue"] == "v"
    assert result["unhandledRejections"] == 1 and result["unhandledIsTheError"] is True
    assert result["lazyThenCallsAfterReturn"] == 0 and result["thenGetterReads"] == 0 and result["proxyTraps"] == []


OLD_TYPESCRIPT = HELPER_PROJECT / "old-typescript"


@pytest.mark.parametrize("version", ["4.4", "4.9"])
@pytest.mark.parametrize("target", ["es2015", "es2019"])
def test_helper_compiles_with_old_typescript(tmp_path: Path, helper_modules: Path, version: str, target: str) -> None:
    """otel.ts uses no syntax newer than TypeScript 4.4 (no instantiation expression), under
    the strict flags a TypeScript of that age knows; es2015 also downlevels its async function."""
    npm_install(OLD_TYPESCRIPT)
    (tmp_path / "node_modules").symlink_to(OLD_TYPESCRIPT / "node_modules", target_is_directory=True)
    options = {k: v for k, v in STRICT.items() if k != "target"}
    options |= {"target": target, "lib": ["es2019"], "module": "commonjs", "moduleResolution": "node"}
    (tmp_path / "tsconfig.json").write_text(json.dumps({"compilerOptions": options, "include": ["src"]}))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "otel.ts").write_bytes(config.render_helper())
    proc = subprocess.run(["node", str(OLD_TYPESCRIPT / "node_modules" / f"typescript-{version}" / "bin" / "tsc"), "-p", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"tsc {version} failed:\n{proc.stdout}\n{proc.stderr}"
    result = subprocess.run(["node", str(HELPER_PROJECT / "check-helper.js"), str(tmp_path / "dist" / "otel.js")],
                            capture_output=True, text=True, timeout=60, cwd=HELPER_PROJECT,
                            env={**os.environ, "NODE_PATH": str(helper_modules)})
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)
    assert checks["lazyThenCallsAfterReturn"] == 0 and checks["unhandledIsTheError"] is True
    assert checks["asyncValue"] == "late" and checks["sameRejection"] is True
