"""YAML rules: load, validate, and match against facts.

One rule per file in `rules/` (plus user rule directories). A profile
(`rules/profile.yaml`) lists the enabled rules and their options. The schema
is documented in `rules/README.md`; every validation error names the file and
the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pathspec
import yaml

from otelize import yamlio

from otelize.errors import RuleError

CATEGORIES = ("entrypoint", "http", "middleware", "service", "database", "cache", "external-api", "other")
SCOPES = ("file", "function")
EXPRESS_FACTS = ("app", "router", "routes", "listen", "mounts")
LEAF_KEYS = ("imports", "path", "name", "class", "kind", "query", "express", "graph", "params", "exported", "has")
COMBINATORS = ("all", "any", "not")
RULE_KEYS = {"id", "category", "scope", "priority", "description", "match", "options", "tags"}
GRAPH_RELATIONS = ("called_from", "calls", "handles_route")


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    scope: str
    priority: int
    match: dict[str, Any]
    source: str  # file the rule came from (display path)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @cached_property
    def uses_graph(self) -> bool:
        return _uses(self.match, "graph")


def _uses(matcher: Any, key: str) -> bool:
    if isinstance(matcher, dict):
        return key in matcher or any(_uses(v, key) for k, v in matcher.items() if k in COMBINATORS)
    if isinstance(matcher, list):
        return any(_uses(m, key) for m in matcher)
    return False


def _err(source: str, key: str, msg: str) -> RuleError:
    return RuleError(f"{source}: key `{key}`: {msg}")


def load_rule_file(path: Path, display: str | None = None) -> Rule:
    source = display or path.name
    return parse_rule(yamlio.load_file(path, source, RuleError), source)


def parse_rule(data: Any, source: str) -> Rule:
    if not isinstance(data, dict):
        raise RuleError(f"{source}: a rule must be a mapping")
    for key in sorted(data):
        if key not in RULE_KEYS:
            raise _err(source, str(key), f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    for key in ("id", "category", "match"):
        if key not in data:
            raise _err(source, key, "is required")
    rid = data["id"]
    if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", rid):
        raise _err(source, "id", "must be a lower-case slug like `database-driver-import`")
    if data["category"] not in CATEGORIES:
        raise _err(source, "category", f"must be one of {', '.join(CATEGORIES)}")
    scope = data.get("scope", "file")
    if scope not in SCOPES:
        raise _err(source, "scope", "must be `file` or `function`")
    priority = data.get("priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _err(source, "priority", "must be an integer")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise _err(source, "options", "must be a mapping")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _err(source, "tags", "must be a list of strings")
    _validate_matcher(data["match"], source, "match", scope)
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
    )


def _validate_matcher(m: Any, source: str, where: str, scope: str) -> None:
    if not isinstance(m, dict) or not m:
        raise _err(source, where, "a matcher must be a non-empty mapping")
    for key, value in sorted(m.items()):
        here = f"{where}.{key}"
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise _err(source, here, "must be a non-empty list of matchers")
            for i, sub in enumerate(value):
                _validate_matcher(sub, source, f"{here}[{i}]", scope)
        elif key == "not":
            _validate_matcher(value, source, here, scope)
        elif key == "imports":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _err(source, here, "must be a list of module names")
        elif key == "path":
            globs = [value] if isinstance(value, str) else value
            if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
                raise _err(source, here, "must be a glob or a list of globs")
        elif key in ("name", "class"):
            if not isinstance(value, str):
                raise _err(source, here, "must be a regular expression string")
            try:
                re.compile(value)
            except re.error as exc:
                raise _err(source, here, f"invalid regular expression: {exc}") from None
        elif key == "kind":
            if not isinstance(value, str) or not re.fullmatch(r"[a-z_]+", value):
                raise _err(source, here, "must be a tree-sitter node kind such as `class_declaration`")
            from otelize.parse import language

            if language().id_for_node_kind(value, True) in (None, 0):
                raise _err(source, here, f"unknown tree-sitter node kind `{value}`")
        elif key in ("query", "has"):
            if not isinstance(value, str):
                raise _err(source, here, "must be a tree-sitter query string")
            from otelize.parse import query

            try:
                query(value)
            except Exception as exc:  # tree_sitter raises QueryError subclasses
                raise _err(source, here, f"invalid tree-sitter query: {str(exc).splitlines()[0]}") from None
        elif key == "express":
            if value not in EXPRESS_FACTS:
                raise _err(source, here, f"must be one of {', '.join(EXPRESS_FACTS)}")
        elif key == "graph":
            if not isinstance(value, dict) or len(value) != 1:
                raise _err(source, here, f"must be a mapping with one of {', '.join(GRAPH_RELATIONS)}")
            rel, target = next(iter(value.items()))
            if rel not in GRAPH_RELATIONS:
                raise _err(source, f"{here}.{rel}", f"unknown relation (allowed: {', '.join(GRAPH_RELATIONS)})")
            targets = target if isinstance(target, list) else [target]
            if rel != "handles_route" and not all(t in CATEGORIES for t in targets):
                raise _err(source, f"{here}.{rel}", f"must name categories from {', '.join(CATEGORIES)}")
        elif key == "params":
            if not isinstance(value, dict) or not set(value) <= {"count", "min", "names"}:
                raise _err(source, here, "must be a mapping with `count`, `min` or `names`")
        elif key == "exported":
            if not isinstance(value, bool):
                raise _err(source, here, "must be true or false")
        else:
            raise _err(source, here, f"unknown matcher (allowed: {', '.join(LEAF_KEYS + COMBINATORS)})")


@dataclass
class RuleSet:
    rules: list[Rule]  # enabled rules, sorted by (-priority, id)
    all_rules: list[Rule]  # every rule found, enabled or not
    profile_source: str = ""

    def by_id(self, rid: str) -> Rule | None:
        return next((r for r in self.all_rules if r.id == rid), None)


def load_rules(rule_dirs: list[Path] | None = None, profile: Path | None = None) -> RuleSet:
    """Built-in rules, then each extra dir in order; a later rule with the same id overrides."""
    from otelize.resources import data_dir

    builtin = data_dir("rules")
    dirs = [builtin] + list(rule_dirs or [])
    found: dict[str, Rule] = {}
    for d in dirs:
        if not d.is_dir():
            raise RuleError(f"{d}: rule directory does not exist")
        for path in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
            if path.name in ("profile.yaml", "otel-packages.yaml", "otel-instrumentations.yaml", "semconv.yaml") or path.name.startswith("_"):
                continue
            display = path.name if d == builtin else f"{d.name}/{path.name}"
            rule = load_rule_file(path, display)
            found[rule.id] = rule
    profile_path = profile or builtin / "profile.yaml"
    enabled_ids, overrides = _load_profile(profile_path, found)
    user_ids = {r.id for d in dirs[1:] for r in found.values() if r.source.startswith(f"{d.name}/")}
    enabled = []
    for rid in sorted(found):
        if rid in enabled_ids or rid in user_ids:
            rule = found[rid]
            if rid in overrides:
                rule = Rule(**{**rule.__dict__, "options": {**rule.options, **overrides[rid]}})
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
            raise _err(path.name, str(key), "unknown key (allowed: enabled, options)")
    enabled = data.get("enabled", [])
    if not isinstance(enabled, list):
        raise _err(path.name, "enabled", "must be a list of rule ids")
    for rid in enabled:
        if rid not in found:
            raise _err(path.name, f"enabled[{rid}]", "no rule with this id")
    options = data.get("options", {}) or {}
    if not isinstance(options, dict):
        raise _err(path.name, "options", "must be a mapping of rule id to options")
    for rid, opts in options.items():
        if rid not in found:
            raise _err(path.name, f"options.{rid}", "no rule with this id")
        if not isinstance(opts, dict):
            raise _err(path.name, f"options.{rid}", "must be a mapping")
    return set(enabled), options


# --- matching -----------------------------------------------------------------


@dataclass
class MatchContext:
    """What a matcher can look at. `function` is None for file-scoped rules."""

    path: str
    facts: Any  # FileFacts
    parsed: Any  # ParsedFile
    function: Any = None  # FunctionFact
    graph_categories: Callable[[str, str], set[str]] | None = None  # (relation, symbol/file) -> categories
    handles_route: Callable[[str], bool] | None = None


@dataclass
class _Compiled:
    globs: dict[str, pathspec.PathSpec] = field(default_factory=dict)


_compiled = _Compiled()


def _glob(patterns: str | list[str]) -> pathspec.PathSpec:
    key = patterns if isinstance(patterns, str) else "\n".join(patterns)
    spec = _compiled.globs.get(key)
    if spec is None:
        lines = [patterns] if isinstance(patterns, str) else patterns
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        _compiled.globs[key] = spec
    return spec


def matches(m: dict[str, Any], ctx: MatchContext) -> bool:
    """All keys of a matcher must hold (an implicit `all`)."""
    return all(_leaf(key, value, ctx) for key, value in sorted(m.items()))


def _imports(facts: Any, modules: list[str]) -> bool:
    for imp in facts.imports:
        for mod in modules:
            if imp.module == mod or imp.module.startswith(mod + "/"):
                return True
    return False


def _leaf(key: str, value: Any, ctx: MatchContext) -> bool:
    from otelize.parse import captures, query

    fn = ctx.function
    if key == "all":
        return all(matches(sub, ctx) for sub in value)
    if key == "any":
        return any(matches(sub, ctx) for sub in value)
    if key == "not":
        return not matches(value, ctx)
    if key == "imports":
        if "fetch" in value and ctx.facts.has_fetch:
            return True
        return _imports(ctx.facts, value)
    if key == "path":
        return _glob(value).match_file(ctx.path)
    if key == "name":
        if fn is not None:
            return re.search(value, fn.name) is not None
        stem = ctx.path.rsplit("/", 1)[-1].split(".", 1)[0]
        return re.search(value, stem) is not None
    if key == "class":
        if fn is not None:
            return fn.class_name is not None and re.search(value, fn.class_name) is not None
        return any(re.search(value, c.name) for c in ctx.facts.classes)
    if key == "kind":
        if fn is not None:
            return fn.node_type == value
        return bool(captures(query(f"({value}) @n", ctx.parsed.tsx), ctx.parsed.root))
    if key in ("query", "has"):
        node = ctx.parsed.root
        if fn is not None:
            node = node.descendant_for_byte_range(fn.start, fn.end) or node
        caps = captures(query(value, ctx.parsed.tsx), node)
        return any(caps.values())
    if key == "express":
        f = ctx.facts
        return {
            "app": bool(f.apps),
            "router": bool(f.routers),
            "routes": any(r.method != "USE" for r in f.routes),
            "listen": f.listen_line is not None,
            "mounts": any(r.method == "USE" for r in f.routes),
        }[value]
    if key == "params":
        if fn is None:
            return False
        n = len(fn.params)
        if "count" in value and n != value["count"]:
            return False
        if "min" in value and n < value["min"]:
            return False
        if "names" in value:
            pattern = value["names"]
            return all(re.search(pattern, p.name) for p in fn.params) if fn.params else False
        return True
    if key == "exported":
        if fn is not None:
            return fn.exported == value
        return bool(ctx.facts.exports) == value
    if key == "graph":
        rel, target = next(iter(value.items()))
        if rel == "handles_route":
            subject = fn.qualname if fn is not None else None
            return ctx.handles_route is not None and ctx.handles_route(subject or "") == bool(target)
        targets = set(target if isinstance(target, list) else [target])
        if ctx.graph_categories is None:
            return False
        return bool(ctx.graph_categories(rel, fn.qualname if fn is not None else "") & targets)
    raise AssertionError(f"unvalidated matcher key {key}")  # pragma: no cover - schema prevents it

