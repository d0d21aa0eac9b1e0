"""routepaths: the route paths that are more than a string literal.

The constants paths are built from (string leaves of module objects, function-local
constants, `process.env.X || 'api'` defaults, the members of a returned object,
CommonJS `exports.X = '/x'`), the strings computed at runtime (`process.env.X`) that
tell a mount prefix held in a variable from middleware (`app.use(prefix, router)`),
template-literal paths over module and class constants (`${this.path}/:id`),
member paths (`config.api.prefix`, an imported `$config.api.prefix` left to the
graph), escapes as the running app sees them, and routers mounted in a loop over a
literal array.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from otelize.analysis.express import imported_names
from otelize.analysis.parse import text
from otelize.analysis.routescope import FUNCS, class_of, enclosing_functions, final_qualname
from otelize.analysis.syntax import innermost, member_chain, string_value


_CALL_MEMBER = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(\)\.[A-Za-z_$][\w$]*$")


def value_or_env_default(value: Node | None) -> str | None:
    """A string literal, or the default of `process.env.X || 'api'` (`??` too): the path
    the app uses when the variable is not set."""
    if value is None:
        return None
    literal = string_value(value)
    if literal is not None:
        return literal
    if value.type == "binary_expression":
        op = value.child_by_field_name("operator")
        left, right = value.child_by_field_name("left"), value.child_by_field_name("right")
        if op is not None and text(op) in ("||", "??") and left is not None and text(left).startswith("process.env."):
            return string_value(right)
    return None


def is_string_expression(value: Node | None) -> bool:
    """A value that is a string at runtime, though not one otelize reads: `process.env.X`
    (with or without a default), a template literal, a concatenation with a string. What
    tells a mount prefix held in a variable (`app.use(prefix, router)`) from middleware."""
    while value is not None and value.type in ("as_expression", "satisfies_expression", "non_null_expression", "parenthesized_expression"):
        value = value.named_children[0] if value.named_children else None
    if value is None:
        return False
    if value.type in ("string", "template_string"):
        return True
    if value.type == "member_expression":
        return text(value).startswith("process.env.")
    if value.type == "binary_expression":
        op = value.child_by_field_name("operator")
        left, right = value.child_by_field_name("left"), value.child_by_field_name("right")
        if op is None or left is None or right is None:
            return False
        if text(op) in ("||", "??"):
            return is_string_expression(left) and is_string_expression(right)
        return text(op) == "+" and (is_string_expression(left) or is_string_expression(right))
    return False


def constant_value(value: Node | None, facts) -> str | None:  # noqa: ANN001
    """The path a constant's value gives: a string literal, the default of
    `process.env.X || '/api'`, a template literal whose substitutions all resolve."""
    literal = value_or_env_default(value)
    if literal is not None or value is None or value.type != "template_string":
        return literal
    path = template_path(value, facts)
    return path if path is not None and "${" not in path else None


_CONSTANT_VALUES = frozenset({"string", "template_string", "binary_expression", "member_expression"})


def local_constant(node: Node, facts, functions, starts) -> None:  # noqa: ANN001
    """A function-local `const apiPrefix = process.env.API_PREFIX || 'api'` (the value),
    or `const apiPrefix = Locals.config().apiPrefix` (kept as `${Locals.config().apiPrefix}`
    for the graph: the member of the object that function returns)."""
    value = node.child_by_field_name("value")
    if value is None or value.type not in _CONSTANT_VALUES:
        return  # (what value_or_env_default or a member path can read)
    decl = node.parent
    if decl is None or not any(c.type == "const" for c in decl.children):
        return
    name = node.child_by_field_name("name")
    if name is None or name.type != "identifier":
        return
    fn = innermost(functions, starts, node.start_byte)
    if fn is None:
        return
    literal = constant_value(value, facts)
    if literal is None and value.type == "member_expression" and _CALL_MEMBER.match(text(value)):
        literal = "${" + text(value) + "}"
    if literal is not None:
        facts.local_constants.setdefault(final_qualname(facts, fn), {})[text(name)] = literal
    elif is_string_expression(value):  # a string computed at runtime: a mount prefix, shown as `${name}`
        facts.computed_constants[f"{final_qualname(facts, fn)}:{text(name)}"] = text(value)


def module_objects(facts, stmt: Node) -> None:  # noqa: ANN001
    """`const config = { api: { prefix: '/api' } }` / `export default { ... }`: the string
    leaves of a module-level object, as constants `config.api.prefix`."""
    holder = stmt
    if stmt.type == "export_statement":
        value = stmt.child_by_field_name("value")
        if value is not None and value.type == "object" and any(c.type == "default" for c in stmt.children):
            _object_leaves(facts, "default", value, 0)
            return
        holder = stmt.child_by_field_name("declaration")
    if holder is None or holder.type != "lexical_declaration" or not any(c.type == "const" for c in holder.children):
        return
    for decl in holder.named_children:
        if decl.type != "variable_declarator":
            continue
        name, value = decl.child_by_field_name("name"), decl.child_by_field_name("value")
        while value is not None and value.type in ("as_expression", "satisfies_expression", "parenthesized_expression"):
            value = value.named_children[0] if value.named_children else None
        if name is not None and name.type == "identifier" and value is not None and value.type == "object":
            _object_leaves(facts, text(name), value, 0)


def _object_leaves(facts, prefix: str, obj: Node, depth: int) -> None:  # noqa: ANN001
    if depth > 4:
        return
    for pair in obj.named_children:
        if pair.type != "pair":
            continue
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if key is None or value is None or key.type not in ("property_identifier", "string"):
            continue
        k = string_value(key) if key.type == "string" else text(key)
        if value.type == "object":
            _object_leaves(facts, f"{prefix}.{k}", value, depth + 1)
        else:
            literal = value_or_env_default(value)
            if literal is not None:
                facts.constants[f"{prefix}.{k}"] = literal
            elif is_string_expression(value):
                facts.computed_constants[f"{prefix}.{k}"] = text(value)


def commonjs_constants(facts, node: Node) -> None:  # noqa: ANN001
    """`exports.PREFIX = '/x'`, `module.exports.PREFIX = ...`, `module.exports = { PREFIX:
    '/x', api: { prefix: '/y' } }` (a module-level assignment): string constants a required
    module exports, kept under the local names `exports.PREFIX`, `exports.api.prefix` (no
    module variable of the file can be named so) and exported as `PREFIX`, `api`."""
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if left is None or right is None:
        return
    target = text(left)
    if target == "module.exports":
        if right.type != "object":
            return
        for pair in right.named_children:
            key = pair.child_by_field_name("key") if pair.type == "pair" else None
            value = pair.child_by_field_name("value") if key is not None else None
            if key is None or value is None or key.type not in ("property_identifier", "string"):
                continue
            name = string_value(key) if key.type == "string" else text(key)
            if name:
                _exported_constant(facts, name, value)
        return
    for prefix in ("module.exports.", "exports."):
        name = target[len(prefix):] if target.startswith(prefix) else ""
        if name.isidentifier():
            _exported_constant(facts, name, right)
            return


def _exported_constant(facts, name: str, value: Node) -> None:  # noqa: ANN001
    local = f"exports.{name}"
    if value.type == "object":
        before = len(facts.constants) + len(facts.computed_constants)
        _object_leaves(facts, local, value, 0)
        if len(facts.constants) + len(facts.computed_constants) == before:
            return  # (an object of functions or instances: what the module exports is read elsewhere)
    else:
        literal = constant_value(value, facts)
        if literal is not None:
            facts.constants[local] = literal
        elif is_string_expression(value):
            facts.computed_constants[local] = text(value)
        else:
            return
    facts.exports.setdefault(name, local)


def returned_object(facts, qualname: str, obj: Node) -> None:  # noqa: ANN001
    """`return { apiPrefix, name: 'x' }`: string members as constants `Locals.config().apiPrefix`."""
    local = facts.local_constants.get(qualname, {})
    for prop in obj.named_children:
        if prop.type == "shorthand_property_identifier":
            value = local.get(text(prop))
            key = text(prop)
        elif prop.type == "pair":
            key = text(prop.child_by_field_name("key"))
            value = value_or_env_default(prop.child_by_field_name("value"))
        else:
            continue
        if value is not None and "${" not in value:
            facts.constants[f"{qualname}().{key}"] = value


def template_path(node: Node, facts) -> str | None:  # noqa: ANN001
    """A template literal path: module constants and `this.<class constant>` resolved,
    anything else kept as `${expr}` (an imported name is resolved by the graph)."""
    out: list[str] = []
    cls = class_of(node)
    for child in node.children:
        if child.type in ("`",):
            continue
        if child.type == "template_substitution":
            expr = child.named_children[0] if child.named_children else None
            value = _expression_value(expr, facts, cls)
            out.append(value if value is not None else "${" + text(expr) + "}")
        else:
            out.append(decode_escapes(text(child)) if child.type == "escape_sequence" else text(child))
    return "".join(out)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def decode_escapes(raw: str) -> str:
    r"""`\\d` -> `\d`, `\'` -> `'`: a path as the running app sees it."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), raw)


