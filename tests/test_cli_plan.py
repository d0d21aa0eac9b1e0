"""`otelize plan` and `otelize graph` on the sample app, and the CLI's error handling."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelize.plan.registry import CATEGORIES
from otelize.cli.main import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO_ROOT / "sample-app"

CONTRACT_ROUTES = [
    ("GET", "/health"),
    ("POST", "/api/users"),
    ("GET", "/api/users/:id"),
    ("GET", "/api/products"),
    ("GET", "/api/products/:id"),
    ("GET", "/api/products/:id/inventory"),
    ("POST", "/api/orders"),
    ("GET", "/api/orders/:id"),
]
SAMPLE_APP_WORKERS = ("dependency", "config", "http", "service", "database", "cache", "external-api")  # what the sample app uses


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def plan_json() -> dict:
    code, out, err = run("plan", str(SAMPLE_APP), "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_plan_json_snapshot(snapshot) -> None:
    code, out, err = run("plan", str(SAMPLE_APP), "--format", "json")
    assert code == 0, err
    assert out == snapshot


def test_plan_json_is_byte_identical_across_runs() -> None:
    first = run("plan", str(SAMPLE_APP), "--format", "json")
    second = run("plan", str(SAMPLE_APP), "--format", "json")
    assert first == second


def test_plan_app(plan_json: dict) -> None:
    assert plan_json["app"]["entry"] == "src/index.ts"
    assert plan_json["app"]["module"] == "commonjs"
    assert plan_json["app"]["express"] == 4
    assert plan_json["unparsable"] == []


def test_plan_has_every_contract_route_with_its_full_path(plan_json: dict) -> None:
    routes = {(r["method"], r["path"]): r for r in plan_json["routes"]}
    missing = [r for r in CONTRACT_ROUTES if r not in routes]
    assert not missing, f"routes missing from the plan: {missing}"
    assert routes[("GET", "/health")]["file"] == "src/index.ts"
    assert routes[("POST", "/api/orders")]["file"] == "src/routes/orders.ts"
    assert routes[("GET", "/api/orders/:id")]["handler"] == "ordersController.getOrder"
    for r in plan_json["routes"]:
        assert set(r) >= {"method", "path", "file", "line", "handler"}
        assert isinstance(r["line"], int) and r["line"] > 0


def test_plan_file_categories(plan_json: dict) -> None:
    cats = {f["path"]: f["category"] for f in plan_json["files"]}
    for path, cat in cats.items():
        if path.startswith("src/routes/"):
            assert cat == "http", path
        elif path.startswith("src/services/"):
            assert cat == "service", path
        elif path.startswith("src/middleware/"):
            assert cat == "middleware", path
    assert any(p.startswith("src/routes/") for p in cats)
    assert cats["src/utils/database.ts"] == "database"
    assert cats["src/utils/cache.ts"] == "cache"
    assert cats["src/utils/externalAPI.ts"] == "external-api"
    assert cats["src/index.ts"] == "entrypoint"
    for f in plan_json["files"]:
        assert (f["category"] == "other") == (f["rules"] == []), f


def test_plan_paths_are_relative_posix(plan_json: dict) -> None:
    paths = [f["path"] for f in plan_json["files"]] + [r["file"] for r in plan_json["routes"]]
    paths += [p for t in plan_json["tasks"] for p in t["files"]]
    for p in paths:
        assert not p.startswith("/") and "\\" not in p, p
    assert str(SAMPLE_APP) not in json.dumps(plan_json)


def test_plan_functions_list_the_error_handler(plan_json: dict) -> None:
    fns = {(f["file"], f["function"]): f for f in plan_json["functions"]}
    eh = fns[("src/middleware/errorHandler.ts", "errorHandler")]
    assert "error-handler" in eh["tags"]
    assert eh["rules"] == ["error-middleware"]


def test_plan_tasks(plan_json: dict) -> None:
    tasks = plan_json["tasks"]
    assert {t["worker"] for t in tasks} == set(SAMPLE_APP_WORKERS)
    assert [t["id"] for t in tasks[:2]] == ["dependency", "config"]
    assert tasks[1]["depends_on"] == ["dependency"]
    for t in tasks[2:]:
        assert "config" in t["depends_on"], t
    ids = [t["id"] for t in tasks]
    assert len(ids) == len(set(ids))
    for i, t in enumerate(tasks):  # topological: a dependency comes earlier
        for dep in t["depends_on"]:
            assert ids.index(dep) < i


def test_plan_text_format() -> None:
    code, out, err = run("plan", str(SAMPLE_APP))
    assert code == 0, err
    assert "entry point:    src/index.ts" in out
    assert "express:        4" in out
    assert re.search(r"^  POST\s+/api/orders\s+→ src/routes/orders\.ts:\d+ <anonymous>$", out, re.M), out
    assert re.search(r"^  GET\s+/api/orders/:id\s+→ src/routes/orders\.ts:\d+ ordersController\.getOrder$", out, re.M)
    assert re.search(r"^    src/utils/database\.ts\s+database-class$", out, re.M)
    assert re.search(r"^   1\. dependency$", out, re.M)
    assert re.search(r"^   2\. config  \(after dependency\)$", out, re.M)


# --- graph --------------------------------------------------------------------


def test_graph_mermaid() -> None:
    code, out, err = run("graph", str(SAMPLE_APP))
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(("flowchart", "graph")), first
    plan = json.loads(run("plan", str(SAMPLE_APP), "--format", "json")[1])
    for cat in {f["category"] for f in plan["files"]} - {"other"}:
        assert re.search(rf"^  classDef {cat.replace('-', '_')} fill:#[0-9a-f]{{6}}", out, re.M), cat
    # other modules that lead nowhere classified are left out
    assert "src/models.ts" not in out
    # route -> handler module -> service -> client
    ids = dict(re.findall(r"^  (n\d+)\[\"([^<\"]+)<br/>", out, re.M))
    by_path = {p: i for i, p in ids.items()}
    assert f"{by_path['src/services/orderService.ts']} --> {by_path['src/utils/database.ts']}" in out
    assert run("graph", str(SAMPLE_APP)) == (code, out, err)


def test_graph_mermaid_ids_follow_sorted_paths() -> None:
    out = run("graph", str(SAMPLE_APP))[1]
    nodes = re.findall(r"^  n(\d+)\[\"([^<\"]+)<br/>", out, re.M)
    assert [int(i) for i, _ in nodes] == list(range(len(nodes)))
    assert [p for _, p in nodes] == sorted(p for _, p in nodes)


DOT_NODE = re.compile(r'^  ([nr]\d+) \[(label="[^"]*"(?:, [a-z]+=(?:"[^"]*"|[a-z]+))*)\];$')
DOT_EDGE = re.compile(r"^  ([nr]\d+) -> ([nr]\d+)(?: \[style=dashed\])?;$")


def test_graph_dot_parses_as_digraph() -> None:
    code, out, err = run("graph", str(SAMPLE_APP), "--format", "dot")
    assert code == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"digraph \w+ \{", lines[0])
    assert lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[1:-1]:
        if m := DOT_NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := DOT_EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert re.fullmatch(r"  (rankdir=LR|node \[.*\]);", line), line
    assert edges and all(u in nodes and v in nodes for u, v in edges)
    assert all("fillcolor=" in attrs for attrs in nodes.values())


# --- errors -------------------------------------------------------------------


def _project(
    tmp_path: Path, package_json: str | None = '{"dependencies": {"express": "^4.19.0"}}', files: dict[str, str] | None = None
) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    if package_json is not None:
        (tmp_path / "package.json").write_text(package_json)
    for name, text in (files or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


BAD_INPUTS = {
    "missing-path": (lambda tmp: tmp / "nope", "no such directory"),
    "no-package-json": (lambda tmp: _project(tmp, None), "no package.json"),
    "invalid-package-json": (lambda tmp: _project(tmp, '{"dependencies": {"express": "4"},}'), "package.json: invalid JSON at line 1"),
    "invalid-tsconfig": (
        lambda tmp: _project(tmp, files={"tsconfig.json": '{\n  // comments are fine\n  "compilerOptions": {"strict": true,,}\n}'}),
        "tsconfig.json: invalid JSON at line 3",
    ),
    "not-express": (lambda tmp: _project(tmp, '{"dependencies": {"fastify": "4"}}'), "not an Express app"),
    "package-json-array": (lambda tmp: _project(tmp, "[]"), "package.json: top level must be a JSON object"),
}


@pytest.mark.parametrize("command", ["plan", "graph"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str, command: str) -> None:
    make, expected = BAD_INPUTS[case]
    code, out, err = run(command, str(make(tmp_path)))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("otelize: error: "), err
    assert expected in err
    assert "Traceback" not in err


def test_bad_rule_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "x.yaml").write_text("id: x\ncategory: databse\nmatch: {name: x}\n")
    code, out, err = run("plan", str(SAMPLE_APP), "--rules", str(rules))
    assert code == 2
    assert err == "otelize: error: my-rules/x.yaml: key `category`: must be one of " + ", ".join(
        CATEGORIES
    ) + " (no worker in otelize.plan.registry serves `databse`)\n"


def test_rules_readme_worked_example(tmp_path: Path) -> None:
    """rules/README.md: an in-house mailer.ts becomes external-api with server_address."""
    root = _project(
        tmp_path / "app",
        files={
            "src/notify/mailer.ts": "import net from 'node:net';\n\nexport class Mailer {\n"
            "  async send(to: string): Promise<void> {\n    net.connect(587, 'localhost').end(to);\n  }\n}\n",
        },
    )
    rules = tmp_path / "otelize-rules"
    rules.mkdir()
    (rules / "mailer.yaml").write_text(
        "id: mailer\ncategory: external-api\nscope: file\npriority: 80\n"
        "match:\n  all:\n    - path: \"**/mailer.ts\"\n    - class: \"^Mailer$\"\n"
        "options:\n  server_address: smtp.example.com\ntags: [smtp]\n"
    )
    data = json.loads(run("plan", str(root), "--format", "json")[1])
    assert data["files"] == [{"path": "src/notify/mailer.ts", "category": "other", "rules": []}]
    code, out, err = run("plan", str(root), "--rules", str(rules), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["files"] == [{"path": "src/notify/mailer.ts", "category": "external-api", "rules": ["mailer"]}]
    task = next(t for t in data["tasks"] if t["worker"] == "external-api")
    assert task["files"] == ["src/notify/mailer.ts"]
    assert task["options"] == {"server_address": "smtp.example.com"}


def test_bad_input_via_real_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "otelize", "plan", str(tmp_path / "does-not-exist")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("otelize: error: ")
    assert "Traceback" not in proc.stderr


def test_unparsable_files_are_listed_and_plan_still_exits_0(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        files={
            "src/index.ts": "import express from 'express';\nconst app = express();\n"
            "app.get('/x', (req, res) => res.end());\napp.listen(3000);\n",
            "src/broken.ts": "export function (((( {\n",
            "src/binary.ts": "\x00\x01",
        },
    )
    code, out, err = run("plan", str(root), "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    unparsable = {u["file"]: u["reason"] for u in data["unparsable"]}
    assert set(unparsable) == {"src/broken.ts", "src/binary.ts"}
    assert "could not parse it at line 1" in unparsable["src/broken.ts"]
    assert "binary" in unparsable["src/binary.ts"]
    assert [(r["method"], r["path"]) for r in data["routes"]] == [("GET", "/x")]
    code, text, err = run("plan", str(root))
    assert code == 0
    assert "unparsable (2), left alone:" in text


# --- help ---------------------------------------------------------------------


def test_help_documents_exit_codes() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for line in ("0  ok", "1  check found changes / verify incomplete", "2  bad input", "3  partial"):
        assert line in out


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_a_one_line_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    example = re.compile(rf"^\s*(Examples?:\s*)?otelize {command} \S")
    assert any(example.match(line) for line in out.splitlines()), out


# --- scale --------------------------------------------------------------------


def _load_gen_app():  # noqa: ANN202
    """tests/bench/gen_app.py, imported by path (tests/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parent / "bench" / "gen_app.py"
    if not path.is_file():
        pytest.skip("tests/bench/gen_app.py (the synthetic app generator) is not in this checkout yet")
    spec = importlib.util.spec_from_file_location("otelize_bench_gen_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_plan_on_1000_generated_files(tmp_path: Path) -> None:
    from otelize.api import analyze
    from otelize.report.plan import format_json

    gen = _load_gen_app()
    summary = gen.generate(tmp_path, 1000, 0)
    assert summary["files"] >= 990
    domains = sorted(p.stem for p in (tmp_path / "src" / "routes").glob("*.ts"))
    assert len(domains) == gen.domain_count(1000)

    a = analyze(tmp_path)
    assert a.unparsable == []
    n = len(domains)
    # every domain: one route file, mounted at /api/<domain>, with 3 to 6 routes
    api_routes = [r for r in a.graph.routes if r.path != "/health"]
    assert 3 * n <= len(api_routes) <= 6 * n
    assert {r.path.split("/")[2] for r in api_routes} == set(domains)
    for r in api_routes:
        assert r.file == f"src/routes/{r.path.split('/')[2]}.ts", r
    # dependency, config, the error handler, then service/database/cache/external-api per domain
    workers = [t.worker for t in a.tasks]
    assert len(a.tasks) == 3 + 4 * n
    for worker in ("service", "database", "cache", "external-api"):
        assert workers.count(worker) == n, worker
    data = json.loads(format_json(a))
    assert len(data["files"]) == len(a.project.files)
    assert len(data["tasks"]) == len(a.tasks)
