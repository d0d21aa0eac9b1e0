"""Classification fixtures annotated in the code itself (Semgrep style).

Each folder of tests/fixtures/classify/ is a small Express project. In its
TypeScript sources:

- `// expect-file: <category>` anywhere in a file gives the file's category
  (every source file must have one);
- `// expect: <category>` on the line before a function (or a class, or an
  object literal of handlers: all its methods) gives that function's category; `// expect: middleware [error-handler]`
  also gives its tags.

The runner compares the classifier with the annotations and reports MISSED
(expected but not produced) and UNEXPECTED (produced but not expected)
separately. A function the classifier decides on its own (a function rule
that sets a category or tags apart from its file) must be annotated too.
Unknown category names in annotations fail the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otelize.api import Analysis, analyze
from otelize.classify.ruleset import CATEGORIES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classify"
PROJECTS = sorted(p.name for p in FIXTURES.iterdir() if (p / "package.json").is_file())

EXPECT = re.compile(r"^\s*//\s*expect:\s*(?P<cat>[\w-]+)(?:\s*\[(?P<tags>[\w\s,-]*)\])?\s*$")
OBJECT_LITERAL = re.compile(r"^\s*(?:export\s+)?(?:const|let|var)\s+(\w+)\b[^=]*=\s*\{")
EXPECT_FILE = re.compile(r"//\s*expect-file:\s*(?P<cat>[\w-]+)")

Item = tuple[str, str, str]  # (file, symbol or "<file>", "category[tags]")


def _label(category: str, tags: tuple[str, ...] | list[str] = ()) -> str:
    return f"{category}[{','.join(sorted(tags))}]" if tags else category


def _annotations(a: Analysis) -> tuple[set[Item], dict[str, set[str]], list[str]]:
    """(expected items, annotated symbols per file, annotation errors)."""
    expected: set[Item] = set()
    annotated: dict[str, set[str]] = {}
    errors: list[str] = []
    for path in a.project.files:
        lines = (a.project.root / path).read_text("utf-8").splitlines()
        facts = a.facts[path]
        file_cats = []
        for i, line in enumerate(lines, start=1):
            for m in EXPECT_FILE.finditer(line):
                file_cats.append((i, m.group("cat")))
            m = EXPECT.match(line)
            if m is None:
                if re.search(r"//\s*expect\b(?!-file)", line):
                    errors.append(f"{path}:{i}: malformed annotation {line.strip()!r}")
                continue
            cat, tags = m.group("cat"), tuple(t.strip() for t in (m.group("tags") or "").split(",") if t.strip())
            if cat not in CATEGORIES:
                errors.append(f"{path}:{i}: unknown category {cat!r} (known: {', '.join(CATEGORIES)})")
                continue
            target = i + 1
            while target <= len(lines) and (not lines[target - 1].strip() or lines[target - 1].strip().startswith("//")):
                target += 1
            symbols = [c.name for c in facts.classes if c.line == target]
            obj = OBJECT_LITERAL.match(lines[target - 1]) if target <= len(lines) else None
            if symbols:
                symbols = [
                    fn.qualname for fn in facts.functions if fn.class_name in symbols and not fn.is_signature and not fn.is_constructor
                ]
            elif obj is not None and obj.group(1) in facts.objects:  # `const ctrl = { async get() {} }`: its methods
                symbols = [fn.qualname for fn in facts.functions if fn.kind == "object-method" and fn.qualname.startswith(obj.group(1) + ".")]
            else:
                symbols = [fn.qualname for fn in facts.functions if fn.line == target and fn.class_name is None][:1]
            if not symbols:
                errors.append(f"{path}:{i}: `expect:` is not followed by a function or class (line {target})")
            for sym in symbols:
                expected.add((path, sym, _label(cat, tags)))
                annotated.setdefault(path, set()).add(sym)
        if not file_cats:
            errors.append(f"{path}: no `// expect-file: <category>` annotation")
        for i, cat in file_cats:
            if cat not in CATEGORIES:
                errors.append(f"{path}:{i}: unknown category {cat!r} (known: {', '.join(CATEGORIES)})")
            else:
                expected.add((path, "<file>", cat))
    return expected, annotated, errors


def _actual(a: Analysis, annotated: dict[str, set[str]]) -> set[Item]:
    cls = a.classification
    actual: set[Item] = set()
    for path in a.project.files:
        fd = cls.file(path)
        actual.add((path, "<file>", fd.category))
        for sym in annotated.get(path, ()):
            d = cls.function(path, sym)
            actual.add((path, sym, _label(d.category, d.tags)))
    for (path, sym), d in cls.functions.items():
        fd = cls.file(path)
        if (d.category, d.tags) != (fd.category, fd.tags) and sym not in annotated.get(path, set()):
            actual.add((path, sym, _label(d.category, d.tags)))
    return actual


def _fmt(items: set[Item]) -> str:
    return "\n".join(f"  {f} {s}: {c}" for f, s, c in sorted(items))


@pytest.mark.parametrize("project", PROJECTS)
def test_classification_matches_annotations(project: str) -> None:
    a = analyze(FIXTURES / project)
    assert a.unparsable == [], f"fixture files must parse: {a.unparsable}"
    expected, annotated, errors = _annotations(a)
    assert not errors, "bad annotations:\n" + "\n".join(errors)
    actual = _actual(a, annotated)
    missed, unexpected = expected - actual, actual - expected
    message = []
    if missed:
        message.append(f"MISSED ({len(missed)}):\n{_fmt(missed)}")
    if unexpected:
        message.append(f"UNEXPECTED ({len(unexpected)}):\n{_fmt(unexpected)}")
    assert not message, f"{project}:\n" + "\n".join(message)


def test_fixtures_cover_every_category() -> None:
    seen: set[str] = set()
    for project in PROJECTS:
        for path in (FIXTURES / project).rglob("*.ts"):
            seen |= {m.group("cat") for m in EXPECT_FILE.finditer(path.read_text("utf-8"))}
    assert seen >= set(CATEGORIES), f"no fixture file expects {sorted(set(CATEGORIES) - seen)}"


def test_unknown_category_in_an_annotation_fails(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"express": "4.21.0"}}')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.ts").write_text("// expect-file: databse\n// expect: servise\nexport function f() {}\n")
    _, _, errors = _annotations(analyze(tmp_path))
    assert errors == [
        "src/a.ts:2: unknown category 'servise' (known: " + ", ".join(CATEGORIES) + ")",
        "src/a.ts:1: unknown category 'databse' (known: " + ", ".join(CATEGORIES) + ")",
    ]


def test_runner_reports_missed_and_unexpected_separately(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"express": "4.21.0"}}')
    (tmp_path / "src" / "services").mkdir(parents=True)
    (tmp_path / "src" / "services" / "a.ts").write_text("// expect-file: database\nexport function f() {}\n")
    a = analyze(tmp_path)
    expected, annotated, errors = _annotations(a)
    actual = _actual(a, annotated)
    assert not errors
    assert expected - actual == {("src/services/a.ts", "<file>", "database")}
    assert actual - expected == {("src/services/a.ts", "<file>", "service")}
