"""Snapshot of each fixture app's plan (`otelize plan --json`): routes, file categories and
the rules that matched, functions classified apart, and the tasks. See tests/fixture_apps.py."""

from __future__ import annotations

import pytest

from fixture_apps import APPS, FIXTURES
from otelize.api import analyze
from otelize.report.plan import format_json


@pytest.mark.parametrize("app", APPS)
def test_plan(app: str, snapshot) -> None:  # noqa: ANN001
    assert format_json(analyze(FIXTURES / app, settings={})) == snapshot
