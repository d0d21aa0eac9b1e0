"""symbols: what a name in a file stands for, across the project's modules.

`Resolver` maps an import specifier to a project file (relative, index files,
tsconfig `paths` and `baseUrl`). `Symbols` binds every file's imports and resolves
through them: a local name to its defining (file, name), following exports and
re-exports; a class, an instance, a method up the superclass chain; and a call
chain (`this.db.query`, `userService.getUser`, `ns.fn`) to the graph id of the
function it calls. The graph (`otelize.analysis.graph`) is built from these.
"""

from __future__ import annotations

import posixpath
from typing import Any, TypeVar

from otelize.analysis.records import ClassFact, FileFacts, FunctionFact
from otelize.project.model import Project

T = TypeVar("T")


def _first_by(indexes: dict[str, dict[str, T]], facts: dict[str, Any], file: str, records: str, key: str) -> dict[str, T]:
    """The index of `facts[file].<records>` (functions, classes) by their attribute `key`
    (the first record of each key), built once per file into `indexes`."""
    index = indexes.get(file)
    if index is None:
        index = indexes[file] = {}
        for record in getattr(facts[file], records):
            index.setdefault(getattr(record, key), record)
    return index


RESOLVE_SUFFIXES = (".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs")  # TypeScript first: `./x` is x.ts over a stale x.js


def mod_id(path: str) -> str:
    return f"mod:{path}"


def sym_id(path: str, qualname: str) -> str:
    return f"sym:{path}::{qualname}"


class Resolver:
    """Resolves import specifiers to project files (relative, index, tsconfig paths)."""

    def __init__(self, project: Project):
        self.project = project
        self.files = set(project.files)

    def resolve(self, from_file: str, spec: str) -> str | None:
        if spec.startswith("."):
            base = posixpath.normpath(posixpath.join(posixpath.dirname(from_file), spec))
            return self._try(base)
        for pattern, targets in self.project.paths.items():
            base_dir = self.project.base_url or ""
            if pattern.endswith("*"):
                prefix = pattern[:-1]
                if not spec.startswith(prefix):
                    continue
                rest = spec[len(prefix) :]
                candidates = [t.replace("*", rest) for t in targets]
            elif spec == pattern:
                candidates = list(targets)
            else:
                continue
            for cand in candidates:
                hit = self._try(posixpath.normpath(posixpath.join(base_dir, cand)))
                if hit:
                    return hit
        if self.project.base_url is not None and not spec.startswith("@"):
            hit = self._try(posixpath.normpath(posixpath.join(self.project.base_url, spec)))
            if hit:
                return hit
        return None

    def _try(self, base: str) -> str | None:
        base = base.lstrip("./") if base.startswith("./") else base
        if base in self.files:
            return base
        stem = base
        for js, ts in ((".js", ".ts"), (".jsx", ".tsx"), (".mjs", ".mts"), (".cjs", ".cts")):
            if base.endswith(js):
                stem = base[: -len(js)]
                if stem + ts in self.files:
                    return stem + ts
        for suffix in RESOLVE_SUFFIXES:
            if stem + suffix in self.files:
                return stem + suffix
        for suffix in RESOLVE_SUFFIXES:
            cand = posixpath.join(stem, "index" + suffix)
            if cand in self.files:
                return cand
        return None


