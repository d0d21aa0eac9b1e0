"""Settings: `.otelize.yaml` (validation, did-you-mean), CLI flags over the file,
and the effect of every setting on what `instrument` does to the sample app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from transform import untyped
from click.testing import CliRunner

from otelize.api import analyze, instrument
from otelize.cli.main import cli
from otelize.errors import BadInput
from otelize.project.settings import Settings, load_settings, with_flags

SAMPLE_APP = Path(__file__).resolve().parent.parent / "sample-app"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    dest = tmp_path / "shop"
    shutil.copytree(SAMPLE_APP, dest, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return dest


def write_config(root: Path, data: object, name: str = ".otelize.yaml") -> Path:
    path = root / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def span_names(result) -> set[str]:  # noqa: ANN001
    return {s.name for s in result.synthesis.spans}


def new_text(result, path: str) -> str:  # noqa: ANN001
    return result.synthesis.changes[path][1].decode()


# --- loading and validation ---------------------------------------------------------


def test_no_config_file_gives_the_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s == Settings()
    assert s.to_api() == {"protocol": "http/protobuf", "span_naming": "class.method"}


def test_every_key_is_read(tmp_path: Path) -> None:
    (tmp_path / "my-rules").mkdir()
    write_config(tmp_path, {
        "service_name": "shop", "protocol": "grpc", "include": "src/**", "exclude": ["src/legacy/**"],
        "workers": {"cache": False, "service": True}, "categories": {"middleware": False},
        "span_naming": "method", "rules": ["my-rules"],
    })
    s = load_settings(tmp_path)
    assert s.to_api() == {
        "protocol": "grpc", "span_naming": "method", "service_name": "shop", "include": ["src/**"],
        "exclude": ["src/legacy/**"], "disabled_workers": ["cache"], "disabled_categories": ["middleware"],
        "rules": [str((tmp_path / "my-rules").resolve())],
    }
    assert s.source == ".otelize.yaml"


def test_rules_are_relative_to_the_config_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf" / "r").mkdir(parents=True)
    cfg = write_config(tmp_path / "conf", {"rules": "r"}, "otelize.yaml")
    monkeypatch.chdir(tmp_path)
    assert load_settings(tmp_path / "elsewhere", cfg).rules == ((tmp_path / "conf" / "r").resolve(),)


BAD = {
    "unknown key, suggestion": ({"servce_name": "x"}, "key `servce_name`: unknown key (did you mean `service_name`?)"),
    "unknown key, no close match": ({"zzz": 1}, "key `zzz`: unknown key (allowed: service_name, protocol,"),
    "protocol": ({"protocol": "http"}, "key `protocol`: must be one of http/protobuf, grpc, console"),
    "span naming": ({"span_naming": "snake"}, "key `span_naming`: must be one of class.method, method, file.class.method"),
    "service name": ({"service_name": ""}, "key `service_name`: must be a non-empty string"),
    "include type": ({"include": [3]}, "key `include`: must be a glob or a list of globs"),
    "exclude type": ({"exclude": {"a": 1}}, "key `exclude`: must be a glob or a list of globs"),
    "worker name": ({"workers": {"cahce": False}}, "key `workers.cahce`: unknown worker (did you mean `cache`?)"),
    "worker value": ({"workers": {"cache": "no"}}, "key `workers.cache`: must be true or false"),
    "workers type": ({"workers": ["cache"]}, "key `workers`: must be a mapping of worker name to true/false"),
    "category name": ({"categories": {"databse": False}}, "key `categories.databse`: unknown category (did you mean `database`?)"),
    "rules folder": ({"rules": ["nope"]}, "key `rules[0]`: no such folder: nope"),
    "rules type": ({"rules": {"a": 1}}, "key `rules`: must be a folder or a list of folders"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_settings_name_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    data, expected = BAD[case]
    write_config(tmp_path, data)
    with pytest.raises(BadInput) as exc:
        load_settings(tmp_path)
    msg = str(exc.value)
    assert msg.startswith(".otelize.yaml: " + expected), msg
    assert "\n" not in msg


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write_config(tmp_path, "- a\n- b\n")
    with pytest.raises(BadInput, match=r"^\.otelize\.yaml: the top level must be a mapping of settings$"):
        load_settings(tmp_path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    write_config(tmp_path, "service_name: shop\nprotocol: [grpc\n")
    with pytest.raises(BadInput, match=r"^\.otelize\.yaml: invalid YAML at line 3 column 1: while parsing a flow sequence; did not find expected ',' or '\]'$"):
        load_settings(tmp_path)


def test_config_option_names_its_own_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"protocl": "grpc"}, "ci.yaml")
    with pytest.raises(BadInput, match=r"ci\.yaml: key `protocl`: unknown key \(did you mean `protocol`\?\)$"):
        load_settings(tmp_path / "app", cfg)
    with pytest.raises(BadInput, match=r"missing\.yaml: no such config file$"):
        load_settings(tmp_path, tmp_path / "missing.yaml")


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, "")
    assert load_settings(tmp_path).to_api() == Settings().to_api()


# --- flags over the file ----------------------------------------------------------------


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, {"protocol": "grpc", "service_name": "a", "include": ["src/**"],
                            "workers": {"cache": False}, "categories": {"service": False}})
    s = with_flags(load_settings(tmp_path), protocol="console", service_name="b", include=("lib/**",),
                   enable=("cache",), disable=("middleware",))
    api = s.to_api()
    assert (api["protocol"], api["service_name"], api["include"]) == ("console", "b", ["lib/**"])
    assert "disabled_workers" not in api  # --enable cache re-enabled the worker
    assert api["disabled_categories"] == ["middleware", "service"]


def test_a_name_that_is_a_worker_and_a_category_disables_both() -> None:
    api = with_flags(Settings(), disable=("http", "entrypoint", "config")).to_api()
    assert api["disabled_workers"] == ["config", "http"]
    assert api["disabled_categories"] == ["entrypoint", "http"]


def test_unknown_enable_disable_name_suggests() -> None:
    from otelize.classify.ruleset import RuleError, load_rules

    switched = with_flags(Settings(), disable=("cahce",))  # not a worker or category: maybe a rule id
    assert switched.rule_switches == {"cahce": False}
    with pytest.raises(RuleError, match=r"^--disable cahce: not a worker, a category or a rule id \(did you mean `cache`\?\)$"):
        load_rules(switches=switched.rule_switches)


# --- what each setting does --------------------------------------------------------------


def test_service_name_reaches_tracing_ts(app: Path) -> None:
    default = instrument(app, write=False, settings={})
    assert "|| 'shop-api'," in new_text(default, "src/tracing.ts")
    write_config(app, {"service_name": "orders-edge"})
    result = instrument(app, write=False)  # the library reads .otelize.yaml itself
    text = new_text(result, "src/tracing.ts")
    assert "process.env['OTEL_SERVICE_NAME'] || 'orders-edge'," in text
    assert "'shop-api'" not in text


@pytest.mark.parametrize(("protocol", "default"), [
    ("http/protobuf", None),
    ("grpc", "process.env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] = 'grpc';"),
    ("console", "process.env['OTEL_TRACES_EXPORTER'] = 'console';"),
])
def test_protocol_is_only_the_default_of_the_sdk_env_config(app: Path, protocol: str, default: str | None) -> None:
    # the SDK builds the exporter from OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_*: the
    # setting only fills in what the environment leaves unset, and adds no package
    write_config(app, {"protocol": protocol})
    result = instrument(app, write=False)
    tracing = new_text(result, "src/tracing.ts")
    assert "Exporter(" not in tracing and "traceExporter" not in tracing
    assert not any("exporter" in p for p in result.synthesis.packages)
    if default is None:
        assert "process.env['OTEL_TRACES_EXPORTER'] =" not in tracing and "PROTOCOL'] =" not in tracing
    else:
        assert default in tracing
        guard = tracing[: tracing.index(default)].rsplit("if (", 1)[1]
        assert "=== undefined" in guard  # only when the environment does not say


def test_exclude_leaves_files_out(app: Path) -> None:
    write_config(app, {"exclude": ["src/services/order*.ts", "src/utils/"]})
    analysis = analyze(app)
    files = set(analysis.project.files)
    assert "src/services/orderService.ts" not in files
    assert not any(f.startswith("src/utils/") for f in files)
    assert "src/services/userService.ts" in files
    result = instrument(app, write=False)
    assert "src/services/orderService.ts" not in result.synthesis.changes
    assert "UserService.getUser" in span_names(result)


def test_include_keeps_only_matching_files(app: Path) -> None:
    write_config(app, {"include": ["src/index.ts", "src/services/**"]})
    files = analyze(app).project.files
    assert files == sorted(["src/index.ts"] + [f"src/services/{n}.ts" for n in
                                               ("inventoryService", "orderService", "paymentService", "productService", "userService")])


def test_disabled_worker_and_category(app: Path) -> None:
    full = instrument(app, write=False, settings={})
    assert {"cache", "database", "service"} <= {s.worker for s in full.synthesis.spans}

    write_config(app, {"workers": {"cache": False}, "categories": {"service": False}})
    result = instrument(app, write=False)
    workers = {s.worker for s in result.synthesis.spans}
    assert "cache" not in workers and "service" not in workers
    assert "database" in workers
    assert "src/utils/cache.ts" not in result.synthesis.changes
    assert "src/services/orderService.ts" not in result.synthesis.changes
    assert not any(t.worker in ("cache", "service") for t in result.analysis.tasks)


def test_disabling_middleware_category_drops_the_error_handler_task(app: Path) -> None:
    assert any(t.id == "http:src/middleware/errorHandler.ts" for t in analyze(app).tasks)
    write_config(app, {"categories": {"middleware": False}})
    assert not any(t.worker == "http" for t in analyze(app).tasks)


@pytest.mark.parametrize(("style", "expected", "fn_name"), [
    ("class.method", "OrderService.createOrder", "OrderService.createOrder"),
    ("method", "createOrder", "OrderService.createOrder"),
    ("file.class.method", "orderService.OrderService.createOrder", "OrderService.createOrder"),
])
def test_span_naming(app: Path, style: str, expected: str, fn_name: str) -> None:
    write_config(app, {"span_naming": style})
    result = instrument(app, write=False)
    span = next(s for s in result.synthesis.spans if s.file == "src/services/orderService.ts" and s.line == min(
        x.line for x in result.synthesis.spans if x.file == "src/services/orderService.ts" and "createOrder" in x.name))
    assert span.name == expected
    assert dict(span.attributes)["code.function.name"] == fn_name  # the attribute keeps the qualified name
    assert f"withSpan('{expected}', " in untyped(new_text(result, "src/services/orderService.ts"))


def test_rules_from_the_config_extend_the_builtin_ones(app: Path) -> None:
    rules = app / "otelize-rules"
    rules.mkdir()
    (rules / "latency-service.yaml").write_text(yaml.safe_dump({
        "id": "latency-service", "category": "service", "priority": 80, "match": {"path": "src/utils/latency.ts"},
    }))
    assert analyze(app).classification.file("src/utils/latency.ts").category == "other"
    write_config(app, {"rules": ["otelize-rules"]})
    decision = analyze(app).classification.file("src/utils/latency.ts")
    assert (decision.category, decision.rules[0]) == ("service", "latency-service")


# --- through the CLI ----------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_cli_flag_wins_over_the_config_file(app: Path) -> None:
    write_config(app, {"protocol": "grpc", "categories": {"cache": False}})
    code, out, _ = run_cli("plan", str(app), "--format", "json")
    assert code == 0
    assert not any(t["worker"] == "cache" for t in json.loads(out)["tasks"])
    code, out, _ = run_cli("plan", str(app), "--format", "json", "--enable", "cache")
    assert any(t["worker"] == "cache" for t in json.loads(out)["tasks"])

    code, out, _ = run_cli("instrument", str(app), "--diff", "--protocol", "console")
    assert code == 0
    assert "+  process.env['OTEL_TRACES_EXPORTER'] = 'console';" in out
    assert "'grpc'" not in out


def test_cli_config_option_reads_another_file(app: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {"service_name": "from-ci-config"}, "ci.yaml")
    write_config(app, {"service_name": "from-app-config"})
    code, out, _ = run_cli("instrument", str(app), "--diff", "--config", str(cfg))
    assert code == 0
    assert "'from-ci-config'" in out and "'from-app-config'" not in out


def test_cli_bad_config_is_one_line_exit_2(app: Path) -> None:
    write_config(app, {"workers": {"databse": False}})
    before = sorted(p.read_bytes() for p in app.rglob("*.ts"))
    code, out, err = run_cli("instrument", str(app))
    assert code == 2
    assert err == "otelize: error: .otelize.yaml: key `workers.databse`: unknown worker (did you mean `database`?)\n"
    assert out == ""
    assert sorted(p.read_bytes() for p in app.rglob("*.ts")) == before


def test_changing_span_naming_renames_otelize_s_spans_and_only_those(app: Path) -> None:
    from otelize.stripping.strip import strip

    before = {p.relative_to(app).as_posix(): p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    instrument(app)
    order = app / "src/services/orderService.ts"
    # one span renamed by hand: that is the user's, whatever the setting
    code = order.read_text()
    assert "withSpan('OrderService.getOrder', " in untyped(code)
    order.write_text(code.replace("('OrderService.getOrder', ", "('orders.get', "))

    write_config(app, {"span_naming": "method"})
    renamed = instrument(app)
    assert "src/services/orderService.ts" in renamed.synthesis.changes
    code = untyped(order.read_text())
    assert "withSpan('createOrder', " in code and "withSpan('OrderService.createOrder', " not in code
    assert "withSpan('orders.get', " in code  # the hand-renamed one stays
    names = {s.name for s in renamed.synthesis.spans if s.file == "src/services/orderService.ts"}
    assert {"createOrder", "orders.get"} <= names and "OrderService.createOrder" not in names
    edited = [k for k in renamed.synthesis.skips if k.symbol == "OrderService.getOrder"]
    assert len(edited) == 1 and "edited by hand" in edited[0].reason
    assert instrument(app, write=False).synthesis.changes == {}  # and it is stable

    # back to the default naming, then strip: everything but the hand-renamed wrapper goes
    (app / ".otelize.yaml").unlink()
    instrument(app)
    assert "withSpan('OrderService.createOrder', " in untyped(order.read_text())
    result = strip(app)
    assert [(k.file, k.symbol) for k in result.kept if "edited" in k.reason] == [("src/services/orderService.ts", "OrderService.getOrder")]
    after = {p.relative_to(app).as_posix(): p.read_bytes() for p in sorted(app.rglob("*")) if p.is_file()}
    assert {p for p in before if after.get(p) != before[p]} == {"src/services/orderService.ts", "package.json"}
