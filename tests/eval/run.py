"""Run otelize's library API on local checkouts of public apps and score it.

    python -m tests.eval.run --apps /work/evalapps [--app NAME] [-v] [--json]

For every expectation file tests/eval/apps/<name>.yaml whose checkout
DIR/<name> exists, it analyses the app and plans the edits in memory
(`otelize.api.analyze` + `synthesize_plan`; nothing is written) and prints one
row: recall and precision of the spans against the expert's list, must-not
hits, CLIENT spans with a CLIENT below them, spans on test code, routes found
(method + full path) against expected, and whether tracing gets loaded.
See tests/eval/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.eval.expect import KINDS, AppSpec, ExpectationError, load

APPS = Path(__file__).resolve().parent / "apps"

# The harness's own view of test code (independent of otelize's rules, so it can disagree).
TEST_CODE = re.compile(
    r"(^|/)(__tests__|__mocks__|tests?|e2e|mocks|fakes|fixtures|spec)/|\.(test|spec|e2e-spec)\.[cm]?[jt]sx?$"
)
# Database/cache client libraries whose auto-instrumentation (auto-instrumentations-node)
# already emits a CLIENT span per operation; ORMs reach one of these drivers underneath.
INSTRUMENTED_DRIVERS = {
    "pg": "postgresql", "pg-pool": "postgresql", "mysql": "mysql", "mysql2": "mysql",
    "mongodb": "mongodb", "mongoose": "mongodb", "ioredis": "redis", "redis": "redis",
    "@redis/client": "redis", "tedious": "microsoft.sql_server", "mssql": "microsoft.sql_server",
    "oracledb": "oracle.db", "cassandra-driver": "cassandra", "memcached": "memcached", "knex": "",
}
ORMS_OVER_DRIVERS = ("typeorm", "sequelize", "sequelize-typescript", "knex", "kysely", "drizzle-orm", "@mikro-orm/core", "objection")


@dataclass
class AppResult:
    name: str
    spans: int = 0
    wanted: int = 0
    hit: int = 0  # wanted spans that are planned
    counted: int = 0  # planned spans counted for precision (all but `ok`)
    correct: int = 0  # counted spans that are wanted
    must_not_hits: list[str] = field(default_factory=list)
    kind_mismatches: list[str] = field(default_factory=list)
    client_over_client: list[str] = field(default_factory=list)
    test_spans: list[str] = field(default_factory=list)
    duplicate_names: list[str] = field(default_factory=list)  # span names planned for two or more functions
    routes_expected: int = 0
    routes_found: int = 0
    tracing: str = ""
    missed: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing_routes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def recall(self) -> float:
        return self.hit / self.wanted if self.wanted else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.counted if self.counted else 1.0


def instrumented_libraries(package_json: dict) -> set[str]:
    """Modules whose calls are already CLIENT spans under auto-instrumentation, for this app."""
    deps: set[str] = set()
    for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        if isinstance(package_json.get(section), dict):
            deps.update(package_json[section])
    found = {d for d in deps if d in INSTRUMENTED_DRIVERS}
    if found:
        found |= {d for d in deps if d in ORMS_OVER_DRIVERS}
    return found


def _symbol(span) -> str:  # noqa: ANN001
    return str(dict(span.attributes).get("code.function.name") or span.name)


def _qualname(analysis, span) -> str:  # noqa: ANN001
    """The function fact behind a planned span (by file and line)."""
    for fn in analysis.facts[span.file].functions:
        if fn.line == span.line and not fn.is_signature:
            return fn.qualname
    return _symbol(span)


@dataclass(frozen=True)
class Span:
    name: str  # the span name
    file: str
    symbol: str  # code.function.name: Class.method, object.method, function
    kind: str
    node: str  # the function's node in otelize's graph (sym:<file>::<qualname>)


@dataclass
class Observed:
    """What otelize would do to one app, reduced to what the score needs."""

    spans: list[Span] = field(default_factory=list)
    calls: dict[str, set[str]] = field(default_factory=dict)  # graph node -> called nodes
    node_files: dict[str, str] = field(default_factory=dict)  # graph node -> its file
    io_files: set[str] = field(default_factory=set)  # files importing an auto-instrumented db/cache library
    routes: set[tuple[str, str]] = field(default_factory=set)  # (METHOD, full path)
    tracing: str = ""


def observe(root: Path) -> Observed:
    """Analyse and plan in memory (nothing is written)."""
    from otelize.api import analyze, synthesize_plan
    from otelize.run.edit import worker_context
    from otelize.analysis.graph import sym_id

    from dataclasses import replace

    from otelize.errors import BadInput
    from otelize.project.settings import load_settings

    settings = load_settings(root)
    refused = ""
    try:
        analysis = analyze(root, jobs=1, settings=settings)
        syn = synthesize_plan(analysis)
    except BadInput as exc:  # an old toolchain is refused; classification is still measured, forced
        if "--force-toolchain" not in str(exc):
            raise
        refused = " (toolchain refused without --force-toolchain)"
        analysis = analyze(root, jobs=1, settings=replace(settings, force_toolchain=True))
        syn = synthesize_plan(analysis)
    obs = Observed()
    for s in syn.spans:
        if s.kind in KINDS:
            obs.spans.append(Span(s.name, s.file, _symbol(s), s.kind, sym_id(s.file, _qualname(analysis, s))))
    g = analysis.graph.graph
    for u, v, kind in g.edges(data="kind"):
        if kind == "calls":
            obs.calls.setdefault(u, set()).add(v)
    obs.node_files = {n: d["file"] for n, d in g.nodes(data=True) if d.get("kind") == "symbol"}
    libs = instrumented_libraries(analysis.project.package_json)
    obs.io_files = {
        path for path, facts in analysis.facts.items()
        if any(not i.type_only and (i.module in libs or i.module.split("/")[0] in libs) for i in facts.imports)
    }
    obs.routes = {(r.method.upper(), r.path) for r in analysis.graph.routes}
    if worker_context(analysis).sdk_bootstrap:
        obs.tracing = "own SDK"
    else:
        loads = sorted(
            p for p, (old, new) in syn.changes.items() if old is not None and new.count(b"tracing") > old.count(b"tracing")
        )
        obs.tracing = f"yes ({', '.join(loads)})" if loads else "NO"
    obs.tracing += refused
    return obs


def score(spec: AppSpec, obs: Observed) -> AppResult:
    res = AppResult(spec.name, spans=len(obs.spans), tracing=obs.tracing)
    got = {(s.file, s.symbol): s for s in obs.spans}
    want = {(w.file, w.symbol): w for w in spec.want}
    res.wanted = len(want)
    for key, w in sorted(want.items()):
        span = got.get(key)
        if span is None:
            res.missed.append(f"{key[0]}::{key[1]}")
            continue
        res.hit += 1
        if w.kind and span.kind != w.kind:
            res.kind_mismatches.append(f"{key[0]}::{key[1]} is {span.kind}, want {w.kind}")
    for key in sorted(got):
        file, symbol = key
        label = f"{file}::{symbol}"
        for p in spec.must_not:
            if p.matches(file, symbol):
                res.must_not_hits.append(label + (f" ({p.why})" if p.why else ""))
                break
        if TEST_CODE.search(file):
            res.test_spans.append(label)
        if key in want:
            res.counted += 1
            res.correct += 1
        elif not any(p.matches(file, symbol) for p in spec.ok):
            res.counted += 1
            res.unexpected.append(f"{label} [{got[key].kind}]")
    # CLIENT over CLIENT: a CLIENT span that reaches, through the call graph (itself
    # included), another CLIENT span or code importing an auto-instrumented library
    clients = {s.node: s for s in obs.spans if s.kind == "CLIENT"}
    for node, span in sorted(clients.items()):
        seen, stack, below = {node}, [node], None
        while stack and below is None:
            cur = stack.pop()
            file = obs.node_files.get(cur)
            if file in obs.io_files:
                below = f"an auto-instrumented client ({file})"
                break
            for nxt in sorted(obs.calls.get(cur, ())):
                if nxt in clients and nxt != node:
                    below = f"CLIENT {clients[nxt].symbol}"
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        if below is not None:
            res.client_over_client.append(f"{span.file}::{span.symbol} over {below}")
    by_name: dict[str, list[str]] = {}
    for s in obs.spans:
        by_name.setdefault(s.name, []).append(f"{s.file}::{s.symbol}")
    res.duplicate_names = [f"{n}: {', '.join(sorted(where))}" for n, where in sorted(by_name.items()) if len(where) > 1]
    res.routes_expected = len(spec.routes)
    for r in spec.routes:
        if (r.method, r.path) in obs.routes:
            res.routes_found += 1
        else:
            res.missing_routes.append(f"{r.method} {r.path} ({r.file}::{r.symbol})")
    return res


def evaluate(checkout: Path, spec: AppSpec) -> AppResult:
    from otelize.errors import OtelizeError

    root = checkout / spec.root if spec.root else checkout
    try:
        return score(spec, observe(root))
    except OtelizeError as exc:
        return AppResult(spec.name, error=str(exc))


def load_specs(only: list[str] | None = None) -> list[AppSpec]:
    specs = [load(p) for p in sorted(APPS.glob("*.yaml"))]
    if only:
        unknown = sorted(set(only) - {s.name for s in specs})
        if unknown:
            raise ExpectationError(f"no expectation file for {unknown[0]} in {APPS}")
        specs = [s for s in specs if s.name in only]
    return specs


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def table(results: list[AppResult]) -> str:
    head = ["app", "recall", "precision", "must-not", "CLIENT/CLIENT", "test spans", "dup names", "routes", "tracing"]
    rows = []
    for r in results:
        if r.error:
            rows.append([r.name, "error: " + r.error] + [""] * 7)
            continue
        rows.append([
            r.name, f"{_pct(r.recall)} ({r.hit}/{r.wanted})", f"{_pct(r.precision)} ({r.correct}/{r.counted})",
            str(len(r.must_not_hits)), str(len(r.client_over_client)), str(len(r.test_spans)), str(len(r.duplicate_names)),
            f"{r.routes_found}/{r.routes_expected}", r.tracing,
        ])
    ok = [r for r in results if not r.error]
    if len(ok) > 1:
        hit, wanted = sum(r.hit for r in ok), sum(r.wanted for r in ok)
        correct, counted = sum(r.correct for r in ok), sum(r.counted for r in ok)
        rows.append([
            "**total**", f"{_pct(hit / wanted if wanted else 1)} ({hit}/{wanted})",
            f"{_pct(correct / counted if counted else 1)} ({correct}/{counted})",
            str(sum(len(r.must_not_hits) for r in ok)), str(sum(len(r.client_over_client) for r in ok)),
            str(sum(len(r.test_spans) for r in ok)), str(sum(len(r.duplicate_names) for r in ok)),
            f"{sum(r.routes_found for r in ok)}/{sum(r.routes_expected for r in ok)}", "",
        ])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def details(r: AppResult) -> str:
    out = [f"## {r.name}"]
    for title, items in (
        ("missed", r.missed), ("unexpected", r.unexpected), ("must-not hits", r.must_not_hits),
        ("kind mismatches", r.kind_mismatches), ("CLIENT over CLIENT", r.client_over_client),
        ("spans on test code", r.test_spans), ("duplicate span names", r.duplicate_names), ("missing routes", r.missing_routes),
    ):
        if items:
            out.append(f"{title} ({len(items)}):")
            out += [f"  {i}" for i in items]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.eval.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", required=True, type=Path, help="folder holding one checkout per app, named like its expectation file")
    ap.add_argument("--app", action="append", help="only this app (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list missed, unexpected and every hit")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    try:
        specs = load_specs(args.app)
    except ExpectationError as exc:
        print(f"eval: error: {exc}", file=sys.stderr)
        return 2
    results = []
    for spec in specs:
        checkout = args.apps / spec.name
        if not checkout.is_dir():
            print(f"eval: {spec.name}: no checkout at {checkout} (see tests/eval/README.md); skipped", file=sys.stderr)
            continue
        results.append(evaluate(checkout, spec))
    if args.json:
        print(json.dumps([asdict(r) | {"recall": r.recall, "precision": r.precision} for r in results], indent=2))
    else:
        print(table(results))
        if args.verbose:
            for r in results:
                print()
                print(details(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
