"""Smoke run of tests/bench/bench_cli.py: one run of each variant, the documented report shape.

It asserts nothing about timings (those are the benchmark's job), only that the
variants ran, the cached run really was answered from the cache, and the import
costs were parsed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.bench import bench_cli  # noqa: E402


def test_cli_bench_smoke() -> None:
    result = bench_cli.run(REPO_ROOT / "sample-app", runs=1)
    json.dumps(result)
    assert result["source_files"] == sum(1 for _ in (REPO_ROOT / "sample-app" / "src").rglob("*.ts")) + 2  # + tracing.ts, otel.ts
    for key in ("python", "cold", "cache"):
        assert 0 < result[key]["min_ms"] <= result[key]["median_ms"] <= result[key]["max_ms"], key
    assert set(result["target_met"]) == {"cold", "cache"}
    assert result["answered_from_cache"] is True
    names = [name for name, _ in result["imports_ms"]]
    assert "networkx" in names  # the cold run imports the analysis stack
    assert all(ms > 0 for _, ms in result["imports_ms"])
    table = bench_cli.format_table(result)
    assert "--check (cold)" in table and "--check --cache" in table and "biggest imports" in table
