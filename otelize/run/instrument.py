"""The instrument run behind `otelize.api.instrument`: the `--cache` state cache's answer,
the analysis and edit phases, and the write (in place, or into an `--out` copy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelize.run.analysis import Analysis
    from otelize.project.settings import Settings


@dataclass
class InstrumentResult:
    analysis: Analysis | None  # None when the state cache answered (nothing was analysed)
    synthesis: Any  # otelize.synthesize.apply.Synthesis
    written: bool = False
    out_dir: Path | None = None
    cached: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.synthesis.changes)

    @property
    def partial(self) -> bool:
        return bool((self.analysis is not None and self.analysis.unparsable) or self.synthesis.reverted)

    @property
    def not_loaded(self) -> list[Any]:
        """The config worker's word that tracing will not be loaded when the app runs (no entry
        found, ...): a warning, and `--check` is not clean while it holds."""
        if not self.synthesis.skips:  # the state cache's answer: no need to import the worker
            return []
        from otelize.workers.config import not_loaded

        return not_loaded(self.synthesis.skips)

    @property
    def left_out(self) -> list[Any]:
        """The dependency worker's word that a library the app uses gets no instrumentation
        (its version is outside what the pinned package supports): a warning."""
        if not self.synthesis.skips:
            return []
        from otelize.workers.dependency import left_out

        return left_out(self.synthesis.skips)

    def exit_code(self, check: bool = False) -> int:
        """The CLI's exit code for this run: 1 when `check` and something would change (or tracing is not loaded),
        else 3 when some files were left alone (partial), else 0."""
        from otelize.errors import EXIT_CHANGES, EXIT_OK, EXIT_PARTIAL

        if check and (self.changed or self.not_loaded):
            return EXIT_CHANGES
        return EXIT_PARTIAL if self.partial else EXIT_OK



def cached_clean(root: str | Path, settings: Settings, rule_dirs: list[Path]) -> tuple[str, bool]:
    """The state cache's key for this project, settings and rules, and whether its last
    run with that key was clean (then nothing needs analysing; otelize.run.statecache)."""
    from otelize.project.discover import load_project
    from otelize.run import statecache
    from otelize.synthesize.journal import sweep_temps

    project = load_project(root, include=settings.include, exclude=settings.exclude)
    sweep_temps(project.root, project.temp_files)
    key = statecache.fingerprint(project, settings.to_api(), list(settings.rules) + rule_dirs)
    return key, statecache.is_clean(project.root, key)


def cached_result() -> InstrumentResult:
    """The result of a run the state cache answered: nothing changes."""
    from otelize.synthesize.edits import Synthesis

    return InstrumentResult(None, Synthesis(), cached=True)


def finish(analysis: Analysis, syn: Any, write: bool, out_dir: str | Path | None, key: str | None) -> InstrumentResult:
    """After the edit phase: remember a clean run under the state cache's `key` (if any),
    and write the changes into the `out_dir` copy, or in place when `write`."""
    from otelize.synthesize.write import out_folder, write_changes, write_copy
    from otelize.run.edit import expected_bytes

    result = InstrumentResult(analysis, syn)
    if key is not None and not result.changed and not result.partial and not result.not_loaded and not result.left_out:
        from otelize.run import statecache

        statecache.remember_clean(analysis.project.root, key)
    changes = {p: new for p, (_, new) in syn.changes.items()}
    if out_dir is not None:
        target, ignore = out_folder(analysis.project.root, Path(out_dir), analysis.project.out_dir)
        write_copy(analysis.project.root, target, changes, ignore, expected=expected_bytes(analysis, syn.changes))
        result.written, result.out_dir = True, target
    elif write and syn.changes:
        write_changes(analysis.project.root, changes, expected_bytes(analysis, syn.changes))
        result.written = True
    return result
