"""Resource bombs in what a repository supplies: rules, `.otelize.yaml`, package.json,
tsconfig.json, the source folder. Each gives a one-line error (exit 2) or is skipped;
none hangs, exhausts memory or prints a traceback.

The runs that would hang on an unprotected otelize (a backtracking regex, a FIFO) go
through a subprocess with a timeout, so a regression fails instead of stalling the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

BOMB = """\
id: bomb
category: service
match: {name: '^zzz$'}
options:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def run(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("otelize: error: "), err
    return lines[0]


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(REPO / "sample-app", root, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return root


# --- YAML aliases ----------------------------------------------------------------------


def test_alias_bomb_in_a_rule_is_refused(app: Path, tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "bomb.yaml").write_text(BOMB)
    code, _, err = run("plan", str(app), "--rules", str(rules))
    assert code == 2
    assert one_error(err) == "otelize: error: my-rules/bomb.yaml: YAML aliases (`*name`) are not allowed (line 6)"


def test_alias_in_otelize_yaml_is_refused(app: Path) -> None:
    (app / ".otelize.yaml").write_text("exclude: &x ['src/legacy/**']\ninclude: *x\n")
    code, _, err = run("plan", str(app))
    assert code == 2
    assert one_error(err) == "otelize: error: .otelize.yaml: YAML aliases (`*name`) are not allowed (line 2)"


def test_alias_bomb_in_rule_test_cases_is_capped(tmp_path: Path) -> None:
    """Test cases may share snippets by alias (yaml.safe_dump writes them), but not explode."""
    from otelize.project import yamlio

    shared = {"path": "src/a.ts", "code": "export const a = 1;\n"}
    dumped = yaml.safe_dump({"id": "x", "valid": [shared], "invalid": [shared]})
    assert "*" in dumped and yamlio.load(dumped, aliases=True)["invalid"] == [shared]
    with pytest.raises(yamlio.AliasError, match="expand to more than"):
        yamlio.load(BOMB, aliases=True)


# --- rule regexes: linear time ---------------------------------------------------------


def test_backtracking_regex_in_a_rule_runs_in_linear_time(app: Path, tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "slow.yaml").write_text("id: slow\ncategory: service\nscope: function\nmatch: {name: '^(a+)+$'}\n")
    (app / "src" / "services" / "slow.ts").write_text(f"export function {'a' * 40}b(): number {{\n  return 1;\n}}\n")
    code, out, err = run("plan", str(app), "--rules", str(rules), timeout=240)  # Python's re: 2^40 steps
    assert code == 0, err


def test_backtracking_regex_in_a_query_predicate_runs_in_linear_time(app: Path, tmp_path: Path) -> None:
    """py-tree-sitter evaluates `#match?` with Python's re; otelize evaluates it with RE2."""
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "slowq.yaml").write_text(
        "id: slowq\ncategory: service\nscope: function\n"
        "match: {has: '((identifier) @f (#match? @f \"^(a+)+$\"))'}\n"
    )
    (app / "src" / "services" / "slow.ts").write_text(f"export function {'a' * 40}b(): number {{\n  return 1;\n}}\n")
    code, out, err = run("plan", str(app), "--rules", str(rules), timeout=240)
    assert code == 0, err


@pytest.mark.parametrize("pred, text, expected", [
    ("match?", "abc", True), ("match?", "xbc", False), ("not-match?", "abc", False), ("not-match?", "xbc", True),
])
def test_query_predicates_keep_their_meaning(pred: str, text: str, expected: bool) -> None:
    from otelize.analysis.parse import captures, parse_source, query

    pf = parse_source("a.ts", f"const {text} = 1;\n".encode())
    got = captures(query(f'((identifier) @f (#{pred} @f "^a"))'), pf.root)
    assert bool(got.get("f")) is expected


def test_a_query_predicate_regex_outside_re2_is_refused(app: Path, tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "q.yaml").write_text("id: q\ncategory: service\nmatch: {query: '((identifier) @f (#match? @f \"(?<=a)b\"))'}\n")
    code, _, err = run("plan", str(app), "--rules", str(rules))
    assert code == 2 and "key `match.query`: invalid regular expression (RE2 syntax" in one_error(err)


def test_regex_outside_re2_is_refused_on_load(app: Path, tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "backref.yaml").write_text("id: backref\ncategory: service\nmatch: {name: '(a)\\1'}\n")
    code, _, err = run("plan", str(app), "--rules", str(rules))
    assert code == 2
    line = one_error(err)  # and no RE2 log line on stderr
    assert line.startswith("otelize: error: my-rules/backref.yaml: key `match.name`: invalid regular expression (RE2 syntax")


def test_params_names_regex_is_checked_too(app: Path, tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "p.yaml").write_text("id: p\ncategory: service\nscope: function\nmatch: {params: {names: '(?=x)'}}\n")
    code, _, err = run("plan", str(app), "--rules", str(rules))
    assert code == 2 and "key `match.params.names`: invalid regular expression" in one_error(err)


# --- discovery reads regular files only -------------------------------------------------


def test_a_fifo_named_like_a_source_file_is_skipped(app: Path) -> None:
    os.mkfifo(app / "src" / "x.ts")
    code, out, err = run("plan", str(app), "--format", "json", timeout=240)
    assert code == 0, err
    import json

    paths = [f["path"] for f in json.loads(out)["files"]]
    assert "src/index.ts" in paths and "src/x.ts" not in paths


def test_a_fifo_swapped_in_after_discovery_is_not_read(tmp_path: Path, app: Path) -> None:
    from otelize.project.walk import read_regular

    os.mkfifo(tmp_path / "pipe.ts")
    with pytest.raises(OSError):
        read_regular(tmp_path / "pipe.ts")


# --- deeply nested JSON -----------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 100_000])
@pytest.mark.parametrize("name", ["package.json", "tsconfig.json"])
def test_deeply_nested_json_is_a_one_line_error(app: Path, name: str, depth: int) -> None:
    data = (app / name).read_text().rstrip()
    assert data.endswith("}")
    (app / name).write_text(data[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}\n")
    code, _, err = run("plan", str(app))
    assert code == 2
    shown = (app / name).as_posix() if name == "package.json" else name  # package.json as the app was named
    assert one_error(err) == f"otelize: error: {shown}: nested more than 64 levels deep"
