"""What classification leaves unevaluated gives the decision a full evaluation gives.

`_decide` stops evaluating rules of another category once one matches; the scan's
static memo (`static_needed`) holds only the file rules `_decide` can ask for, whatever
the graph rules answer later; a tree query whose `#eq?` literal a file does not contain
is answered without reading the tree (`required_literals`).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from otelize.analysis.parse import captures, parse_source, query
from otelize.classify.engine import Decision, _decide, static_needed
from otelize.classify.matchers import MatchContext, TreeQuery, Where, required_literals
from otelize.classify.ruleset import Rule, parse_rule

CATEGORIES = ("database", "cache", "http", "service")


class Fixed:
    """A matcher whose answer is set by the test; `allowed=False` fails if it is asked."""

    reads_tree = False

    def __init__(self, answer: bool, uses_graph: bool) -> None:
        self.answer, self.uses_graph, self.allowed, self.calls = answer, uses_graph, True, 0

    def __call__(self, ctx: Any) -> bool:
        assert self.allowed, "a static rule was evaluated again (not in the memo)"
        self.calls += 1
        return self.answer


def _rule(i: int, category: str, priority: int, answer: bool, uses_graph: bool) -> Rule:
    rule = parse_rule(
        {"id": f"r{i:02d}", "category": category, "priority": priority, "match": {"path": "x"},
         "options": {"k": i, f"o{i}": True}, "tags": [f"t{i % 3}"]},
        f"r{i:02d}.yaml",
    )
    object.__setattr__(rule, "matcher", Fixed(answer, uses_graph))
    return rule


def _full(rules: list[Rule]) -> Decision | None:
    """The decision as defined: every rule evaluated, the first hit wins, hits of its category agree."""
    hits = [r for r in rules if r.matcher.answer]
    if not hits:
        return None
    same = [r for r in hits if r.category == hits[0].category]
    options: dict[str, Any] = {}
    for r in reversed(same):
        options.update(r.options)
    tags = sorted({t for r in same for t in r.tags})
    return Decision(hits[0].category, tuple(r.id for r in same), tuple(sorted(options.items())), tuple(tags))


@pytest.mark.parametrize("seed", range(300))
def test_slim_memo_and_early_stop_decide_as_a_full_evaluation(seed: int) -> None:
    rng = random.Random(seed)
    rules = [
        _rule(i, rng.choice(CATEGORIES), rng.randrange(20, 100), rng.random() < 0.3, rng.random() < 0.25)
        for i in range(rng.randrange(1, 14))
    ]
    rules.sort(key=lambda r: (-r.priority, r.id))
    memo = dict(static_needed(rules, lambda r: r.matcher(None)))
    assert all(not r.uses_graph for r in rules if r.id in memo)
    for r in rules:
        if not r.uses_graph:
            r.matcher.allowed = False  # the classification round reads the memo only
    assert _decide(rules, MatchContext("a.ts", None, None), memo) == _full(rules)


def test_a_rule_of_another_category_below_the_winner_is_not_evaluated() -> None:
    rules = [_rule(0, "database", 90, True, False), _rule(1, "cache", 80, True, False),
             _rule(2, "database", 70, True, False)]
    d = _decide(rules, MatchContext("a.ts", None, None))
    assert d is not None and d.rules == ("r00", "r02")
    assert [r.matcher.calls for r in rules] == [1, 0, 1]


def _tree_query(source: str) -> TreeQuery:
    return TreeQuery(source, Where("t.yaml", "match.query"))


EXPRESS = '(import_statement source: (string (string_fragment) @s (#eq? @s "express")))'


@pytest.mark.parametrize(
    ("source", "literals"),
    [
        (EXPRESS, (b"express",)),
        ('((identifier) @a (#any-eq? @a "fetch"))', (b"fetch",)),
        ('((identifier)+ @a (#eq? @a "x"))', (b"x",)),
        ('(program (comment)? @c (#eq? @c "x"))', ()),  # a capture that may hold no node passes the predicate
        ('(program (comment)* @c (#eq? @c "x"))', ()),
        ('[(identifier) @x (string) @y] (#eq? @x "a")', ()),  # @x is absent from the other branch
        ('((identifier) @a (#not-eq? @a "x"))', ()),
        ('((identifier) @a (#eq? @a ""))', ()),
        ('((identifier) @a (#eq? @a "a\\"b"))', ()),  # escapes: left out
        ('; (#eq? @a "zz")\n((identifier) @a)', ()),  # a comment
        ('((string) @s (#match? @s "(#eq? @s \\"q\\")"))', ()),  # inside a regex string
        ('((identifier) @a (#eq? @a "x")) ((string) @b)', ()),  # two patterns
    ],
)
def test_required_literals(source: str, literals: tuple[bytes, ...]) -> None:
    assert required_literals(source, query(source)) == literals


@pytest.mark.parametrize(
    "code",
    [
        b"import express from 'express';\n",
        b"import e from 'expres';\nconst s = 'express';\n",  # the text, but not an import's source
        b"import x from './x';\n",
        b"const a = require('express');\n",
    ],
)
def test_tree_query_skip_answers_as_the_query(code: bytes) -> None:
    pf = parse_source("a.ts", code)
    tq = _tree_query(EXPRESS)
    expected = any(captures(query(EXPRESS), pf.root).values())
    assert tq(MatchContext("a.ts", None, pf)) == expected


CHAIN_APP = {
    "package.json": '{"name": "chain", "dependencies": {"express": "^4.19.2"}}',
    "src/index.ts": (
        "import express from 'express';\nimport orders from './routes/orders';\n"
        "const app = express();\napp.use('/api', orders);\napp.listen(3000);\n"
    ),
    "src/routes/orders.ts": (
        "import { Router } from 'express';\nimport { placeOrder } from '../lib/a';\n"
        "const router = Router();\n"
        "export function list(req: any, res: any) {\n  placeOrder();\n  res.send('ok');\n}\n"
        "router.get('/orders', list);\nexport default router;\n"
    ),
    "src/lib/a.ts": (
        "import { save } from '../db/c';\nimport { step } from './b';\n"
        "export async function placeOrder() {\n  await save();\n  await step();\n}\n"
    ),
    "src/lib/b.ts": (
        "import { save } from '../db/c';\nimport { finish } from './e';\n"
        "export async function step() {\n  await save();\n  await finish();\n}\n"
    ),
    "src/lib/e.ts": "import { save } from '../db/c';\nexport async function finish() {\n  await save();\n}\n",
    "src/lib/f.ts": "import { save } from '../db/c';\nexport async function alone() {\n  await save();\n}\n",
    "src/db/c.ts": "export async function save() {\n  return 1;\n}\n",
}


def test_categories_that_take_several_rounds_to_reach_a_file(tmp_path) -> None:  # noqa: ANN001
    """The rounds as they run with every file decided in each: a is a service from round 1
    (called from a route, calls the database); b from round 2 (called from a); e from
    round 3 (called from b). b stays a service in round 3: a file's own calls (to its own
    functions) are left out of its relations, not its own category, which is also that of
    the other files calling it (dropping the category made b `other` again in round 3, a
    service chain broken in the middle). The rounds that keep a file's decision must
    still decide again the files next to one that changed."""
    from otelize.api import analyze

    for rel, text in CHAIN_APP.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    files = analyze(tmp_path).classification.files
    got = {p: files[p].category for p in ("src/lib/a.ts", "src/lib/b.ts", "src/lib/e.ts", "src/lib/f.ts", "src/db/c.ts")}
    assert got == {"src/lib/a.ts": "service", "src/lib/b.ts": "service", "src/lib/e.ts": "service",
                   "src/lib/f.ts": "other", "src/db/c.ts": "database"}
