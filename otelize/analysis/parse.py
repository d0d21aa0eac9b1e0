"""parse: tree-sitter-typescript over bytes.

The TypeScript grammar for .ts/.mts/.cts; the TSX grammar for .tsx and for
JavaScript (.js, .cjs, .mjs, .jsx, and extensionless `bin/www`-style files).
JavaScript goes through the TSX grammar rather than tree-sitter-javascript:
measured on 271 real JavaScript files (16 MB: the sample app's node_modules
and two public Express apps) both grammars parse every file without an error
and give the same tree up to TypeScript's own encoding of parameters
(`required_parameter` around a default value) and class heritage
(`extends_clause`), which the fact extractors read already; so every query
and extractor serves both languages, with no second grammar to keep in step.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from functools import cache
from itertools import accumulate, repeat
from operator import add, attrgetter
from typing import Any

import tree_sitter_typescript as tst
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

BOM = b"\xef\xbb\xbf"


@cache
def language(tsx: bool = False) -> Language:
    return Language(tst.language_tsx() if tsx else tst.language_typescript())


@cache
def _parser(tsx: bool) -> Parser:
    return Parser(language(tsx))


# `#match?` and its variants are evaluated by py-tree-sitter with Python's `re`, which
# backtracks: a rule's `(#match? @f "^(a+)+$")` took 54 s on a 29-character name. They
# are renamed to custom predicates and evaluated here with RE2 (linear time), the
# engine of the rules' `name`/`class` regexes (otelize.classify.ruleset.rule_regex).
_REGEX_PREDICATE = re.compile(r"#((?:any-)?(?:not-)?match\?)")
_REGEX_STRINGS = re.compile(r'#(?:any-)?(?:not-)?match\?\s+@[\w.-]+\s+"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def query_regexes(source: str) -> list[str]:
    """The regexes of a query's `#match?`-style predicates (with tree-sitter's string escapes undone)."""
    return [
        re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw)
        for raw in _REGEX_STRINGS.findall(source)
    ]


def query(source: str, tsx: bool = False) -> Query:
    """A compiled tree-sitter query (cached per grammar); regex predicates run on RE2 (see _REGEX_PREDICATE).

    The cache is keyed on (source, grammar) alone: `query(q)`, `query(q, False)` and
    `query(q, tsx=False)` are one compile (a compile costs ~3 ms, whatever the query).
    """
    return _compiled(source, bool(tsx))


@cache
def _compiled(source: str, tsx: bool) -> Query:
    return Query(language(tsx), _REGEX_PREDICATE.sub(r"#otelize-\1", source))


def _predicate(name: str, args: list[tuple[str, str]], _pattern: int, caps: dict[str, list[Node]]) -> bool:
    if not name.startswith("otelize-") or len(args) != 2:
        return True  # not ours: as py-tree-sitter treats an unknown predicate
    kind = name[len("otelize-"):]
    test = _regex(args[1][0])
    found = [test((n.text or b"").decode("utf-8", "replace")) for n in caps.get(args[0][0], [])]
    if kind.startswith("not-") or kind.startswith("any-not-"):
        found = [not f for f in found]
    return any(found) if kind.startswith("any-") else all(found)


@cache
def _regex(pattern: str) -> Any:
    from otelize.classify.ruleset import compile_regex

    return compile_regex(pattern)


def captures(q: Query, node: Node) -> dict[str, list[Node]]:
    return QueryCursor(q).captures(node, predicate=_predicate)


def matches(q: Query, node: Node) -> list[tuple[int, dict[str, list[Node]]]]:
    return QueryCursor(q).matches(node, predicate=_predicate)


JS_SUFFIXES = (".js", ".cjs", ".mjs", ".jsx")


def is_javascript(path: str) -> bool:
    """A JavaScript file: a JS extension, or none at all (`bin/www`, found by its shebang)."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(JS_SUFFIXES) or "." not in name


def is_tsx(path: str) -> bool:
    """Whether `path` is parsed with the TSX grammar (.tsx, and JavaScript: JSX is legal there,
    and `<T>x` type assertions, the one thing TSX parses differently, are not)."""
    return path.endswith(".tsx") or is_javascript(path)


