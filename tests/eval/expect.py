"""Expectation files of the evaluation harness: one YAML file per public app.

See tests/eval/README.md for the format. Loading validates every key and
names the file and the key on a mistake, so a typo never silently weakens
an expectation.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KINDS = ("INTERNAL", "CLIENT", "PRODUCER", "CONSUMER")  # SERVER spans are the instrumentation's, not otelize's
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ALL")
TOP_KEYS = {"repo", "root", "want", "ok", "must_not", "routes", "notes"}
REPO = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


class ExpectationError(ValueError):
    pass


@dataclass(frozen=True)
class Want:
    file: str
    symbol: str
    kind: str | None = None  # INTERNAL | CLIENT, when the span's kind matters


@dataclass(frozen=True)
class Pattern:
    """A file glob and an optional symbol glob (no symbol: any span in the file)."""

    file: str
    symbol: str | None = None
    why: str = ""

    def matches(self, file: str, symbol: str) -> bool:
        if not fnmatch.fnmatchcase(file, self.file):
            return False
        return self.symbol is None or fnmatch.fnmatchcase(symbol, self.symbol)


@dataclass(frozen=True)
class RouteWant:
    method: str
    path: str
    file: str
    symbol: str


@dataclass
class AppSpec:
    name: str  # the expectation file's stem = the checkout's folder name
    repo: str  # owner/name@commit
    root: str = ""  # the Express app's folder inside the checkout
    want: list[Want] = field(default_factory=list)
    ok: list[Pattern] = field(default_factory=list)  # acceptable either way: counted neither for nor against
    must_not: list[Pattern] = field(default_factory=list)
    routes: list[RouteWant] = field(default_factory=list)
    notes: str = ""


def _entries(data: dict, key: str, where: str, allowed: set[str], required: set[str]) -> list[dict]:
    items = data.get(key) or []
    if not isinstance(items, list):
        raise ExpectationError(f"{where}: key `{key}`: expected a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ExpectationError(f"{where}: `{key}[{i}]`: expected a mapping")
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ExpectationError(f"{where}: `{key}[{i}]`: unknown key `{unknown[0]}` (known: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(item))
        if missing:
            raise ExpectationError(f"{where}: `{key}[{i}]`: missing key `{missing[0]}`")
        for k, v in item.items():
            if not isinstance(v, str):
                raise ExpectationError(f"{where}: `{key}[{i}].{k}`: expected a string")
        out.append(item)
    return out


def load(path: Path) -> AppSpec:
    where = path.name
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise ExpectationError(f"{where}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ExpectationError(f"{where}: expected a mapping at the top")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ExpectationError(f"{where}: unknown key `{unknown[0]}` (known: {', '.join(sorted(TOP_KEYS))})")
    repo = data.get("repo")
    if not isinstance(repo, str) or not REPO.match(repo):
        raise ExpectationError(f"{where}: key `repo`: expected owner/name@<40-hex commit>")
    spec = AppSpec(path.stem, repo, str(data.get("root") or "").strip("/"), notes=str(data.get("notes") or ""))
    for item in _entries(data, "want", where, {"file", "symbol", "kind", "why"}, {"file", "symbol"}):
        kind = item.get("kind")
        if kind is not None and kind not in KINDS:
            raise ExpectationError(f"{where}: `want` {item['file']}::{item['symbol']}: kind must be one of {', '.join(KINDS)}")
        spec.want.append(Want(item["file"], item["symbol"], kind))
    for key in ("ok", "must_not"):
        for item in _entries(data, key, where, {"file", "symbol", "why"}, {"file"}):
            getattr(spec, key).append(Pattern(item["file"], item.get("symbol"), item.get("why", "")))
    for item in _entries(data, "routes", where, {"method", "path", "file", "symbol"}, {"method", "path", "file", "symbol"}):
        method = item["method"].upper()
        if method not in METHODS:
            raise ExpectationError(f"{where}: `routes` {item['method']} {item['path']}: unknown method")
        spec.routes.append(RouteWant(method, item["path"], item["file"], item["symbol"]))
    seen: set[tuple[str, str]] = set()
    for w in spec.want:
        if (w.file, w.symbol) in seen:
            raise ExpectationError(f"{where}: `want` {w.file}::{w.symbol} is listed twice")
        seen.add((w.file, w.symbol))
    for w in spec.want:
        for p in spec.must_not:
            if p.matches(w.file, w.symbol):
                raise ExpectationError(f"{where}: {w.file}::{w.symbol} is both wanted and in `must_not` ({p.file})")
    return spec
