"""Micro-benchmark of the otelize span helper (src/otel.ts, from templates/otel.ts.j2).

    python -m tests.bench.bench_helper [--iterations 2000000] [--json out.json]
                                       [--template PATH] [--git-rev REV]

Renders the helper, compiles it with tsc (CommonJS) into tests/bench/node/.build/,
and runs tests/bench/node/helper-bench.mjs twice in fresh processes:

  off  no tracer provider registered: the path every call takes when the app
       never starts the SDK. It should cost little more than the wrapping itself
       (the attributes literal and the closure at the call site: the "floor"
       case) and allocate nothing per call beyond that.
  on   a NodeTracerProvider with a BatchSpanProcessor and an exporter that drops
       everything, for reference.

For each of sync/async it reports ns/call and heap bytes allocated per call
(heapUsed growth over N calls with no GC in between; --expose-gc, gc before
and after; 'retained' is what a full GC leaves, ~0 unless something leaks),
for a direct call of the function, the wrapping floor, and the helper.

`--template PATH` benchmarks another copy of the template (e.g. an older one);
`--git-rev REV` takes templates/otel.ts.j2 as of that git revision.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_NODE = Path(__file__).resolve().parent / "node"
BUILD_DIR = BENCH_NODE / ".build"
SCRIPT = BENCH_NODE / "helper-bench.mjs"
TEMPLATE = REPO_ROOT / "templates" / "otel.ts.j2"

sys.path.insert(0, str(REPO_ROOT / "tests"))
from nodeutil import npm_install  # noqa: E402

NODE_FLAGS = ["--expose-gc", "--min-semi-space-size=64", "--max-semi-space-size=64"]
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "commonjs",
        "moduleResolution": "node10",
        "strict": True,
        "esModuleInterop": True,
        "skipLibCheck": True,
        "rootDir": "src",
        "outDir": "dist",
        "types": ["node"],
    },
    "include": ["src"],
}


def render_template_text(text: str) -> bytes:
    from otelize.synthesize.render import environment
    from otelize.workers.config import GENERATED_HEADER

    out = environment().from_string(text).render(generated_header=GENERATED_HEADER.decode().rstrip("\n"))
    return out.replace("\r\n", "\n").encode()


def render_helper(template: Path | None = None, git_rev: str | None = None) -> bytes:
    if git_rev is not None:
        text = subprocess.run(["git", "show", f"{git_rev}:templates/otel.ts.j2"], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout
        return render_template_text(text)
    if template is not None:
        return render_template_text(template.read_text())
    from otelize.workers.config import render_helper as render

    return render()


def compile_helper(source: bytes, tag: str = "current") -> Path:
    """tsc the rendered helper into tests/bench/node/.build/<tag>/dist/otel.js (resolves packages there)."""
    npm_install(BENCH_NODE)
    proj = BUILD_DIR / tag
    if proj.exists():
        shutil.rmtree(proj)
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "otel.ts").write_bytes(source)
    (proj / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (proj / "package.json").write_text(json.dumps({"name": "otel-helper-bench", "private": True, "type": "commonjs"}))
    tsc = BENCH_NODE / "node_modules" / "typescript" / "bin" / "tsc"
    proc = subprocess.run(["node", str(tsc), "-p", str(proj)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"tsc failed for the rendered helper:\n{proc.stdout}\n{proc.stderr}")
    return proj / "dist" / "otel.js"


def run_mode(helper_js: Path, mode: str, iterations: int, alloc_iterations: int, repeats: int,
             cases: Sequence[str] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"helper": str(helper_js), "mode": mode, "iterations": iterations,
                           "allocIterations": alloc_iterations, "repeats": repeats}
    if cases:
        cfg["cases"] = list(cases)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NODE_OPTIONS"))}
    proc = subprocess.run(["node", *NODE_FLAGS, str(SCRIPT), json.dumps(cfg)], cwd=BENCH_NODE, env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"helper-bench ({mode}) failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_benchmark(helper_js: Path, iterations: int, alloc_iterations: int, repeats: int,
                  cases: Sequence[str] | None = None) -> dict[str, Any]:
    modes = {m: run_mode(helper_js, m, iterations, alloc_iterations, repeats, cases) for m in ("off", "on")}
    return {"config": {"iterations": iterations, "alloc_iterations": alloc_iterations, "repeats": repeats},
            "modes": modes, "overhead": overhead(modes)}


def overhead(modes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Helper minus floor (ns and bytes per call), per mode and kind: what the helper adds to the wrapping."""
    out: dict[str, Any] = {}
    for mode, data in modes.items():
        by = {r["case"]: r for r in data["results"]}
        for kind in ("sync", "async"):
            h, f = by.get(f"{kind} helper"), by.get(f"{kind} floor")
            if h is None or f is None:
                continue
            out[f"{mode} {kind}"] = {
                "ns_over_floor": h["ns_per_call"] - f["ns_per_call"],
                "bytes_over_floor": h["alloc_bytes_per_call"] - f["alloc_bytes_per_call"],
            }
    return out


def format_table(report: Mapping[str, Any]) -> str:
    rows = [("tracing", "case", "ns/call (best)", "ns/call (median)", "alloc B/call", "retained B/call", "gc during")]
    for mode, data in report["modes"].items():
        for r in data["results"]:
            rows.append((mode, r["case"], f"{r['ns_per_call']:.1f}", f"{r['ns_per_call_median']:.1f}",
                         f"{r['alloc_bytes_per_call']:.1f}", f"{r['retained_bytes_per_call']:.2f}",
                         str(r["alloc_gc_during"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("helper minus floor (what the helper adds to the wrapping):")
    for key, o in report["overhead"].items():
        lines.append(f"  {key:<10} {o['ns_over_floor']:8.1f} ns/call  {o['bytes_over_floor']:8.1f} B/call")
    lines.append("(alloc = heapUsed growth / N with no GC in between; a non-zero 'gc during' makes that row a "
                 "lower bound)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_helper", description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=2_000_000, help="calls per timed loop (default 2,000,000)")
    ap.add_argument("--alloc-iterations", type=int, default=50_000, help="calls in the allocation run")
    ap.add_argument("--repeats", type=int, default=5, help="timed loops per case; best and median reported")
    ap.add_argument("--template", type=Path, help="benchmark this otel.ts.j2 instead of templates/otel.ts.j2")
    ap.add_argument("--git-rev", help="benchmark templates/otel.ts.j2 as of this git revision")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON ('-' for stdout)")
    args = ap.parse_args(argv)
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("node/npm not found", file=sys.stderr)
        return 2

    from tests.bench.bench_runtime import format_machine, machine_info, write_json

    machine = machine_info()
    source = render_helper(args.template, args.git_rev)
    tag = "rev-" + args.git_rev.replace("/", "_") if args.git_rev else ("template" if args.template else "current")
    helper_js = compile_helper(source, tag)
    report = run_benchmark(helper_js, args.iterations, args.alloc_iterations, args.repeats)
    report["machine"] = machine
    report["helper"] = args.git_rev or str(args.template or TEMPLATE.relative_to(REPO_ROOT))
    print(format_machine(machine))
    print(f"helper: {report['helper']}; {args.iterations} calls x {args.repeats} per timing, "
          f"{args.alloc_iterations} calls for allocation")
    print(format_table(report))
    if args.json:
        write_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
