"""facts: per-file, read-only extraction of imports, exports, functions,
classes, calls and Express registrations.

Facts hold no tree-sitter nodes (only byte ranges and lines), so they can be
computed in worker processes and merged deterministically. Hot paths use one
tree-sitter query per file rather than a Python-level walk of every node.
"""

from __future__ import annotations

from functools import cache

import re

from tree_sitter import Node

from otelize.analysis import express
from otelize.analysis.classfacts import (
    class_fact,
    constructor_arguments,
    function_fact,
    local_type,
    parameter_types,
    prototype_classes,
)
from otelize.analysis.importfacts import commonjs_export, export, import_statement, require_names
from otelize.analysis import capindex
from otelize.analysis.parse import ParsedFile, captures, line_of, query, text, source_order
from otelize.analysis.records import CallFact, FileFacts, FunctionFact, ImportFact
from otelize.analysis.routepaths import commonjs_constants, constant_value, is_string_expression
from otelize.analysis.syntax import innermost, member_chain, is_module_level, string_value


_QUERY = """
(import_statement) @import
(export_statement) @export
(function_declaration) @function
(generator_function_declaration) @function
(function_signature) @function
(function_expression) @function
(generator_function) @function
(arrow_function) @function
(method_definition) @function
(method_signature) @function
(abstract_method_signature) @function
(class_declaration) @class
(abstract_class_declaration) @class
(call_expression) @call
(new_expression) @call
(variable_declarator) @var
(program (expression_statement (assignment_expression) @assign))
"""


@cache
def _scan_query() -> str:
    from otelize.analysis import fntree, routefacts

    return _QUERY + routefacts._QUERY + fntree._QUERY


@cache
def _with_prefetch(prefetch: str) -> str:
    """The scan's query and `prefetch` in one, refused when they share a capture name
    (the scan would read the other's nodes as its own)."""
    mine, theirs = (query(q) for q in (_scan_query(), prefetch))
    shared = {mine.capture_name(i) for i in range(mine.capture_count)} & {
        theirs.capture_name(i) for i in range(theirs.capture_count)}
    if shared:
        raise ValueError(f"prefetched query shares capture names with the scan's: {sorted(shared)}")
    return f"{_scan_query()}\n{prefetch}"


def extract(parsed: ParsedFile, prefetch: str | None = None) -> FileFacts:
    """The file's facts. `prefetch`: a query whose captures a later step will ask of this
    tree (otelize.analysis.capindex): run with the scan's own query, in the same walk of
    the tree, and left for that step in `parsed.cache` (its capture names are its own)."""
    facts = FileFacts(parsed.path)
    root = parsed.root
    # one query for everything the scan reads of the tree (these facts, the route owners,
    # the function trees): one walk of the tree instead of three
    caps = captures(query(_scan_query() if prefetch is None else _with_prefetch(prefetch), parsed.tsx), root)
    if prefetch is not None:
        capindex.prefetched(parsed, prefetch, caps)
    _markers(parsed, facts)

    # QueryCursor.captures does not return a capture's nodes in source order
    for node in sorted(caps.get("import", []), key=source_order):
        import_statement(node, facts)
    for node in caps.get("class", []):
        facts.classes.append(class_fact(node))
    facts.classes.sort(key=lambda c: c.start)

    functions = [fn for node in caps.get("function", []) if (fn := function_fact(node, facts)) is not None]
    functions.sort(key=lambda f: (f.start, -f.end))
    facts.functions = functions
    starts = [f.start for f in functions]

    express_names = express.express_locals(facts)
    for node in sorted(caps.get("var", []), key=source_order):
        _variable(node, facts, express_names, functions, starts)
    parameter_types(facts)
    for node in sorted(caps.get("export", []), key=source_order):
        export(node, facts)
    for node in sorted(caps.get("assign", []), key=source_order):
        commonjs_export(node, facts)
        commonjs_constants(facts, node)
    constructor_arguments(facts, caps.get("var", []))
    if any(fn.kind == "method" and fn.class_name and not any(c.name == fn.class_name for c in facts.classes) for fn in functions):
        constructors = {
            text(n.child_by_field_name("name")): n for n in caps.get("function", []) if n.type == "function_declaration"
        }
        prototype_classes(facts, constructors)

    from otelize.analysis import routefacts

    route_caps = routefacts.owners(root, parsed.tsx, facts, functions, starts, express_names, caps)
    call_nodes = sorted(caps.get("call", []), key=source_order)
    bootstraps = express.bootstrap_locals(facts)
    # a registration needs an owner: an app, router or alias of this file, a router or app
    # parameter or class property, or a name bound to express (whose name the file spells)
    owners = bool(facts.apps or facts.routers or facts.aliases or facts.param_scopes or facts.route_owners
                  or b"express" in parsed.source)
    chains = [_call(node, facts, functions, starts, express_names, bootstraps, owners) for node in call_nodes]
    routefacts.after_calls(parsed.source, route_caps, call_nodes, chains, facts, functions, starts)
    _dedupe(facts)
    from otelize.analysis import fntree, typeuse

    # decided here, where the tree is (in the process that parsed the file), so that the
    # main process never parses a file again to classify it
    # (built directly: dataclasses.replace costs ~9 us a record)
    facts.imports = [
        ImportFact(imp.module, imp.kind, imp.line, imp.start, imp.end, imp.default, imp.namespace, imp.names, imp.type_only, used)
        for imp, used in zip(facts.imports, typeuse.value_used(facts.imports, parsed))
    ]
    facts.fn_trees = fntree.function_trees(parsed, facts.functions, caps)
    return facts


