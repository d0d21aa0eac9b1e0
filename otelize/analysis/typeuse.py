"""Which imports a file uses as values (and so may carry weight as evidence).

`import type { X }` is type-only by syntax; `import { NativeError } from
'mongoose'` used only in type positions (`err: NativeError`) is type-only in
effect. Neither says that the file talks to mongoose, so rules that look at
imports see only the imports whose bindings are used as values somewhere in
the file (or that bind nothing: `import 'reflect-metadata'`, `require(...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelize.analysis.records import FileFacts, ImportFact
    from otelize.analysis.parse import ParsedFile

# identifiers under these nodes are in a type position
_TYPE_CONTEXTS = frozenset({
    "type_annotation", "type_arguments", "type_parameters", "nested_type_identifier", "type_query",
    "implements_clause", "type_alias_declaration", "interface_declaration", "generic_type", "predefined_type",
    "import_statement", "import_clause", "named_imports", "import_specifier", "namespace_import",
    "as_expression", "satisfies_expression",
})


def _value_names(parsed: ParsedFile, wanted: frozenset[str]) -> frozenset[str]:
    """Which of `wanted` appear as identifiers in a value position (only identifiers with
    one of those names are looked at: the walk up to the statement is the cost)."""
    key = ("value_names", wanted)
    cached = parsed.cache.get(key)
    if cached is not None:
        return cached
    names: set[str] = set()
    root, source = parsed.root, parsed.source
    # each place the file's bytes spell a wanted name, in source order, taken when the tree
    # has an identifier there: what `(identifier) @id` would capture with that name, without
    # a capture (a node object) for every identifier of the file
    for name in sorted(wanted):
        raw = name.encode("utf-8")
        at = source.find(raw)
        while at != -1 and name not in names:
            node = root.descendant_for_byte_range(at, at + len(raw))
            at = source.find(raw, at + 1)
            if node is None or node.type != "identifier" or node.end_byte - node.start_byte != len(raw):
                continue
            if _in_value_position(node):
                names.add(name)
    result = frozenset(names)
    parsed.cache[key] = result
    return result


def _in_value_position(node: Any) -> bool:
    child, parent = node, node.parent
    while parent is not None:
        if parent.type in _TYPE_CONTEXTS:
            # `x as T`: the expression itself is a value, only the type after `as` is not
            if parent.type in ("as_expression", "satisfies_expression") and parent.named_children and parent.named_children[0] == child:
                child, parent = parent, parent.parent
                continue
            return False
        if parent.type in ("statement_block", "program", "class_body"):
            break
        child, parent = parent, parent.parent
    return True


def _locals(imp: ImportFact) -> list[str]:
    return [n for n in (imp.default, imp.namespace) if n] + [local for local, _ in imp.names]


def is_value_import(imp: ImportFact, parsed: ParsedFile | None) -> bool:
    if imp.value_used is not None:  # decided when the facts were extracted
        return imp.value_used
    if imp.type_only:
        return False
    if parsed is None or imp.kind in ("require", "dynamic"):
        return True
    locals_ = _locals(imp)
    if not locals_:
        return True  # a side-effect import
    used = _value_names(parsed, frozenset(locals_))
    return any(n in used for n in locals_)


def value_used(imports: list[ImportFact], parsed: ParsedFile) -> list[bool]:
    """`is_value_import` of each import of a file, with one walk for all of them."""
    wanted = frozenset(n for imp in imports if imp.value_used is None for n in _locals(imp))
    if wanted:
        _value_names(parsed, wanted)  # fills the cache for the whole set
        used = parsed.cache[("value_names", wanted)]
        out = []
        for imp in imports:
            if imp.value_used is not None or imp.type_only or imp.kind in ("require", "dynamic") or not _locals(imp):
                out.append(is_value_import(imp, parsed))
            else:
                out.append(any(n in used for n in _locals(imp)))
        return out
    return [is_value_import(imp, parsed) for imp in imports]


def value_imports(facts: FileFacts, parsed: ParsedFile | None) -> list[ImportFact]:
    return [imp for imp in facts.imports if is_value_import(imp, parsed)]
