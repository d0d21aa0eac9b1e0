"""Safe YAML loading, with libyaml's C loader when PyYAML has it (about 10x faster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(data: str | bytes) -> Any:
    """`yaml.safe_load`, faster. Raises yaml.YAMLError like it."""
    return yaml.load(data, Loader=LOADER)  # noqa: S506 - a safe loader


def load_file(path: Path, source: str, error: type[Exception]) -> Any:
    """Load a YAML file; any problem becomes a one-line `error` naming `source` (and the line)."""
    text = None
    try:
        text = path.read_text("utf-8")
        return load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        context = getattr(exc, "context", None)
        why = "; ".join(str(p) for p in (context, problem) if p)
        if mark is not None and text is not None:
            line = (text.splitlines() or [""])[min(mark.line, max(len(text.splitlines()) - 1, 0))]
            if mark.column < len(line) and line[mark.column] == "\t":
                why += " (a tab: YAML indents with spaces only)"
        raise error(f"{source}: invalid YAML{where}" + (f": {why}" if why else "")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{source}: cannot read ({exc.__class__.__name__})") from None
