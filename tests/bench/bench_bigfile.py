"""Cost on one big file: `instrument --check` against the parse floor of that file.

    python -m tests.bench.bench_bigfile [--methods 8000 25000]

A generated app holds one service file with M async methods (each awaiting a
repository call, so every one gets a span) plus the usual entry and package.json.
Each measurement runs in a fresh process:

- floor:  tree-sitter parse of the big file, nothing else
- check:  otelize.api.instrument(root, write=False)   (`otelize instrument --check`)

Every per-file step should be linear (or n log n) in the file's size, so the
ratio to the floor should stay flat as M grows; the growth line compares the
largest M with the smallest. Ratios are taken within one run; CPU time
(user + system) is shown beside wall time, since a loaded machine inflates
wall time but not the work done.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIG = "src/services/bigService.ts"

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
kind, root = sys.argv[1], sys.argv[2]
if kind == "floor":
    from otelize.analysis.parse import _parser
    src = (Path(root) / "src/services/bigService.ts").read_bytes()
    t0, c0 = time.perf_counter(), cpu()
    _parser(False).parse(src)
    wall, used = time.perf_counter() - t0, cpu() - c0
    spans = 0
else:
    from otelize import api
    t0, c0 = time.perf_counter(), cpu()
    r = api.instrument(root, write=False, jobs=1)
    wall, used = time.perf_counter() - t0, cpu() - c0
    spans = len(r.synthesis.spans)
print(json.dumps({"wall_s": wall, "cpu_s": used, "spans": spans}))
"""


def generate(root: Path, methods: int) -> None:
    (root / "src/services").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({
        "name": "bigfile", "version": "1.0.0", "main": "dist/index.js",
        "scripts": {"build": "tsc", "start": "node dist/index.js"},
        "dependencies": {"express": "4.21.2"},
    }, indent=2) + "\n")
    (root / "tsconfig.json").write_text('{"compilerOptions": {"outDir": "dist", "rootDir": "src"}}\n')
    (root / "src/index.ts").write_text(
        "import express from 'express';\nimport { BigService } from './services/bigService';\n\n"
        "const app = express();\nconst service = new BigService();\n"
        "app.get('/m', async (_req, res) => { res.json(await service.m0('x')); });\n"
        "app.listen(3000);\n"
    )
    lines = ["export interface Repo { find(id: string): Promise<unknown>; }", "",
             "export class BigService {", "  constructor(private readonly repo: Repo = { find: async (id) => id }) {}", ""]
    for i in range(methods):
        lines += [
            f"  async m{i}(id: string): Promise<unknown> {{",
            f"    const row = await this.repo.find(id + '{i}');",
            "    return row;",
            "  }",
            "",
        ]
    lines.append("}")
    (root / BIG).write_text("\n".join(lines) + "\n")


def measure(kind: str, root: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, str(root)], capture_output=True, text=True,
                          cwd=REPO, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {root} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", type=int, nargs="+", default=[8000, 25000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="otelize-bigfile-") as tmp:
        for m in args.methods:
            root = Path(tmp) / f"app{m}"
            generate(root, m)
            floor, check = measure("floor", root), measure("check", root)
            if check["spans"] < m:
                raise SystemExit(f"expected at least {m} spans, got {check['spans']}")
            rows.append((m, floor, check))
            print(f"measured M={m}", file=sys.stderr)
    print(f"{'methods':>8} {'floor wall s':>12} {'--check wall s':>14} {'x floor':>8} {'floor cpu s':>11} {'--check cpu s':>13} {'x floor':>8}")
    for m, f, c in rows:
        print(f"{m:>8} {f['wall_s']:>12.3f} {c['wall_s']:>14.2f} {c['wall_s'] / f['wall_s']:>8.1f} "
              f"{f['cpu_s']:>11.3f} {c['cpu_s']:>13.2f} {c['cpu_s'] / f['cpu_s']:>8.1f}")
    if len(rows) >= 2:
        (m0, f0, c0), (m1, f1, c1) = rows[0], rows[-1]
        print(f"growth {m0} -> {m1} methods ({m1 / m0:.1f}x), by CPU time: floor {f1['cpu_s'] / f0['cpu_s']:.1f}x, "
              f"--check {c1['cpu_s'] / c0['cpu_s']:.1f}x")


if __name__ == "__main__":
    main()