class Symbols:
    """Symbol resolution over every file's facts, through the imports they bind."""

    def __init__(self, project: Project, facts: dict[str, FileFacts]) -> None:
        self.facts = facts
        self._functions: dict[str, dict[str, FunctionFact]] = {}  # file -> qualname -> its (first) function
        self._classes: dict[str, dict[str, ClassFact]] = {}  # file -> class name -> its (first) class
        self.resolver = Resolver(project)
        # import resolution: file -> local name -> (target file, exported name)
        self.bindings: dict[str, dict[str, tuple[str, str]]] = {}
        self.imported: dict[str, list[str]] = {}  # file -> the project files its imports resolve to, in order
        for path in sorted(facts):
            local: dict[str, tuple[str, str]] = {}
            targets: list[str] = []
            for imp in facts[path].imports:
                target = self.resolver.resolve(path, imp.module)
                if target is None:
                    continue
                targets.append(target)
                if imp.default:
                    local[imp.default] = (target, "default" if imp.kind == "esm" else "*")
                if imp.namespace:
                    local[imp.namespace] = (target, "*")
                for name, imported in imp.names:
                    local[name] = (target, imported)
            self.bindings[path] = local
            self.imported[path] = targets

    def export_target(self, file: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Follow exports/re-exports to (file, local name)."""
        if depth > 8 or file not in self.facts:
            return None
        f = self.facts[file]
        if name in f.exports:
            return file, f.exports[name]
        for module, pairs in f.reexports:
            target = self.resolver.resolve(file, module)
            if target is None:
                continue
            if not pairs:
                hit = self.export_target(target, name, depth + 1)
                if hit:
                    return hit
            for exported, local in pairs:
                if exported == name:
                    return self.export_target(target, local, depth + 1)
        return None

    def lookup(self, file: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        """Resolve a local identifier in `file` to its defining (file, local name)."""
        f = self.facts.get(file)
        if f is None or depth > 8:
            return None
        if name in self.bindings.get(file, {}):
            target, exported = self.bindings[file][name]
            if exported == "*":
                return target, "*"
            hit = self.export_target(target, exported)
            if hit is None:
                return None
            tfile, tname = hit
            if tfile != file and tname in self.bindings.get(tfile, {}):  # `import x; export { x }`
                return self.lookup(tfile, tname, depth + 1)
            return hit
        return file, name

    def class_location(self, file: str, class_name: str) -> tuple[str, str] | None:
        loc = self.lookup(file, class_name)
        if loc is None:
            return None
        cfile, cname = loc
        cfacts = self.facts.get(cfile)
        if cfacts and any(c.name == cname for c in cfacts.classes):
            return cfile, cname
        return None

    def instance_class(self, file: str, var: str) -> tuple[str, str] | None:
        """`var` holds `new X()` somewhere: return X's (file, name)."""
        loc = self.lookup(file, var)
        if loc is None:
            return None
        vfile, vname = loc
        if vname == "*":  # a required CommonJS module whose value is an instance: `module.exports = new X()`
            vname = self.facts[vfile].exports.get("=", "*")
        cls = self.facts[vfile].instances.get(vname)
        if cls is None:
            return None
        return self.class_location(vfile, cls)

    def method_symbol(self, cls: tuple[str, str] | None, method: str) -> str | None:
        seen = 0
        while cls is not None and seen < 8:
            cfile, cname = cls
            fn = self.function(cfile, f"{cname}.{method}")
            if fn is not None:
                return sym_id(cfile, fn.qualname)
            parent = cf.superclass if (cf := self.class_fact(cfile, cname)) is not None else None
            cls = self.class_location(cfile, parent) if parent else None
            seen += 1
        return None

    def function_symbol(self, file: str, name: str) -> str | None:
        loc = self.lookup(file, name)
        if loc is None:
            return None
        tfile, tname = loc
        fn = self.function(tfile, tname)
        return sym_id(tfile, fn.qualname) if fn is not None else None

    def module_value_member(self, file: str, member: str) -> str | None:
        """`svc.find()` where `svc = require('./svc')` and that module sets `module.exports` to an
        instance (`new OrderService()`), a class or constructor (static / prototype members), or
        an object of functions."""
        value = self.facts[file].exports.get("=")
        if value is None:
            return None
        cls = self.facts[file].instances.get(value)
        if cls is not None:
            return self.method_symbol(self.class_location(file, cls), member)
        fn = self.function(file, f"{value}.{member}")
        if fn is not None:
            return sym_id(file, fn.qualname)
        return None

    def function(self, file: str, qualname: str) -> FunctionFact | None:
        """`facts[file].function(qualname)` by a dict lookup (an index per file, built once)."""
        return _first_by(self._functions, self.facts, file, "functions", "qualname").get(qualname)

    def class_fact(self, file: str, name: str) -> ClassFact | None:
        """The file's first class named `name` (an index per file, built once)."""
        return _first_by(self._classes, self.facts, file, "classes", "name").get(name)

    def resolve_chain(self, file: str, caller: FunctionFact | None, chain: tuple[str, ...]) -> str | None:
        if len(chain) == 1:
            return self.function_symbol(file, chain[0])
        head = chain[0]
        if head == "this" and caller is not None and caller.class_name:
            cls_facts = self.class_fact(file, caller.class_name)
            if len(chain) == 2:
                return self.method_symbol((file, caller.class_name), chain[1])
            if len(chain) == 3 and cls_facts is not None:
                field_type = cls_facts.field_types.get(chain[1])
                if field_type is None:
                    return None
                if field_type.startswith("@"):
                    target = self.instance_class(file, field_type[1:])
                else:
                    target = self.class_location(file, field_type)
                return self.method_symbol(target, chain[2])
            return None
        if len(chain) == 2:
            local = self.facts[file].local_types.get(caller.qualname, {}).get(head) if caller is not None else None
            if local is not None:  # a local or parameter holding a class instance shadows module names
                return self.method_symbol(self.class_location(file, local), chain[1])
            cls = self.instance_class(file, head)
            if cls is not None:
                return self.method_symbol(cls, chain[1])
            loc = self.lookup(file, head)
            if loc is None:
                return None
            tfile, tname = loc
            if tname == "*":  # namespace import: ns.fn(); or a required CommonJS module
                return self.function_symbol(tfile, chain[1]) or self.module_value_member(tfile, chain[1])
            fn = self.function(tfile, f"{tname}.{chain[1]}")  # object literal member / static method
            if fn is not None:
                return sym_id(tfile, fn.qualname)
        return None
