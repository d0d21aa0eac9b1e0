"""Edit values and apply_edits: one splice, duplicates collapse, overlaps are errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otelize.synthesize.edits import Edit, apply_edits, merge_edits
from otelize.errors import EditConflict

F = "src/a.ts"


def reference_splice(source: bytes, edits: list[Edit]) -> bytes:
    """Apply edits one at a time from the end of the file backwards (valid when they do not overlap)."""
    out = source
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        out = out[: e.start] + e.text + out[e.end :]
    return out


# --- constructors ------------------------------------------------------------------


def test_constructors() -> None:
    ins = Edit.insert(F, 3, b"x", "service")
    assert (ins.file, ins.start, ins.end, ins.text, ins.worker) == (F, 3, 3, b"x", "service")
    dele = Edit.delete(F, 2, 5, "http")
    assert (dele.start, dele.end, dele.text, dele.worker) == (2, 5, b"", "http")
    rep = Edit.replace(F, 1, 4, b"yz")
    assert (rep.start, rep.end, rep.text, rep.worker) == (1, 4, b"yz", "")


def test_edits_are_frozen_values() -> None:
    e = Edit.insert(F, 0, b"a")
    with pytest.raises(AttributeError):
        e.start = 1  # type: ignore[misc]
    assert e == Edit.insert(F, 0, b"a") and hash(e) == hash(Edit.insert(F, 0, b"a"))


@pytest.mark.parametrize(("start", "end"), [(-1, 0), (5, 4), (-2, -1)])
def test_bad_range_is_rejected(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="bad edit range"):
        Edit(F, start, end, b"")


def test_text_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        Edit(F, 0, 0, "str")  # type: ignore[arg-type]


# --- apply -------------------------------------------------------------------------


def test_apply_equals_reference_splice() -> None:
    src = b"0123456789"
    edits = [Edit.replace(F, 7, 9, b"XY"), Edit.insert(F, 0, b">"), Edit.delete(F, 2, 4), Edit.insert(F, 10, b"<")]
    assert apply_edits(src, edits) == b">01456XY9<"
    assert apply_edits(src, edits) == reference_splice(src, edits)


def test_no_edits_is_identity() -> None:
    assert apply_edits(b"abc", []) == b"abc"


def test_adjacent_edits_do_not_conflict() -> None:
    src = b"abcdef"
    edits = [Edit.replace(F, 0, 2, b"X", "a"), Edit.replace(F, 2, 4, b"Y", "b"), Edit.insert(F, 4, b"-", "c")]
    assert apply_edits(src, edits) == b"XY-ef"


def test_insertion_at_the_edge_of_a_replacement_is_not_a_conflict() -> None:
    src = b"abcdef"
    assert apply_edits(src, [Edit.replace(F, 2, 4, b"XY", "a"), Edit.insert(F, 2, b"<", "b")]) == b"ab<XYef"
    assert apply_edits(src, [Edit.replace(F, 2, 4, b"XY", "a"), Edit.insert(F, 4, b">", "b")]) == b"abXY>ef"


def test_identical_duplicates_collapse() -> None:
    src = b"hello world"
    e1 = Edit.insert(F, 5, b",", "imports")
    e2 = Edit.insert(F, 5, b",", "imports")
    e3 = Edit.insert(F, 5, b",", "service")  # same change from another worker: still the same edit
    assert merge_edits([e1, e2, e3]) == [merge_edits([e1])[0]]
    assert apply_edits(src, [e1, e2, e3]) == b"hello, world"
    r = Edit.replace(F, 0, 5, b"HELLO", "x")
    assert apply_edits(src, [r, r, Edit.replace(F, 0, 5, b"HELLO", "y")]) == b"HELLO world"


def test_overlapping_edits_name_both_workers() -> None:
    with pytest.raises(EditConflict) as info:
        apply_edits(b"0123456789", [Edit.replace(F, 2, 6, b"a", "service"), Edit.replace(F, 4, 8, b"b", "database")])
    message = str(info.value)
    assert "service" in message and "database" in message and F in message


def test_insertion_inside_a_replacement_conflicts() -> None:
    with pytest.raises(EditConflict, match="http.*cache|cache.*http"):
        apply_edits(b"0123456789", [Edit.replace(F, 2, 6, b"a", "http"), Edit.insert(F, 4, b"b", "cache")])


def test_two_different_insertions_at_the_same_point_conflict() -> None:
    with pytest.raises(EditConflict) as info:
        apply_edits(b"abc", [Edit.insert(F, 1, b"x", "imports"), Edit.insert(F, 1, b"y", "http")])
    assert "imports" in str(info.value) and "http" in str(info.value)


def test_same_range_different_text_conflicts() -> None:
    with pytest.raises(EditConflict):
        apply_edits(b"abcdef", [Edit.replace(F, 1, 3, b"x", "a"), Edit.replace(F, 1, 3, b"y", "b")])


def test_edit_beyond_end_of_file_is_rejected() -> None:
    with pytest.raises(EditConflict, match="beyond end of file"):
        apply_edits(b"abc", [Edit.replace(F, 2, 9, b"x")])


def test_edits_on_non_ascii_bytes() -> None:
    src = "const grüße = '名前';\n".encode()
    start = src.index("名前".encode())
    end = start + len("名前".encode())
    assert end - start == 6  # byte offsets, not characters
    out = apply_edits(src, [Edit.replace(F, start, end, "なまえ".encode()), Edit.insert(F, 0, "// ✓\n".encode())])
    assert out.decode("utf-8") == "// ✓\nconst grüße = 'なまえ';\n"


# --- properties --------------------------------------------------------------------

texts = st.binary(max_size=6)


@st.composite
def disjoint_edits(draw: st.DrawFn) -> tuple[bytes, list[Edit]]:
    """A source and a set of pairwise non-conflicting edits (ranges may touch)."""
    source = draw(st.binary(max_size=40))
    cuts = sorted(draw(st.lists(st.integers(0, len(source)), max_size=12)))
    edits: list[Edit] = []
    last_insert = -1
    for i in range(0, len(cuts) - 1, 2):
        start, end = cuts[i], cuts[i + 1]  # sorted: start >= the previous edit's end
        if start == end:
            if start == last_insert:
                continue  # a second insertion at the same point would conflict
            last_insert = start
        edits.append(Edit(F, start, end, draw(texts), f"w{i}"))
    return source, list(draw(st.permutations(edits)))


@settings(max_examples=200, deadline=None)
@given(disjoint_edits())
def test_property_disjoint_edits_apply_like_reference_splice(case: tuple[bytes, list[Edit]]) -> None:
    source, edits = case
    assert apply_edits(source, edits) == reference_splice(source, edits)


@st.composite
def overlapping_edits(draw: st.DrawFn) -> tuple[bytes, list[Edit]]:
    """Edits containing at least one pair that shares a byte, or two different insertions at one point."""
    source = draw(st.binary(min_size=2, max_size=40))
    n = len(source)
    if draw(st.booleans()):
        # two ranges sharing at least one byte
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(a + 1, n))
        c = draw(st.integers(0, b - 1))
        d = draw(st.integers(max(c, a) + 1, n))
        first = Edit(F, a, b, draw(texts), "first")
        second = Edit(F, c, d, draw(texts), "second")
        if (first.start, first.end, first.text) == (second.start, second.end, second.text):
            second = Edit(F, c, d, second.text + b"!", "second")
    else:
        # two different insertions at one point, or an insertion strictly inside a range
        a = draw(st.integers(0, n - 2))
        b = draw(st.integers(a + 2, n))
        if draw(st.booleans()):
            first = Edit.insert(F, a, b"x" + draw(texts), "first")
            second = Edit.insert(F, a, b"y" + draw(texts), "second")
        else:
            first = Edit(F, a, b, draw(texts), "first")
            second = Edit.insert(F, draw(st.integers(a + 1, b - 1)), draw(texts), "second")
    others = [Edit(F, n, n, b"", f"o{i}") for i in range(draw(st.integers(0, 1)))]
    return source, draw(st.permutations([first, second, *others]))


@settings(max_examples=200, deadline=None)
@given(overlapping_edits())
def test_property_any_overlap_is_rejected(case: tuple[bytes, list[Edit]]) -> None:
    source, edits = case
    with pytest.raises(EditConflict) as info:
        apply_edits(source, edits)
    assert "first" in str(info.value) and "second" in str(info.value)
