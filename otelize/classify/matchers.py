"""matchers: a rule's `match:` compiled to typed matchers.

As ast-grep's rule structs: one class per `match:` key, which validates its value
in its constructor (errors name the file and the key) and evaluates itself in
`__call__` against a `MatchContext` (the file's facts and tree, the function, the
graph). A mapping is an implicit `all` of its keys, evaluated in key order; an
unknown key gets a "did you mean". Rule files themselves are loaded by
`otelize.classify.ruleset`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import pathspec

from otelize.errors import RuleError
from otelize.plan.registry import CATEGORIES  # what `graph:` may name: the categories the workers serve, and `other`

EXPRESS_FACTS = ("app", "router", "routes", "listen", "mounts")
GRAPH_RELATIONS = ("called_from", "calls", "handles_route")


def key_error(source: str, key: str, msg: str) -> RuleError:
    """The one-line error of a rule file's key."""
    return RuleError(f"{source}: key `{key}`: {msg}")


@dataclass
class MatchContext:
    """What a matcher can look at. `function` is None for file-scoped rules."""

    path: str
    facts: Any  # FileFacts
    parsed: Any  # ParsedFile
    function: Any = None  # FunctionFact
    graph_categories: Callable[[str, str], set[str]] | None = None  # (relation, symbol/file) -> categories
    handles_route: Callable[[str], bool] | None = None


