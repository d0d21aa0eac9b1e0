"""synthesize: merge the workers' edits, apply and validate them (writing: otelize.synthesize.write).

- edits are merged per file and sorted; overlaps raise EditConflict naming both workers;
- one splice per file;
- every changed TypeScript file is reparsed: a file that parsed cleanly before
  and has ERROR/MISSING nodes after is reverted and reported;
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from otelize.synthesize.edits import Edit, PlannedSpan, Synthesis, WorkerResult, apply_edits
from otelize.errors import BadInput, EditConflict
from otelize.synthesize.imports import import_edits
from otelize.analysis.parse import ParsedFile, line_starts, parse_source, reparse


def synthesize(
    root: Path, parsed: dict[str, ParsedFile], results: list[WorkerResult], analysed: dict[str, bytes] | None = None
) -> Synthesis:
    """`analysed`: the bytes the analysis read (package.json, sources); edits are applied to
    those, never to a fresh read that could differ from what the workers saw."""
    syn = Synthesis()
    analysed = analysed or {}
    edits: dict[str, list[Edit]] = defaultdict(list)
    requests = defaultdict(list)
    spans_by_file: dict[str, list[PlannedSpan]] = defaultdict(list)
    for res in results:
        for e in res.edits:
            edits[e.file].append(e)
        for r in res.imports:
            requests[r.file].append(r)
        for s in res.spans:
            spans_by_file[s.file].append(s)
        syn.skips += res.skips
        syn.packages.update(res.packages)
        syn.notes += res.notes
    for path in sorted(requests):
        pf = parsed.get(path)
        if pf is None:
            continue
        more, skips = import_edits(pf, requests[path])
        edits[path] += more
        syn.skips += skips

    for path in sorted(edits):
        if not edits[path]:
            continue
        old = parsed[path].source if path in parsed else analysed[path] if path in analysed else _read(root / path)
        new = apply_edits(old, edits[path])
        if new == old:
            continue
        problem = _validate(path, old, new, parsed.get(path), edits[path])
        if problem is not None:
            syn.reverted.append((path, problem))
            spans_by_file.pop(path, None)
            continue
        syn.changes[path] = (old, new)
        if path in spans_by_file:
            spans_by_file[path] = shift_lines(old, edits[path], spans_by_file[path])

    for res in results:
        for nf in res.new_files:
            target = root / nf.path
            old = analysed[nf.path] if nf.path in analysed else _read(target) if target.exists() else None
            if old != nf.content:
                syn.changes[nf.path] = (old, nf.content)

    for path in sorted(spans_by_file):
        syn.spans += spans_by_file[path]
    syn.spans.sort(key=lambda s: (s.file, s.line, s.name))
    syn.skips.sort(key=lambda s: (s.file, s.line, s.symbol, s.reason))
    return syn


def shift_lines(old: bytes, edits: list[Edit], spans: list[PlannedSpan]) -> list[PlannedSpan]:
    """The spans with `new_line` set: each function's line once `edits` are applied to `old`.

    A function's line moves by the newlines that the edits wholly before the
    start of that line add or remove (one pass over edits and spans, both sorted).
    """
    starts = line_starts(old)
    ordered = sorted(set(edits), key=lambda e: (e.start, e.end))
    out: list[PlannedSpan] = []
    i, delta = 0, 0
    for span in sorted(spans, key=lambda s: s.line):
        at = starts[min(span.line, len(starts)) - 1]
        while i < len(ordered) and ordered[i].end <= at:
            e = ordered[i]
            delta += e.text.count(b"\n") - old.count(b"\n", e.start, e.end)
            i += 1
        out.append(replace(span, new_line=span.line + delta))
    return out


def merge(parts: list[Synthesis]) -> Synthesis:
    """Combine per-file syntheses deterministically (sorted, whatever the order of parts)."""
    out = Synthesis()
    for part in parts:
        for path, change in part.changes.items():
            if path in out.changes:
                raise EditConflict(f"{path}: changed by two independent jobs")
            out.changes[path] = change
        out.deletions.update(part.deletions)
        out.reverted += part.reverted
        out.spans += part.spans
        out.skips += part.skips
        out.packages.update(part.packages)
        out.notes += part.notes
    out.changes = dict(sorted(out.changes.items()))
    out.reverted.sort()
    out.spans.sort(key=lambda s: (s.file, s.line, s.name))
    out.skips.sort(key=lambda s: (s.file, s.line, s.symbol, s.reason))
    out.packages = dict(sorted(out.packages.items()))
    return out


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path.name}: cannot read ({exc.strerror})") from None


def _validate(path: str, old: bytes, new: bytes, before: ParsedFile | None, edits: list[Edit]) -> str | None:
    """None when `new` is as sound as `old`, else why not. A source file is re-parsed
    incrementally from the tree it was analysed with (otelize.analysis.parse.reparse)."""
    if path.endswith(".json"):
        try:
            json.loads(new.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as exc:
            return f"edit produced invalid JSON ({exc})"
        return None
    if before is not None and before.source == old:
        after = reparse(before, new, ((e.start, e.end, e.text) for e in edits))
    else:
        after = parse_source(path, new)
    was_ok = before.ok if before is not None else parse_source(path, old).ok
    if was_ok and not after.ok:
        line, col, kind = after.errors[0] if after.errors else (0, 0, after.problem or "?")
        return f"edit introduced a syntax error ({kind} at line {line} column {col}); file left unchanged"
    return None
