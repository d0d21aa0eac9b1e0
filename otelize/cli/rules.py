"""`otelize rules list` and `otelize rules test`: thin — options in, ruleset/ruletest, lines out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from otelize.cli.main import cli, config_option, project_argument, reports_errors, rules_option, verbosity_options
from otelize.cli.output import output
from otelize.errors import EXIT_CHANGES, EXIT_OK, BadInput

RULES_EPILOG = """\b
Examples:
  otelize rules list
  otelize rules list ./my-app --rules ./otelize-rules
  otelize rules test ./otelize-rules
"""


@cli.group(epilog=RULES_EPILOG)
def rules() -> None:
    """List the classification rules, and test your own."""


LIST_EPILOG = """\b
Examples:
  otelize rules list                                   # the built-in rules
  otelize rules list ./my-app                          # plus the `rules:` of ./my-app/.otelize.yaml
  otelize rules list --rules ./otelize-rules --format json
"""


@rules.command("list", epilog=LIST_EPILOG)
@project_argument
@config_option
@rules_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def list_rules(path: Path, config: Path | None, rule_dirs: tuple[Path, ...], fmt: str) -> None:
    """Each rule's id, category, scope, whether it is enabled, and its source file."""
    from otelize.classify.ruleset import load_rules
    from otelize.project.settings import load_settings

    settings = load_settings(path, config)
    ruleset = load_rules(list(settings.rules) + list(rule_dirs) or None)
    enabled = {r.id for r in ruleset.rules}
    rows: list[dict[str, Any]] = [
        {"id": r.id, "category": r.category, "scope": r.scope, "priority": r.priority,
         "enabled": r.id in enabled, "source": r.source}
        for r in ruleset.all_rules
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ("id", "category", "scope", "enabled", "source")
    table = [headers] + [(r["id"], r["category"], r["scope"], "yes" if r["enabled"] else "no", r["source"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


TEST_EPILOG = """\b
Examples:
  otelize rules test ./otelize-rules                   # cases in ./otelize-rules/tests/<id>.yaml
  otelize rules test ./otelize-rules --cases ./rule-cases
\b
Exit codes: 0 every case passed, 1 a case failed or a rule has no test file, 2 bad rule file.
"""


@rules.command("test", epilog=TEST_EPILOG)
@click.argument("rule_dir", type=click.Path(path_type=Path, readable=False), metavar="DIR")
@verbosity_options
@click.option("--cases", "cases_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Folder of <rule-id>.yaml test files [default: DIR/tests].")
@reports_errors
def test_rules(rule_dir: Path, cases_dir: Path | None) -> None:
    """Run the valid/invalid cases of the rules in DIR (as otelize tests its own rules)."""
    from otelize.classify import ruletest
    from otelize.classify.ruleset import load_rules

    if not rule_dir.is_dir():
        raise BadInput(f"{rule_dir}: no such rule folder")
    rule_dir = rule_dir.resolve()
    ruleset = load_rules([rule_dir])
    own = {r.id for r in ruleset.all_rules if r.source.startswith(f"{rule_dir.name}/")}
    cases_dir = cases_dir if cases_dir is not None else rule_dir / "tests"
    problems = ruletest.check_case_files(cases_dir, own)
    cases = ruletest.load_cases(cases_dir) if cases_dir.is_dir() else []
    if not cases and not problems:  # nothing was tested: that is not a pass
        problems.append(f"{cases_dir}: no test cases found (and {rule_dir} has no rules to test)" if not own
                        else f"{cases_dir}: no test cases found")
    out = output()
    failed = 0
    for i, case in enumerate(cases, 1):
        out.status(f"otelize: case {i}/{len(cases)} {case.name}")
        result = ruletest.run_case(ruleset, case)
        out.clear()
        if result.ok:
            out.detail(f"ok    {case.name}")
        else:
            failed += 1
            click.echo(f"FAIL  {case.name}: {result.message}")
    for problem in problems:
        click.echo(f"FAIL  {problem}")
    out.info(f"otelize: {len(cases) - failed} passed, {failed} failed, {len(problems)} problem(s) with the test files")
    sys.exit(EXIT_CHANGES if failed or problems else EXIT_OK)
