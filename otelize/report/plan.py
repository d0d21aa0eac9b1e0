"""Format an Analysis: `plan` as text or JSON, `graph` as Mermaid or DOT.

Pure functions from an `otelize.run.analysis.Analysis` to a string. Output is
deterministic: everything is sorted, paths are relative to the project root
with `/`, and graph node ids (n0, n1, ... / r0, r1, ...) follow sorted path
and route-table order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

from otelize.plan import registry
from otelize.plan.registry import CATEGORIES

if TYPE_CHECKING:
    from otelize.run.analysis import Analysis

# Fill colours per category (Mermaid classDef and DOT fillcolor).
COLORS = registry.COLORS  # category -> fill colour, and `route`


# --- plan ---------------------------------------------------------------------


def plan_data(a: Analysis) -> dict[str, Any]:
    """The plan as plain data (what `plan --format json` prints)."""
    cls = a.classification
    project = a.project
    files = []
    for path in project.files:
        d = cls.file(path)
        entry = {"path": path, "category": d.category, "rules": list(d.rules)}
        if path in a.left_alone:
            entry["left_alone"] = a.left_alone[path]
        files.append(entry)
    functions = []
    for (path, qualname), d in sorted(cls.functions.items()):
        fd = cls.file(path)
        if (d.category, d.rules, d.tags) == (fd.category, fd.rules, fd.tags):
            continue
        fn = a.facts[path].function(qualname) if path in a.facts else None
        functions.append(
            {
                "file": path,
                "function": qualname,
                "line": fn.line if fn is not None else None,
                "category": d.category,
                "rules": list(d.rules),
                "tags": list(d.tags),
            }
        )
    functions.sort(key=lambda f: (f["file"], f["line"] or 0, f["function"]))
    return {
        "app": {
            "name": project.name,
            "entry": a.entry,
            "module": project.module,
            "express": project.express_major,
        },
        "routes": [r.to_dict() for r in a.graph.routes],
        "unmounted_routes": [r.to_dict() for r in a.graph.unmounted],
        "files": files,
        "functions": functions,
        "unparsable": [{"file": f, "reason": r} for f, r in sorted(a.unparsable)],
        # per-function roles travel in the task options; the plan lists them as spans and skips instead
        "tasks": [{**t.to_dict(), "options": _jsonable({k: v for k, v in t.options if k not in ("roles", "db_system_reached")})}
                  for t in a.tasks],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def format_json(a: Analysis) -> str:
    return json.dumps(plan_data(a), indent=2, ensure_ascii=False) + "\n"


def format_text(a: Analysis) -> str:
    data = plan_data(a)
    app = data["app"]
    out: list[str] = []
    express = f"{app['express']} ({a.project.express_range})" if app["express"] is not None else a.project.express_range
    out.append(f"app: {app['name']}")
    out.append(f"  entry point:    {app['entry'] or '(none found)'}")
    out.append(f"  module system:  {app['module']}")
    out.append(f"  express:        {express}")
    out.append("")

    routes = a.graph.routes
    out.append(f"routes ({len(routes)}):")
    width = max((len(r.path) for r in routes), default=0)
    for r in routes:
        out.append(f"  {r.method:<7} {r.path:<{width}} → {r.file}:{r.line} {r.handler}")
    if not routes:
        out.append("  (none found)")
    computed = [r for r in (*routes, *a.graph.unmounted) if r.computed]
    if computed:
        places = sorted({(r.file, r.line) for r in computed})
        where = ", ".join(f"{f}:{n}" for f, n in places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        out.append(f"  ({len(computed)} with a path computed at runtime, not resolved statically: "
                   f"each ${{...}} is the source text, not the path; {where})")
    out.append("")
    if a.graph.unmounted:
        out.append(f"unmounted ({len(a.graph.unmounted)}): routes of routers no app mounts, paths as written:")
        uwidth = max(len(r.path) for r in a.graph.unmounted)
        for r in a.graph.unmounted:
            out.append(f"  {r.method:<7} {r.path:<{uwidth}} → {r.file}:{r.line} {r.handler}")
        out.append("")

    out.append(f"files ({len(data['files'])}):")
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for f in data["files"]:
        by_cat.setdefault("left alone" if "left_alone" in f else f["category"], []).append(f)
    pwidth = max((len(f["path"]) for f in data["files"]), default=0)
    for cat in (*CATEGORIES, "left alone"):
        if cat not in by_cat:
            continue
        out.append(f"  {cat}:")
        for f in by_cat[cat]:
            why = f.get("left_alone") or ", ".join(f["rules"]) or "(no rule matched)"
            out.append(f"    {f['path']:<{pwidth}}  {why}")
    out.append("")

    if data["functions"]:
        out.append("functions classified apart from their file:")
        for fn in data["functions"]:
            tags = f" [{', '.join(fn['tags'])}]" if fn["tags"] else ""
            out.append(f"  {fn['file']}:{fn['line']} {fn['function']}: {fn['category']}{tags}  {', '.join(fn['rules'])}")
        out.append("")

    if data["unparsable"]:
        out.append(f"unparsable ({len(data['unparsable'])}), left alone:")
        for u in data["unparsable"]:
            out.append(f"  {u['file']}: {u['reason']}")
        out.append("")

    out.append(f"tasks ({len(a.tasks)}), in order:")
    for i, t in enumerate(a.tasks, start=1):
        after = f"  (after {', '.join(t.depends_on)})" if t.depends_on else ""
        out.append(f"  {i:>2}. {t.id}{after}")
    return "\n".join(out) + "\n"


FORMATS = {"text": format_text, "json": format_json}


# --- graph --------------------------------------------------------------------


@dataclass(frozen=True)
class ArchGraph:
    """The architecture at module level, ready to draw."""

    modules: list[tuple[str, str, str]]  # (id, path, category), sorted by path
    routes: list[tuple[str, str]]  # (id, "GET /x")
    edges: list[tuple[str, str, str]]  # (from id, to id, "handles"|"calls"|"imports")


def architecture(a: Analysis) -> ArchGraph:
    """Collapse the symbol graph to modules.

    Edges: route -> handler module, module -> module where a function calls
    one in the other module, and import edges between classified modules that
    no call edge already covers. `other` modules are kept only when they lie
    on a path from a route to a classified module.
    """
    g = a.graph.graph
    cls = a.classification

    def category(path: str) -> str:
        return cls.file(path).category

    route_edges: set[tuple[str, str]] = set()  # (route node, module path)
    for r in a.graph.routes:
        rid = f"route:{r.method} {r.path}"
        targets = {g.nodes[v]["file"] for v in (g.successors(rid) if rid in g else []) if g.edges[rid, v].get("kind") == "handles"}
        for t in targets or {r.file}:
            route_edges.add((rid, t))

    call_edges: set[tuple[str, str]] = set()
    import_edges: set[tuple[str, str]] = set()
    for u, v, kind in g.edges(data="kind"):
        if kind == "calls":
            fu, fv = g.nodes[u]["file"], g.nodes[v]["file"]
            if fu != fv:
                call_edges.add((fu, fv))
        elif kind == "imports":
            fu, fv = g.nodes[u]["file"], g.nodes[v]["file"]
            if fu != fv:
                import_edges.add((fu, fv))

    # which `other` modules lie on a route -> ... -> classified module path
    flow: nx.DiGraph = nx.DiGraph()
    flow.add_edges_from(route_edges)
    flow.add_edges_from(call_edges)
    route_ids = sorted({rid for rid, _ in route_edges})
    reached: set[str] = set()
    for rid in route_ids:
        reached |= nx.descendants(flow, rid)
    keep: set[str] = set()
    for node in reached:
        if category(node) != "other":
            keep.add(node)
        elif any(category(d) != "other" for d in nx.descendants(flow, node) if not d.startswith("route:")):
            keep.add(node)
    keep |= {p for p in cls.files if category(p) != "other"}

    paths = sorted(keep)
    mod_ids = {p: f"n{i}" for i, p in enumerate(paths)}
    route_list = [(f"r{i}", f"{r.method} {r.path}") for i, r in enumerate(a.graph.routes)]
    route_ids_by_key = {f"route:{label}": rid for rid, label in route_list}

    edges: list[tuple[str, str, str]] = []
    for rid, p in sorted(route_edges):
        if p in mod_ids and rid in route_ids_by_key:
            edges.append((route_ids_by_key[rid], mod_ids[p], "handles"))
    for u, v in sorted(call_edges):
        if u in mod_ids and v in mod_ids:
            edges.append((mod_ids[u], mod_ids[v], "calls"))
    for u, v in sorted(import_edges - call_edges):
        if u in mod_ids and v in mod_ids and category(u) != "other" and category(v) != "other":
            edges.append((mod_ids[u], mod_ids[v], "imports"))
    edges.sort(key=lambda e: (_id_key(e[0]), _id_key(e[1]), e[2]))
    modules = [(mod_ids[p], p, category(p)) for p in paths]
    return ArchGraph(modules, route_list, edges)


def _id_key(node_id: str) -> tuple[int, int]:
    """Routes (r*) before modules (n*), then by number."""
    return (0 if node_id[0] == "r" else 1), int(node_id[1:])


def _css_class(category: str) -> str:
    return category.replace("-", "_")


def _mermaid_label(label: str) -> str:
    return label.replace('"', "#quot;")


def format_mermaid(a: Analysis) -> str:
    arch = architecture(a)
    out = ["flowchart LR"]
    for rid, label in arch.routes:
        out.append(f'  {rid}(["{_mermaid_label(label)}"]):::route')
    for nid, path, cat in arch.modules:
        out.append(f'  {nid}["{_mermaid_label(path)}<br/>{cat}"]:::{_css_class(cat)}')
    arrows = {"handles": "-->", "calls": "-->", "imports": "-.->"}
    for u, v, kind in arch.edges:
        out.append(f"  {u} {arrows[kind]} {v}")
    used = sorted({cat for _, _, cat in arch.modules}, key=CATEGORIES.index)
    for cat in used:
        out.append(f"  classDef {_css_class(cat)} fill:{COLORS[cat]},stroke:#555,color:#000")
    if arch.routes:
        out.append(f"  classDef route fill:{COLORS['route']},stroke:#999,stroke-dasharray:3 3,color:#000")
    return "\n".join(out) + "\n"


def _dot_quote(*lines: str) -> str:
    """A DOT string; several lines are joined with DOT's `\\n` escape."""
    return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines) + '"'


def format_dot(a: Analysis) -> str:
    arch = architecture(a)
    out = [
        "digraph otelize {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for rid, label in arch.routes:
        out.append(f'  {rid} [label={_dot_quote(label)}, shape=oval, fillcolor="{COLORS["route"]}", style="filled,dashed"];')
    for nid, path, cat in arch.modules:
        out.append(f'  {nid} [label={_dot_quote(path, cat)}, fillcolor="{COLORS[cat]}", tooltip={_dot_quote(cat)}];')
    for u, v, kind in arch.edges:
        style = " [style=dashed]" if kind == "imports" else ""
        out.append(f"  {u} -> {v}{style};")
    out.append("}")
    return "\n".join(out) + "\n"


GRAPH_FORMATS = {"mermaid": format_mermaid, "dot": format_dot}
