"""Byte-range edits and the values workers return.

Everything here operates on ``bytes``: tree-sitter offsets are UTF-8 byte
offsets, and a ``str`` index would break on the first non-ASCII character.

Workers never touch the disk. They return a :class:`WorkerResult` holding
edits, new files, import requests, planned spans and skips. The synthesizer
(``otelize.synthesize.apply``) merges and applies them, ``otelize.synthesize.write`` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from otelize.errors import EditConflict
from otelize.jsonable import pick


@dataclass(frozen=True, order=True)
class Edit:
    """Replace ``source[start:end]`` of ``file`` with ``text``.

    ``file`` is the POSIX path relative to the project root. An insertion has
    ``start == end``; a deletion has empty ``text``. ``worker`` names the
    worker that produced the edit, so that a conflict can name both sides.
    """

    file: str
    start: int
    end: int
    text: bytes
    worker: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.start <= self.end):
            raise ValueError(f"bad edit range {self.start}..{self.end} in {self.file}")
        if not isinstance(self.text, bytes):
            raise TypeError("Edit.text must be bytes")

    @classmethod
    def insert(cls, file: str, at: int, text: bytes, worker: str = "") -> "Edit":
        return cls(file, at, at, text, worker)

    @classmethod
    def delete(cls, file: str, start: int, end: int, worker: str = "") -> "Edit":
        return cls(file, start, end, b"", worker)

    @classmethod
    def replace(cls, file: str, start: int, end: int, text: bytes, worker: str = "") -> "Edit":
        return cls(file, start, end, text, worker)


def _overlaps(a: Edit, b: Edit) -> bool:
    """Two edits conflict when their ranges share a byte, or when both insert
    at the same point (their relative order would be arbitrary)."""
    if a.start == a.end and b.start == b.end:
        return a.start == b.start
    if a.start == a.end:
        return b.start < a.start < b.end
    if b.start == b.end:
        return a.start < b.start < a.end
    return a.start < b.end and b.start < a.end


def merge_edits(edits: Iterable[Edit]) -> list[Edit]:
    """Sort one file's edits, drop exact duplicates, and reject overlaps.

    Identical edits (same range and text) collapse into one, as in Ruff's
    ``apply_fixes``. Any other overlap raises :class:`EditConflict` naming
    both workers; edits are never silently merged.
    """
    ordered = sorted(set(edits), key=lambda e: (e.start, e.end, e.text, e.worker))
    result: list[Edit] = []
    for edit in ordered:
        if result:
            prev = result[-1]
            if (prev.start, prev.end, prev.text) == (edit.start, edit.end, edit.text):
                continue
            if _overlaps(prev, edit) or edit.start < prev.end:
                raise EditConflict(
                    f"{edit.file}: overlapping edits from worker {prev.worker or '?'} "
                    f"({prev.start}..{prev.end}) and worker {edit.worker or '?'} "
                    f"({edit.start}..{edit.end})"
                )
        result.append(edit)
    return result


def apply_edits(source: bytes, edits: Iterable[Edit]) -> bytes:
    """Apply one file's edits in a single splice. Raises on overlap."""
    merged = merge_edits(edits)
    out = bytearray()
    pos = 0
    for edit in merged:
        if edit.end > len(source):
            raise EditConflict(f"{edit.file}: edit {edit.start}..{edit.end} beyond end of file ({len(source)})")
        out += source[pos : edit.start]
        out += edit.text
        pos = edit.end
    out += source[pos:]
    return bytes(out)


@dataclass(frozen=True, order=True)
class ImportRequest:
    """"``file`` needs ``import { names } from 'module'``".

    ``module`` is the specifier as it should appear in the file (already made
    relative for project files). ``side_effect`` requests a bare
    ``import 'module'`` that must be the first statement of the file.
    """

    file: str
    module: str
    names: tuple[str, ...] = ()
    side_effect: bool = False
    worker: str = ""
    require: bool = False  # a CommonJS JavaScript file: `const { names } = require('module')` / `require('module')`
    after: str | None = None  # side effect: go after the file's leading import of this module (one that loads .env)


@dataclass(frozen=True, order=True)
class NewFile:
    """A file the tool creates (rendered from a template)."""

    path: str
    content: bytes
    worker: str = ""


@dataclass(frozen=True, order=True)
class Skip:
    """Something a worker deliberately left alone, and why."""

    file: str
    line: int
    symbol: str
    reason: str
    worker: str = ""


@dataclass(frozen=True)
class PlannedSpan:
    """A span the instrumented code will emit. Feeds the report and `verify`."""

    name: str
    kind: str  # INTERNAL | CLIENT | SERVER
    worker: str
    file: str
    line: int
    attributes: tuple[tuple[str, Any], ...] = ()
    parent_hint: str = ""  # e.g. the caller category, for `verify`
    added: bool = True  # False: the wrapper was already in the code before this run
    new_line: int = 0  # the function's line in the instrumented file (0: not known yet; `line` is the source's)

    def to_dict(self) -> dict[str, Any]:
        return {
            **pick(self, "name", "kind", "worker", "file", "line"),
            "instrumented_line": self.new_line or self.line,
            "added": self.added,
            "attributes": {k: v for k, v in self.attributes},
        }


@dataclass
class WorkerResult:
    """Everything one worker task produced. Pure data."""

    worker: str
    edits: list[Edit] = field(default_factory=list)
    new_files: list[NewFile] = field(default_factory=list)
    imports: list[ImportRequest] = field(default_factory=list)
    spans: list[PlannedSpan] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)  # packages added to package.json
    notes: list[str] = field(default_factory=list)

    def extend(self, other: "WorkerResult") -> None:
        self.edits += other.edits
        self.new_files += other.new_files
        self.imports += other.imports
        self.spans += other.spans
        self.skips += other.skips
        self.packages.update(other.packages)
        self.notes += other.notes


@dataclass
class Synthesis:
    """What a run would change: the merged result of every worker (see otelize.synthesize.apply)."""

    changes: dict[str, tuple[bytes | None, bytes]] = field(default_factory=dict)  # path -> (old, new)
    deletions: dict[str, bytes] = field(default_factory=dict)  # path -> old content (strip)
    reverted: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    spans: list[PlannedSpan] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    packages: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def created(self) -> list[str]:
        return sorted(p for p, (old, _) in self.changes.items() if old is None)

    @property
    def modified(self) -> list[str]:
        return sorted(p for p, (old, _) in self.changes.items() if old is not None)
