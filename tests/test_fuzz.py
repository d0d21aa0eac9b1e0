"""Fuzz-style robustness: mutated copies of the sample app, seeded and deterministic.

Each seed copies sample-app's src/, package.json and tsconfig.json (no
node_modules) to a temporary folder and damages 1-4 source files with
`random.Random(seed)`: delete a token, delete a span of bytes, truncate at a
random offset, inject random bytes (NUL, invalid UTF-8), duplicate a line,
remove a closing brace. A few seeds also damage package.json or tsconfig.json.

Then `otelize.api.instrument(tmp, write=True)` must:

- raise nothing but `OtelizeError` (and on an error, leave the tree unchanged);
- leave every file that did not parse before byte-identical;
- leave every changed or created TypeScript file parsing cleanly;
- make zero edits when run a second time on its own result;

and `otelize.stripping.strip.strip(tmp)` on the result must raise nothing but
`OtelizeError`, never touch an unparsable file and keep every file it changes
parsing. The same holds for strip, then instrument, on a damaged
*instrumented* tree. Failures print the seed and the mutations, so a case can
be replayed with `pytest tests/test_fuzz.py -k "seed-17"`.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from otelize.api import instrument
from otelize.errors import OtelizeError
from otelize.analysis.parse import parse_source
from otelize.stripping.strip import strip

SAMPLE_APP = Path(__file__).resolve().parent.parent / "sample-app"
SEEDS = range(40)
SOURCE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts")
TOKEN = re.compile(rb"[A-Za-z_$][A-Za-z0-9_$]*|\d+|\S")
JUNK = (0x00, 0xFF, 0xFE, 0xC3, 0x80, 0xE2, 0x28, 0x7B, 0x7D, 0x60, 0x22, 0x0A)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random damage; returns the new bytes and a description for the failure message."""
    op = rng.choice(["delete-token", "delete-span", "truncate", "inject-bytes", "duplicate-line", "remove-brace"])
    if not data:
        return data, f"{op} (empty file)"
    if op == "delete-token":
        m = rng.choice(list(TOKEN.finditer(data)))
        return data[: m.start()] + data[m.end() :], f"{op} {m.group()!r} at {m.start()}"
    if op == "delete-span":
        a = rng.randrange(len(data))
        b = min(len(data), a + rng.randint(1, 60))
        return data[:a] + data[b:], f"{op} {a}..{b}"
    if op == "truncate":
        at = rng.randrange(len(data))
        return data[:at], f"{op} at {at}"
    if op == "inject-bytes":
        at = rng.randrange(len(data) + 1)
        junk = bytes(rng.choice(JUNK) if rng.random() < 0.7 else rng.randrange(256) for _ in range(rng.randint(1, 6)))
        return data[:at] + junk + data[at:], f"{op} {junk!r} at {at}"
    if op == "duplicate-line":
        lines = data.splitlines(keepends=True)
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return b"".join(lines), f"{op} {i + 1}"
    braces = [i for i, c in enumerate(data) if c == ord("}")]
    if not braces:
        return data, f"{op} (none)"
    at = rng.choice(braces)
    return data[:at] + data[at + 1 :], f"{op} at {at}"


def copy_sample(root: Path) -> None:
    """src/, package.json and tsconfig.json of the sample app (no node_modules, dist or tests)."""
    root.mkdir(parents=True)
    shutil.copytree(SAMPLE_APP / "src", root / "src")
    for name in ("package.json", "tsconfig.json"):
        shutil.copy(SAMPLE_APP / name, root / name)


def make_tree(root: Path, seed: int) -> list[str]:
    """A damaged copy of the sample app; returns what was done, for the failure message."""
    rng = random.Random(seed)
    copy_sample(root)
    sources = sorted(p for p in (root / "src").rglob("*") if p.suffix in SOURCE_SUFFIXES)
    log = []
    for _ in range(rng.randint(1, 4)):
        target = rng.choice(sources)
        data, what = mutate(target.read_bytes(), rng)
        target.write_bytes(data)
        log.append(f"{target.relative_to(root).as_posix()}: {what}")
    if rng.random() < 0.12:  # now and then, the project files too
        target = root / rng.choice(["package.json", "tsconfig.json"])
        data, what = mutate(target.read_bytes(), rng)
        target.write_bytes(data)
        log.append(f"{target.name}: {what}")
    return log


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def parses(path: str, data: bytes) -> bool:
    return parse_source(path, data).ok