class ParsedFile:
    """A source file as bytes, with its tree-sitter tree.

    The tree is built on first use: files analysed in a worker process come
    back with their errors known, and are re-parsed in this process only if
    something here needs the tree.
    """

    __slots__ = ("path", "source", "tsx", "errors", "problem", "_tree", "cache")

    def __init__(
        self,
        path: str,
        source: bytes,
        tree: Tree | None = None,
        tsx: bool | None = None,
        errors: list[tuple[int, int, str]] | None = None,
        problem: str | None = None,
    ) -> None:
        self.path = path  # relative posix path
        self.source = source
        self.tsx = is_tsx(path) if tsx is None else tsx
        self.errors = errors if errors is not None else []  # (line, column, "ERROR"|"MISSING x")
        self.problem = problem  # a reason this file must not be edited (binary, non-UTF-8, ...)
        self._tree = tree
        self.cache: dict[str, object] = {}  # derived per-file data (e.g. the detected style)

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            self._tree = _parser(self.tsx).parse(self.source)
        return self._tree

    @property
    def ok(self) -> bool:
        return not self.errors and self.problem is None

    @property
    def root(self) -> Node:
        return self.tree.root_node


def source_problem(source: bytes) -> str | None:
    if b"\x00" in source:
        return "binary content (NUL bytes)"
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start})"
    return None


def parse_source(path: str, source: bytes) -> ParsedFile:
    tsx = is_tsx(path)
    tree = _parser(tsx).parse(source)
    parsed = ParsedFile(path, source, tree, tsx, problem=source_problem(source))
    if tree.root_node.has_error:
        parsed.errors = syntax_errors(tree.root_node)
    return parsed


def line_starts(data: bytes) -> list[int]:
    """The offset of each line's first byte (a line ends after b"\\n"), in C-level iterators."""
    return list(accumulate(map(add, map(len, data.split(b"\n")), repeat(1)), initial=0))[:-1]


def reparse(before: ParsedFile, new: bytes, edits: Iterable[tuple[int, int, bytes]]) -> ParsedFile:
    """`new` parsed incrementally from `before`'s tree: `new` is `before.source` with
    `edits` ((start, end, text) byte ranges of the old source, none overlapping) applied.

    Each splice is told to a copy of the old tree (`Tree.edit`, last splice first, so the
    earlier offsets stay valid), and tree-sitter then re-parses only what changed. The
    result is the tree a full parse of `new` gives.
    """
    old = before.source
    starts = line_starts(old)

    def point(offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(starts, offset) - 1
        return row, offset - starts[row]

    tree = before.tree.copy()
    for start, end, text in sorted(set(edits), reverse=True):
        start_point = point(start)
        newlines = text.count(b"\n")
        if newlines:
            new_end_point = (start_point[0] + newlines, len(text) - text.rfind(b"\n") - 1)
        else:
            new_end_point = (start_point[0], start_point[1] + len(text))
        tree.edit(start, end, start + len(text), start_point, point(end), new_end_point)
    new_tree = _parser(before.tsx).parse(new, tree)
    parsed = ParsedFile(before.path, new, new_tree, before.tsx, problem=source_problem(new))
    if new_tree.root_node.has_error:
        parsed.errors = syntax_errors(new_tree.root_node)
    return parsed


def syntax_errors(root: Node) -> list[tuple[int, int, str]]:
    """All ERROR and MISSING nodes, in source order. Only walked when has_error."""
    found: list[tuple[int, int, str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if not node.has_error and not node.is_missing:
            continue
        if node.is_error:
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, "ERROR"))
        elif node.is_missing:
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, f"MISSING {node.type}"))
        stack.extend(reversed(node.children))
    found.sort()
    return found


def grammar_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tree-sitter-typescript")
    except PackageNotFoundError:  # pragma: no cover - installed with otelize
        return "unknown"


def unparsable_reason(errors: list[tuple[int, int, str]]) -> str:
    """Why a file is left alone when the grammar found ERROR/MISSING nodes. It names the
    grammar: valid TypeScript it does not support (a decorator with a call chain,
    `@Returns(200, User).Of(Foo)`, in tree-sitter-typescript 0.23.2) reads the same as
    broken code, so the message must not say the code is broken."""
    line, col, kind = errors[0]
    return (
        f"the TypeScript grammar (tree-sitter-typescript {grammar_version()}) could not parse it at line {line} "
        f"column {col} ({kind}): a syntax error, or syntax the grammar does not support"
    )


def text(node: Node | None) -> str:
    if node is None:
        return ""
    raw = node.text  # (a new bytes object per access: read once)
    return "" if raw is None else raw.decode("utf-8", errors="replace")


# Sort key for captured nodes, (start_byte, end_byte): `QueryCursor.captures` gives no
# defined order among nodes that start at the same byte (`router.route('/').put(a).patch(b)`:
# both calls start at `router`, and which came first differed from run to run); the inner,
# shorter one is the one written first. (A C-level getter: it is called for every capture.)
source_order: Callable[[Node], tuple[int, int]] = attrgetter("start_byte", "end_byte")


def line_of(node: Node) -> int:
    return node.start_point[0] + 1
