"""Current OpenTelemetry semantic-convention attribute keys.

Read from the app's own `@opentelemetry/semantic-conventions` (its .d.mts
declarations, skipping `@deprecated` ones), or from the pinned list
`rules/semconv-attributes.txt` generated from the pinned version.
Templated keys such as `http.request.header.<key>` match by prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from otelize.resources import data_dir

PINNED = "semconv-attributes.txt"
EXTENSIONS = frozenset({"cache.hit"})  # otelize's one documented extension: OTel has no cache convention yet
FREE_NAMESPACES = ("app.", "code.")

_DECL = re.compile(r'/\*\*((?:(?!\*/).)*?)\*/\s*(?:export )?declare const ATTR_[A-Z0-9_]+: "([^"]+)";', re.S)


def keys_from_declarations(text: str) -> set[str]:
    return {key for doc, key in _DECL.findall(text) if "@deprecated" not in doc}


@dataclass(frozen=True)
class SemConv:
    keys: frozenset[str]
    source: str  # "node_modules (1.45.0)" or "pinned"

    def is_valid(self, key: str) -> bool:
        if key in self.keys or key in EXTENSIONS or key.startswith(FREE_NAMESPACES):
            return True
        return any(k.endswith(".<key>") and key.startswith(k[: -len("<key>")]) for k in self.keys)


def load(app_root: Path | None = None) -> SemConv:
    if app_root is not None:
        pkg = app_root / "node_modules" / "@opentelemetry" / "semantic-conventions"
        files = [pkg / "dist" / "stable_attributes.d.mts", pkg / "dist" / "experimental_attributes.d.mts"]
        files += [pkg / "build" / "src" / "stable_attributes.d.ts", pkg / "build" / "src" / "experimental_attributes.d.ts"]
        keys: set[str] = set()
        for f in files:
            if f.is_file():
                keys |= keys_from_declarations(f.read_text("utf-8", errors="replace"))
        if keys:
            version = re.search(r'"version":\s*"([^"]+)"', (pkg / "package.json").read_text("utf-8"))
            return SemConv(frozenset(keys), f"node_modules ({version.group(1) if version else '?'})")
    text = (data_dir("rules") / PINNED).read_text("utf-8")
    pinned = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    return SemConv(frozenset(pinned), "pinned")
