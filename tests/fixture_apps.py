"""Every fixture app under tests/fixtures (a folder with a package.json), for the snapshot tests:
tests/test_snapshot_plans.py keeps what otelize found (the plan), tests/test_snapshot_outputs.py
what it changed (the instrumented sources), in separate snapshot files (as ast-grep keeps
"what matched" apart from "what changed"). `pytest --snapshot-update` rewrites them; review the diff."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
APPS = sorted(str(p.parent.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*/package.json"))