def compile_regex(pattern: str) -> Callable[[str], bool]:
    """The one place a rule's regular expression is compiled and matched: a predicate
    `text -> bool` (a search anywhere in the text). Raises ValueError on a bad pattern.

    Compiled with RE2 (google-re2): matching takes time linear in the text, whatever the
    pattern, so a rule from a repository cannot stall a run with catastrophic backtracking
    (`(a+)+$`). RE2 has no backreferences or lookaround; such a pattern is refused when
    the rule loads."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the error becomes our one-line message, not a log line on stderr
    try:
        search = re2.compile(pattern, options=options).search
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"(RE2 syntax: no backreferences or lookaround): {reason}") from None
    return lambda s: search(s) is not None


class Matcher:
    """One key of a `match:` mapping, compiled. Subclasses set `key` and validate in `__init__`."""

    key: ClassVar[str] = ""
    uses_graph: bool = False
    reads_tree: bool = False  # runs a query over the tree: the costly kind, evaluated last

    def __call__(self, ctx: MatchContext) -> bool:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


class Where:
    """Where a matcher value sits in its rule file, for the one-line error."""

    __slots__ = ("source", "path", "compile_queries")

    def __init__(self, source: str, path: str, compile_queries: bool = True) -> None:
        self.source, self.path, self.compile_queries = source, path, compile_queries

    def at(self, suffix: str) -> Where:
        return Where(self.source, self.path + suffix, self.compile_queries)

    def error(self, msg: str, suffix: str = "") -> RuleError:
        return key_error(self.source, self.path + suffix, msg)


class _Combined(Matcher):
    """A list of matchers, combined as `all` (AllOf) or `any` (AnyOf): loops that stop at
    the first part that decides (as the builtins do), without a generator per call."""

    def __init__(self, value: Any, where: Where) -> None:
        self._set(_list_of_matchers(value, where))

    def _set(self, parts: list[Matcher]) -> None:
        # matchers are pure tests, so `all`/`any` may take them in any order: the ones that
        # only read facts first, so that a tree query runs only when they leave it the answer
        self.parts = sorted(parts, key=lambda p: p.reads_tree)
        self.uses_graph = any(p.uses_graph for p in parts)
        self.reads_tree = any(p.reads_tree for p in parts)

    @classmethod
    def of(cls, parts: list[Matcher]) -> Matcher:
        out = cls.__new__(cls)
        out._set(parts)
        return out


class AllOf(_Combined):
    """`all: [...]`, and every mapping (its keys must all hold)."""

    key = "all"

    def __call__(self, ctx: MatchContext) -> bool:
        for p in self.parts:
            if not p(ctx):
                return False
        return True


class AnyOf(_Combined):
    key = "any"

    def __call__(self, ctx: MatchContext) -> bool:
        for p in self.parts:
            if p(ctx):
                return True
        return False


class Not(Matcher):
    key = "not"

    def __init__(self, value: Any, where: Where) -> None:
        self.inner = compile_mapping(value, where)
        self.uses_graph = self.inner.uses_graph
        self.reads_tree = self.inner.reads_tree

    def __call__(self, ctx: MatchContext) -> bool:
        return not self.inner(ctx)


class Imports(Matcher):
    key = "imports"

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise where.error("must be a list of module names")
        self.modules = frozenset(value)
        self.fetch = "fetch" in value

    def __call__(self, ctx: MatchContext) -> bool:
        """A value import of one of the modules, or of a path inside one (`lodash/fp`):
        type-only imports, and imports used only as types, carry no weight
        (otelize.analysis.typeuse)."""
        from otelize.analysis.typeuse import is_value_import

        if self.fetch and ctx.facts.has_fetch:
            return True
        names = self.modules
        for imp in ctx.facts.imports:
            module = imp.module
            # `module` is a listed name, or starts with one followed by "/": a set lookup per
            # "/" in it, instead of a comparison per listed name
            hit = module in names
            cut = module.find("/")
            while not hit and cut != -1:
                hit = module[:cut] in names
                cut = module.find("/", cut + 1)
            if hit and is_value_import(imp, ctx.parsed):
                return True
        return False


class PathGlob(Matcher):
    key = "path"

    def __init__(self, value: Any, where: Where) -> None:
        globs = [value] if isinstance(value, str) else value
        if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
            raise where.error("must be a glob or a list of globs")
        self.spec = pathspec.GitIgnoreSpec.from_lines(globs)

    def __call__(self, ctx: MatchContext) -> bool:
        return self.spec.match_file(ctx.path)


class _Regex(Matcher):
    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, str):
            raise where.error("must be a regular expression string")
        try:
            self.test = compile_regex(value)
        except ValueError as exc:
            raise where.error(f"invalid regular expression {exc}") from None


class Name(_Regex):
    """The function's name; in file scope, the file's name without its extensions."""

    key = "name"

    def __call__(self, ctx: MatchContext) -> bool:
        if ctx.function is not None:
            return self.test(ctx.function.name)
        return self.test(ctx.path.rsplit("/", 1)[-1].split(".", 1)[0])


class ClassName(_Regex):
    key = "class"

    def __call__(self, ctx: MatchContext) -> bool:
        fn = ctx.function
        if fn is not None:
            return fn.class_name is not None and self.test(fn.class_name)
        return any(self.test(c.name) for c in ctx.facts.classes)


class Kind(Matcher):
    key = "kind"
    reads_tree = True

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, str) or not re.fullmatch(r"[a-z_]+", value):
            raise where.error("must be a tree-sitter node kind such as `class_declaration`")
        from otelize.analysis.parse import language

        if language().id_for_node_kind(value, True) in (None, 0):
            raise where.error(f"unknown tree-sitter node kind `{value}`")
        self.kind = value

    def __call__(self, ctx: MatchContext) -> bool:
        from otelize.analysis.parse import captures, query

        if ctx.function is not None:
            return ctx.function.node_type == self.kind
        return bool(captures(query(f"({self.kind}) @n", ctx.parsed.tsx), ctx.parsed.root))


class TreeQuery(Matcher):
    """A tree-sitter query with a capture, over the file (or the function's node)."""

    key = "query"
    reads_tree = True

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, str):
            raise where.error("must be a tree-sitter query string")
        from otelize.analysis.parse import query

        if where.compile_queries:  # (built-in rules: compiled on first use; tests/test_rules.py compiles them all)
            try:
                query(value)
            except Exception as exc:  # tree_sitter raises QueryError subclasses
                raise where.error(f"invalid tree-sitter query: {str(exc).splitlines()[0]}") from None
        from otelize.analysis.parse import query_regexes

        for pattern in query_regexes(value):  # `#match?` predicates run on RE2 too (otelize.analysis.parse)
            try:
                compile_regex(pattern)
            except ValueError as exc:
                raise where.error(f"invalid regular expression {exc}") from None
        self.source = value  # compiled per grammar (and cached) by parse.query
        self._literals: dict[bool, tuple[bytes, ...]] = {}  # grammar (tsx) -> see `required_literals`

    def __call__(self, ctx: MatchContext) -> bool:
        from otelize.analysis.parse import captures, query

        parsed = ctx.parsed
        literals = self._literals.get(parsed.tsx)
        if literals is None:
            literals = self._literals[parsed.tsx] = required_literals(self.source, query(self.source, parsed.tsx))
        source = parsed.source
        for literal in literals:
            if literal not in source:
                return False  # no node of the file can hold it: the query cannot match (the tree is not read)
        node = parsed.root
        if ctx.function is not None:
            node = node.descendant_for_byte_range(ctx.function.start, ctx.function.end) or node
        return any(captures(query(self.source, ctx.parsed.tsx), node).values())


