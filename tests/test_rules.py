"""Rule tests, ast-grep style: tests/rules/<rule-id>.yaml lists `valid:` code the
rule must NOT match and `invalid:` code it MUST match.

A case is one of:
- a string: TypeScript placed at src/example.ts;
- `{path: ..., code: ...}`: one file at that path;
- `{files: {path: code, ...}, target: path}`: a small project (for graph rules).

Every case becomes a project in tmp_path (package.json depending on express
unless the case brings its own) that goes through the real pipeline. The rule
under test is made to win on the target file only (top priority, restricted to
that path), so "matched" means "the rule's matcher holds there" while every
other file is classified by the normal rule set, which graph rules look at.
For a function-scoped rule, matched means it holds for some function of the file.

Also here: schema errors name the file and the key.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelize.api import read_sources
from otelize.classify import classify
from otelize.discover import load_project
from otelize.errors import RuleError
from otelize.facts import extract
from otelize.graph import build_graph
from otelize.resources import data_dir
from otelize.ruleset import RuleSet, load_rule_file, load_rules

RULES_DIR = data_dir("rules")
TESTS_DIR = Path(__file__).resolve().parent / "rules"
NOT_RULES = {"profile.yaml", "otel-packages.yaml", "semconv.yaml"}
PACKAGE_JSON = json.dumps({"name": "rule-case", "version": "1.0.0", "dependencies": {"express": "^4.21.0"}})
DEFAULT_PATH = "src/example.ts"

BUILTIN = load_rules()
RULE_IDS = sorted(r.id for r in BUILTIN.all_rules)


def _rule_files() -> list[Path]:
    return sorted(p for p in RULES_DIR.glob("*.yaml") if p.name not in NOT_RULES and not p.name.startswith("_"))


def _test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yaml"))


def _load_cases() -> list[Any]:
    params = []
    for path in _test_files():
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        rid = data.get("id", path.stem)
        for kind in ("valid", "invalid"):
            for i, case in enumerate(data.get(kind) or []):
                params.append(pytest.param(rid, kind, i, case, id=f"{rid}:{kind}[{i}]"))
    return params


def _case_project(case: Any) -> tuple[dict[str, str], str]:
    if isinstance(case, str):
        return {DEFAULT_PATH: case}, DEFAULT_PATH
    if isinstance(case, dict) and "code" in case:
        path = case.get("path", DEFAULT_PATH)
        return {path: case["code"]}, path
    if isinstance(case, dict) and "files" in case:
        files = dict(case["files"])
        target = case.get("target") or next(iter(files))
        assert target in files, f"target {target!r} is not one of the case's files"
        return files, target
    raise AssertionError(f"a case is a string, {{path, code}} or {{files, target}}: {case!r}")


def _boosted(rules: RuleSet, rid: str, target: str) -> RuleSet:
    """The rule set plus `rid` restricted to `target` at top priority."""
    rule = rules.by_id(rid)
    assert rule is not None
    only_here = replace(rule, priority=10**6, match={"all": [{"path": "/" + target}, rule.match]})
    enabled = [only_here] + [r for r in rules.rules if r.id != rid] + [rule]
    enabled.sort(key=lambda r: (-r.priority, r.id))
    return RuleSet(enabled, rules.all_rules, rules.profile_source)


def rule_matches(tmp_path: Path, rid: str, case: Any) -> bool:
    files, target = _case_project(case)
    if "package.json" not in files:
        (tmp_path / "package.json").write_text(PACKAGE_JSON)
    for rel, code in files.items():
        dest = tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(code if rel.endswith(".json") else textwrap.dedent(code))
    project = load_project(tmp_path)
    parsed, problems = read_sources(project)
    assert not problems, f"case does not parse: {problems}"
    facts = {p: extract(pf) for p, pf in parsed.items()}
    graph = build_graph(project, facts)
    cls = classify(_boosted(BUILTIN, rid, target), parsed, facts, graph)
    rule = BUILTIN.by_id(rid)
    if rule.scope == "file":
        return cls.file(target).rules[:1] == (rid,)
    return any(
        cls.functions.get((target, fn.qualname)) is not None and cls.functions[(target, fn.qualname)].rules[:1] == (rid,)
        for fn in facts[target].functions
    )


@pytest.mark.parametrize(("rid", "kind", "index", "case"), _load_cases())
def test_rule_case(tmp_path: Path, rid: str, kind: str, index: int, case: Any) -> None:
    assert rid in RULE_IDS, f"tests/rules: unknown rule id {rid!r}"
    matched = rule_matches(tmp_path, rid, case)
    where = f"tests/rules/{rid}.yaml {kind}[{index}]"
    if kind == "invalid":
        assert matched, f"{where}: rule {rid} should match but did not:\n{_show(case)}"
    else:
        assert not matched, f"{where}: rule {rid} matched but should not:\n{_show(case)}"


def _show(case: Any) -> str:
    return case if isinstance(case, str) else yaml.safe_dump(case, sort_keys=False)


def test_every_rule_has_a_test_file() -> None:
    missing = [p.stem for p in _rule_files() if not (TESTS_DIR / f"{p.stem}.yaml").is_file()]
    assert not missing, f"rules without tests/rules/<id>.yaml: {missing}"
    ids_by_file = {p.stem: load_rule_file(p).id for p in _rule_files()}
    mismatched = {f: i for f, i in ids_by_file.items() if f != i}
    assert not mismatched, f"rule files must be named after their id: {mismatched}"


def test_every_test_file_names_a_known_rule() -> None:
    for path in _test_files():
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        assert path.stem in RULE_IDS, f"{path.name}: no rule with id {path.stem!r}"
        assert data.get("id", path.stem) == path.stem, f"{path.name}: id {data.get('id')!r} does not match the file name"
        assert set(data) <= {"id", "valid", "invalid"}, f"{path.name}: unknown keys {sorted(set(data) - {'id', 'valid', 'invalid'})}"
        assert data.get("valid") and data.get("invalid"), f"{path.name}: needs at least one valid and one invalid case"


# --- schema errors name the file and the key -------------------------------------

GOOD = {"id": "my-rule", "category": "database", "match": {"name": "Repo$"}}


def _write_rule(tmp_path: Path, name: str, data: Any) -> Path:
    d = tmp_path / "my-rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return d


SCHEMA_ERRORS = {
    "unknown-key": ({**GOOD, "prio": 3}, "key `prio`: unknown key"),
    "bad-category": ({**GOOD, "category": "databse"}, "key `category`: must be one of"),
    "missing-match": ({"id": "my-rule", "category": "database"}, "key `match`: is required"),
    "bad-scope": ({**GOOD, "scope": "module"}, "key `scope`"),
    "bad-priority": ({**GOOD, "priority": "high"}, "key `priority`: must be an integer"),
    "bad-regex": ({**GOOD, "match": {"all": [{"name": "(unclosed"}]}}, "key `match.all[0].name`: invalid regular expression"),
    "bad-query": ({**GOOD, "match": {"query": "(call_expression"}}, "key `match.query`: invalid tree-sitter query"),
    "bad-has-query": ({**GOOD, "match": {"has": "(no_such_node) @x"}}, "key `match.has`: invalid tree-sitter query"),
    "unknown-kind": ({**GOOD, "match": {"kind": "klass_declaration"}}, "key `match.kind`: unknown tree-sitter node kind"),
    "unknown-matcher": ({**GOOD, "match": {"any": [{"filename": "x"}]}}, "key `match.any[0].filename`: unknown matcher"),
    "bad-express": ({**GOOD, "match": {"express": "server"}}, "key `match.express`"),
    "bad-graph-relation": ({**GOOD, "match": {"graph": {"calledby": ["http"]}}}, "key `match.graph.calledby`: unknown relation"),
    "bad-graph-category": ({**GOOD, "match": {"graph": {"calls": ["db"]}}}, "key `match.graph.calls`: must name categories"),
    "bad-options": ({**GOOD, "options": ["x"]}, "key `options`: must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_ERRORS))
def test_schema_error_names_file_and_key(tmp_path: Path, case: str) -> None:
    data, expected = SCHEMA_ERRORS[case]
    d = _write_rule(tmp_path, "broken.yaml", data)
    with pytest.raises(RuleError) as exc:
        load_rules([d])
    msg = str(exc.value)
    assert msg.startswith("my-rules/broken.yaml: "), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    d = _write_rule(tmp_path, "broken.yaml", "id: x\ncategory: [unclosed\n")
    with pytest.raises(RuleError, match=r"^my-rules/broken\.yaml: invalid YAML at line \d+$"):
        load_rules([d])


def test_profile_enabling_an_unknown_rule_names_file_and_key(tmp_path: Path) -> None:
    profile = tmp_path / "my-profile.yaml"
    profile.write_text("enabled:\n  - database-driver-import\n  - databse-name\n")
    with pytest.raises(RuleError, match=r"^my-profile\.yaml: key `enabled\[databse-name\]`: no rule with this id$"):
        load_rules(profile=profile)


def test_profile_options_for_an_unknown_rule_names_file_and_key(tmp_path: Path) -> None:
    profile = tmp_path / "my-profile.yaml"
    profile.write_text("enabled: [cache-name]\noptions:\n  cash-name: {db_system_default: redis}\n")
    with pytest.raises(RuleError, match=r"^my-profile\.yaml: key `options\.cash-name`: no rule with this id$"):
        load_rules(profile=profile)


def test_profile_unknown_key(tmp_path: Path) -> None:
    profile = tmp_path / "my-profile.yaml"
    profile.write_text("enable: [cache-name]\n")
    with pytest.raises(RuleError, match=r"^my-profile\.yaml: key `enable`: unknown key"):
        load_rules(profile=profile)


def test_profile_options_reach_the_rule(tmp_path: Path) -> None:
    profile = tmp_path / "my-profile.yaml"
    profile.write_text("enabled: [cache-name]\noptions:\n  cache-name: {db_system_default: redis}\n")
    rules = load_rules(profile=profile)
    assert [r.id for r in rules.rules] == ["cache-name"]
    assert rules.rules[0].options["db_system_default"] == "redis"


def test_user_rule_overrides_builtin_and_is_enabled(tmp_path: Path) -> None:
    d = _write_rule(tmp_path, "mailer.yaml", {"id": "mailer", "category": "external-api", "match": {"name": "^mailer$"},
                                               "options": {"server_address": "smtp.example.com"}})
    rules = load_rules([d])
    assert "mailer" in [r.id for r in rules.rules]
    assert rules.by_id("mailer").source == "my-rules/mailer.yaml"
