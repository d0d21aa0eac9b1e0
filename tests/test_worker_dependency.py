"""The dependency worker and the byte-exact JSON editor under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otelize.synthesize import jsonedit
from otelize.synthesize.edits import WorkerResult, apply_edits
from otelize.errors import BadInput
from otelize.project.model import Project
from otelize.workers import dependency
from otelize.workers.deps.lines import load_packages
from otelize.workers.base import Task, WorkerContext

TASK = Task(id="dependency", worker="dependency")
PACKAGES, PROFILES = load_packages()
# what an Express app with no other library gets on the preferred line: the SDK, http, express
PACKAGES = {**PACKAGES, "@opentelemetry/instrumentation-http": "0.223.0", "@opentelemetry/instrumentation-express": "0.71.1"}
DEFAULT = sorted([*PROFILES["base"], "@opentelemetry/instrumentation-express", "@opentelemetry/instrumentation-http"])


def make_ctx(tmp_path: Path, data: bytes, module: str = "commonjs", **settings: object) -> WorkerContext:
    (tmp_path / "package.json").write_bytes(data)
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {}
    project = Project(
        root=tmp_path,
        package_json=parsed if isinstance(parsed, dict) else {},
        package_json_bytes=data,
        tsconfig={},
        files=[],
        module=module,
        express_range="4.21.2",
        express_major=4,
        src_dir="src",
        out_dir="dist",
        base_url=None,
    )
    return WorkerContext(project, {}, {}, None, [], "src/index.ts", dict(settings))  # type: ignore[arg-type]


def run(tmp_path: Path, data: bytes, **kw: object) -> tuple[bytes, WorkerResult]:
    result = dependency.run(make_ctx(tmp_path, data, **kw), TASK)
    return apply_edits(data, result.edits), result


def assert_idempotent(tmp_path: Path, data: bytes, **kw: object) -> bytes:
    once, first = run(tmp_path, data, **kw)
    twice, second = run(tmp_path, once, **kw)
    assert second.edits == [] and twice == once
    assert second.packages == {}
    assert json.loads(once)  # still valid JSON
    return once


def test_default_packages_inserted_sorted_with_two_spaces(tmp_path: Path) -> None:
    data = b'{\n  "name": "app",\n  "dependencies": {\n    "express": "4.21.2",\n    "zod": "3.0.0"\n  }\n}\n'
    out = assert_idempotent(tmp_path, data)
    deps = list(json.loads(out)["dependencies"])
    assert deps == sorted(deps)
    assert set(DEFAULT) <= set(deps)
    assert "@opentelemetry/exporter-trace-otlp-grpc" not in deps
    assert b'\n    "@opentelemetry/api": "1.9.0",\n' in out
    assert out.endswith(b"  }\n}\n")


@pytest.mark.parametrize("unit", [b"    ", b"\t"])
def test_indentation_is_kept(tmp_path: Path, unit: bytes) -> None:
    data = b'{\n' + unit + b'"name": "app",\n' + unit + b'"dependencies": {\n' + unit * 2 + b'"express": "4"\n' + unit + b"}\n}\n"
    out = assert_idempotent(tmp_path, data)
    assert b"\n" + unit * 2 + b'"@opentelemetry/sdk-node": "0.223.0",\n' in out


def test_crlf_and_no_final_newline(tmp_path: Path) -> None:
    data = b'{\r\n  "name": "app",\r\n  "dependencies": {\r\n    "express": "4"\r\n  }\r\n}'
    out = assert_idempotent(tmp_path, data)
    assert b"\n" not in out.replace(b"\r\n", b"")
    assert out.endswith(b"}")


def test_empty_dependencies_becomes_multiline(tmp_path: Path) -> None:
    data = b'{\n  "name": "app",\n  "dependencies": {}\n}\n'
    out = assert_idempotent(tmp_path, data)
    lines = out.split(b"\n")
    assert lines[2] == b'  "dependencies": {'
    assert lines[3] == b'    "@opentelemetry/api": "1.9.0",'
    assert out.endswith(b'"@opentelemetry/sdk-node": "0.223.0"\n  }\n}\n')


def test_missing_dependencies_goes_after_scripts(tmp_path: Path) -> None:
    data = b'{\n  "name": "app",\n  "scripts": {\n    "start": "node dist/index.js"\n  },\n  "license": "MIT"\n}\n'
    out = assert_idempotent(tmp_path, data)
    assert list(json.loads(out)) == ["name", "scripts", "dependencies", "license"]
    assert b'  },\n  "dependencies": {\n    "@opentelemetry/api": "1.9.0",\n' in out
    assert out.endswith(b'"@opentelemetry/sdk-node": "0.223.0"\n  },\n  "license": "MIT"\n}\n')


def test_missing_dependencies_without_scripts_goes_last(tmp_path: Path) -> None:
    out = assert_idempotent(tmp_path, b'{\n  "name": "app",\n  "private": true\n}\n')
    assert list(json.loads(out)) == ["name", "private", "dependencies"]


def test_empty_root_object(tmp_path: Path) -> None:
    out = assert_idempotent(tmp_path, b"{}\n")
    assert out.startswith(b'{\n  "dependencies": {\n    "@opentelemetry/api"')
    assert out.endswith(b"\n  }\n}\n")


def test_unsorted_keys_append_at_end(tmp_path: Path) -> None:
    data = b'{\n  "dependencies": {\n    "zod": "3",\n    "express": "4"\n  }\n}\n'
    out = assert_idempotent(tmp_path, data)
    assert list(json.loads(out)["dependencies"])[:2] == ["zod", "express"]


def test_present_packages_are_never_changed(tmp_path: Path) -> None:
    data = (
        b'{\n  "dependencies": {\n    "@opentelemetry/api": "1.4.0",\n    "express": "4"\n  },\n'
        b'  "devDependencies": {\n    "@opentelemetry/sdk-node": "^0.200.0"\n  }\n}\n'
    )
    out, result = run(tmp_path, data)
    deps = json.loads(out)
    assert deps["dependencies"]["@opentelemetry/api"] == "1.4.0"
    assert "@opentelemetry/sdk-node" not in deps["dependencies"]
    assert deps["devDependencies"]["@opentelemetry/sdk-node"] == "^0.200.0"
    reasons = sorted(s.reason for s in result.skips)
    assert reasons == [
        "already depends on @opentelemetry/api@1.4.0 (otelize pins 1.9.0)",
        "already depends on @opentelemetry/sdk-node@^0.200.0 (otelize pins 0.223.0)",
    ]
    assert "@opentelemetry/api" not in result.packages
    assert_idempotent(tmp_path, data)


def test_protocol_profiles(tmp_path: Path) -> None:
    # sdk-node carries the exporters and picks one from the environment: no exporter package
    data = b'{\n  "name": "app"\n}\n'
    for proto in ("grpc", "console", "http/protobuf"):
        _, result = run(tmp_path, data, protocol=proto)
        assert sorted(result.packages) == DEFAULT
    _, esm = run(tmp_path, data, module="esm")
    assert "@opentelemetry/instrumentation" in esm.packages
    with pytest.raises(BadInput):
        run(tmp_path, data, protocol="zipkin")


def test_result_packages_are_the_pins(tmp_path: Path) -> None:
    _, result = run(tmp_path, b'{"name": "app"}')
    assert result.packages == {name: PACKAGES[name] for name in DEFAULT}


def test_single_line_object(tmp_path: Path) -> None:
    data = b'{"name": "app", "dependencies": {"express": "4"}}'
    out = assert_idempotent(tmp_path, data)
    assert out.startswith(b'{"name": "app", "dependencies": {"@opentelemetry/api": "1.9.0", ')


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'{\n  "name": "app",\n}\n', "line 3 column 1"),
        (b'{\n  "name": "app"\n', "line 3 column 1"),
        (b'{\n  "name": \'app\'\n}', "line 2 column 11"),
        (b"", "line 1 column 1"),
        (b'{"a": 1} x', "line 1 column 10"),
    ],
)
def test_invalid_json_is_bad_input(tmp_path: Path, data: bytes, where: str) -> None:
    with pytest.raises(BadInput) as info:
        run(tmp_path, data)
    message = str(info.value)
    assert message.startswith(f"package.json: invalid JSON at {where}: ")
    assert "\n" not in message


def test_scanner_spans_and_non_ascii() -> None:
    data = '{"description": "café ☕", "n": -1.5e3, "a": [true, null]}'.encode()
    root = jsonedit.parse(data)
    desc = root.get("description")
    assert desc is not None and desc.value.value == "café ☕"
    assert data[desc.value.start : desc.value.end] == '"café ☕"'.encode()
    n = root.get("n")
    assert n is not None and n.value.value == -1500.0
    edit = jsonedit.replace_string("package.json", desc.value, "thé")
    assert apply_edits(data, [edit]).startswith('{"description": "thé", "n"'.encode())


def test_many_new_keys_at_one_point_are_one_edit(tmp_path: Path) -> None:
    data = b'{\n  "dependencies": {\n    "express": "4"\n  }\n}\n'
    result = dependency.run(make_ctx(tmp_path, data), TASK)
    assert len(result.edits) == 1  # all @opentelemetry/* land before "express"
