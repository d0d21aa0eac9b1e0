"""CLI latency for pre-commit: `otelize instrument --check` on an already-instrumented app.

    python -m tests.bench.bench_cli [--runs 11] [--app sample-app] [--json out.json]

Instruments a copy of the app (`--out`), then times, from process start to exit,
`python -m otelize instrument COPY --check`:

- cold:   no state cache, so every file is discovered, parsed and analysed;
- cache:  `--cache`, after one run that wrote `.otelize-cache/` (an unchanged,
          clean app is answered without importing the analysis stack);
- python: `python -c pass`, the interpreter's own start-up, for scale.

Reports the median and min/max of each, their ratio to the interpreter start, and
the biggest import costs of the cold run (`python -X importtime`, cumulative,
top-level packages). Bytecode is written on the warm-up run (as an installed
package has it), even when PYTHONDONTWRITEBYTECODE is set in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET_MS = 350


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    return env


def timed(cmd: list[str], runs: int, expect: int = 0) -> tuple[list[float], str]:
    """Wall seconds of each run, and the last run's stderr."""
    walls, stderr = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=_env(), cwd=REPO, check=False)
        walls.append(time.perf_counter() - t0)
        stderr = proc.stderr.decode()
        if proc.returncode != expect:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}, expected {expect}:\n{proc.stderr.decode()}")
    return walls, stderr


def import_costs(cmd: list[str], top: int = 8) -> list[tuple[str, float]]:
    """(top-level package, cumulative ms) of the biggest imports, from -X importtime."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True,
                          env=_env(), cwd=REPO, check=False)
    costs: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        pkg = name.strip().split(".")[0]
        if not cumulative.isdigit() or pkg in ("otelize", "__main__", "runpy", "encodings", "site"):
            continue
        costs[pkg] = max(costs.get(pkg, 0.0), int(cumulative) / 1000)
    return sorted(costs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def summary(walls: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(walls) * 1000, "min_ms": min(walls) * 1000, "max_ms": max(walls) * 1000}


def run(app: Path, runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="otelize-bench-cli-") as tmp:
        copy = Path(tmp) / app.name
        otelize = [sys.executable, "-m", "otelize"]
        subprocess.run([*otelize, "-q", "instrument", str(app), "--out", str(copy)], check=True, env=_env(), cwd=REPO)
        shutil.rmtree(copy / ".otelize-cache", ignore_errors=True)
        check = [*otelize, "instrument", str(copy), "--check"]
        timed(check, 1)  # warm-up: bytecode, page cache
        cold, _ = timed(check, runs)
        timed([*check, "--cache"], 1)  # writes the state cache
        cached, stderr = timed([*check, "--cache"], runs)
        from_cache = "unchanged since the last clean run" in stderr
        python, _ = timed([sys.executable, "-c", "pass"], runs)
        files = sum(1 for p in (copy / "src").rglob("*.ts"))
        result = {
            "app": app.name,
            "source_files": files,
            "runs": runs,
            "python": summary(python),
            "cold": summary(cold),
            "cache": summary(cached),
            "answered_from_cache": from_cache,
            "imports_ms": import_costs(check),
            "target_ms": TARGET_MS,
        }
    result["cold"]["x_python"] = result["cold"]["median_ms"] / result["python"]["median_ms"]
    result["cache"]["x_python"] = result["cache"]["median_ms"] / result["python"]["median_ms"]
    result["target_met"] = {"cold": result["cold"]["median_ms"] <= TARGET_MS, "cache": result["cache"]["median_ms"] <= TARGET_MS}
    return result


def format_table(r: dict) -> str:
    lines = [f"`otelize instrument --check` on an instrumented {r['app']} ({r['source_files']} .ts files), "
             f"{r['runs']} runs each, wall from process start",
             f"{'variant':<22} {'median ms':>10} {'min':>7} {'max':>7} {'x python':>9}"]
    for key, label in (("python", "python -c pass"), ("cold", "--check (cold)"), ("cache", "--check --cache")):
        m = r[key]
        ratio = f"{m['x_python']:.1f}" if "x_python" in m else "1.0"
        lines.append(f"{label:<22} {m['median_ms']:>10.0f} {m['min_ms']:>7.0f} {m['max_ms']:>7.0f} {ratio:>9}")
    met = ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in r["target_met"].items())
    lines.append(f"target median <= {r['target_ms']} ms: {met}")
    lines.append("biggest imports (cumulative ms): " + ", ".join(f"{n} {ms:.0f}" for n, ms in r["imports_ms"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--app", type=Path, default=REPO / "sample-app")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    result = run(args.app.resolve(), args.runs)
    sys.stdout.write(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
