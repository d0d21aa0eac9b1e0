"""classify: give each file and each function a category, with provenance.

File rules decide a file's category; function rules may refine a function
(e.g. tag the error-handling middleware). Rules that use graph relations see
the categories of the previous round; we iterate to a fixed point (bounded),
so the result does not depend on file order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from otelize.analysis.records import FileFacts, FunctionFact
from otelize.analysis.graph import AppGraph, sym_id
from otelize.analysis.parse import ParsedFile
from otelize.classify.matchers import MatchContext
from otelize.classify.roles import assign_roles
from otelize.classify.ruleset import Rule, RuleSet

MAX_ROUNDS = 4


@dataclass(frozen=True)
class Decision:
    category: str
    rules: tuple[str, ...]  # ids of the rules that decided it (winner first)
    options: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


OTHER = Decision("other", ())


@dataclass
class Classification:
    files: dict[str, Decision] = field(default_factory=dict)
    functions: dict[tuple[str, str], Decision] = field(default_factory=dict)  # (file, qualname)

    def file(self, path: str) -> Decision:
        return self.files.get(path, OTHER)

    def function(self, path: str, qualname: str) -> Decision:
        return self.functions.get((path, qualname), self.file(path))


def _decide(rules: list[Rule], ctx: MatchContext, memo: dict[str, bool] | None = None) -> Decision | None:
    """Highest priority wins; other matching rules of the same category agree.

    Rules are sorted by (-priority, id): once one matches, a rule of another category
    can neither win nor agree, so it is not evaluated. `memo` caches the result of
    rules that do not use graph relations: only graph rules can change between
    classification rounds.
    """
    hits: list[Rule] = []
    category = None
    for r in rules:
        if category is not None and r.category != category:
            continue
        if memo is not None and not r.uses_graph:
            hit = memo.get(r.id)
            if hit is None:
                hit = memo[r.id] = r.matcher(ctx)
        else:
            hit = r.matcher(ctx)
        if hit:
            hits.append(r)
            category = r.category
    if not hits:
        return None
    winner = hits[0]
    options: dict[str, Any] = {}
    for r in reversed(hits):
        options.update(r.options)
    tags = sorted({t for r in hits for t in r.tags})
    return Decision(winner.category, tuple(r.id for r in hits), tuple(sorted(options.items())), tuple(tags))


def classify(
    ruleset: RuleSet,
    parsed: dict[str, ParsedFile],
    facts: dict[str, FileFacts],
    graph: AppGraph,
    static: dict[str, FileStatic] | None = None,
    project: Any = None,
    include_code: Any = (),
) -> Classification:
    """`static` holds per-file results computed where the tree was (see `scan_static`).
    With the `project` (package.json: which libraries are auto-instrumented), the
    functions of span files get their roles (see `assign_roles`)."""
    file_rules = [r for r in ruleset.rules if r.scope == "file"]
    fn_rules = [r for r in ruleset.rules if r.scope == "function"]
    g = graph.graph
    result = Classification()

    node_data = dict(g.nodes(data=True))  # plain dict lookups in the hot loop below
    node_memo: dict[str, tuple[str, ...]] = {}  # node -> its categories; cleared every round

    def node_categories(s: str) -> tuple[str, ...]:
        cats = node_memo.get(s)
        if cats is None:
            data = node_data.get(s, {})
            found = []
            if data.get("kind") == "route" or s in route_handlers:
                found.append("http")  # a route handler is http wherever it is defined (e.g. inline in index.ts)
            if data.get("kind") == "symbol":
                found.append(result.function(data["file"], data["qualname"]).category)
            cats = node_memo[s] = tuple(found)
        return cats

    def categories_of(symbols: set[str]) -> set[str]:
        out: set[str] = set()
        for s in symbols:
            out.update(node_categories(s))
        return out

    # adjacency and route handlers read from the graph in one pass: the rounds below only look them up
    callees: dict[str, set[str]] = {}
    callers: dict[str, set[str]] = {}
    route_handlers: set[str] = set()
    for u, v, kind in g.edges(data="kind"):
        if kind == "calls":
            callees.setdefault(u, set()).add(v)
            callers.setdefault(v, set()).add(u)
        elif kind == "handles":
            callers.setdefault(v, set()).add(u)
            route_handlers.add(v)
    symbols_memo: dict[str, list[str]] = {}  # file -> its function nodes, for the files a relation is asked of

    def file_symbols(path: str) -> list[str]:
        found = symbols_memo.get(path)
        if found is None:
            found = symbols_memo[path] = [sym_id(path, fn.qualname) for fn in facts[path].functions if fn.kind != "signature"]
        return found

    rel_memo: dict[tuple[str, str, str], set[str]] = {}  # cleared every round, with node_memo

    asked: set[str] = set()  # the files whose decision asked a graph relation (in the round that decided it)

    def graph_fn(path: str):  # noqa: ANN202
        def rel(relation: str, qualname: str) -> set[str]:
            asked.add(path)
            key = (path, relation, qualname)
            found = rel_memo.get(key)
            if found is None:
                found = rel_memo[key] = _rel(relation, qualname)
            return found

        def _rel(relation: str, qualname: str) -> set[str]:
            nodes = [sym_id(path, qualname)] if qualname else file_symbols(path)
            neighbours = callees if relation == "calls" else callers
            own = f"sym:{path}::"
            found: set[str] = set()
            for n in nodes:
                linked = neighbours.get(n)
                if linked:
                    if not qualname:  # a file's calls to itself say nothing
                        linked = {s for s in linked if not s.startswith(own)}
                    found |= categories_of(linked)
            found.discard("other")
            return found

        return rel

    def handles(path: str):  # noqa: ANN202
        def check(qualname: str) -> bool:
            if qualname:
                return sym_id(path, qualname) in route_handlers
            return any(sym_id(path, fn.qualname) in route_handlers for fn in facts[path].functions)

        return check

    file_memo: dict[str, dict[str, bool]] = {path: dict(static[path].memo) if static and path in static else {} for path in facts}
    fn_static = not any(r.uses_graph for r in fn_rules)
    functions: dict[tuple[str, str], Decision] = {}
    if static is not None and fn_static:
        for path in sorted(static):
            for qual, decision in static[path].functions:
                functions[(path, qual)] = decision
    deps_memo: dict[str, set[str]] = {}

    def file_deps(path: str) -> set[str]:
        """The files whose category a relation of `path` can read (a superset): itself, and
        the files of the functions its functions call or are called from."""
        found = deps_memo.get(path)
        if found is None:
            found = deps_memo[path] = {path}
            for n in file_symbols(path):
                for linked in (callees.get(n, ()), callers.get(n, ())):
                    for s in linked:
                        data = node_data.get(s)
                        if data is not None and data.get("kind") == "symbol":
                            found.add(data["file"])
        return found

    older: dict[str, Decision] = {}  # the files' decisions of the round before the last one
    for round_no in range(MAX_ROUNDS):
        node_memo.clear()  # categories come from the previous round's result
        rel_memo.clear()
        files: dict[str, Decision] = {}
        precomputed = static is not None and fn_static
        if (round_no == 0 and not precomputed) or not fn_static:
            functions = {}
        # With function decisions that do not change, a file's decision is the last round's
        # when it asked no graph relation (it reads the memo only), or, from the third
        # round on (the second read the function decisions the first did not), when no
        # file its relations can read changed category in the last round.
        changed: set[str] | None = None
        if fn_static and round_no >= 2:
            changed = {p for p, d in result.files.items() if d.category != older[p].category}
        for path in sorted(facts):
            if fn_static and round_no >= 1 and (
                path not in asked or (changed is not None and changed.isdisjoint(file_deps(path)))
            ):
                files[path] = result.files[path]
                continue
            asked.discard(path)
            ctx = MatchContext(path, facts[path], parsed[path], None, graph_fn(path), handles(path))
            files[path] = _decide(file_rules, ctx, file_memo[path]) or OTHER
            if (round_no > 0 or precomputed) and fn_static:
                continue
            for fn in facts[path].functions:
                if fn.kind == "signature":
                    continue
                fctx = MatchContext(path, facts[path], parsed[path], fn, graph_fn(path), handles(path))
                d = _decide(fn_rules, fctx)
                if d is not None:
                    functions[(path, fn.qualname)] = d
        if files == result.files and functions == result.functions:
            break
        older = result.files
        result.files, result.functions = files, functions
    assign_roles(result, parsed, facts, graph, project, route_handlers, callees, frozenset(include_code or ()))
    return result


@dataclass(frozen=True)
class FileStatic:
    """Rule results that need the file's tree but not the graph (computed in a worker process)."""

    memo: tuple[tuple[str, bool], ...]  # file rule id -> matched (the rules without graph relations `_decide` can ask for)
    functions: tuple[tuple[str, Decision], ...]  # function qualname -> decision (function rules)


