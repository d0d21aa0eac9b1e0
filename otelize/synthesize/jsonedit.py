"""Byte-exact editing of JSON documents (package.json).

A tiny scanner records the byte spans of every key and value, so that a change
is a small :class:`otelize.synthesize.edits.Edit` (insert one member, replace one string)
and never a rewrite of the whole file: key order, indentation (spaces or tabs),
line endings (LF/CRLF) and the presence of a final newline all survive.

Everything works on ``bytes``; offsets are byte offsets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from otelize.synthesize.edits import Edit
from otelize.errors import BadInput

_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_LITERALS = {b"true": True, b"false": False, b"null": None}


@dataclass(frozen=True)
class Member:
    """One ``"key": value`` pair of an object."""

    key: str
    key_start: int
    key_end: int
    value: "Node"


@dataclass(frozen=True)
class Node:
    """A JSON value and its byte span ``data[start:end]``.

    ``kind`` is object, array, string, number, true, false or null. Scalars
    carry their decoded ``value``; objects their ``members`` in source order;
    arrays their ``items``.
    """

    kind: str
    start: int
    end: int
    value: Any = None
    members: tuple[Member, ...] = ()
    items: tuple["Node", ...] = ()

    def get(self, key: str) -> Member | None:
        """The member named ``key`` (the last one if repeated, as JSON.parse does)."""
        found = None
        for member in self.members:
            if member.key == key:
                found = member
        return found

    def keys(self) -> list[str]:
        return [m.key for m in self.members]


@dataclass(frozen=True)
class Style:
    """How the document is laid out: one indent unit, the line ending."""

    indent: bytes = b"  "
    newline: bytes = b"\n"


class _Scanner:
    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label
        self.pos = len(_BOM) if data.startswith(_BOM) else 0

    def fail(self, message: str, pos: int | None = None) -> BadInput:
        pos = self.pos if pos is None else min(pos, len(self.data))
        line_start = self.data.rfind(b"\n", 0, pos) + 1
        line = self.data.count(b"\n", 0, pos) + 1
        column = len(self.data[line_start:pos].decode("utf-8", "replace")) + 1
        return BadInput(f"{self.label}: invalid JSON at line {line} column {column}: {message}")

    def skip_ws(self) -> None:
        data, n = self.data, len(self.data)
        while self.pos < n and data[self.pos] in _WS:
            self.pos += 1

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def document(self) -> Node:
        self.skip_ws()
        node = self.value()
        self.skip_ws()
        if self.pos != len(self.data):
            raise self.fail("unexpected content after the top-level value")
        return node

    def value(self) -> Node:
        c = self.peek()
        if c is None:
            raise self.fail("unexpected end of input")
        if c == ord("{"):
            return self.object()
        if c == ord("["):
            return self.array()
        if c == ord('"'):
            return self.string()
        match = _NUMBER.match(self.data, self.pos)
        if match and match.end() > self.pos:
            start, self.pos = self.pos, match.end()
            return Node("number", start, self.pos, json.loads(match.group()))
        for word, val in _LITERALS.items():
            if self.data.startswith(word, self.pos):
                start, self.pos = self.pos, self.pos + len(word)
                return Node(word.decode(), start, self.pos, val)
        raise self.fail(f"unexpected character {chr(c)!r}")

    def string(self) -> Node:
        start = self.pos
        data, n = self.data, len(self.data)
        i = start + 1
        while i < n:
            c = data[i]
            if c == ord('"'):
                break
            if c == ord("\\"):
                i += 2
                continue
            if c < 0x20:
                raise self.fail("control character in string", i)
            i += 1
        else:
            raise self.fail("unterminated string", start)
        self.pos = i + 1
        raw = data[start : self.pos]
        try:
            decoded = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise self.fail("string is not valid UTF-8", start) from None
        except ValueError:
            raise self.fail("invalid escape in string", start) from None
        return Node("string", start, self.pos, decoded)

    def object(self) -> Node:
        start, members = self.sequence(ord("}"), "object", self.member)
        return Node("object", start, self.pos, members=tuple(members))

    def array(self) -> Node:
        start, items = self.sequence(ord("]"), "array", self.value)
        return Node("array", start, self.pos, items=tuple(items))

    def member(self) -> Member:
        if self.peek() != ord('"'):
            raise self.fail("expected a string key")
        key = self.string()
        self.skip_ws()
        if self.peek() != ord(":"):
            raise self.fail("expected ':' after key")
        self.pos += 1
        self.skip_ws()
        return Member(key.value, key.start, key.end, self.value())

    def sequence(self, close: int, what: str, item: Callable[[], Any]) -> tuple[int, list[Any]]:
        """An object's members or an array's items: the opening bracket at `pos`, then
        `item`s separated by commas up to `close`. Returns where it started, and the items."""
        start = self.pos
        self.pos += 1
        items: list[Any] = []
        self.skip_ws()
        if self.peek() == close:
            self.pos += 1
            return start, items
        while True:
            self.skip_ws()
            items.append(item())
            self.skip_ws()
            c = self.peek()
            if c == ord(","):
                self.pos += 1
                continue
            if c == close:
                self.pos += 1
                return start, items
            raise self.fail(f"expected ',' or '{chr(close)}' in {what}")


def parse(data: bytes, label: str = "package.json") -> Node:
    """Scan ``data`` into a :class:`Node` tree with byte spans.

    Raises :class:`BadInput` with ``<label>: invalid JSON at line L column C: ...``.
    """
    if not isinstance(data, bytes):
        raise TypeError("jsonedit.parse needs bytes")
    return _Scanner(data, label).document()


def encode(value: Any) -> bytes:
    """A JSON scalar as it appears in the file (non-ASCII kept as UTF-8)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def line_indent(data: bytes, pos: int) -> bytes:
    """The leading whitespace of the line holding ``pos``."""
    line_start = data.rfind(b"\n", 0, pos) + 1
    i = line_start
    while i < len(data) and data[i] in b" \t":
        i += 1
    return data[line_start:i]


