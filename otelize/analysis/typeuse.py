"""Which imports a file uses as values (and so may carry weight as evidence).

`import type { X }` is type-only by syntax; `import { NativeError } from
'mongoose'` used only in type positions (`err: NativeError`) is type-only in
effect. Neither says that the file talks to mongoose, so rules that look at
imports see only the imports whose bindings are used as values somewhere in
the file (or that bind nothing: `import 'reflect-metadata'`, `require(...)`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otelize.analysis.parse import captures, query, text

if TYPE_CHECKING:
    from otelize.analysis.records import FileFacts, ImportFact
    from otelize.analysis.parse import ParsedFile

_IDENTIFIERS = "(identifier) @id"
# identifiers under these nodes are in a type position
_TYPE_CONTEXTS = frozenset({
    "type_annotation", "type_arguments", "type_parameters", "nested_type_identifier", "type_query",
    "implements_clause", "type_alias_declaration", "interface_declaration", "generic_type", "predefined_type",
    "import_statement", "import_clause", "named_imports", "import_specifier", "namespace_import",
    "as_expression", "satisfies_expression",
})


def _value_names(parsed: ParsedFile) -> frozenset[str]:
    """Identifiers of the file that appear in a value position (computed once per file)."""
    cached = parsed.cache.get("value_names")
    if cached is not None:
        return cached
    names: set[str] = set()
    for node in captures(query(_IDENTIFIERS, parsed.tsx), parsed.root).get("id", []):
        child, parent, typed = node, node.parent, False
        while parent is not None:
            if parent.type in _TYPE_CONTEXTS:
                # `x as T`: the expression itself is a value, only the type after `as` is not
                if parent.type in ("as_expression", "satisfies_expression") and parent.named_children and parent.named_children[0] == child:
                    child, parent = parent, parent.parent
                    continue
                typed = True
                break
            if parent.type in ("statement_block", "program", "class_body"):
                break
            child, parent = parent, parent.parent
        if not typed:
            names.add(text(node))
    result = frozenset(names)
    parsed.cache["value_names"] = result
    return result


def is_value_import(imp: ImportFact, parsed: ParsedFile | None) -> bool:
    if imp.value_used is not None:  # decided when the facts were extracted
        return imp.value_used
    if imp.type_only:
        return False
    if parsed is None or imp.kind in ("require", "dynamic"):
        return True
    locals_ = [n for n in (imp.default, imp.namespace) if n] + [local for local, _ in imp.names]
    if not locals_:
        return True  # a side-effect import
    used = _value_names(parsed)
    return any(n in used for n in locals_)


def value_imports(facts: FileFacts, parsed: ParsedFile | None) -> list[ImportFact]:
    return [imp for imp in facts.imports if is_value_import(imp, parsed)]
