"""Transform throughput: plan and instrument vs the single-thread parse floor.

    python -m tests.bench.bench_transform [--sizes 500 5000] [--serial] [--rounds 3]
        [--against /path/to/other/checkout ...] [--json out.json]

For each N, a synthetic app is generated (tests/bench/gen_app.py, seeded).
Each measurement runs in a fresh Python process so that wall time includes
nothing cached and peak RSS is that run's own (the process and its pool):

- floor:       read every source file, then parse each with tree-sitter, one thread, nothing else
- plan:        otelize.api.analyze(root)           (what `otelize plan` does)
- instrument:  otelize.api.instrument(root, out_dir=...)   (`otelize instrument --out`)
- with --cache: plan_cache_cold (analyze(cache=True), filling the scan cache),
  plan_cache_warm (the same again: nothing to parse), plan_cache_one (the same after
  one file changed: the pre-commit case, one file parsed and the cache rewritten), check_cache_fill
  (instrument(write=False, cache=True): `instrument --check --cache` on an app with
  changes pending, so the state cache cannot answer; it fills the edit cache) and
  check_cache_warm (the same again: nothing to parse or edit)

Each step also reports its CPU time over the same span as its wall time
(user + system of the process and of its pool children, from getrusage) and
`cpu x floor`, the CPU time against the floor's: on a machine shared with
other work the CPU ratio is steadier than the wall ratio.

Ratios are taken within one run of this script; the machine is noisy, so
compare ratios, not absolute seconds. With `--rounds K` every step is measured K
times, each round starting with its own floor, and the round with the lowest ratio
to its floor is reported (on a shared machine the minimum is the steadiest figure).
With `--against DIR` (repeatable: other checkouts of otelize, e.g. `git worktree add`),
each round measures the same steps with those checkouts' code too, interleaved with
this one's, on the same generated app and in the same Python environment (the
measuring process runs in the checkout's folder, so `import otelize` finds its code).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEPS = ("floor", "plan", "instrument", "plan_serial", "instrument_serial", "plan_cache_cold", "plan_cache_warm",
         "plan_cache_one", "check_cache_fill", "check_cache_warm")

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
kind, root, out = sys.argv[1], sys.argv[2], sys.argv[3]
def cpu_now():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime  # the process and its (reaped) pool
jobs = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != "auto" else None
if kind == "floor":
    from otelize.project.discover import load_project
    from otelize.analysis.parse import _parser, is_tsx
    project = load_project(root)
    data = [(f, (project.root / f).read_bytes()) for f in project.files]
    t0, c0 = time.perf_counter(), cpu_now()
    for f, src in data:
        _parser(is_tsx(f)).parse(src)
    wall = time.perf_counter() - t0
    cpu = cpu_now() - c0
    n = len(data)
else:
    t0, c0 = time.perf_counter(), cpu_now()
    from otelize import api
    if kind == "plan":
        a = api.analyze(root, jobs=jobs)
        n = len(a.project.files)
    elif kind == "plan_cache":
        a = api.analyze(root, jobs=jobs, cache=True)
        n = len(a.project.files)
    elif kind == "check_cache":
        r = api.instrument(root, write=False, jobs=jobs, cache=True)
        n = len(r.analysis.project.files)
    else:
        r = api.instrument(root, out_dir=out, jobs=jobs)
        n = len(r.analysis.project.files)
    wall = time.perf_counter() - t0
    cpu = cpu_now() - c0
rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss / 1024, "files": n}))
"""


def measure(kind: str, root: Path, out: Path, jobs: str = "auto", repo: Path | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(root), str(out), jobs],
        capture_output=True, text=True, cwd=repo or REPO, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {root} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version()}


_ARGS = {  # step -> (measure kind, jobs)
    "plan": ("plan", "auto"), "instrument": ("instrument", "auto"), "plan_serial": ("plan", "1"),
    "instrument_serial": ("instrument", "1"), "plan_cache_cold": ("plan_cache", "auto"),
    "plan_cache_warm": ("plan_cache", "auto"), "plan_cache_one": ("plan_cache", "auto"),
    "check_cache_fill": ("check_cache", "auto"),
    "check_cache_warm": ("check_cache", "auto"),
}


