"""Snapshot of what `instrument` changes in each fixture app: a unified diff of every source
file it edits, what it skipped and why, and the names of the files it generates and of the packages it adds (their
contents and pins are the sample-app snapshots' business). See tests/fixture_apps.py."""

from __future__ import annotations

import pytest

from fixture_apps import APPS, FIXTURES
from otelize.api import instrument
from otelize.report.instrument import diff_changes
from otelize.workers.base import is_generated


@pytest.mark.parametrize("app", APPS)
def test_instrumented_output(app: str, snapshot) -> None:  # noqa: ANN001
    result = instrument(FIXTURES / app, write=False, settings={})
    changes = result.synthesis.changes
    generated = sorted(p for p, (_, new) in changes.items() if is_generated(new))
    edited = {p: change for p, change in sorted(changes.items()) if p not in generated and p != "package.json"}
    header = [
        f"generated: {', '.join(generated) or '-'}",
        f"packages added: {', '.join(sorted(result.synthesis.packages)) or '-'}",
        f"spans: {len(result.synthesis.spans)}",
        *(f"skipped {k.file}:{k.line} {k.symbol}: {k.reason}" for k in result.synthesis.skips),
        "",
    ]
    assert "\n".join(header) + diff_changes(edited) == snapshot
