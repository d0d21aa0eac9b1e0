"""graph: modules, symbols and routes in one networkx DiGraph.

Node ids:
- ``mod:<file>``                module
- ``sym:<file>::<qualname>``   function / method
- ``route:<METHOD> <path>``    route
Edge ``kind`` attribute: ``imports``, ``defines``, ``calls``, ``handles``.

What a name stands for (imports, exports, classes, call chains) is resolved by
`otelize.analysis.symbols`; the routes and their mounted paths are added by
`otelize.analysis.routegraph`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from otelize.analysis.records import FileFacts
from otelize.analysis.routegraph import add_routes
from otelize.analysis.symbols import Symbols, mod_id, sym_id
from otelize.project.model import Project, Route


@dataclass
class AppGraph:
    graph: nx.DiGraph
    routes: list[Route]
    middleware: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, handler)
    unmounted: list[Route] = field(default_factory=list)  # routes of routers no app mounts (path as written)
    use_handlers: set[str] = field(default_factory=set)  # symbols registered with app/router.use()
    entry: str | None = None  # the primary entry point
    entries: list[str] = field(default_factory=list)  # every file that starts an app (listen)
    apps: list[tuple[str, str]] = field(default_factory=list)  # (file, var)

    def symbols_reached_from(self, node: str) -> set[str]:
        calls = self.graph.edge_subgraph(
            [(u, v) for u, v, k in self.graph.edges(data="kind") if k in ("calls", "handles")]
        )
        if node not in calls:
            return set()
        return set(nx.descendants(calls, node))

def build_graph(project: Project, facts: dict[str, FileFacts]) -> AppGraph:
    g: nx.DiGraph = nx.DiGraph()
    symbols = Symbols(project, facts)
    paths = sorted(facts)
    for path in paths:  # modules, their imports and the functions they define
        g.add_node(mod_id(path), kind="module", file=path)
        for target in symbols.imported[path]:
            g.add_edge(mod_id(path), mod_id(target), kind="imports")
        for fn in facts[path].functions:
            if fn.kind == "signature":
                continue
            sid = sym_id(path, fn.qualname)
            g.add_node(sid, kind="symbol", file=path, qualname=fn.qualname, line=fn.line)
            g.add_edge(mod_id(path), sid, kind="defines")
    for path in paths:  # the calls between them
        f = facts[path]
        by_qual = {fn.qualname: fn for fn in f.functions}
        for call in f.calls:
            if call.is_new or call.caller == "<module>":
                continue
            target = symbols.resolve_chain(path, by_qual.get(call.caller), call.chain)
            if target is not None and target in g:
                g.add_edge(sym_id(path, call.caller), target, kind="calls")
    app_graph = AppGraph(g, [])
    add_routes(project, facts, app_graph, symbols)
    return app_graph
