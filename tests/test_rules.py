"""Rule tests, ast-grep style: tests/rules/<rule-id>.yaml lists `valid:` code the
rule must NOT match and `invalid:` code it MUST match. The case runner is
`otelize.classify.ruletest` (shared with `otelize rules test DIR`); see its docstring
for the case format and what "matches" means.

Also here: schema errors name the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelize.classify import ruletest
from otelize.errors import RuleError
from otelize.resources import data_dir
from otelize.classify.ruleset import load_rule_file, load_rules

RULES_DIR = data_dir("rules")
TESTS_DIR = Path(__file__).resolve().parent / "rules"
NOT_RULES = {"profile.yaml", "otel-packages.yaml", "otel-instrumentations.yaml", "semconv.yaml"}

BUILTIN = load_rules()
RULE_IDS = sorted(r.id for r in BUILTIN.all_rules)


def _rule_files() -> list[Path]:
    return sorted(p for p in RULES_DIR.glob("*.yaml") if p.name not in NOT_RULES and not p.name.startswith("_"))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in ruletest.load_cases(TESTS_DIR)])
def test_rule_case(tmp_path: Path, case: ruletest.Case) -> None:
    assert case.rule_id in RULE_IDS, f"tests/rules: unknown rule id {case.rule_id!r}"
    result = ruletest.run_case(BUILTIN, case, tmp_path)
    assert result.ok, f"tests/rules/{result.message}"


def test_every_rule_has_a_test_file() -> None:
    ids_by_file = {p.stem: load_rule_file(p).id for p in _rule_files()}
    mismatched = {f: i for f, i in ids_by_file.items() if f != i}
    assert not mismatched, f"rule files must be named after their id: {mismatched}"
    problems = ruletest.check_case_files(TESTS_DIR, set(RULE_IDS))
    assert not problems, problems


def _queries(match: Any) -> list[str]:
    """Every tree-sitter query (`query:`/`has:`) of a rule's `match:` as written."""
    if isinstance(match, dict):
        return [q for k, v in sorted(match.items()) for q in ([v] if k in ("query", "has") else _queries(v))]
    if isinstance(match, list):
        return [q for item in match for q in _queries(item)]
    return []


@pytest.mark.parametrize("tsx", [False, True], ids=["typescript", "tsx-and-javascript"])
def test_every_builtin_query_compiles(tsx: bool) -> None:
    # the shipped rules' queries are compiled on first use, not at load (a user's are
    # compiled at load and refused there): this is what stands for that check
    from otelize.analysis.parse import query

    sources = sorted({q for r in BUILTIN.all_rules for q in _queries(r.match)})
    assert len(sources) >= 5
    for source in sources:
        query(source, tsx)


def test_builtin_rules_leave_queries_to_first_use_and_user_rules_do_not(tmp_path: Path) -> None:
    bad = {"id": "bad-query", "category": "service", "match": {"query": "(no_such_node) @x"}}
    (tmp_path / "bad-query.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(RuleError, match="invalid tree-sitter query"):
        load_rules([tmp_path])
    rule = load_rule_file(tmp_path / "bad-query.yaml", builtin=True)  # trusted: not compiled yet
    assert rule.builtin and rule.matcher is not None


def test_case_file_problems_are_reported(tmp_path: Path) -> None:
    """The checks behind the test above catch each kind of bad test file."""
    (tmp_path / "cache-name.yaml").write_text("id: cache-name\nvalid: ['x']\n")  # no invalid case
    (tmp_path / "nope.yaml").write_text("valid: ['x']\ninvalid: ['y']\n")  # unknown rule
    (tmp_path / "database-name.yaml").write_text("id: other\nvalid: ['x']\ninvalid: ['y']\nextra: 1\n")
    problems = ruletest.check_case_files(tmp_path, {"cache-name", "database-name", "entrypoint-app"})
    assert problems == [
        "entrypoint-app: no test file database-name/entrypoint-app.yaml".replace("database-name", tmp_path.name),
        "cache-name.yaml: needs at least one valid and one invalid case",
        "database-name.yaml: id 'other' does not match the file name",
        "database-name.yaml: unknown keys ['extra']",
        "nope.yaml: no rule with id 'nope'",
    ]


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
    "matcher-did-you-mean": ({**GOOD, "match": {"not": {"klass": "Repo"}}}, "key `match.not.klass`: unknown matcher (did you mean `class`?)"),
    "matcher-no-close-key": ({**GOOD, "match": {"zzz": 1}}, "key `match.zzz`: unknown matcher (allowed: imports, path"),
    "bad-params-names": ({**GOOD, "match": {"params": {"names": "(err"}}}, "key `match.params.names`: invalid regular expression"),
    "bad-params-count": ({**GOOD, "match": {"params": {"count": "two"}}}, "key `match.params.count`: must be an integer"),
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
    with pytest.raises(RuleError, match=r"^my-rules/broken\.yaml: invalid YAML at line \d+ column \d+: while parsing a flow sequence; did not find expected "):
        load_rules([d])


@pytest.mark.parametrize(
    "text, message",
    [
        # enabling an unknown rule
        ("enabled:\n  - database-driver-import\n  - databse-name\n", r"key `enabled\[databse-name\]`: no rule with this id$"),
        # options for an unknown rule
        ("enabled: [cache-name]\noptions:\n  cash-name: {db_system_default: redis}\n", r"key `options\.cash-name`: no rule with this id$"),
        # an unknown key
        ("enable: [cache-name]\n", r"key `enable`: unknown key"),
    ],
    ids=["unknown-enabled-rule", "options-of-unknown-rule", "unknown-key"],
)
def test_profile_error_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    profile = tmp_path / "my-profile.yaml"
    profile.write_text(text)
    with pytest.raises(RuleError, match=r"^my-profile\.yaml: " + message):
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


# --- typed matchers: one class per `match:` key -----------------------------------


def test_every_documented_match_key_has_one_matcher_class() -> None:
    from otelize.classify.matchers import MATCHERS

    readme = (RULES_DIR / "README.md").read_text("utf-8")
    table = readme[readme.index("| key "):].split("\n\n", 1)[0]  # the matcher table
    documented = set(re.findall(r"^\| `(\w+)` +\|", table, re.M)) | {"all", "any", "not"}
    assert documented == set(MATCHERS)
    assert all(cls.key == key for key, cls in MATCHERS.items())


def test_a_rule_is_compiled_once_on_load_and_replace_recompiles() -> None:
    from dataclasses import replace

    from otelize.classify.matchers import Graph
    from otelize.classify.ruleset import parse_rule

    rule = parse_rule({**GOOD, "match": {"all": [{"name": "Repo$"}, {"not": {"exported": False}}]}}, "x.yaml")
    assert not rule.uses_graph
    graphed = replace(rule, match={"any": [{"name": "x"}, {"not": {"graph": {"calls": ["database"]}}}]})
    assert graphed.uses_graph and not rule.uses_graph
    assert isinstance(graphed.matcher.parts[1].inner, Graph)


def test_compile_regex_is_the_one_regex_seam() -> None:
    from otelize.classify.matchers import compile_regex

    test = compile_regex("(?i)repo$")
    assert test("UserRepo") and not test("Repository")
    with pytest.raises(ValueError):
        compile_regex("(")
