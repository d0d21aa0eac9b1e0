"""The library API. The CLI (and tests) call these; they never print."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otelize.classify import Classification, classify
from otelize.discover import load_project
from otelize.facts import FileFacts, extract
from otelize.graph import AppGraph, build_graph
from otelize.parse import ParsedFile, parse_source
from otelize.project import Project
from otelize.ruleset import RuleSet, load_rules
from otelize.workers.base import Task


@dataclass
class Analysis:
    project: Project
    parsed: dict[str, ParsedFile]
    facts: dict[str, FileFacts]
    graph: AppGraph
    classification: Classification
    rules: RuleSet
    tasks: list[Task]
    unparsable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def entry(self) -> str | None:
        return self.graph.entry

    @property
    def editable(self) -> set[str]:
        return {p for p, pf in self.parsed.items() if pf.ok and not {"generated", "ignore-file"} & set(self.facts[p].markers)}


def read_sources(project: Project) -> tuple[dict[str, ParsedFile], list[tuple[str, str]]]:
    parsed: dict[str, ParsedFile] = {}
    problems: list[tuple[str, str]] = []
    for path in project.files:
        try:
            data = (project.root / path).read_bytes()
        except OSError as exc:
            problems.append((path, f"unreadable ({exc.strerror})"))
            continue
        pf = parse_source(path, data)
        parsed[path] = pf
        if pf.problem:
            problems.append((path, pf.problem))
        elif pf.errors:
            line, col, kind = pf.errors[0]
            problems.append((path, f"syntax error at line {line} column {col} ({kind})"))
    return parsed, problems


def analyze(root: str | Path, rule_dirs: list[Path] | None = None, settings: dict[str, Any] | None = None) -> Analysis:
    from otelize.plan import build_plan

    settings = dict(settings or {})
    project = load_project(root)
    rules = load_rules(rule_dirs)
    parsed, problems = read_sources(project)
    facts = {path: extract(pf) for path, pf in parsed.items() if pf.problem is None}
    graph = build_graph(project, facts)
    classification = classify(rules, {p: parsed[p] for p in facts}, facts, graph)
    analysis = Analysis(project, parsed, facts, graph, classification, rules, [], problems, settings)
    analysis.tasks = build_plan(
        facts, classification, graph.entry, analysis.editable, frozenset(settings.get("disabled_workers", ()))
    )
    return analysis
