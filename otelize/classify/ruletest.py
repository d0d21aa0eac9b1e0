"""Rule tests, ast-grep style, for built-in and user rules.

`<cases-dir>/<rule-id>.yaml` lists `valid:` code the rule must NOT match and
`invalid:` code it MUST match. A case is one of:

- a string: TypeScript placed at src/example.ts;
- `{path: ..., code: ...}`: one file at that path;
- `{files: {path: code, ...}, target: path}`: a small project (for graph rules).

Every case becomes a project in a scratch folder (a package.json depending on
express unless the case brings its own) that goes through the real pipeline.
The rule under test is made to win on the target file only (top priority,
restricted to that path), so "matched" means "the rule's matcher holds there"
while every other file is classified by the normal rule set, which graph
rules look at. For a function-scoped rule, matched means it holds for some
function of the file.

Used by tests/test_rules.py (built-in rules, tests/rules/) and by
`otelize rules test DIR` (user rules, DIR/tests/).
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from otelize.project import yamlio

from otelize.classify.ruleset import RuleSet

PACKAGE_JSON = json.dumps({"name": "rule-case", "version": "1.0.0", "dependencies": {"express": "^4.21.0"}})
DEFAULT_PATH = "src/example.ts"
CASE_KEYS = {"id", "valid", "invalid"}


@dataclass(frozen=True)
class Case:
    rule_id: str
    kind: str  # valid | invalid
    index: int
    case: Any
    source: str  # the test file

    @property
    def name(self) -> str:
        return f"{self.rule_id}:{self.kind}[{self.index}]"


@dataclass(frozen=True)
class CaseResult:
    case: Case
    ok: bool
    message: str = ""


def load_cases(cases_dir: Path) -> list[Case]:
    """Every case of every `<id>.yaml` in `cases_dir`, in file order."""
    cases = []
    for path in sorted(cases_dir.glob("*.yaml")):
        try:
            data = yamlio.load(path.read_text("utf-8"), aliases=True) or {}
        except yaml.YAMLError:
            continue  # reported by check_case_files
        rid = data.get("id", path.stem) if isinstance(data, dict) else path.stem
        for kind in ("valid", "invalid"):
            items = data.get(kind) if isinstance(data, dict) else None
            for i, case in enumerate(items or []):
                cases.append(Case(rid, kind, i, case, path.name))
    return cases


def check_case_files(cases_dir: Path, rule_ids: set[str]) -> list[str]:
    """Problems with the test files themselves: a rule of `rule_ids` without a test file,
    a test file for an unknown rule, a wrong id, unknown keys, no valid or no invalid case."""
    problems = []
    files = {p.stem: p for p in sorted(cases_dir.glob("*.yaml"))} if cases_dir.is_dir() else {}
    for rid in sorted(rule_ids - set(files)):
        problems.append(f"{rid}: no test file {cases_dir.name}/{rid}.yaml")
    for stem, path in files.items():
        try:
            data = yamlio.load(path.read_text("utf-8"), aliases=True) or {}
        except yamlio.AliasError as exc:
            problems.append(f"{path.name}: {exc.message}")
            continue
        except yaml.YAMLError:
            problems.append(f"{path.name}: invalid YAML")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: must be a mapping with `valid` and `invalid`")
            continue
        if stem not in rule_ids:
            problems.append(f"{path.name}: no rule with id {stem!r}")
        if data.get("id", stem) != stem:
            problems.append(f"{path.name}: id {data.get('id')!r} does not match the file name")
        if not set(data) <= CASE_KEYS:
            problems.append(f"{path.name}: unknown keys {sorted(set(data) - CASE_KEYS)}")
        if not (data.get("valid") and data.get("invalid")):
            problems.append(f"{path.name}: needs at least one valid and one invalid case")
    return problems


def case_project(case: Any) -> tuple[dict[str, str], str]:
    """(files, target) of a case. Raises ValueError for a malformed case."""
    if isinstance(case, str):
        return {DEFAULT_PATH: case}, DEFAULT_PATH
    if isinstance(case, dict) and "code" in case:
        path = case.get("path", DEFAULT_PATH)
        return {path: case["code"]}, path
    if isinstance(case, dict) and "files" in case:
        files = dict(case["files"])
        target = case.get("target") or next(iter(files))
        if target not in files:
            raise ValueError(f"target {target!r} is not one of the case's files")
        return files, target
    raise ValueError(f"a case is a string, {{path, code}} or {{files, target}}: {case!r}")


def boosted(rules: RuleSet, rid: str, target: str) -> RuleSet:
    """The rule set plus `rid` restricted to `target` at top priority."""
    rule = rules.by_id(rid)
    if rule is None:
        raise ValueError(f"no rule with id {rid!r}")
    only_here = replace(rule, priority=10**6, match={"all": [{"path": "/" + target}, rule.match]})
    enabled = [only_here] + [r for r in rules.rules if r.id != rid] + [rule]
    enabled.sort(key=lambda r: (-r.priority, r.id))
    return RuleSet(enabled, rules.all_rules, rules.profile_source)


def rule_matches(rules: RuleSet, rid: str, case: Any, workdir: Path) -> bool:
    """Does rule `rid` match the case's target? `workdir` must be an empty folder."""
    from otelize.run.analysis import read_sources
    from otelize.classify.engine import classify
    from otelize.project.discover import load_project
    from otelize.analysis.facts import extract
    from otelize.analysis.graph import build_graph
    from otelize.analysis.parse import parse_source

    files, target = case_project(case)
    if "package.json" not in files:
        (workdir / "package.json").write_text(PACKAGE_JSON)
    for rel, code in files.items():
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(code if rel.endswith(".json") else textwrap.dedent(code))
    project = load_project(workdir, include=(), exclude=())
    sources, problems = read_sources(project)
    parsed = {p: parse_source(p, data) for p, data in sources}
    problems += [(p, pf.problem or "syntax error") for p, pf in parsed.items() if pf.problem or pf.errors]
    if problems:
        raise ValueError(f"case does not parse: {problems}")
    facts = {p: extract(pf) for p, pf in parsed.items()}
    graph = build_graph(project, facts)
    cls = classify(boosted(rules, rid, target), parsed, facts, graph)
    rule = rules.by_id(rid)
    assert rule is not None
    if rule.scope == "file":
        return cls.file(target).rules[:1] == (rid,)
    return any(
        (d := cls.functions.get((target, fn.qualname))) is not None and d.rules[:1] == (rid,)
        for fn in facts[target].functions
    )


def show(case: Any) -> str:
    return case if isinstance(case, str) else yaml.safe_dump(case, sort_keys=False)


def run_case(rules: RuleSet, case: Case, workdir: Path | None = None) -> CaseResult:
    """Run one case; `workdir` (empty) defaults to a fresh temporary folder."""
    from otelize.errors import OtelizeError

    if rules.by_id(case.rule_id) is None:
        return CaseResult(case, False, f"{case.source}: no rule with id {case.rule_id!r}")
    try:
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="otelize-rule-") as tmp:
                matched = rule_matches(rules, case.rule_id, case.case, Path(tmp))
        else:
            matched = rule_matches(rules, case.rule_id, case.case, workdir)
    except (ValueError, OtelizeError) as exc:
        return CaseResult(case, False, f"{case.source} {case.kind}[{case.index}]: {exc}")
    where = f"{case.source} {case.kind}[{case.index}]"
    if case.kind == "invalid" and not matched:
        return CaseResult(case, False, f"{where}: rule {case.rule_id} should match but did not:\n{show(case.case)}")
    if case.kind == "valid" and matched:
        return CaseResult(case, False, f"{where}: rule {case.rule_id} matched but should not:\n{show(case.case)}")
    return CaseResult(case, True)