def _expression_value(expr: Node | None, facts, cls: str | None) -> str | None:  # noqa: ANN001
    if expr is None:
        return None
    if expr.type == "identifier":
        name = text(expr)
        funcs = FUNCS.get(id(facts))
        if funcs is not None and facts.local_constants:
            for fn in enclosing_functions(expr, *funcs):
                value = facts.local_constants.get(final_qualname(facts, fn), {}).get(name)
                if value is not None:
                    return value
        return facts.constants.get(name)
    if expr.type == "member_expression":
        obj = expr.child_by_field_name("object")
        if obj is not None and obj.type == "this" and cls is not None:
            return facts.class_constants.get(f"{cls}.{text(expr.child_by_field_name('property'))}")
        return facts.constants.get(text(expr))
    return None


def concat_path(node: Node, facts) -> str:  # noqa: ANN001
    """`base + '/ping'` as a path: string literals and template literals as they read,
    constants resolved, anything else kept as `${expr}` (an imported name is resolved by
    the graph; what stays `${...}` is computed at runtime)."""
    out: list[str] = []
    cls = class_of(node)

    def walk(n: Node) -> None:
        while n.type == "parenthesized_expression" and n.named_children:
            n = n.named_children[0]
        op = n.child_by_field_name("operator") if n.type == "binary_expression" else None
        if op is not None and text(op) == "+":
            walk(n.child_by_field_name("left"))
            walk(n.child_by_field_name("right"))
            return
        literal = string_value(n)
        if literal is not None:
            out.append(decode_escapes(literal) if n.type == "string" else literal)
        elif n.type == "template_string":
            out.append(template_path(n, facts) or "")
        else:
            value = _expression_value(n, facts, cls)
            out.append(value if value is not None else computed(n))

    walk(node)
    return "".join(out)