def measure_size(root: Path, tmp: Path, steps: list[str], rounds: int, checkouts: dict[str, Path]) -> dict:
    """One size: per checkout, each step's best round (lowest wall ratio to that round's
    floor), with every round's ratios kept under "rounds".

    Checkouts take turns step by step, and the one that goes first changes from round to
    round: on these machines the first of two back-to-back runs came out slower whichever
    code it ran, which one checkout always going first turns into a difference between
    them. The --cache steps share the app's cache file (a key per checkout), so a checkout
    runs them as one sequence (cold, warm, one, fill, warm), the sequences alternating."""
    best: dict[str, dict] = {}
    names = list(checkouts)

    def run(name: str, key: str, floor: dict) -> None:
        kind, jobs = _ARGS[key]
        out = tmp / f"out-{name}-{key}"
        shutil.rmtree(out, ignore_errors=True)
        if key == "plan_cache_cold":
            shutil.rmtree(root / ".otelize-cache", ignore_errors=True)
        touched = root / "src" / "index.ts"
        kept = touched.read_bytes() if key == "plan_cache_one" else None
        if kept is not None:  # one file changed since the cached run
            touched.write_bytes(kept + b"\n// changed since the cached run\n")
        try:
            m = measure(kind, root, out, jobs, checkouts[name])
        finally:
            if kept is not None:
                touched.write_bytes(kept)
        m["ratio_to_floor"] = m["wall_s"] / floor["wall_s"]
        m["cpu_ratio_to_floor"] = m["cpu_s"] / floor["cpu_s"]
        m["files_per_s"] = m["files"] / m["wall_s"]
        slot = best.setdefault(name, {})
        seen = slot.get(key, {}).get("rounds", []) + [(m["ratio_to_floor"], m["cpu_ratio_to_floor"])]
        if key not in slot or m["ratio_to_floor"] < slot[key]["ratio_to_floor"]:
            slot[key] = m
        slot[key]["rounds"] = seen

    cached = [k for k in steps if _ARGS[k][0] in ("plan_cache", "check_cache")]
    plain = [k for k in steps if k not in cached]
    for r in range(rounds):
        floor = measure("floor", root, tmp / "unused")
        floor["files_per_s"] = floor["files"] / floor["wall_s"]
        if "floor" not in best or floor["wall_s"] < best["floor"]["wall_s"]:
            best["floor"] = floor
        order = names[r % len(names):] + names[:r % len(names)]
        for i, key in enumerate(plain):
            for name in order if i % 2 == 0 else order[::-1]:
                run(name, key, floor)
        for name in order:
            for key in cached:
                run(name, key, floor)
    return best


def main() -> None:
    from tests.bench.gen_app import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--serial", action="store_true", help="also measure plan/instrument with jobs=1")
    parser.add_argument("--cache", action="store_true",
                        help="also measure --cache: plan filling the scan cache, plan and instrument --check with it warm, "
                             "plan after one file changed")
    parser.add_argument("--rounds", type=int, default=1, help="measure every step this many times; report the best round")
    parser.add_argument("--against", type=Path, action="append", default=[],
                        help="another otelize checkout to measure in the same rounds (repeatable)")
    args = parser.parse_args()
    steps = ["plan", "instrument"]
    if args.cache:
        steps += ["plan_cache_cold", "plan_cache_warm", "plan_cache_one", "check_cache_fill", "check_cache_warm"]
    if args.serial:
        steps += ["plan_serial", "instrument_serial"]
    checkouts = {"this": REPO}
    for other in args.against:
        if not (other / "otelize" / "__init__.py").is_file():
            raise SystemExit(f"--against {other}: not an otelize checkout (no otelize/__init__.py)")
        checkouts[other.name if other.name not in checkouts else str(other)] = other.resolve()

    rows = []
    with tempfile.TemporaryDirectory(prefix="otelize-bench-") as tmp:
        for n in args.sizes:
            root = Path(tmp) / f"app{n}"
            generate(root, n, seed=args.seed)
            best = measure_size(root, Path(tmp), steps, max(1, args.rounds), checkouts)
            row = {"n": n, "floor": best["floor"], **best["this"]}
            if args.against:
                row["against"] = {name: best[name] for name in checkouts if name != "this"}
            rows.append(row)
            print(f"measured N={n}", file=sys.stderr)

    result = {"machine": machine(), "rounds": max(1, args.rounds), "runs": rows}
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        result["scaling"] = {
            key: b[key]["wall_s"] / a[key]["wall_s"] for key in ("floor", "plan", "instrument")
        } | {"files": b["n"] / a["n"]}

    header = (f"{'N':>6} {'checkout':<10} {'step':<20} {'wall s':>8} {'files/s':>9} {'peak RSS MiB':>13} {'x floor':>8}"
              f" {'cpu s':>7} {'cpu x floor':>11}")
    print(f"machine: {result['machine']}, best of {result['rounds']} round(s)")
    print(header)
    print("-" * len(header))
    for row in rows:
        for name in checkouts:
            measured = row if name == "this" else row["against"][name]
            for key in STEPS:
                if key not in measured or (key == "floor" and name != "this"):
                    continue
                m = measured[key]
                ratio = f"{m['ratio_to_floor']:.2f}" if "ratio_to_floor" in m else "1.00"
                cpu_ratio = f"{m['cpu_ratio_to_floor']:.2f}" if "cpu_ratio_to_floor" in m else "1.00"
                print(f"{row['n']:>6} {name:<10} {key:<20} {m['wall_s']:>8.2f} {m['files_per_s']:>9.0f}"
                      f" {m['peak_rss_mib']:>13.0f} {ratio:>8} {m['cpu_s']:>7.2f} {cpu_ratio:>11}")
    if "scaling" in result:
        s = result["scaling"]
        print(f"scaling {rows[0]['n']} -> {rows[-1]['n']} files ({s['files']:.0f}x): "
              f"floor {s['floor']:.1f}x, plan {s['plan']:.1f}x, instrument {s['instrument']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
