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
    # edges go in batches (add_edges_from), in the order single adds would insert them: the
    # graph, its node and edge order included, is the same. A function's node is made by its
    # `defines` edge, then given its attributes.
    node_data = g.nodes
    for path in paths:  # modules, their imports and the functions they define
        mid = mod_id(path)
        g.add_node(mid, kind="module", file=path)
        g.add_edges_from([(mid, mod_id(target)) for target in symbols.imported[path]], kind="imports")
        defined = [(sym_id(path, fn.qualname), fn) for fn in facts[path].functions if fn.kind != "signature"]
        g.add_edges_from([(mid, sid) for sid, _ in defined], kind="defines")
        for sid, fn in defined:
            node_data[sid].update(kind="symbol", file=path, qualname=fn.qualname, line=fn.line)
    nodes = set(g)  # the graph's nodes as the calls below add them
    calls: list[tuple[str, str]] = []
    for path in paths:  # the calls between them
        f = facts[path]
        by_qual = {fn.qualname: fn for fn in f.functions}
        for call in f.calls:
            if call.is_new or call.caller == "<module>":
                continue
            target = symbols.resolve_chain(path, by_qual.get(call.caller), call.chain)
            if target is not None and target in nodes:
                source = sym_id(path, call.caller)
                calls.append((source, target))
                nodes.add(source)
    g.add_edges_from(calls, kind="calls")
    app_graph = AppGraph(g, [])
    add_routes(project, facts, app_graph, symbols)
    return app_graph
