"""Smoke run of the benchmark code paths (tests/bench/bench_runtime.py, bench_helper.py, bench_transform.py).

Tiny durations and iteration counts: this checks that the variants start, the
driver and the micro-benchmark run and the reports have the documented shape.
It asserts nothing about timings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.node

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.bench import bench_helper, bench_runtime  # noqa: E402


def test_runtime_bench_smoke(built_sample_app: Path, instrumented_sample_app: Path, tmp_path: Path) -> None:
    bench_runtime.ensure_driver()
    auto = bench_runtime.make_auto(tmp_path, built_sample_app, instrumented_sample_app)
    variants = bench_runtime.variants_for(built_sample_app, auto, instrumented_sample_app)
    report = bench_runtime.run_benchmark(variants, duration=1, connections=2, rounds=1, warmup=0, log=sys.stdout)
    report["machine"] = bench_runtime.machine_info()
    json.dumps(report)  # serialisable

    assert set(report["variants"]) == {"a", "b", "c"}
    for key, summary in report["variants"].items():
        assert summary["key"] == key
        for field in ("requests_per_s", "p99_ms", "non_2xx", "requests_total", "errors", "sink_bytes",
                      "cpu_us_per_req"):
            assert isinstance(summary[field], float), (key, field)
        assert summary["requests_total"] > 0, key
        assert summary["errors"] == 0, key
        assert len(report["runs"][key]) == 1
    assert set(report["ratios"]) == {"rps_c_over_b", "rps_c_over_a", "rps_b_over_a", "p99_c_over_b", "p99_c_over_a",
                                     "cpu_capacity_c_over_b", "cpu_capacity_c_over_a"}
    assert isinstance(report["target"]["met"], bool)
    assert "c/b" in bench_runtime.format_table(report)
    for field in ("nproc", "cpu_model", "node"):
        assert report["machine"][field]


def test_cpuprofile_summary(tmp_path: Path) -> None:
    prof = {
        "nodes": [
            {"id": 1, "callFrame": {"functionName": "(root)", "url": "", "lineNumber": -1}},
            {"id": 2, "callFrame": {"functionName": "(idle)", "url": "", "lineNumber": -1}},
            {"id": 3, "callFrame": {"functionName": "handle", "lineNumber": 9,
                                    "url": "file:///x/node_modules/express/lib/router/layer.js"}},
            {"id": 4, "callFrame": {"functionName": "startSpan", "lineNumber": 0,
                                    "url": "file:///x/node_modules/@opentelemetry/sdk-trace-base/build/src/Tracer.js"}},
        ],
        "samples": [2, 3, 4, 4],
        "timeDeltas": [1000, 1000, 1000, 1000],
    }
    path = tmp_path / "p.cpuprofile"
    path.write_text(json.dumps(prof))
    summary = bench_runtime.summarise_cpuprofile(path)
    assert summary["busy_ms"] == pytest.approx(3.0)
    packages = {p["package"]: p["self_ms"] for p in summary["packages"]}
    assert packages == {"@opentelemetry/sdk-trace-base": 2.0, "express": 1.0, "(idle)": 1.0}
    assert summary["frames"][0]["function"] == "startSpan"


def test_helper_bench_smoke() -> None:
    helper_js = bench_helper.compile_helper(bench_helper.render_helper(), "smoke")
    report = bench_helper.run_benchmark(helper_js, iterations=2000, alloc_iterations=500, repeats=1)
    json.dumps(report)
    assert set(report["modes"]) == {"off", "on"}
    for mode, data in report["modes"].items():
        cases = {r["case"] for r in data["results"]}
        assert cases == {f"{k} {c}" for k in ("sync", "async") for c in ("direct", "floor", "helper")}, mode
        for r in data["results"]:
            for field in ("ns_per_call", "ns_per_call_median", "alloc_bytes_per_call", "retained_bytes_per_call"):
                assert isinstance(r[field], (int, float)), (mode, r["case"], field)
            assert isinstance(r["alloc_gc_during"], int)
    assert set(report["overhead"]) == {"off sync", "off async", "on sync", "on async"}
    assert "helper minus floor" in bench_helper.format_table(report)


def test_transform_bench_reports_the_best_round_of_each_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_transform --rounds/--against on a tiny generated app: every step measured in
    every round for both checkouts, and the figure reported is the round with the lowest
    ratio to its own floor (the same checkout twice: the code is the same, the rounds not)."""
    from tests.bench import bench_transform

    out = tmp_path / "bt.json"
    monkeypatch.setattr(sys, "argv", ["bench_transform", "--sizes", "12", "--rounds", "2",
                                      "--against", str(bench_transform.REPO), "--json", str(out)])
    bench_transform.main()
    result = json.loads(out.read_text())
    assert result["rounds"] == 2
    (row,) = result["runs"]
    (other,) = row["against"].values()
    for measured in (row, other):
        for step in ("plan", "instrument"):
            m = measured[step]
            assert m["files"] == row["floor"]["files"] > 0
            assert len(m["rounds"]) == 2
            assert m["ratio_to_floor"] == min(r[0] for r in m["rounds"]) > 0
    with pytest.raises(SystemExit, match="not an otelize checkout"):
        monkeypatch.setattr(sys, "argv", ["bench_transform", "--sizes", "12", "--against", str(tmp_path)])
        bench_transform.main()


