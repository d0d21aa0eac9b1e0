"""npm version ranges, as far as otelize needs them: does a version satisfy a range, and
what is the lowest version a declared range allows.

The grammar is npm's (node-semver): `||` between alternatives, space-separated
comparators (`>=`, `>`, `<=`, `<`, `=`), caret `^`, tilde `~`, x-ranges (`4`, `4.x`,
`*`) and hyphen ranges (`1.2 - 2.3`). Prerelease tags are ignored (a version's
`-rc.1` part is dropped), which is all that choosing a package line needs.
"""

from __future__ import annotations

import re

Version = tuple[int, int, int]
_PART = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+].*)?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~>?)?\s*(.+)$")
TOP = 10**9


def parse_version(text: str) -> Version | None:
    """`1.2.3` (also `v1.2.3`, `1.2.3-rc.1`); None for anything else."""
    m = _PART.match(text.strip())
    if m is None or any(g is None or not g.isdigit() for g in m.groups()):
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _partial(text: str) -> tuple[int | None, int | None, int | None] | None:
    m = _PART.match(text.strip())
    if m is None:
        return None
    nums = [int(g) if g is not None and g.isdigit() else None for g in m.groups()]
    # anything after a wildcard is a wildcard too (1.x.3 == 1.x)
    for i in range(3):
        if nums[i] is None:
            nums[i + 1:] = [None] * (2 - i)
            break
    return nums[0], nums[1], nums[2]


def _bounds(op: str, text: str) -> list[tuple[str, Version]] | None:
    """One comparator as a list of (op, version) with op in >=, <, <=, >."""
    p = _partial(text)
    if p is None:
        return None
    major, minor, patch = p
    low = (major or 0, minor or 0, patch or 0)
    if major is None:  # *, x
        return [] if op in ("", "=", ">=", "<=", "^", "~", "~>") else ([(op, (0, 0, 0))] if op == "<" else [])
    if op in ("", "="):
        if patch is not None:
            return [(">=", low), ("<=", low)]
        upper = (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)
        return [(">=", low), ("<", upper)]
    if op == "^":
        if major > 0 or minor is None:
            return [(">=", low), ("<", (major + 1, 0, 0))]
        if minor > 0 or patch is None:
            return [(">=", low), ("<", (0, minor + 1, 0))]
        return [(">=", low), ("<", (0, 0, patch + 1))]
    if op in ("~", "~>"):
        upper = (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)
        return [(">=", low), ("<", upper)]
    if op == ">":
        if patch is not None:
            return [(">", low)]
        return [(">=", (major + 1, 0, 0) if minor is None else (major, minor + 1, 0))]
    if op == "<=":
        if patch is not None:
            return [("<=", low)]
        return [("<", (major + 1, 0, 0) if minor is None else (major, minor + 1, 0))]
    return [(op, low)]  # >=, <


def parse_range(text: str) -> list[list[tuple[str, Version]]] | None:
    """A range as alternatives of comparator lists; None when it is not a version range
    (a git URL, `workspace:*`, a tag such as `latest`, a file path)."""
    text = text.strip()
    if text.startswith("npm:"):  # an alias: npm:name@range
        text = text.rpartition("@")[2]
    if text.startswith("workspace:"):
        text = text[len("workspace:"):]
    alternatives = []
    for alt in text.split("||"):
        alt = alt.strip()
        hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", alt)
        if hyphen:
            lo, hi = _bounds(">=", hyphen.group(1)), _bounds("<=", hyphen.group(2))
            if lo is None or hi is None:
                return None
            alternatives.append(lo + hi)
            continue
        # "> = 1.2" style spacing: glue an operator to the version after it
        tokens = re.sub(r"(>=|<=|>|<|=|\^|~>?)\s+", r"\1", alt).split() or ["*"]
        comparators: list[tuple[str, Version]] = []
        for token in tokens:
            m = _COMPARATOR.match(token)
            bounds = _bounds(m.group(1) or "", m.group(2)) if m else None
            if bounds is None:
                return None
            comparators += bounds
        alternatives.append(comparators)
    return alternatives


def _holds(op: str, v: Version, bound: Version) -> bool:
    return {">=": v >= bound, ">": v > bound, "<=": v <= bound, "<": v < bound}[op]


def satisfies(version: Version, range_text: str) -> bool:
    """Whether `version` is in the range (False for a range otelize cannot read)."""
    alternatives = parse_range(range_text)
    if alternatives is None:
        return False
    return any(all(_holds(op, version, b) for op, b in alt) for alt in alternatives)


def min_version(range_text: str) -> Version | None:
    """The lowest version the range allows (what the app is at least on), or None."""
    alternatives = parse_range(range_text)
    if not alternatives:
        return None
    lows = []
    for alt in alternatives:
        low = max((b if op == ">=" else (b[0], b[1], b[2] + 1) for op, b in alt if op in (">=", ">")), default=(0, 0, 0))
        if all(_holds(op, low, b) for op, b in alt):
            lows.append(low)
    return min(lows) if lows else None


def fmt(version: Version) -> str:
    return ".".join(str(n) for n in version)