def is_concatenation(node: Node) -> bool:
    op = node.child_by_field_name("operator") if node.type == "binary_expression" else None
    return op is not None and text(op) == "+"


def computed(node: Node) -> str:
    """A path argument nothing resolves: its source text as `${...}` (shown as it is
    written, never as a path the app does not serve)."""
    return "${" + " ".join(text(node).split()) + "}"


def computed_path(node: Node, facts) -> str:  # noqa: ANN001
    """The path argument of `app.get(<expr>, ...)` that no literal, constant, template or
    concatenation rule reads: a function-local constant, or the source text as `${...}`."""
    if node.type in ("identifier", "member_expression"):
        value = _expression_value(node, facts, class_of(node))
        if value is not None:
            return value
    return computed(node)


def mount_prefix(node: Node, facts, functions, starts) -> str | None:  # noqa: ANN001
    """The first argument of `app.use(prefix, router)` held in a variable that is a string:
    a function-local constant (its value), or a string computed at runtime, shown as
    `${prefix}`: a local or module constant computed from `process.env` or a template, an
    object member of one, a parameter typed `string` or with a string default. None when
    nothing says it is a string: it is middleware (`app.use(auth, router)`), as before."""
    if is_string_expression(node):  # `app.use(process.env.API_PREFIX, router)`
        return computed(node)
    if node.type == "member_expression":
        chain = member_chain(node)
        return computed(node) if chain is not None and ".".join(chain) in facts.computed_constants else None
    if node.type != "identifier":
        return None
    name = text(node)
    by_span = {(fn.start, fn.end): fn for fn in enclosing_functions(node, functions, starts)}
    cur = node.parent
    while cur is not None:  # the innermost scope that binds the name decides
        fn = by_span.get((cur.start_byte, cur.end_byte))
        if fn is not None:
            qualname = final_qualname(facts, fn)
            value = facts.local_constants.get(qualname, {}).get(name)
            if value is not None:
                return value
            if f"{qualname}:{name}" in facts.computed_constants:
                return computed(node)
            param = _parameter(cur, name)
            if param is not None:
                return computed(node) if param else None
        cur = cur.parent
    return computed(node) if name in facts.computed_constants else None


