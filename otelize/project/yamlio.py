"""Safe YAML loading, with libyaml's C loader when PyYAML has it (about 10x faster).

Rules and `.otelize.yaml` come from the repository, so they are untrusted input:
aliases (`*name`) are refused, because a few lines of nested aliases (a "billion
laughs" document) expand to gigabytes once anything walks the result. Rule test
cases (`otelize rules test`), which `yaml.safe_dump` writes with aliases, may use
them up to an expanded size of MAX_EXPANDED nodes. An alias can only appear
where the text has a `*`, so documents without one are loaded in a single pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MAX_EXPANDED = 100_000


class AliasError(yaml.YAMLError):
    """The document uses an alias where none is allowed, or its aliases expand too far."""

    def __init__(self, mark: Any, message: str = "YAML aliases (`*name`) are not allowed") -> None:
        super().__init__(message)
        self.message = message
        self.problem_mark = mark


def load(data: str | bytes, aliases: bool = False) -> Any:
    """`yaml.safe_load`, faster. Raises yaml.YAMLError like it; AliasError for an alias
    (with `aliases`: for a document that expands to more than MAX_EXPANDED nodes)."""
    if (b"*" if isinstance(data, bytes) else "*") in data:
        _check_aliases(data, aliases)
    return yaml.load(data, Loader=LOADER)  # noqa: S506 - a safe loader


def _check_aliases(data: str | bytes, allowed: bool) -> None:
    """Walk the event stream: refuse any alias, or (allowed) count the expanded size."""
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]  # [anchor, expanded size so far] per open collection
    for event in yaml.parse(data, Loader=LOADER):
        if isinstance(event, yaml.AliasEvent):
            if not allowed:
                raise AliasError(event.start_mark)
            stack[-1][1] += sizes.get(event.anchor, 1)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            stack[-1][1] += 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size
            stack[-1][1] += size
        else:
            continue
        if stack[-1][1] > MAX_EXPANDED:
            raise AliasError(event.start_mark, f"YAML aliases expand to more than {MAX_EXPANDED:,} nodes")


def load_file(path: Path, source: str, error: type[Exception]) -> Any:
    """Load a YAML file; any problem becomes a one-line `error` naming `source` (and the line)."""
    text = None
    try:
        text = path.read_text("utf-8")
        return load(text)
    except AliasError as exc:
        raise error(f"{source}: {exc.message} (line {exc.problem_mark.line + 1})") from None
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
    except RecursionError:
        raise error(f"{source}: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{source}: cannot read ({exc.__class__.__name__})") from None
