"""Opt-outs in code: `// otelize-ignore` before a function, `// otelize-ignore-file`
at the top of a file. Both leave the code alone and appear in the report as
skipped, with the reason "ignored by comment"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from otelize.api import instrument
from otelize.cli.main import cli

SAMPLE_APP = Path(__file__).resolve().parent.parent / "sample-app"
PAYMENT = "src/services/paymentService.ts"
CACHE = "src/utils/cache.ts"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    dest = tmp_path / "shop"
    shutil.copytree(SAMPLE_APP, dest, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return dest


def ignore_refund(app: Path) -> int:
    """Put `// otelize-ignore` before PaymentService.refund; returns refund's line."""
    path = app / PAYMENT
    lines = path.read_text().split("\n")
    i = next(n for n, line in enumerate(lines) if "async refund(" in line)
    lines.insert(i, "  // otelize-ignore")
    path.write_text("\n".join(lines))
    return i + 2


def ignore_file(app: Path, rel: str) -> None:
    path = app / rel
    path.write_text("// otelize-ignore-file\n" + path.read_text())


def skips(result) -> list[tuple[str, int, str, str]]:  # noqa: ANN001
    return [(s.file, s.line, s.symbol, s.reason) for s in result.synthesis.skips]


def test_function_opt_out(app: Path) -> None:
    line = ignore_refund(app)
    result = instrument(app, write=False)
    assert (PAYMENT, line, "PaymentService.refund", "ignored by comment") in skips(result)
    names = {s.name for s in result.synthesis.spans}
    assert "PaymentService.charge" in names and "PaymentService.refund" not in names
    new = result.synthesis.changes[PAYMENT][1].decode()
    assert "  // otelize-ignore\n  async refund(chargeId: string): Promise<RefundResult> {\n    return this.payments.refund(chargeId);\n  }" in new


def test_file_opt_out_is_reported_and_the_file_untouched(app: Path) -> None:
    ignore_file(app, CACHE)
    result = instrument(app, write=False)
    assert CACHE not in result.synthesis.changes
    assert (CACHE, 1, "<file>", "ignored by comment") in skips(result)
    assert not any(s.file == CACHE for s in result.synthesis.spans)
    assert any(s.file == "src/utils/database.ts" for s in result.synthesis.spans)  # the rest is instrumented


def test_file_opt_out_line_is_where_the_marker_is(app: Path) -> None:
    path = app / CACHE
    path.write_text("/* cache client */\n\n// otelize-ignore-file: hand-instrumented\n" + path.read_text())
    result = instrument(app, write=False)
    assert (CACHE, 3, "<file>", "ignored by comment") in skips(result)


def test_without_markers_nothing_is_ignored_by_comment(app: Path) -> None:
    result = instrument(app, write=False)
    assert not [s for s in skips(result) if s[3] == "ignored by comment"]


def test_both_opt_outs_in_the_reports_and_on_a_second_run(app: Path, tmp_path: Path) -> None:
    line = ignore_refund(app)
    ignore_file(app, CACHE)
    cache_before = (app / CACHE).read_bytes()
    runner = CliRunner()
    r = runner.invoke(cli, ["instrument", str(app), "--report", str(tmp_path / "r.json")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert (app / CACHE).read_bytes() == cache_before
    skipped = json.loads((tmp_path / "r.json").read_text())["skipped"]
    ignored = [s for s in skipped if s["reason"] == "ignored by comment"]
    assert sorted((s["file"], s["line"], s["symbol"]) for s in ignored) == [
        (PAYMENT, line, "PaymentService.refund"), (CACHE, 1, "<file>")]

    # second run: nothing to change, the opt-outs are still reported
    r = runner.invoke(cli, ["instrument", str(app), "--check", "--report", str(tmp_path / "r.md")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    md = (tmp_path / "r.md").read_text()
    assert f"| `{CACHE}:1` | `<file>` | ignored by comment |" in md
    # charge() above it is wrapped now, so refund moved down
    now = (app / PAYMENT).read_text().split("\n").index("  async refund(chargeId: string): Promise<RefundResult> {") + 1
    assert now > line
    assert f"| `{PAYMENT}:{now}` | `PaymentService.refund` | ignored by comment |" in md
