"""Behaviour equivalence: a module of tricky functions behaves the same before
and after instrumentation, with a real tracer provider registered.

tests/fixtures/shapes/equivalence/src/services/tricky.ts is instrumented on a
copy; the original and the instrumented module are compiled with tsc
(CommonJS, strict) against the pinned OpenTelemetry packages of
tests/node/otel-helper; tests/node/equivalence/run.js calls every function of
both builds and reports return values, thrown errors (class, message),
`this` bindings and `arguments.length`, plus the spans it saw.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from transform import untyped

from otelize.api import instrument
from test_shapes import prepare

pytestmark = pytest.mark.node

TESTS = Path(__file__).resolve().parent
HELPER_PROJECT = TESTS / "node" / "otel-helper"
RUNNER = TESTS / "node" / "equivalence" / "run.js"
MODULE = "src/services/tricky.ts"
STATUS_UNSET, STATUS_ERROR = 0, 2

COMPILER = {
    "target": "ES2022",
    "module": "commonjs",
    "moduleResolution": "node10",
    "strict": True,
    "esModuleInterop": True,
    "experimentalDecorators": True,
    "types": ["node"],
    "rootDir": ".",
    "outDir": "dist",
}


@pytest.fixture(scope="module", params=["typescript", "javascript"])
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The TypeScript module instrumented and compiled; or (javascript) its compiled CommonJS
    build as the service of a JavaScript app, instrumented as JavaScript (require, otel.js)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    from nodeutil import npm_install

    npm_install(HELPER_PROJECT)
    tmp = tmp_path_factory.mktemp("equivalence")
    original = prepare("equivalence", tmp / "original")
    instrumented = prepare("equivalence", tmp / "instrumented")
    result = instrument(instrumented)
    assert result.synthesis.reverted == [] and MODULE in result.synthesis.changes

    build = tmp / "build"
    (build / "original").mkdir(parents=True)
    (build / "instrumented" / "services").mkdir(parents=True)
    shutil.copy(original / MODULE, build / "original" / "tricky.ts")
    shutil.copy(instrumented / MODULE, build / "instrumented" / "services" / "tricky.ts")
    shutil.copy(instrumented / "src" / "otel.ts", build / "instrumented" / "otel.ts")
    (build / "node_modules").symlink_to(HELPER_PROJECT / "node_modules", target_is_directory=True)
    (build / "package.json").write_text(json.dumps({"name": "equivalence", "private": True}))
    (build / "tsconfig.json").write_text(json.dumps({"compilerOptions": COMPILER, "include": ["original", "instrumented"]}))
    tsc = subprocess.run(["node", str(HELPER_PROJECT / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(build)],
                         capture_output=True, text=True, timeout=300)
    assert tsc.returncode == 0, f"tsc failed:\n{tsc.stdout}\n{tsc.stderr}"

    shutil.copy(RUNNER, build / "run.js")  # resolves the SDK packages through build/node_modules
    candidate = build / "dist" / "instrumented" / "services" / "tricky.js"
    if request.param == "javascript":
        result, candidate = _instrument_as_javascript(build / "dist" / "original" / "tricky.js", tmp / "js-app", build / "js")
    proc = subprocess.run(
        ["node", str(build / "run.js"), str(build / "dist" / "original" / "tricky.js"), str(candidate)],
        capture_output=True, text=True, timeout=120, cwd=build,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    data["wrapped"] = sorted({s.name for s in result.synthesis.spans})
    data["source"] = (instrumented / MODULE).read_text()
    return data


def _instrument_as_javascript(compiled: Path, app: Path, build: Path) -> tuple[Any, Path]:
    """A JavaScript app whose service is `compiled` (tsc's CommonJS output: `exports.x = x`,
    classes, 'use strict'), instrumented; its tricky.js and otel.js copied into `build`
    (which resolves the SDK packages through the parent's node_modules)."""
    (app / "services").mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "js-equivalence", "dependencies": {"express": "4.22.3"}}))
    shutil.copy(compiled, app / "services" / "tricky.js")
    # as the TypeScript fixture: every shape of function gets a span, pure helpers included
    shutil.copy(TESTS / "fixtures" / "shapes" / "equivalence" / ".otelize.yaml", app / ".otelize.yaml")
    result = instrument(app)
    assert result.synthesis.reverted == [] and "services/tricky.js" in result.synthesis.changes
    assert b"require('../otel');" in (app / "services" / "tricky.js").read_bytes()
    (build / "services").mkdir(parents=True)
    shutil.copy(app / "services" / "tricky.js", build / "services" / "tricky.js")
    shutil.copy(app / "otel.js", build / "otel.js")  # generated JavaScript, CommonJS
    return result, build / "services" / "tricky.js"