def is_source(path: str) -> bool:
    return path.endswith(SOURCE_SUFFIXES)


def check_edits(before: dict[str, bytes], after: dict[str, bytes], context: str) -> None:
    """No unparsable file touched; every changed/created source file parses."""
    for path, old in before.items():
        if is_source(path) and not parses(path, old):
            assert after.get(path) == old, f"{context}: edited {path}, which did not parse"
    for path, new in after.items():
        if before.get(path) != new and is_source(path):
            assert parses(path, new), f"{context}: {path} was changed and no longer parses"


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def test_mutated_sample_app(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "app"
    log = make_tree(root, seed)
    context = f"seed {seed} [{'; '.join(log)}]"
    before = snapshot(root)

    try:
        first = instrument(root, write=True)
    except OtelizeError as exc:
        assert "\n" not in str(exc).strip(), f"{context}: multi-line error {exc}"
        assert snapshot(root) == before, f"{context}: error {exc} but files were written"
        return
    after = snapshot(root)
    check_edits(before, after, context)
    unparsable = {p for p, _ in first.analysis.unparsable}
    assert first.partial == bool(unparsable or first.synthesis.reverted)
    for path in unparsable:
        assert after[path] == before[path], f"{context}: {path} reported unparsable but edited"

    second = instrument(root, write=False)
    assert second.synthesis.changes == {}, f"{context}: second run would change {sorted(second.synthesis.changes)}"

    stripped = strip(root, write=True)
    check_edits(after, snapshot(root), f"{context} (strip)")
    for path in stripped.changes:
        assert path not in unparsable, f"{context}: strip changed unparsable {path}"


def test_mutations_are_deterministic(tmp_path: Path) -> None:
    """Same seed, same damaged tree: a failing seed can be replayed."""
    make_tree(tmp_path / "a", 7)
    make_tree(tmp_path / "b", 7)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_the_seeds_produce_unparsable_files(tmp_path: Path) -> None:
    """The fuzz is not vacuous: most seeds break at least one file, and some damage the project files."""
    broken = project_files = 0
    for seed in SEEDS:
        root = tmp_path / f"t{seed}"
        log = make_tree(root, seed)
        broken += any(is_source(p) and not parses(p, d) for p, d in snapshot(root).items())
        project_files += any(line.startswith(("package.json", "tsconfig.json")) for line in log)
    assert broken >= len(SEEDS) // 2
    assert project_files >= 1


# --- damaged *instrumented* trees: strip and re-instrument hand-broken instrumentation -------------

INSTRUMENTED_SEEDS = range(1000, 1012)


@pytest.fixture(scope="module")
def instrumented_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample app's src/ + package.json + tsconfig.json, instrumented once."""
    root = tmp_path_factory.mktemp("fuzz-base") / "app"
    copy_sample(root)
    assert instrument(root, write=True).synthesis.changes
    return root


@pytest.mark.parametrize("seed", INSTRUMENTED_SEEDS, ids=[f"seed-{s}" for s in INSTRUMENTED_SEEDS])
def test_mutated_instrumented_app(tmp_path: Path, instrumented_base: Path, seed: int) -> None:
    """Damage an instrumented tree (the generated tracing.ts/otel.ts excepted: otelize owns and
    regenerates them), then strip and instrument again: the same guarantees hold."""
    rng = random.Random(seed)
    root = tmp_path / "app"
    shutil.copytree(instrumented_base, root)
    sources = sorted(p for p in (root / "src").rglob("*") if p.suffix in SOURCE_SUFFIXES and p.name not in ("tracing.ts", "otel.ts"))
    log = []
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(sources)
        data, what = mutate(target.read_bytes(), rng)
        target.write_bytes(data)
        log.append(f"{target.relative_to(root).as_posix()}: {what}")
    context = f"seed {seed} [{'; '.join(log)}]"
    for step in ("strip", "instrument"):
        before = snapshot(root)
        try:
            strip(root, write=True) if step == "strip" else instrument(root, write=True)
        except OtelizeError as exc:
            assert snapshot(root) == before, f"{context}: {step} failed with {exc} but wrote files"
            continue
        check_edits(before, snapshot(root), f"{context} ({step})")
    assert instrument(root, write=False).synthesis.changes == {}, f"{context}: not idempotent after strip + instrument"