def test_shares_bench_times_every_step_of_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_shares on a tiny generated app: every timed step was entered (a step whose
    function moved or was renamed would count no call and time nothing), the steps' own
    times are each within the run, and with "other" they add up to it."""
    from tests.bench import bench_shares

    out = tmp_path / "shares.json"
    monkeypatch.setattr(sys, "argv", ["bench_shares", "--sizes", "24", "--json", str(out)])
    bench_shares.main()
    m = json.loads(out.read_text())["24"]
    assert m["changed"] > 0 and m["floor_s"] > 0
    for label, _, _ in bench_shares.STEPS:
        assert m["calls"][label] > 0, f"{label}: never called in the run"
        assert 0 <= m["own_s"][label] <= m["total_s"], label
    # per-file steps run once per file (parse, facts, tree rules) or per edited file
    assert m["calls"]["parse"] == m["calls"]["facts"] == m["files"]
    assert abs(sum(m["own_s"].values()) - m["total_s"]) < 1e-6
    assert m["own_s"]["other"] >= 0


def test_transform_bench_alternates_which_checkout_goes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkouts take turns step by step, the first of each pair alternating from step to
    step and from round to round; the --cache steps run as one sequence per checkout."""
    from tests.bench import bench_transform

    calls: list[tuple[str, str]] = []

    def fake(kind: str, root: Path, out: Path, jobs: str = "auto", repo: Path | None = None) -> dict:
        calls.append((kind if kind == "floor" else f"{kind}:{jobs}", repo.name if repo is not None else "-"))
        return {"wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 1.0, "files": 1}

    monkeypatch.setattr(bench_transform, "measure", fake)
    (tmp_path / "app" / "src").mkdir(parents=True)
    (tmp_path / "app" / "src" / "index.ts").write_text("x\n")
    checkouts = {"a": tmp_path / "A", "b": tmp_path / "B"}
    steps = ["plan", "instrument", "plan_cache_cold", "plan_cache_warm"]
    bench_transform.measure_size(tmp_path / "app", tmp_path, steps, 2, checkouts)
    assert calls == [
        ("floor", "-"),
        ("plan:auto", "A"), ("plan:auto", "B"), ("instrument:auto", "B"), ("instrument:auto", "A"),
        ("plan_cache:auto", "A"), ("plan_cache:auto", "A"), ("plan_cache:auto", "B"), ("plan_cache:auto", "B"),
        ("floor", "-"),
        ("plan:auto", "B"), ("plan:auto", "A"), ("instrument:auto", "A"), ("instrument:auto", "B"),
        ("plan_cache:auto", "B"), ("plan_cache:auto", "B"), ("plan_cache:auto", "A"), ("plan_cache:auto", "A"),
    ]


def test_floor_bench_measures_every_step_and_the_cross_file_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench_floor on a tiny generated app: every step was timed over every file, the
    timers around the cross-file steps were entered (a timer that missed its function
    would report 0 s), and they are taken off again afterwards."""
    from otelize.analysis import graph as graph_mod
    from otelize.classify import engine
    from tests.bench import bench_floor

    before = graph_mod.build_graph, engine.classify
    out = tmp_path / "floor.json"
    monkeypatch.setattr(sys, "argv", ["bench_floor", "--files", "24", "--rounds", "1", "--json", str(out)])
    bench_floor.main()
    m = json.loads(out.read_text())["synthetic"]
    assert set(m["cpu_s"]) == {"parse", "query", "touch", "record", "extract", "rules", "pickle"}
    assert m["files"] >= 20 and m["captures"] > 10 * m["files"]
    assert m["cpu_s"]["parse"] > 0 and m["cpu_s"]["extract"] > 0
    assert m["cross_file"]["cpu_s"]["graph"] > 0 and m["cross_file"]["cpu_s"]["classify + roles"] > 0
    assert (graph_mod.build_graph, engine.classify) == before