def test_every_call_behaves_the_same(outcome: dict[str, Any]) -> None:
    original, instrumented = outcome["original"], outcome["instrumented"]
    assert sorted(original) == sorted(instrumented)
    different = {name: (original[name], instrumented[name]) for name in original if original[name] != instrumented[name]}
    assert not different, json.dumps(different, indent=2)


def test_a_rejection_nobody_handles_is_reported_the_same(outcome: dict[str, Any]) -> None:
    """#18: the span helper marks no rejection as handled."""
    unhandled = outcome["unhandled"]
    assert unhandled["original"] == unhandled["instrumented"]
    assert [u["message"] for u in unhandled["original"]] == ["nobody handles this"]


def test_returned_values_are_never_touched(outcome: dict[str, Any]) -> None:
    """#11.1 and #18: a lazy thenable is not run before the caller adds `sort()`; a Proxy's
    traps and a `then` getter are not touched by the helper (the runner's own reads only)."""
    o, i = outcome["original"], outcome["instrumented"]
    assert o["lazyQuery sorted after return"] == {"promise": False, "thenable": True, "resolved": "rows sorted"}
    assert o["proxied traps"] == {"returned": {"ctor": "Array"}}  # no trap fired
    assert o["withThenGetter reads"] == {"returned": {"ctor": "Array"}}
    for name in ("lazyQuery sorted after return", "proxied traps", "withThenGetter reads"):
        assert i[name] == o[name]
    assert {"lazyQuery", "proxied", "withThenGetter"} <= set(outcome["wrapped"])


def test_a_parameter_named_like_the_helper_keeps_its_meaning(outcome: dict[str, Any]) -> None:
    """#18: the helper is imported under another name, so the body still runs."""
    assert outcome["original"]["paramNamedLikeTheHelper"] == {"returned": 42}
    assert "paramNamedLikeTheHelper" in outcome["wrapped"]
    assert "import { otelizeWithSpan, withSpan as" not in outcome["source"]
    assert "withSpan as otelizeWithSpan" in outcome["source"]
    assert "return otelizeWithSpan('paramNamedLikeTheHelper'" in untyped(outcome["source"])


def test_a_parameter_redeclared_with_var_is_skipped(outcome: dict[str, Any]) -> None:
    """#18: `var a = a || 100` inside the wrapper's arrow would no longer see the parameter."""
    assert outcome["original"]["varRedeclaresParameter 5"] == {"returned": 5}
    assert outcome["original"]["varRedeclaresParameter none"] == {"returned": 100}
    assert "varRedeclaresParameter" not in outcome["wrapped"]


