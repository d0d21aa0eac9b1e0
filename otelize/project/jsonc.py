"""JSONC (JSON with comments and trailing commas), as tsconfig.json allows."""

from __future__ import annotations

import json
from typing import Any

from otelize.errors import BadInput


def strip_jsonc(text: str) -> str:
    """Blank out // and /* */ comments and trailing commas, keeping offsets.

    Replaced characters become spaces (newlines are kept), so a JSON error
    still points at the right line and column of the original text.
    """
    out = list(text)
    i, n = 0, len(text)
    last_sig = -1  # index of the last significant character written
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            last_sig = min(j, n - 1)
            i = j + 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
            continue
        if c in "}]" and last_sig >= 0 and out[last_sig] == ",":
            out[last_sig] = " "
        if not c.isspace():
            last_sig = i
        i += 1
    return "".join(out)


def loads_jsonc(data: bytes, what: str) -> Any:
    """Parse JSONC bytes; errors become a one-line BadInput naming `what`."""
    return _loads(data, what, comments=True)


def loads_json(data: bytes, what: str) -> Any:
    """Parse strict JSON bytes (package.json); errors become a one-line BadInput."""
    return _loads(data, what, comments=False)


def _loads(data: bytes, what: str, *, comments: bool) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return _shallow(json.loads(strip_jsonc(text) if comments else text), what)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{what}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise _too_deep(what) from None


MAX_DEPTH = 64  # package.json and tsconfig.json never come near; everything downstream stays far from the recursion limit


def _too_deep(what: str) -> BadInput:
    return BadInput(f"{what}: nested more than {MAX_DEPTH} levels deep")


def _shallow(value: Any, what: str) -> Any:
    """`value`, if no array or object in it is nested deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise _too_deep(what)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value