def is_multiline(data: bytes, obj: Node) -> bool:
    return bool(obj.members) and b"\n" in data[obj.start : obj.members[0].key_start]


def _find_unit(data: bytes, node: Node) -> bytes | None:
    """The indent unit of the first multi-line object found (depth first)."""
    if node.kind == "object" and is_multiline(data, node):
        outer = line_indent(data, node.start)
        inner = line_indent(data, node.members[0].key_start)
        if inner.startswith(outer) and len(inner) > len(outer):
            return inner[len(outer) :]
    children = [m.value for m in node.members] + list(node.items)
    for child in children:
        unit = _find_unit(data, child)
        if unit is not None:
            return unit
    return None


def detect_style(data: bytes, root: Node) -> Style:
    """Indent unit (default two spaces; tabs kept) and line ending of the document."""
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    return Style(indent=_find_unit(data, root) or b"  ", newline=newline)


def _comparator(keys: list[str]) -> Callable[[str], Any] | None:
    """How existing keys are sorted (plain, or case-insensitively), or None."""
    if keys == sorted(keys):
        return lambda k: k
    lowered = lambda k: (k.lower(), k)  # noqa: E731
    if keys == sorted(keys, key=lowered):
        return lowered
    return None


def render_object(members: Iterable[tuple[str, bytes]], level: bytes, style: Style) -> bytes:
    """A multi-line object whose closing brace is indented with ``level``."""
    pairs = list(members)
    if not pairs:
        return b"{}"
    inner = level + style.indent
    lines = [inner + encode(key) + b": " + value for key, value in pairs]
    return b"{" + style.newline + (b"," + style.newline).join(lines) + style.newline + level + b"}"


def insert_members(
    file: str,
    data: bytes,
    obj: Node,
    new: Iterable[tuple[str, bytes]],
    style: Style,
    worker: str = "",
    after: str | None = None,
) -> list[Edit]:
    """Edits adding ``new`` members (``(key, encoded value)``) to ``obj``.

    Placement: right after the member ``after`` when given (at the end if that
    key is missing); otherwise in sorted position when the existing keys are
    sorted, else at the end. New members that land at the same point become a
    single edit, so the edits never overlap. An empty object is rewritten as a
    multi-line object. Keys already present are not checked here.
    """
    if obj.kind != "object":
        raise ValueError("insert_members needs an object node")
    pairs = sorted(dict(new).items())
    if not pairs:
        return []
    if not obj.members:
        level = line_indent(data, obj.start)
        return [Edit.replace(file, obj.start, obj.end, render_object(pairs, level, style), worker)]

    keys = obj.keys()
    n = len(keys)
    anchors: dict[int, list[tuple[str, bytes]]] = {}
    if after is not None:
        index = keys.index(after) + 1 if after in keys else n
        anchors[index] = pairs
    else:
        compare = _comparator(keys)
        for key, value in pairs:
            index = n
            if compare is not None:
                index = next((i for i, k in enumerate(keys) if compare(k) > compare(key)), n)
            anchors.setdefault(index, []).append((key, value))
        if compare is not None:
            for group in anchors.values():
                group.sort(key=lambda kv: compare(kv[0]))

    if is_multiline(data, obj):
        indent = line_indent(data, obj.members[0].key_start)
        sep = b"," + style.newline + indent
    else:
        sep = b", "
    edits = []
    for index, group in sorted(anchors.items()):
        texts = [encode(k) + b": " + v for k, v in group]
        if index < n:
            at = obj.members[index].key_start
            edits.append(Edit.insert(file, at, sep.join(texts) + sep, worker))
        else:
            at = obj.members[-1].value.end
            edits.append(Edit.insert(file, at, sep + sep.join(texts), worker))
    return edits


def replace_string(file: str, node: Node, value: str, worker: str = "") -> Edit:
    """Replace the string ``node`` with ``value`` (JSON-encoded)."""
    if node.kind != "string":
        raise ValueError("replace_string needs a string node")
    return Edit.replace(file, node.start, node.end, encode(value), worker)