def _parameter(fn: Node, name: str) -> bool | None:
    """Whether the parameter `name` of the function `fn` is a string (typed `string`, or
    a string default); None when `fn` has no such parameter."""
    params = fn.child_by_field_name("parameters")
    single = fn.child_by_field_name("parameter")  # `prefix => ...`
    for p in params.named_children if params is not None else ([single] if single is not None else []):
        pattern, default, typed = p, None, ""
        if p.type in ("required_parameter", "optional_parameter"):
            pattern, default = p.child_by_field_name("pattern"), p.child_by_field_name("value")
            ann = p.child_by_field_name("type")
            typed = text(ann.named_children[0]) if ann is not None and ann.named_children else ""
        if pattern is not None and pattern.type == "assignment_pattern":  # JavaScript `prefix = '/api'`
            pattern, default = pattern.child_by_field_name("left"), pattern.child_by_field_name("right")
        if pattern is not None and pattern.type == "identifier" and text(pattern) == name:
            return typed == "string" or (default is not None and default.type in ("string", "template_string"))
    return None


def member_path(node: Node, facts) -> str | None:  # noqa: ANN001
    """`config.api.prefix` as a path: a module object constant, `this.path` a class
    constant, an imported object's member `$config.api.prefix` (the graph resolves it)."""
    chain = member_chain(node)
    if chain is None:
        return None
    if chain[0] == "this" and len(chain) == 2:
        return facts.class_constants.get(f"{class_of(node)}.{chain[1]}")
    dotted = ".".join(chain)
    if dotted in facts.constants:
        return facts.constants[dotted]
    if chain[0] in imported_names(facts) and node.next_named_sibling is not None:
        return "$" + dotted
    return None


def _loop_binding(node: Node) -> tuple[str, Node, bool] | None:
    """(array name, the item's binding, whether it is a for...of) when `node` sits in
    `ARRAY.forEach((item) => ...)` or in `for (const item of ARRAY) ...` (the innermost
    function or loop around it)."""
    up = node.parent
    while up is not None:
        if up.type in ("arrow_function", "function_expression"):
            args = up.parent
            call = args.parent if args is not None and args.type == "arguments" else None
            callee = call.child_by_field_name("function") if call is not None else None
            params = up.child_by_field_name("parameters")
            first = params.named_children[0] if params is not None and params.named_children else None
            if first is None and up.child_by_field_name("parameter") is not None:
                first = up.child_by_field_name("parameter")
            if first is not None and first.type == "required_parameter":
                first = first.child_by_field_name("pattern")
            if (callee is not None and callee.type == "member_expression"
                    and text(callee.child_by_field_name("property")) == "forEach"
                    and callee.child_by_field_name("object").type == "identifier"
                    and first is not None):
                return text(callee.child_by_field_name("object")), first, False
            return None
        if up.type == "for_in_statement":
            left, right = up.child_by_field_name("left"), up.child_by_field_name("right")
            if right is not None and right.type == "identifier" and left is not None and b" of " in up.text:
                return text(right), left, True
            return None
        up = up.parent
    return None


def _loop_source(node: Node) -> tuple[str, str] | None:
    """(array name, item parameter) when `node` sits in `ARRAY.forEach((item) => ...)` or in
    `for (const item of ARRAY) ...`."""
    binding = _loop_binding(node)
    if binding is None:
        return None
    array_name, left, for_of = binding
    name = left if left.type == "identifier" or not for_of else next(
        (c for c in left.named_children if c.type == "identifier"), None)
    return (array_name, text(name)) if name is not None and name.type == "identifier" else None


