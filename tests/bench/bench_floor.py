"""How low a scan can go in Python: the parse, the scan's query, and the least any Python
fact extraction must do with its captures, each against the parse floor.

    python -m tests.bench.bench_floor [--files 2000] [--seed 1] [--rounds 3] [--corpus DIR ...]

Issue #19 asks for a cold `plan` at <= 1.5x the parse floor (one thread parsing every file)
on two cores. This measures, per file and on one core, the costs that any extractor written
in Python has to pay however its facts are assembled:

- `parse`: tree-sitter's parse of the file (the floor);
- `query`: the scan's one combined query (otelize.analysis.facts), captures only;
- `touch`: reading each captured node's kind and byte range from Python, once
  (the least a fact needs: no text, no children, no records);
- `record`: `touch` plus one tuple per capture kept in a list (a fact per node, nothing else);
- `extract`: otelize's real `facts.extract` on the same tree (its own query included);
- `rules`: the tree-based rules of the static scan (`scan_static`) on those facts;
- `pickle`: a pool child's scan result pickled and unpickled (what crosses the pipe;
  the main process's half, the load, is on the critical path).

Every step runs on every file, interleaved per file (parse, then each step on that tree), in
one process with the cyclic GC off, as in a run; CPU time (`time.process_time`), minimum over
the rounds. The last lines give the bound this implies for a pooled plan: the per-file steps
split over the cores, plus the measured cross-file steps, which are serial.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path


def _files(root: Path) -> list[tuple[str, bytes]]:
    from otelize.project.discover import load_project

    project = load_project(root)
    return [(f, (project.root / f).read_bytes()) for f in project.files]


def measure(data: list[tuple[str, bytes]], rounds: int) -> dict:
    from otelize.analysis import facts as facts_mod
    import pickle

    from otelize.analysis.parse import ParsedFile, _parser, captures, is_tsx, query
    from otelize.classify.engine import scan_static
    from otelize.classify.ruleset import load_rules
    from otelize.run.pipeline import Scan

    rules = load_rules(None)
    steps = ("parse", "query", "touch", "record", "extract", "rules", "pickle")
    best = {s: float("inf") for s in steps}
    n_caps = 0
    gc.disable()
    try:
        for _ in range(rounds):
            spent = dict.fromkeys(steps, 0.0)
            n_caps = 0
            clock = time.process_time
            for path, src in data:
                tsx = is_tsx(path)
                q = query(facts_mod._scan_query(), tsx)
                t0 = clock()
                tree = _parser(tsx).parse(src)
                t1 = clock()
                caps = captures(q, tree.root_node)
                t2 = clock()
                for nodes in caps.values():
                    for n in nodes:
                        n.type, n.start_byte, n.end_byte  # noqa: B018 - the read is the measurement
                t3 = clock()
                kept = [(name, n.type, n.start_byte, n.end_byte) for name, nodes in caps.items() for n in nodes]
                t4 = clock()
                pf = ParsedFile(path, src, tree, tsx)
                facts = facts_mod.extract(pf)
                t5 = clock()
                static = scan_static(rules, path, facts, pf)
                t6 = clock()
                pickle.loads(pickle.dumps(Scan(path, [], None, facts, static), protocol=pickle.HIGHEST_PROTOCOL))
                t7 = clock()
                n_caps += len(kept)
                spent["parse"] += t1 - t0
                spent["query"] += t2 - t1
                spent["touch"] += t3 - t2
                spent["record"] += t4 - t3
                spent["extract"] += t5 - t4
                spent["rules"] += t6 - t5
                spent["pickle"] += t7 - t6
            for s in steps:
                best[s] = min(best[s], spent[s])
    finally:
        gc.enable()
    return {"files": len(data), "captures": n_caps, "cpu_s": best}


def cross_file(root: Path) -> dict:
    """The serial cross-file steps of a real plan of `root` (the graph; classification with its roles),
    timed in this process, against a parse floor measured in the same process."""
    from otelize.analysis import graph as graph_mod
    from otelize.classify import engine
    from otelize.analysis.parse import _parser, is_tsx
    from otelize import api

    data = _files(root)
    t0 = time.process_time()
    for path, src in data:
        _parser(is_tsx(path)).parse(src)
    floor = time.process_time() - t0
    own = {"graph": 0.0, "classify + roles": 0.0}

    def timed(label, fn):
        def run(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                own[label] += time.process_time() - t
        return run

    saved = graph_mod.build_graph, engine.classify
    graph_mod.build_graph = timed("graph", graph_mod.build_graph)
    engine.classify = timed("classify + roles", engine.classify)  # run.analysis imports both at call time
    gc.disable()
    try:
        api.analyze(root, jobs=1)
    finally:
        gc.enable()
        graph_mod.build_graph, engine.classify = saved
    return {"floor_cpu_s": floor, "cpu_s": own}


def report(label: str, m: dict, cross: dict | None) -> str:
    c = m["cpu_s"]
    floor = c["parse"]
    lines = [f"{label}: {m['files']} files, {m['captures']} captures ({m['captures'] / max(m['files'], 1):.0f} a file); "
             f"CPU, min over rounds; x the parse",
             f"{'step':<10} {'CPU s':>8} {'x parse':>8}"]
    for step, s in c.items():
        lines.append(f"{step:<10} {s:>8.3f} {s / floor:>8.2f}")
    least = (c["parse"] + c["query"] + c["touch"]) / floor
    today = (c["parse"] + c["extract"] + c["rules"]) / floor
    lines.append(f"least per-file work in Python (parse + query + touch): {least:.2f}x the parse on one core; "
                 f"today (parse + extract + rules): {today:.2f}x")
    if cross is not None:
        serial = sum(cross["cpu_s"].values()) / cross["floor_cpu_s"]
        cores = os.cpu_count() or 1
        load = c["pickle"] / floor / 2  # the main process's half: the unpickling
        parts = ", ".join(f"{k} {v / cross['floor_cpu_s']:.2f}" for k, v in cross["cpu_s"].items())
        lines.append(f"cross-file steps (serial): {serial:.2f}x ({parts}); unpickling the children's scans ~{load:.2f}x")
        lines.append(f"bound for a pooled plan on {cores} cores (per-file work split evenly, the serial steps after it; "
                     f"nothing for discovery, reading, start-up, the report): facts costing nothing beyond `touch`, "
                     f"no tree rules: {least / cores + serial + load:.2f}x the floor; with today's per-file work: "
                     f"{today / cores + serial + load:.2f}x (target 1.5x)")
    return "\n".join(lines)


def main() -> None:
    from tests.bench.gen_app import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, nargs="*", default=[], help="also measure these apps' files")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="otelize-floor-") as tmp:
        root = Path(tmp) / "app"
        generate(root, args.files, seed=args.seed)
        m = measure(_files(root), args.rounds)
        cross = cross_file(root)
        results["synthetic"] = {**m, "cross_file": cross}
        print(report(f"synthetic app ({args.files})", m, cross))
    if args.corpus:
        from otelize.errors import BadInput

        data = []
        for app in sorted(args.corpus):
            try:
                data += _files(app)
            except BadInput as e:  # a checkout whose app is in a subfolder, say
                print(f"skipped: {e}")
        m = measure(data, args.rounds)
        results["corpus"] = m
        print(report(f"corpus ({len(args.corpus)} apps)", m, None))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