def test_the_scenarios_really_exercise_the_tricky_parts(outcome: dict[str, Any]) -> None:
    """Guard against a runner that compares nothing: spot-check the original's answers."""
    o = outcome["original"]
    assert o["Tricky.whoAmI detached"] == {"returned": "undefined"}
    assert o["Tricky.whoAmI call other"] == {"returned": "other"}
    assert o["Tricky.chain returns this"] == {"returned": "tricky!"}
    assert o["Tricky.greet super"] == {"returned": "HELLO BOB FROM TRICKY"}
    assert [o[f"Tricky.countArgs {k}"]["returned"] for k in ("0", "1", "undefined", "rest")] == ["0/0", "1/0", "2/0", "4/2"]
    assert o["Tricky.defaults none"] == {"returned": "[1,2,null,4,0]"}
    assert o["Tricky.defaults bad destructuring"]["threw"]["class"] == "TypeError"
    assert o["Tricky.arrowProp call other"] == {"returned": "3:tricky"}
    assert o["Tricky.staticThis detached"] == {"returned": "undefined"}
    assert o["Tricky.asyncThis detached"]["rejected"]["class"] == "TypeError"
    assert o["tryFinallyReturn negative"]["threw"] == {"class": "RangeError", "name": "RangeError", "message": "not positive: -1", "code": None}
    assert o["finallyOverrides throw"] == {"returned": "finally"}
    assert o["syncReturningPromise"] == {"promise": True, "thenable": False, "resolved": "late"}
    assert o["syncReturningRejection"]["rejected"]["class"] == "CustomError"
    assert o["promiseOfThenable"]["resolved"] == 42
    assert o["throwingSync"]["threw"] == {"class": "CustomError", "name": "CustomError", "message": "boom", "code": 4}
    assert o["throwingNonError"] == {"threw": {"thrown": "a string"}}
    assert o["rejectingAsync"]["rejected"]["class"] == "TypeError"
    assert o["nestedCallbacks"]["returned"] == {"ctor": "Array", "0": 20, "1": 30, "2": 40}
    assert o["thisOfPlainFunction plain"] == {"returned": "plain:undefined:1"}
    assert o["thisOfPlainFunction as export"] == {"returned": "export:object:1"}
    assert o["thisOfPlainFunction call"] == {"returned": "obj:object:2"}
    assert o["thisOfPlainFunction number"] == {"returned": "num:number:1"}
    assert o["counters"] == {"returned": {"ctor": "Object", "finally": 2, "thenCalls": 2}}


def test_only_the_instrumented_build_produces_spans(outcome: dict[str, Any]) -> None:
    assert outcome["spansBefore"] == 0
    names = {s["name"] for s in outcome["spans"]}
    assert names == set(outcome["wrapped"])


ERRORS = {
    "Tricky.asyncThis": "TypeError",
    "Tricky.whoAmI": None,
    "tryFinallyReturn": "RangeError",
    "syncReturningRejection": "CustomError",
    "throwingSync": "CustomError",
    "throwingNonError": "_OTHER",
    "rejectingAsync": "TypeError",
}


@pytest.mark.parametrize(("name", "error_type"), sorted(ERRORS.items(), key=lambda kv: kv[0]))
def test_throwing_calls_mark_their_span(outcome: dict[str, Any], name: str, error_type: str | None) -> None:
    spans = [s for s in outcome["spans"] if s["name"] == name]
    errors = [s for s in spans if s["status"] == STATUS_ERROR]
    if error_type is None:
        assert spans and not errors
        return
    assert errors, spans
    assert {s["errorType"] for s in errors} == {error_type}
    assert any(s["status"] == STATUS_UNSET for s in spans) or name in ("syncReturningRejection", "throwingSync", "rejectingAsync")


def test_parameter_binding_errors_happen_before_the_span(outcome: dict[str, Any]) -> None:
    """Destructuring `null` throws while binding parameters, before the body (and its span) runs."""
    spans = [s for s in outcome["spans"] if s["name"] == "Tricky.defaults"]
    assert len(spans) == 3 and all(s["status"] == STATUS_UNSET for s in spans)  # 4 calls, 1 threw at binding


def test_finally_override_swallows_the_error_in_the_span_too(outcome: dict[str, Any]) -> None:
    """`finally { return }` discards the thrown error: the call succeeds, so does its span."""
    spans = [s for s in outcome["spans"] if s["name"] == "finallyOverrides"]
    assert len(spans) == 2 and all(s["status"] == STATUS_UNSET for s in spans)


def test_nested_calls_nest_their_spans(outcome: dict[str, Any]) -> None:
    """`Tricky.greet` calls `super.greet` (Base.greet): the inner span is a child of the outer."""
    by_id = {s["id"]: s for s in outcome["spans"]}
    base = [s for s in outcome["spans"] if s["name"] == "Base.greet" and s["parent"] in by_id]
    assert base and all(by_id[s["parent"]]["name"] == "Tricky.greet" for s in base)