def _predicate_tokens(source: str) -> list[str]:
    """A query's tokens outside comments (`;` to the end of the line): strings (with their
    quotes, escapes kept), parentheses and brackets, and runs of other characters."""
    tokens: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
        elif c == ";":
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif c == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            tokens.append(source[i : j + 1])
            i = j + 1
        elif c in "()[]":
            tokens.append(c)
            i += 1
        else:
            j = i
            while j < n and not source[j].isspace() and source[j] not in '()[];"':
                j += 1
            tokens.append(source[i:j])
            i = j
    return tokens


def required_literals(source: str, compiled: Any) -> tuple[bytes, ...]:
    """Texts a file must contain for the query to match anywhere in it: the string of each
    `(#eq? @c "text")` / `(#any-eq? @c "text")` of a one-pattern query whose capture `@c`
    always holds a node (no `?` or `*`). A matched node's text is a slice of the file, and
    py-tree-sitter passes such a predicate only if one of `@c`'s nodes has that text (it
    passes a capture that holds no node, hence the quantifier check). Strings with escapes
    are left out, and so is every query of several patterns (a predicate binds its pattern)."""
    if compiled.pattern_count != 1:
        return ()
    quantifiers = {compiled.capture_name(i): compiled.capture_quantifier(0, i) for i in range(compiled.capture_count)}
    tokens = _predicate_tokens(source)
    out = []
    for i in range(len(tokens) - 4):
        if tokens[i] != "(" or tokens[i + 1] not in ("#eq?", "#any-eq?") or tokens[i + 4] != ")":
            continue
        capture, text = tokens[i + 2], tokens[i + 3]
        if not capture.startswith("@") or quantifiers.get(capture[1:]) not in ("", "+"):
            continue
        if len(text) < 3 or not text.startswith('"') or not text.endswith('"') or "\\" in text:
            continue
        out.append(text[1:-1].encode("utf-8"))
    return tuple(sorted(set(out)))


class Has(TreeQuery):
    key = "has"


class Express(Matcher):
    key = "express"
    FACTS: ClassVar[dict[str, Callable[[Any], bool]]] = {
        "app": lambda f: bool(f.apps or f.app_classes),  # `const app = express()`, `this.app = express()`
        "router": lambda f: bool(f.routers),
        "routes": lambda f: any(r.method != "USE" for r in f.routes),
        "listen": lambda f: f.listen_line is not None or bool(f.bootstraps),  # also PlatformExpress.bootstrap(Server)
        "mounts": lambda f: any(r.method == "USE" for r in f.routes),
    }

    def __init__(self, value: Any, where: Where) -> None:
        if value not in EXPRESS_FACTS:
            raise where.error(f"must be one of {', '.join(EXPRESS_FACTS)}")
        self.test = self.FACTS[value]

    def __call__(self, ctx: MatchContext) -> bool:
        return self.test(ctx.facts)


