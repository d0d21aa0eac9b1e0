"""YAML rules: load, validate, and match against facts.

One rule per file in `rules/` (plus user rule directories). A profile
(`rules/profile.yaml`) lists the enabled rules and their options. The schema
is documented in `rules/README.md`. A rule's `match:` is compiled when it
loads into the typed matchers of `otelize.classify.matchers`; every validation
error names the file and the key.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from otelize.project import yamlio

from otelize.classify.matchers import Matcher, compile_matcher, compile_regex, key_error  # noqa: F401 - compile_regex: otelize.analysis.parse imports it from here
from otelize.errors import RuleError
from otelize.plan.registry import CATEGORIES  # what a rule may classify as: the categories the workers serve, and `other`

SCOPES = ("file", "function")
RULE_KEYS = {"id", "category", "scope", "priority", "description", "match", "options", "tags"}


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    scope: str
    priority: int
    match: dict[str, Any]  # as written; `matcher` is it compiled
    source: str  # file the rule came from (display path)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    builtin: bool = field(default=False, repr=False, compare=False)  # shipped in otelize's rules/
    matcher: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # compiled (and so validated) here: `dataclasses.replace(rule, match=...)` recompiles
        object.__setattr__(self, "matcher", compile_matcher(self.match, self.source, compile_queries=not self.builtin))

    @property
    def uses_graph(self) -> bool:
        return self.matcher.uses_graph


def load_rule_file(path: Path, display: str | None = None, builtin: bool = False) -> Rule:
    source = display or path.name
    rule = parse_rule(yamlio.load_file(path, source, RuleError), source, builtin)
    stem = path.name.rsplit(".", 1)[0]
    if rule.id != stem:  # ids are how rules override each other: one file per id, named after it
        raise key_error(source, "id", f"`{rule.id}` must equal the file name (`{stem}`): rename the file or the id")
    return rule


def parse_rule(data: Any, source: str, builtin: bool = False) -> Rule:
    if not isinstance(data, dict):
        raise RuleError(f"{source}: a rule must be a mapping")
    for key in sorted(data):
        if key not in RULE_KEYS:
            raise key_error(source, str(key), f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    for key in ("id", "category", "match"):
        if key not in data:
            raise key_error(source, key, "is required")
    rid = data["id"]
    if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", rid):
        raise key_error(source, "id", "must be a lower-case slug like `database-driver-import`")
    if data["category"] not in CATEGORIES:
        raise key_error(source, "category", f"must be one of {', '.join(CATEGORIES)} (no worker in otelize.plan.registry serves `{data['category']}`)")
    scope = data.get("scope", "file")
    if scope not in SCOPES:
        raise key_error(source, "scope", "must be `file` or `function`")
    priority = data.get("priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise key_error(source, "priority", "must be an integer")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise key_error(source, "options", "must be a mapping")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise key_error(source, "tags", "must be a list of strings")
    return Rule(
        id=rid,
        category=data["category"],
        scope=scope,
        priority=priority,
        match=data["match"],
        source=source,
        description=str(data.get("description", "")),
        options=options,
        tags=tuple(tags),
        builtin=builtin,
    )


@dataclass
class RuleSet:
    rules: list[Rule]  # enabled rules, sorted by (-priority, id)
    all_rules: list[Rule]  # every rule found, enabled or not
    profile_source: str = ""

    def by_id(self, rid: str) -> Rule | None:
        return next((r for r in self.all_rules if r.id == rid), None)


# YAML files in a rules folder that are data, not rules (the profile, the package pins)
DATA_FILES = frozenset({"profile.yaml", "otel-packages.yaml", "otel-instrumentations.yaml", "semconv.yaml"})


def load_rules(
    rule_dirs: list[Path] | None = None, profile: Path | None = None, switches: dict[str, bool] | None = None
) -> RuleSet:
    """Built-in rules, then each extra dir in order; a later rule with the same id overrides.

    `switches` turns single rules on or off by id (`--enable` / `--disable RULE_ID`), over the profile."""
    from otelize.resources import data_dir

    builtin = data_dir("rules")
    dirs = [builtin] + list(rule_dirs or [])
    found: dict[str, Rule] = {}
    for d in dirs:
        if not d.is_dir():
            raise RuleError(f"{d}: rule directory does not exist")
        for path in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
            if path.name in DATA_FILES or path.name.startswith("_"):
                continue
            display = path.name if d == builtin else f"{d.name}/{path.name}"
            rule = load_rule_file(path, display, builtin=d == builtin)
            found[rule.id] = rule
    profile_path = profile or builtin / "profile.yaml"
    enabled_ids, overrides = _load_profile(profile_path, found)
    user_ids = {r.id for d in dirs[1:] for r in found.values() if r.source.startswith(f"{d.name}/")}
    for rid, on in sorted((switches or {}).items()):
        if rid not in found:
            from otelize.plan.registry import CATEGORIES, WORKERS

            known = sorted(set(found) | set(WORKERS) | set(CATEGORIES))
            close = difflib.get_close_matches(rid, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise RuleError(f"--{'enable' if on else 'disable'} {rid}: not a worker, a category or a rule id{hint}")
        (enabled_ids.add if on else enabled_ids.discard)(rid)
        if not on:
            user_ids.discard(rid)
    enabled = []
    for rid in sorted(found):
        if rid in enabled_ids or rid in user_ids:
            rule = found[rid]
            if rid in overrides:
                rule = replace(rule, options={**rule.options, **overrides[rid]})
            enabled.append(rule)
    enabled.sort(key=lambda r: (-r.priority, r.id))
    return RuleSet(enabled, sorted(found.values(), key=lambda r: r.id), profile_path.name)


def _load_profile(path: Path, found: dict[str, Rule]) -> tuple[set[str], dict[str, dict[str, Any]]]:
    try:
        data = yamlio.load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path.name}: cannot load profile ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise RuleError(f"{path.name}: a profile must be a mapping")
    for key in data:
        if key not in ("enabled", "options"):
            raise key_error(path.name, str(key), "unknown key (allowed: enabled, options)")
    enabled = data.get("enabled", [])
    if not isinstance(enabled, list):
        raise key_error(path.name, "enabled", "must be a list of rule ids")
    for rid in enabled:
        if rid not in found:
            raise key_error(path.name, f"enabled[{rid}]", "no rule with this id")
    options = data.get("options", {}) or {}
    if not isinstance(options, dict):
        raise key_error(path.name, "options", "must be a mapping of rule id to options")
    for rid, opts in options.items():
        if rid not in found:
            raise key_error(path.name, f"options.{rid}", "no rule with this id")
        if not isinstance(opts, dict):
            raise key_error(path.name, f"options.{rid}", "must be a mapping")
    return set(enabled), options
