"""exclusions: the code that gets no spans unless the settings include it.

Test code, migrations, seeders, scripts, decorator factories, browser code served
as static files (by folder or file name) and other packages (a folder with its own package.json), each with the
reason the report gives and the `include_code` kind that traces it.
"""

from __future__ import annotations

import re
from typing import Any

_EXCLUDED_DIRS = {
    "tests": {"__tests__", "test", "tests", "e2e", "__mocks__", "mocks", "fakes", "fixtures", "spec", "__fixtures__"},
    "migrations": {"migrations", "migration"},
    "seeders": {"seeders", "seeds", "seed", "seeding"},
    "scripts": {"scripts"},
    "decorator-factories": {"decorators"},
    # what express.static() serves: code for the browser, where an import of otel.ts is a 404
    "browser": {"public", "static"},
}
_EXCLUDED_NAMES = {
    "tests": re.compile(r"\.(test|spec|e2e-spec|e2e|test-d)\.[cm]?[jt]sx?$"),
    "migrations": re.compile(r"\.migration\.[cm]?[jt]sx?$"),
    "seeders": re.compile(r"\.(seed|seeder)\.[cm]?[jt]sx?$"),
}
EXCLUDED_REASONS = {
    "tests": "test code",
    "migrations": "a migration",
    "seeders": "a seeder",
    "scripts": "a script (scripts/)",
    "decorator-factories": "decorator factories (decorators/)",
    "browser": "browser code (public/, static/)",
    "nested-packages": "another package (its folder has its own package.json)",
}


def excluded_kind(path: str, nested_packages: frozenset[str] = frozenset()) -> str | None:
    """Which kind of excluded-by-default code the file is (EXCLUDABLE), or None."""
    parts = path.split("/")
    for kind, rx in _EXCLUDED_NAMES.items():
        if rx.search(parts[-1]):
            return kind
    for kind, dirs in _EXCLUDED_DIRS.items():
        if any(p in dirs for p in parts[:-1]):
            return kind
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in nested_packages:
            return "nested-packages"
    return None


def default_exclusions(project: Any, include_code: Any = ()) -> tuple[list[str], list[tuple[str, str]]]:
    """(files kept, [(file, reason)] excluded) for the files of `project`: test code,
    migrations, seeders, scripts, decorator factories and other packages get no spans
    unless the settings' `include_code` names them."""
    included = set(include_code or ())
    folders = sorted({"/".join(f.split("/")[:i]) for f in project.files for i in range(1, f.count("/") + 1)})
    nested = frozenset(d for d in folders if "node_modules" not in d and (project.root / d / "package.json").is_file())
    kept, excluded = [], []
    for path in project.files:
        kind = excluded_kind(path, nested)
        if kind is None or kind in included:
            kept.append(path)
        else:
            excluded.append((path, f"{EXCLUDED_REASONS[kind]}: excluded by default (`include_code: [{kind}]` in .otelize.yaml traces it)"))
    return kept, excluded