def static_needed(rules: list[Rule], hit: Callable[[Rule], bool]) -> tuple[tuple[str, bool], ...]:
    """The results of the file rules without graph relations that `_decide` can ask for,
    whatever the graph rules answer later: every rule down to the first that matches,
    then those of its category and of the categories of the graph rules ranked above it
    (one of which may win in its stead)."""
    out = []
    category = None
    open_categories: set[str] = set()  # of the graph rules ranked above the first match
    for r in rules:
        if r.uses_graph:
            if category is None:
                open_categories.add(r.category)
            continue
        if category is not None and r.category != category and r.category not in open_categories:
            continue
        matched = hit(r)
        out.append((r.id, matched))
        if matched and category is None:
            category = r.category
    return tuple(out)


def scan_static(ruleset: RuleSet, path: str, facts: FileFacts, parsed: ParsedFile) -> FileStatic:
    ctx = MatchContext(path, facts, parsed)
    memo = static_needed([r for r in ruleset.rules if r.scope == "file"], lambda r: r.matcher(ctx))
    fn_rules = [r for r in ruleset.rules if r.scope == "function"]
    decisions = []
    if fn_rules and not any(r.uses_graph for r in fn_rules):
        for fn in facts.functions:
            if fn.kind == "signature":
                continue
            d = _decide(fn_rules, MatchContext(path, facts, parsed, fn))
            if d is not None:
                decisions.append((fn.qualname, d))
    return FileStatic(memo, tuple(decisions))


def is_public(fn: FunctionFact) -> bool:
    return not fn.is_private and not fn.name.startswith("_")
