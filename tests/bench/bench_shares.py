"""Where a cold `instrument --out` spends its time: each step's share, against the parse floor.

    python -m tests.bench.bench_shares [--sizes 2000] [--seed 1] [--json out.json]

For each N a synthetic app is generated (tests/bench/gen_app.py, seeded) and one fresh
Python process measures, in this order: the floor (read every source file, parse each
with tree-sitter, one thread, as in bench_transform), then `otelize.api.instrument(root,
out_dir=..., jobs=1)` with a timer around each step's function. Serial, so every step
runs in the measuring process and the shares add up to the run (with a pool the
per-file steps are split between two processes; see bench_transform for those figures).

Each step's time is its own, without the timed steps it calls (the validation reparse
is not counted again under "splice"). "other" is the run's time outside every timed
step: discovery, reading the files, the scan loop, merging, the report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# (label, module, attribute): the step's function, looked up where its caller finds it
STEPS = (
    ("parse", "otelize.run.pipeline", "parse_source"),
    ("facts", "otelize.run.pipeline", "extract"),
    ("tree rules", "otelize.run.pipeline", "scan_static"),
    ("graph", "otelize.analysis.graph", "build_graph"),
    ("classify", "otelize.classify.engine", "classify"),
    ("roles", "otelize.classify.engine", "assign_roles"),
    ("plan", "otelize.plan.dag", "build_plan"),
    ("workers", "otelize.run.pipeline", "run_task"),
    ("splice + imports", "otelize.synthesize.apply", "synthesize"),
    ("validation reparse", "otelize.synthesize.apply", "reparse"),
    ("write", "otelize.api", "finish"),
)

_CHILD = r"""
import importlib, json, sys, time
from pathlib import Path
root, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
from otelize.project.discover import load_project
from otelize.analysis.parse import _parser, is_tsx
project = load_project(root)
data = [(f, (project.root / f).read_bytes()) for f in project.files]
t0 = time.perf_counter()
for f, src in data:
    _parser(is_tsx(f)).parse(src)
floor = time.perf_counter() - t0

own = {label: 0.0 for label, _, _ in steps}
calls = {label: 0 for label, _, _ in steps}
stack = []  # time spent in timed steps called by the step on top

def timed(label, fn):
    def run(*args, **kwargs):
        t = time.perf_counter()
        stack.append(0.0)
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - t
            own[label] += spent - stack.pop()
            calls[label] += 1
            if stack:
                stack[-1] += spent
    return run

for label, module, name in steps:
    mod = importlib.import_module(module)
    setattr(mod, name, timed(label, getattr(mod, name)))
from otelize import api
t0 = time.perf_counter()
result = api.instrument(root, out_dir=out, jobs=1)
total = time.perf_counter() - t0
print(json.dumps({"floor_s": floor, "total_s": total, "own_s": own, "calls": calls, "files": len(data),
                  "changed": len(result.synthesis.changes)}))
"""


def measure(root: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(out), json.dumps(STEPS)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"instrument on {root} failed:\n{proc.stderr}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    m["own_s"]["other"] = m["total_s"] - sum(m["own_s"].values())
    return m


def table(n: int, m: dict) -> str:
    floor = m["floor_s"]
    lines = [f"N={n}: {m['files']} files, {m['changed']} changed; floor {floor:.2f} s; "
             f"instrument --out (1 process) {m['total_s']:.2f} s = {m['total_s'] / floor:.2f}x floor",
             f"{'step':<20} {'calls':>7} {'s':>7} {'x floor':>8} {'share':>6}"]
    for label, spent in m["own_s"].items():
        count = m["calls"].get(label, "")
        lines.append(f"{label:<20} {count:>7} {spent:>7.2f} {spent / floor:>8.2f} {spent / m['total_s']:>6.0%}")
    return "\n".join(lines)


def main() -> None:
    from tests.bench.gen_app import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="otelize-shares-") as tmp:
        for n in args.sizes:
            root = Path(tmp) / f"app{n}"
            generate(root, n, seed=args.seed)
            results[n] = measure(root, Path(tmp) / f"out{n}")
            print(table(n, results[n]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
