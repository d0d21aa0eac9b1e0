"""Incremental re-parse (otelize.analysis.parse.reparse) gives the tree a full parse gives, so the
synthesizer's validation can re-parse only what the edits changed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from otelize.analysis.parse import parse_source, reparse

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO_ROOT / "sample-app"


def edits_between(old: bytes, rng: random.Random, n: int) -> list[tuple[int, int, bytes]]:
    """n non-overlapping random splices of `old`, on UTF-8 character boundaries."""
    bounds = sorted(rng.sample([i for i in range(len(old) + 1) if i == len(old) or (old[i] & 0xC0) != 0x80], 2 * n))
    texts = [b"", b"\n", b"  x;\n", b"{", b"}", b"// \xc3\xa9t\xc3\xa9\n", b"await f();\r\n", b"`a\n${b}`"]
    return [(bounds[2 * i], bounds[2 * i + 1], rng.choice(texts)) for i in range(n)]


def splice(old: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out, pos = bytearray(), 0
    for start, end, text in sorted(edits):
        out += old[pos:start] + text
        pos = end
    return bytes(out + old[pos:])


@pytest.mark.parametrize("seed", range(12))
def test_random_splices_reparse_to_the_full_parse(seed: int) -> None:
    rng = random.Random(seed)
    files = sorted(SAMPLE_APP.glob("src/**/*.ts"))
    path = files[seed % len(files)]
    old = path.read_bytes() + "\n// naïve ünïcode ✓\n".encode()
    before = parse_source(path.name, old)
    edits = edits_between(old, rng, rng.randint(1, 12))
    new = splice(old, edits)
    incremental, full = reparse(before, new, edits), parse_source(path.name, new)
    assert str(incremental.root) == str(full.root)
    assert incremental.errors == full.errors
    assert str(before.root) == str(parse_source(path.name, old).root)  # the analysed tree is left as it was
