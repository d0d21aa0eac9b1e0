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


# --- instrument -----------------------------------------------------------------

WORKER_MODULES = {
    "dependency": "otelize.workers.dependency",
    "config": "otelize.workers.config",
    "http": "otelize.workers.http",
    "service": "otelize.workers.service",
    "database": "otelize.workers.database",
    "cache": "otelize.workers.cache",
    "external-api": "otelize.workers.external_api",
}


@dataclass
class InstrumentResult:
    analysis: Analysis
    synthesis: Any  # otelize.synthesize.Synthesis
    written: bool = False
    out_dir: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.synthesis.changes)

    @property
    def partial(self) -> bool:
        return bool(self.analysis.unparsable or self.synthesis.reverted)


def worker_context(analysis: Analysis) -> Any:
    from otelize.workers.base import WorkerContext

    return WorkerContext(
        project=analysis.project,
        parsed=analysis.parsed,
        facts=analysis.facts,
        classification=analysis.classification,
        routes=analysis.graph.routes,
        entry=analysis.entry,
        settings=analysis.settings,
    )


def run_workers(analysis: Analysis) -> list[Any]:
    """Run every planned task in plan order. Workers return values only."""
    import importlib

    ctx = worker_context(analysis)
    return [importlib.import_module(WORKER_MODULES[t.worker]).run(ctx, t) for t in analysis.tasks]


def instrument(
    root: str | Path,
    *,
    write: bool = True,
    out_dir: str | Path | None = None,
    rule_dirs: list[Path] | None = None,
    settings: dict[str, Any] | None = None,
) -> InstrumentResult:
    """Plan, run the workers, synthesize. Writes in place, to `out_dir`, or not at all."""
    from otelize.synthesize import synthesize, write_changes

    analysis = analyze(root, rule_dirs=rule_dirs, settings=settings)
    results = run_workers(analysis)
    syn = synthesize(analysis.project.root, analysis.parsed, results)
    result = InstrumentResult(analysis, syn)
    if out_dir is not None:
        target = copy_project(analysis.project.root, Path(out_dir))
        write_changes(target, {p: new for p, (_, new) in syn.changes.items()})
        result.written, result.out_dir = True, target
    elif write and syn.changes:
        write_changes(analysis.project.root, {p: new for p, (_, new) in syn.changes.items()})
        result.written = True
    return result


COPY_IGNORE = ("node_modules", ".git", ".otelize-cache")


def copy_project(src: Path, dest: Path) -> Path:
    """Copy the project for `--out` (without node_modules and .git)."""
    import shutil

    from otelize.errors import BadInput

    dest = dest.resolve()
    if dest == src or str(dest).startswith(str(src) + "/"):
        raise BadInput(f"{dest}: --out must not be inside the project")
    if dest.exists() and any(dest.iterdir()):
        raise BadInput(f"{dest}: --out directory exists and is not empty")
    try:
        shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(*COPY_IGNORE), dirs_exist_ok=True)
    except OSError as exc:
        raise BadInput(f"{dest}: cannot copy the project ({exc.strerror})") from None
    return dest