class Params(Matcher):
    key = "params"

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, dict) or not set(value) <= {"count", "min", "names"}:
            raise where.error("must be a mapping with `count`, `min` or `names`")
        for k in ("count", "min"):
            if k in value and (not isinstance(value[k], int) or isinstance(value[k], bool)):
                raise where.error("must be an integer", f".{k}")
        self.count, self.min = value.get("count"), value.get("min")
        self.names = None
        if "names" in value:
            self.names = _Regex(value["names"], where.at(".names")).test

    def __call__(self, ctx: MatchContext) -> bool:
        fn = ctx.function
        if fn is None:
            return False
        n = len(fn.params)
        if self.count is not None and n != self.count:
            return False
        if self.min is not None and n < self.min:
            return False
        if self.names is not None:
            return all(self.names(p.name) for p in fn.params) if fn.params else False
        return True


class Exported(Matcher):
    key = "exported"

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, bool):
            raise where.error("must be true or false")
        self.value = value

    def __call__(self, ctx: MatchContext) -> bool:
        if ctx.function is not None:
            return ctx.function.exported == self.value
        return bool(ctx.facts.exports) == self.value


class Graph(Matcher):
    key = "graph"
    uses_graph = True

    def __init__(self, value: Any, where: Where) -> None:
        if not isinstance(value, dict) or len(value) != 1:
            raise where.error(f"must be a mapping with one of {', '.join(GRAPH_RELATIONS)}")
        rel, target = next(iter(value.items()))
        if rel not in GRAPH_RELATIONS:
            raise where.error(f"unknown relation (allowed: {', '.join(GRAPH_RELATIONS)})", f".{rel}")
        targets = target if isinstance(target, list) else [target]
        if rel != "handles_route" and not all(t in CATEGORIES for t in targets):
            raise where.error(f"must name categories from {', '.join(CATEGORIES)}", f".{rel}")
        self.relation, self.target, self.targets = rel, target, set(targets)

    def __call__(self, ctx: MatchContext) -> bool:
        fn = ctx.function
        if self.relation == "handles_route":
            subject = fn.qualname if fn is not None else None
            return ctx.handles_route is not None and ctx.handles_route(subject or "") == bool(self.target)
        if ctx.graph_categories is None:
            return False
        return bool(ctx.graph_categories(self.relation, fn.qualname if fn is not None else "") & self.targets)


MATCHERS: dict[str, type[Matcher]] = {
    m.key: m for m in (AllOf, AnyOf, Not, Imports, PathGlob, Name, ClassName, Kind, TreeQuery, Has, Express, Params, Exported, Graph)
}
LEAF_KEYS = tuple(k for k in MATCHERS if k not in ("all", "any", "not"))
COMBINATORS = ("all", "any", "not")


def _list_of_matchers(value: Any, where: Where) -> list[Matcher]:
    if not isinstance(value, list) or not value:
        raise where.error("must be a non-empty list of matchers")
    return [compile_mapping(sub, where.at(f"[{i}]")) for i, sub in enumerate(value)]


def compile_mapping(m: Any, where: Where) -> Matcher:
    """A matcher mapping: every key compiled (in key order), all of them must hold."""
    if not isinstance(m, dict) or not m:
        raise where.error("a matcher must be a non-empty mapping")
    parts = []
    for key, value in sorted(m.items()):
        cls = MATCHERS.get(key)
        if cls is None:
            close = difflib.get_close_matches(str(key), list(MATCHERS), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"allowed: {', '.join(LEAF_KEYS + COMBINATORS)}"
            raise where.error(f"unknown matcher ({hint})", f".{key}")
        parts.append(cls(value, where.at(f".{key}")))
    if len(parts) == 1:
        return parts[0]
    return AllOf.of(parts)


def compile_matcher(m: Any, source: str, where: str = "match", compile_queries: bool = True) -> Matcher:
    """Compile (and so validate) a rule's `match:`; errors name the file and the key.

    `compile_queries=False` leaves its tree-sitter queries to be compiled when first
    run (a compile costs ~3 ms whatever the query): for the rules otelize ships, which
    its tests compile for both grammars. Every other check runs either way."""
    return compile_mapping(m, Where(source, where, compile_queries))


def matches(m: dict[str, Any] | Matcher, ctx: MatchContext) -> bool:
    """Whether a matcher holds (a compiled one, or a mapping compiled on the spot)."""
    if not isinstance(m, Matcher):
        m = compile_matcher(m, "<matcher>")
    return m(ctx)
