"""build_graph's batched adds give the graph that single adds give: same nodes, edges,
attributes and order, on every fixture app."""

from __future__ import annotations

import networkx as nx
import pytest

from otelize.analysis import graph as graph_module
from otelize.analysis.symbols import Symbols, mod_id, sym_id
from otelize.api import analyze
from tests.fixture_apps import APPS, FIXTURES


def _single_adds(project, facts) -> nx.DiGraph:  # noqa: ANN001 - build_graph as it was: one add per node and edge
    g: nx.DiGraph = nx.DiGraph()
    symbols = Symbols(project, facts)
    for path in sorted(facts):
        g.add_node(mod_id(path), kind="module", file=path)
        for target in symbols.imported[path]:
            g.add_edge(mod_id(path), mod_id(target), kind="imports")
        for fn in facts[path].functions:
            if fn.kind != "signature":
                g.add_node(sym_id(path, fn.qualname), kind="symbol", file=path, qualname=fn.qualname, line=fn.line)
                g.add_edge(mod_id(path), sym_id(path, fn.qualname), kind="defines")
    for path in sorted(facts):
        by_qual = {fn.qualname: fn for fn in facts[path].functions}
        for call in facts[path].calls:
            if call.is_new or call.caller == "<module>":
                continue
            target = symbols.resolve_chain(path, by_qual.get(call.caller), call.chain)
            if target is not None and target in g:
                g.add_edge(sym_id(path, call.caller), target, kind="calls")
    return g


def _shape(g: nx.DiGraph) -> tuple:
    """Everything, in order (attribute dicts as item lists: their key order too)."""
    return (
        [(n, list(d.items())) for n, d in g.nodes(data=True)],
        [(u, v, list(d.items())) for u, v, d in g.edges(data=True)],
        [(n, list(g.pred[n])) for n in g],
    )


@pytest.mark.parametrize("app", APPS)
def test_graph_as_single_adds_build_it(app: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = analyze(FIXTURES / app)
    monkeypatch.setattr(graph_module, "add_routes", lambda *args: None)  # the routes: not built here
    built = graph_module.build_graph(a.project, a.facts).graph
    assert _shape(built) == _shape(_single_adds(a.project, a.facts))