# What generators really write, at the top of the file (before any code): an `@generated`
# tag in a comment, or Go-style `Code generated <by something>. DO NOT EDIT.` A "do not
# edit" inside an ordinary comment, or below the first statement, is not a marker.
_GENERATED = re.compile(rb"@generated\b|\bCode generated\b[^\n]*\bDO NOT EDIT\b")


_LEADING_COMMENTS = re.compile(rb"\A(?:\s+|//[^\n]*(?:\n|\Z)|/\*.*?\*/|#![^\n]*\n)*", re.S)


def _markers(parsed: ParsedFile, facts: FileFacts) -> None:
    head = parsed.source[:2048]
    top = _LEADING_COMMENTS.match(head.lstrip(b"\xef\xbb\xbf"))
    leading = top.group(0) if top else b""
    if _GENERATED.search(leading) and not head.lstrip(b"\xef\xbb\xbf").startswith(b"// Generated by otelize."):
        facts.markers.append("generated")
    if b"otelize-ignore-file" in head:
        facts.markers.append("ignore-file")
    if b"otelize-ignore" in parsed.source:
        for i, line in enumerate(parsed.source.split(b"\n"), start=1):
            stripped = line.strip()
            if stripped.startswith(b"//") and stripped[2:].strip() == b"otelize-ignore":
                facts.ignore_lines.append(i)