def loop_paths(call: Node, arg: Node) -> list[str] | None:
    """`for (const url of URLS) app.get(url, h)`, `URLS.forEach((url) => ...)`, also
    `for (const [url, file] of new Map([['/a', 'a.js'], ...]))` and `({ path }) => ...`:
    one path per element of the module-level literal array (or `new Map` of one)
    the loop walks, or None when the path argument is not read from such an element."""
    if arg.type != "identifier":
        return None
    binding = _loop_binding(call)
    if binding is None:
        return None
    array_name, pattern, for_of = binding
    if for_of:  # `for (const x of ...)`: a `let` item could be reassigned in the body
        decl = pattern.prev_sibling
        if decl is None or decl.type != "const":
            return None
    name = text(arg)
    # how the item gives the path: itself, the k-th element of an array, a key of an object
    if pattern.type == "identifier":
        if text(pattern) != name:
            return None
        pick = ("self", None)
    elif pattern.type == "array_pattern":
        idents = [c for c in pattern.named_children]
        index = next((i for i, c in enumerate(idents) if c.type == "identifier" and text(c) == name), None)
        if index is None:
            return None
        pick = ("index", index)
    elif pattern.type == "object_pattern":
        if not any(c.type == "shorthand_property_identifier_pattern" and text(c) == name for c in pattern.named_children):
            return None
        pick = ("key", name)
    else:
        return None
    elements = _literal_elements(call, array_name, maps=for_of)
    if elements is None:
        return None
    out = []
    for element in elements:
        if pick[0] == "self":
            value = element
        elif pick[0] == "index":
            items = [c for c in element.named_children if c.type != "comment"] if element.type == "array" else []
            value = items[pick[1]] if len(items) > pick[1] else None
        else:
            value = None
            for pair in element.named_children if element.type == "object" else []:
                key = pair.child_by_field_name("key") if pair.type == "pair" else None
                if key is not None and text(key).strip("'\"`") == pick[1]:
                    value = pair.child_by_field_name("value")
        literal = string_value(value) if value is not None else None
        if literal is None:
            return None
        out.append(decode_escapes(literal) if value.type == "string" else literal)
    return out or None


def _literal_elements(call: Node, array_name: str, maps: bool = False) -> list[Node] | None:
    """The elements (comments left out) of the module-level literal `array_name` of the
    file holding `call` (otelize.analysis.routepaths._array_literal), or None."""
    root = call
    while root.parent is not None:
        root = root.parent
    array = _array_literal(root, array_name, maps=maps)
    return None if array is None else [e for e in array.named_children if e.type != "comment"]


def _array_literal(root: Node, name: str, maps: bool = False) -> Node | None:
    """The array a module-level `const NAME = [...]` declares (`maps`: also the pairs of
    `new Map([[k, v], ...])`, what a for...of over the map walks)."""
    for stmt in root.named_children:
        decl = stmt
        if decl.type == "export_statement":
            decl = decl.child_by_field_name("declaration") or decl
        if decl.type not in ("lexical_declaration", "variable_declaration"):
            continue
        for d in decl.named_children:
            if d.type == "variable_declarator" and text(d.child_by_field_name("name")) == name:
                value = d.child_by_field_name("value")
                if maps and value is not None and value.type == "new_expression" and text(value.child_by_field_name("constructor")) == "Map":
                    args = value.child_by_field_name("arguments")  # `new Map([[k, v], ...])` iterates as its pairs
                    items = [a for a in args.named_children if a.type != "comment"] if args is not None else []
                    value = items[0] if len(items) == 1 else None
                return value if value is not None and value.type == "array" else None
    return None


def loop_mounts(call: Node, arg_nodes: list[Node]) -> list[tuple[str, str, int]] | None:
    """`[{ path: '/auth', route: authRoute }, ...].forEach((r) => router.use(r.path, r.route))`:
    one (path, router name, line) per element, or None when `call` is not such a mount.
    Only literal arrays of object literals with a string path and an identifier router
    are followed; anything else stays unresolved, as before."""
    if len(arg_nodes) != 2 or any(a.type != "member_expression" for a in arg_nodes):
        return None
    source = _loop_source(call)
    if source is None:
        return None
    array_name, item = source
    keys = []
    for a in arg_nodes:
        obj, prop = a.child_by_field_name("object"), a.child_by_field_name("property")
        if obj is None or obj.type != "identifier" or text(obj) != item or prop is None:
            return None
        keys.append(text(prop))
    elements = _literal_elements(call, array_name)
    if elements is None:
        return None
    out = []
    for element in elements:
        if element.type != "object":
            return None
        values: dict[str, Node] = {}
        for pair in element.named_children:
            if pair.type == "pair":
                key = pair.child_by_field_name("key")
                k = text(key).strip("'\"`") if key is not None else ""
                values[k] = pair.child_by_field_name("value")
            elif pair.type == "shorthand_property_identifier":
                values[text(pair)] = pair
        path, router = values.get(keys[0]), values.get(keys[1])
        if path is None or router is None or path.type != "string" or router.type not in ("identifier", "shorthand_property_identifier"):
            return None
        out.append((text(path)[1:-1], text(router), element.start_point[0] + 1))
    return out
