"""`otelize rules list` and `otelize rules test DIR` (user rules with their valid/invalid cases)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from otelize.cli.main import cli
from otelize.resources import data_dir

MAILER_RULE = {
    "id": "mailer", "category": "external-api", "priority": 80,
    "match": {"all": [{"path": "**/mailer.ts"}, {"class": "^Mailer$"}]},
    "options": {"server_address": "smtp.example.com"},
}
MAILER_CASES = {
    "id": "mailer",
    "valid": [
        {"path": "src/notify/other.ts", "code": "export class Mailer {\n  async send() { return 1; }\n}\n"},
        {"path": "src/notify/mailer.ts", "code": "export class Postman {}\n"},
    ],
    "invalid": [{"path": "src/notify/mailer.ts", "code": "export class Mailer {\n  async send() { return 1; }\n}\n"}],
}


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def rule_dir(tmp_path: Path, rule: dict = MAILER_RULE, cases: dict | None = MAILER_CASES, name: str = "my-rules") -> Path:
    d = tmp_path / name
    (d / "tests").mkdir(parents=True)
    (d / f"{rule['id']}.yaml").write_text(yaml.safe_dump(rule))
    if cases is not None:
        (d / "tests" / f"{rule['id']}.yaml").write_text(yaml.safe_dump(cases))
    return d


# --- rules list ---------------------------------------------------------------------------


def rows(*args: str) -> dict[str, dict]:
    code, out, err = run("rules", "list", *args, "--format", "json")
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


def test_list_shows_every_builtin_rule_with_its_source(tmp_path: Path) -> None:
    listed = rows(str(tmp_path))
    from otelize.classify.ruleset import DATA_FILES

    builtin = sorted(p.stem for p in data_dir("rules").glob("*.yaml") if p.name not in DATA_FILES)
    assert sorted(listed) == builtin
    assert listed["cache-name"] == {"id": "cache-name", "category": "cache", "scope": "file", "priority": listed["cache-name"]["priority"],
                                    "enabled": True, "source": "cache-name.yaml"}
    assert listed["error-middleware"]["scope"] == "function"


def test_list_text_table(tmp_path: Path) -> None:
    code, out, _ = run("rules", "list", str(tmp_path), "--rules", str(rule_dir(tmp_path)))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "category", "scope", "enabled", "source"]
    assert "mailer external-api file yes my-rules/mailer.yaml" in [" ".join(line.split()) for line in lines]


def test_list_marks_rules_the_profile_leaves_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(data_dir("rules"), rules)
    (rules / "profile.yaml").write_text("enabled: [cache-name]\n")
    monkeypatch.setattr("otelize.resources.data_dir", lambda name: rules if name == "rules" else data_dir(name))
    listed = rows(str(tmp_path))
    assert {rid for rid, r in listed.items() if r["enabled"]} == {"cache-name"}
    assert listed["database-name"]["enabled"] is False


def test_user_rule_overrides_a_builtin_id_and_is_enabled(tmp_path: Path) -> None:
    d = rule_dir(tmp_path, {**MAILER_RULE, "id": "cache-name", "category": "database"}, cases=None)
    listed = rows(str(tmp_path), "--rules", str(d))
    assert listed["cache-name"]["source"] == "my-rules/cache-name.yaml"
    assert listed["cache-name"]["category"] == "database"
    assert listed["cache-name"]["enabled"] is True


def test_list_reads_rules_from_the_config_file(tmp_path: Path) -> None:
    rule_dir(tmp_path)
    (tmp_path / ".otelize.yaml").write_text("rules: [my-rules]\n")
    assert rows(str(tmp_path))["mailer"]["source"] == "my-rules/mailer.yaml"


def test_list_with_a_bad_rule_is_one_line_exit_2(tmp_path: Path) -> None:
    d = rule_dir(tmp_path, {**MAILER_RULE, "category": "mail"}, cases=None)
    code, out, err = run("rules", "list", "--rules", str(d))
    assert code == 2
    assert err.startswith("otelize: error: my-rules/mailer.yaml: key `category`: must be one of") and err.count("\n") == 1


# --- rules test ---------------------------------------------------------------------------


def test_rules_test_passes(tmp_path: Path) -> None:
    code, out, err = run("rules", "test", str(rule_dir(tmp_path)))
    assert code == 0, out + err
    assert out == ""
    assert "otelize: 3 passed, 0 failed, 0 problem(s) with the test files" in err


def test_rules_test_verbose_lists_each_case(tmp_path: Path) -> None:
    code, _, err = run("-v", "rules", "test", str(rule_dir(tmp_path)))
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith("ok")] == [
        "ok    mailer:valid[0]", "ok    mailer:valid[1]", "ok    mailer:invalid[0]"]


def test_rules_test_fails_on_a_wrong_case(tmp_path: Path) -> None:
    cases = {**MAILER_CASES, "valid": MAILER_CASES["valid"] + MAILER_CASES["invalid"]}  # must not match, but does
    code, out, err = run("rules", "test", str(rule_dir(tmp_path, cases=cases)))
    assert code == 1
    assert out.startswith("FAIL  mailer:valid[2]: mailer.yaml valid[2]: rule mailer matched but should not:")
    assert "1 failed" in err


def test_rules_test_uses_the_rule_even_when_builtin_rules_would_win(tmp_path: Path) -> None:
    """The rule under test is checked on its own matcher (boosted), not on who wins overall."""
    rule = {**MAILER_RULE, "priority": 1}  # lower than every built-in rule
    cases = {"id": "mailer", "valid": MAILER_CASES["valid"],
             "invalid": [{"path": "src/notify/mailer.ts",
                          "code": "import axios from 'axios';\nexport class Mailer {\n  async send() { return axios.get('x'); }\n}\n"}]}
    code, out, err = run("rules", "test", str(rule_dir(tmp_path, rule, cases)))
    assert code == 0, out + err


def test_rules_test_reports_a_rule_without_cases(tmp_path: Path) -> None:
    code, out, _ = run("rules", "test", str(rule_dir(tmp_path, cases=None)))
    assert code == 1
    assert "FAIL  mailer: no test file tests/mailer.yaml" in out


def test_rules_test_cases_option_and_malformed_case(tmp_path: Path) -> None:
    d = rule_dir(tmp_path, cases=None)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "mailer.yaml").write_text(yaml.safe_dump({**MAILER_CASES, "invalid": [{"oops": 1}]}))
    code, out, _ = run("rules", "test", str(d), "--cases", str(cases))
    assert code == 1
    assert "FAIL  mailer:invalid[0]: mailer.yaml invalid[0]: a case is a string, {path, code} or {files, target}" in out


def test_rules_test_bad_rule_file_exit_2(tmp_path: Path) -> None:
    code, _, err = run("rules", "test", str(rule_dir(tmp_path, {**MAILER_RULE, "match": {"klass": "x"}})))
    assert code == 2
    assert err.startswith("otelize: error: my-rules/mailer.yaml: key `match.klass`: unknown matcher")


def test_rules_test_missing_folder(tmp_path: Path) -> None:
    code, _, err = run("rules", "test", str(tmp_path / "nope"))
    assert (code, err) == (2, f"otelize: error: {tmp_path / 'nope'}: no such rule folder\n")