def _variable(
    node: Node,
    facts: FileFacts,
    express_names: dict[str, set[str]],
    functions: list[FunctionFact] | None = None,
    starts: list[int] | None = None,
) -> None:
    name_node = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if name_node is not None and name_node.type == "identifier" and functions and not is_module_level(node):
        cls = local_type(node, value)
        owner = innermost(functions, starts or [], node.start_byte) if cls else None
        if owner is not None:
            facts.local_types.setdefault(owner.qualname, {})[text(name_node)] = cls  # type: ignore[assignment]
    if name_node is None or value is None:
        return
    while value.type in ("as_expression", "satisfies_expression", "non_null_expression", "parenthesized_expression"):
        value = value.named_children[0]
    # require('x') imports: `const x = require('x')`, `const { a, b: c } = require('x')`
    if value.type == "call_expression" and text(value.child_by_field_name("function")) == "require":
        args = value.child_by_field_name("arguments")
        module = string_value(args.named_children[0]) if args is not None and args.named_children else None
        if module is None or name_node.type not in ("identifier", "object_pattern"):
            return
        default = text(name_node) if name_node.type == "identifier" else None
        names = require_names(name_node) if name_node.type == "object_pattern" else ()
        facts.imports.append(
            ImportFact(module, "require", line_of(node), value.start_byte, value.end_byte, default=default, names=names)
        )
        if module == "express":
            facts.express_imported = True
            if default:
                express_names["express"].add(default)
            express_names["Router"].update(local for local, imported in names if imported == "Router")
        return
    if name_node.type != "identifier":
        return
    name = text(name_node)
    if express_names["builders"] and express.is_builder(value, express_names):
        express_names["built"].add(name)  # `const server = new InversifyExpressServer(container)`
    kind = express.is_express_call(value, express_names)
    if kind == "app":
        facts.apps.append(name)
        return
    if kind == "router":
        facts.routers.append(name)
        return
    if value.type == "identifier" and (text(value) in facts.apps or text(value) in facts.routers):
        facts.aliases[name] = facts.aliases.get(text(value), text(value))
        return
    top_level = is_module_level(node)
    if top_level and express.is_server_factory_call(value, facts):
        facts.servers.append(name)
    if top_level and node.parent is not None and node.parent.type == "lexical_declaration" and any(
        c.type == "const" for c in node.parent.children
    ):
        literal = constant_value(value, facts)  # also `process.env.X || '/api'`, at its default
        if literal is not None:
            facts.constants[name] = literal
        elif is_string_expression(value):
            facts.computed_constants[name] = text(value)
    if value.type == "new_expression" and top_level:
        facts.instances[name] = text(value.child_by_field_name("constructor"))
    elif value.type == "object" and top_level:
        methods = []
        for prop in value.named_children:
            if prop.type == "method_definition":
                methods.append(text(prop.child_by_field_name("name")))
            elif prop.type == "pair":
                methods.append(text(prop.child_by_field_name("key")))
                held = prop.child_by_field_name("value")
                if held is not None and held.type == "identifier":
                    facts.object_members[f"{name}.{text(prop.child_by_field_name('key'))}"] = text(held)
            elif prop.type == "shorthand_property_identifier":
                facts.object_members[f"{name}.{text(prop)}"] = text(prop)
        facts.objects[name] = methods


def _call(
    node: Node,
    facts: FileFacts,
    functions: list[FunctionFact],
    starts: list[int],
    express_names: dict[str, set[str]],
    bootstraps: dict[str, list[tuple[str, str]]],
    owners: bool,
) -> tuple[str, ...] | None:
    """The facts of one call or `new`; returns its callee's member chain (asked again by
    routefacts). `owners`: whether the file has anything a route can be registered on."""
    is_new = node.type == "new_expression"
    callee = node.child_by_field_name("constructor" if is_new else "function")
    chain = member_chain(callee)
    if not is_new:
        express.entry_call(node, callee, chain, facts, express_names, bootstraps)
    if callee is None:
        return chain
    if not is_new and callee.type == "import":  # dynamic import('x')
        args = node.child_by_field_name("arguments")
        module = string_value(args.named_children[0]) if args is not None and args.named_children else None
        if module is not None:
            facts.imports.append(ImportFact(module, "dynamic", line_of(node), node.start_byte, node.end_byte))
        return chain
    if chain is not None:
        caller = innermost(functions, starts, node.start_byte)
        facts.calls.append(CallFact(caller.qualname if caller else "<module>", chain, line_of(node), is_new))
        if chain == ("fetch",) or chain == ("globalThis", "fetch"):
            facts.has_fetch = True
            if chain[0] == "globalThis" or not _imports_fetch(facts):
                facts.global_fetch = True
        express.listen_call(node, chain, facts)
    if owners and not is_new:
        express.registration(node, callee, facts, functions, starts, express_names)
    return chain


def _imports_fetch(facts: FileFacts) -> bool:
    """The file binds `fetch` by an import (`import fetch from 'node-fetch'`, `const fetch =
    require('cross-fetch')`, `import { fetch } from 'undici'`): its `fetch(...)` is that one."""
    return any(imp.default == "fetch" or imp.namespace == "fetch" or any(local == "fetch" for local, _ in imp.names)
               for imp in facts.imports)


def _dedupe(facts: FileFacts) -> None:
    facts.imports.sort(key=lambda i: (i.line, i.start, i.module))
    # make nested / duplicate qualnames unique and stable: second `x` becomes `x#2`
    seen: dict[str, int] = {}
    for fn in facts.functions:
        if fn.kind == "signature":
            continue
        n = seen.get(fn.qualname, 0) + 1
        seen[fn.qualname] = n
        if n > 1:
            fn.qualname = f"{fn.qualname}#{n}"
