"""classfacts: the classes and functions of a file, and the types that resolve calls.

One `ClassFact` per class (its superclass, the types of its fields) and one
`FunctionFact` per function, method, arrow and signature (name, qualname, kind,
modifiers, parameters, body range); constructor functions with prototype methods
as classes; the class a parameter or a local holds (`(c: X) =>`, `const c = new X()`).
"""

from __future__ import annotations

import re

from tree_sitter import Node

from otelize.analysis.importfacts import commonjs_assigned, is_module_exports
from otelize.analysis.parse import line_of, text
from otelize.analysis.records import ClassFact, FileFacts, FunctionFact, Param
from otelize.analysis.syntax import is_module_level


def class_fact(node: Node) -> ClassFact:
    name_node = node.child_by_field_name("name")
    fact = ClassFact(
        name=text(name_node) or "default",
        line=line_of(node),
        start=node.start_byte,
        end=node.end_byte,
        abstract=node.type == "abstract_class_declaration",
        exported=node.parent is not None and node.parent.type == "export_statement",
    )
    for child in node.named_children:
        if child.type == "class_heritage":
            for ext in child.named_children:
                if ext.type == "extends_clause":
                    val = ext.child_by_field_name("value") or (ext.named_children[0] if ext.named_children else None)
                    fact.superclass = text(val) or None
    body = node.child_by_field_name("body")
    if body is None:
        return fact
    for member in body.named_children:
        if member.type == "public_field_definition":
            fname = text(member.child_by_field_name("name"))
            type_name = _type_name(member.child_by_field_name("type"))
            value = member.child_by_field_name("value")
            while value is not None and value.type in ("as_expression", "satisfies_expression") and value.named_children:
                value = value.named_children[0]  # `[] as string[]`
            if value is not None and value.type == "new_expression":
                type_name = text(value.child_by_field_name("constructor")) or type_name
            elif value is not None and value.type == "array" and type_name is None:
                type_name = "Array"
            if fname and type_name:
                fact.field_types[fname] = type_name
        elif member.type == "method_definition" and text(member.child_by_field_name("name")) == "constructor":
            params = member.child_by_field_name("parameters")
            param_types: dict[str, str] = {}
            for p in params.named_children if params is not None else []:
                pname = p.child_by_field_name("pattern")
                ptype = _type_name(p.child_by_field_name("type"))
                if pname is None or pname.type != "identifier" or not ptype:
                    continue
                param_types[text(pname)] = ptype
                if any(c.type in ("accessibility_modifier", "readonly") for c in p.children):
                    fact.field_types[text(pname)] = ptype
            body_block = member.child_by_field_name("body")
            if body_block is not None:
                for stmt in body_block.named_children:
                    expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
                    if expr is None or expr.type != "assignment_expression":
                        continue
                    left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
                    if left is None or right is None or left.type != "member_expression":
                        continue
                    obj = left.child_by_field_name("object")
                    if obj is None or obj.type != "this":
                        continue
                    fname = text(left.child_by_field_name("property"))
                    if right.type == "new_expression":
                        fact.field_types[fname] = text(right.child_by_field_name("constructor"))
                    elif right.type == "identifier" and text(right) in param_types:
                        fact.field_types[fname] = param_types[text(right)]
                    elif right.type == "binary_expression" or right.type == "identifier":
                        # `this.db = db ?? defaultDb` etc.: remember the identifier for instance lookup
                        ident = right if right.type == "identifier" else right.child_by_field_name("left")
                        if ident is not None and ident.type == "identifier":
                            fact.field_types.setdefault(fname, "@" + text(ident))
    return fact


def _type_name(type_ann: Node | None) -> str | None:
    if type_ann is None:
        return None
    node = type_ann.named_children[0] if type_ann.type == "type_annotation" and type_ann.named_children else type_ann
    if node.type == "readonly_type" and node.named_children:
        node = node.named_children[0]  # `readonly string[]`
    if node.type == "generic_type":
        node = node.named_children[0]
    if node.type in ("type_identifier", "nested_type_identifier"):
        return text(node)
    if node.type in ("array_type", "tuple_type"):  # `string[]`, `[number, string]`
        return "Array"
    return None


def _has_token(node: Node, token: str) -> bool:
    return any(c.type == token for c in node.children)


def _params(node: Node) -> tuple[Param, ...]:
    params = node.child_by_field_name("parameters")
    if params is None:
        single = node.child_by_field_name("parameter")
        return (Param(text(single), text(single)),) if single is not None else ()
    out = []
    for p in params.named_children:
        if p.type not in ("required_parameter", "optional_parameter"):
            continue
        pattern = p.child_by_field_name("pattern")
        if pattern is not None and pattern.type == "this":
            continue  # an explicit `this:` parameter is not a runtime parameter
        out.append(Param(text(pattern), text(p)))
    return tuple(out)


def _object_owner(obj: Node | None) -> str | None:
    """`ctrl` for a member of `const ctrl = { ... }` (also through `as const`)."""
    node = obj.parent if obj is not None else None
    while node is not None and node.type in ("as_expression", "satisfies_expression", "parenthesized_expression"):
        node = node.parent
    if node is not None and node.type == "variable_declarator":
        return text(node.child_by_field_name("name")) or None
    if node is not None and node.type == "arrow_function" and (factory := _factory(_unwrapped_child(obj, node))) is not None:
        return factory[len("make"):]  # `makeXRepository = (deps) => ({ ... })`: the members of `XRepository`
    if node is not None and node.type == "export_statement" and any(c.type == "default" for c in node.children):
        return "default"  # `export default { async find() {} }`
    if node is not None and node.type == "assignment_expression" and is_module_exports(node.child_by_field_name("left")):
        return "default"  # `module.exports = { async find() {} }`: named like `export default {}`
    return None


_FACTORY = re.compile(r"^make[A-Z][\w$]*$")


def _factory(node: Node | None) -> str | None:
    """`makeX` when `node` is what a module-level factory arrow returns: the body of
    `const makeX = (deps) => <node>` (the awilix style: `makeX = ({ repo }) => async (p) => {...}`,
    `makeXRepository = ({ db }) => ({ async find() {...} })`), also when the factory is the last
    argument of a higher-order helper (`makeX = withEvents((deps) => <node>)`)."""
    arrow = node.parent if node is not None else None
    if arrow is None or arrow.type != "arrow_function" or arrow.child_by_field_name("body") != node:
        return None
    decl = arrow.parent
    if decl is not None and decl.type == "arguments" and decl.named_children[-1] == arrow:
        # `makeX = helper((deps, enqueue) => async (p) => {...})`: the factory, handed to a higher-order helper
        made = decl.parent
        decl = made.parent if made is not None and made.type == "call_expression" else None
    else:
        made = arrow
    if decl is None or decl.type != "variable_declarator" or decl.child_by_field_name("value") != made:
        return None
    name = text(decl.child_by_field_name("name"))
    scope = decl.parent.parent if decl.parent is not None else None
    if scope is not None and scope.type == "export_statement":
        scope = scope.parent
    return name if _FACTORY.match(name) and scope is not None and scope.type == "program" else None


def _record_factory(obj: Node | None, owner: str, facts: FileFacts) -> None:
    """Remember that `owner`'s members are made by a factory (`makeXRepository`)."""
    node = obj.parent if obj is not None else None
    while node is not None and node.type in ("as_expression", "satisfies_expression", "parenthesized_expression"):
        node = node.parent
    if node is not None and node.type == "arrow_function":
        factory = _factory(_unwrapped_child(obj, node))
        if factory is not None:
            facts.factories[owner] = factory


def _unwrapped_child(obj: Node | None, ancestor: Node) -> Node | None:
    """The child of `ancestor` on the way up from `obj` (through parentheses and `as`)."""
    node = obj
    while node is not None and node.parent != ancestor:
        node = node.parent
    return node


def _enclosing_class(node: Node) -> Node | None:
    parent = node.parent
    if parent is not None and parent.type == "class_body":
        return parent.parent
    return None


def _is_span_wrapper(node: Node) -> bool:
    """`node` is the function otelize's span wrapper runs: the last argument of a call to a
    span helper (`withSpan(name, attrs, async () => {...})`, also under an `otelize...` alias).
    It is no function of its own: what it calls, its enclosing function calls, so an
    instrumented file gives the same call graph (and the same roles) as the original."""
    from otelize.synthesize.wrap import HELPERS

    args = node.parent
    call = args.parent if args is not None and args.type == "arguments" else None
    callee = call.child_by_field_name("function") if call is not None else None
    if callee is None or callee.type != "identifier" or args.named_children[-1] != node:
        return False
    name = text(callee)
    return name in HELPERS or (name.startswith("otelize") and name[7:8].isupper()
                               and name[7].lower() + name[8:].rstrip("0123456789") in HELPERS)


_KINDS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "function_signature": "signature",
    "function_expression": "function-expression",
    "generator_function": "function-expression",
    "arrow_function": "arrow",
    "method_definition": "method",
    "method_signature": "signature",
    "abstract_method_signature": "signature",
}


def function_fact(node: Node, facts: FileFacts) -> FunctionFact | None:
    if node.type in ("arrow_function", "function_expression") and _is_span_wrapper(node):
        return None
    kind = _KINDS[node.type]
    parent = node.parent
    class_node = None
    name_node = node.child_by_field_name("name")
    name = text(name_node)
    exported = False
    is_private = False
    proto_class = None  # `X.prototype.m = function () {}`: a method of the constructor function X

    if node.type in ("method_definition", "method_signature", "abstract_method_signature"):
        class_node = _enclosing_class(node)
        if class_node is None:  # an object-literal method: `const ctrl = { async m() {} }`
            kind = "object-method"
            owner = _object_owner(parent)
            if owner:
                name = f"{owner}.{name}"
                _record_factory(parent, owner, facts)
        is_private = name.startswith("#") or any(
            c.type == "accessibility_modifier" and text(c) in ("private", "protected") for c in node.children
        )
    elif node.type in ("arrow_function", "function_expression", "generator_function"):
        if parent is not None and parent.type == "variable_declarator":
            name = text(parent.child_by_field_name("name"))
            decl = parent.parent
            exported = decl is not None and decl.parent is not None and decl.parent.type == "export_statement"
        elif parent is not None and parent.type == "public_field_definition":
            class_node = _enclosing_class(parent)
            name = text(parent.child_by_field_name("name"))
            kind = "property-arrow"
            is_private = name.startswith("#") or any(
                c.type == "accessibility_modifier" and text(c) in ("private", "protected") for c in parent.children
            )
        elif parent is not None and parent.type == "pair":
            name = text(parent.child_by_field_name("key"))
            kind = "object-method"
            owner = _object_owner(parent.parent)
            if owner:
                name = f"{owner}.{name}"
                _record_factory(parent.parent, owner, facts)
        elif parent is not None and parent.type == "export_statement":
            name = name or "default"
            exported = True
        elif parent is not None and parent.type == "assignment_expression" and (assigned := commonjs_assigned(parent, name)):
            name, proto_class, kind, exported = assigned
        elif (factory := _factory(node)) is not None:
            name = name or factory[len("make"):]  # what `makeX = (deps) => async (p) => {...}` returns
            facts.factories[name] = factory
        elif not name:
            name = f"<anonymous>@{line_of(node)}"
    else:
        if parent is not None and parent.type == "export_statement":
            exported = True
            if not name:
                name = "default"
    if node.type == "function_declaration" and parent is not None and parent.type == "export_statement":
        exported = True

    class_name = proto_class
    if class_node is not None:
        class_name = text(class_node.child_by_field_name("name")) or "default"
        exported = class_node.parent is not None and class_node.parent.type == "export_statement"

    # nested functions get a path-like qualname so that names stay unique and stable
    qual = f"{class_name}.{name}" if class_name else name
    body = node.child_by_field_name("body")
    is_signature = node.type in ("method_signature", "abstract_method_signature", "function_signature") or body is None
    tokens = {c.type for c in node.children if not c.is_named}  # async, *, static, get, set
    node_type = node.type
    if body is None:
        body_start = body_end = None
        expression_body = False
    elif body.type == "statement_block":
        body_start, body_end, expression_body = body.start_byte, body.end_byte, False
    else:
        body_start = body_end = None
        expression_body = True
    # (positional: a dataclass __init__ of 21 keyword arguments costs ~4x as much per call)
    return FunctionFact(
        name,  # name
        qual,  # qualname
        kind,  # kind
        line_of(node),  # line
        node.start_byte,  # start
        node.end_byte,  # end
        class_name,  # class_name
        "async" in tokens,  # is_async
        "*" in tokens or node_type in ("generator_function_declaration", "generator_function"),  # is_generator
        "static" in tokens or (parent is not None and parent.type == "public_field_definition" and _has_token(parent, "static")),  # is_static
        "get" if "get" in tokens else ("set" if "set" in tokens else None),  # accessor
        name == "constructor" and class_name is not None,  # is_constructor
        node_type == "abstract_method_signature",  # is_abstract
        is_signature,  # is_signature
        is_private,  # is_private
        exported,  # exported
        _params(node),  # params
        body_start,  # body_start
        body_end,  # body_end
        expression_body,  # expression_body
        node_type,  # node_type
    )


def constructor_arguments(facts: FileFacts, declarators: list[Node]) -> None:
    """`const orderService = new OrderService(db, userService)` at module level, with
    `constructor(db, users) { this.users = users; }`: without types (JavaScript), the field
    holds what the one instantiation in this file passes, so `this.users.find()` resolves
    through `userService`. Fields whose constructor parameter is typed keep their type."""
    calls: dict[str, list[Node]] = {}
    for node in declarators:
        value = node.child_by_field_name("value")
        if value is not None and value.type == "new_expression" and is_module_level(node):
            calls.setdefault(text(value.child_by_field_name("constructor")), []).append(value)
    for cls in facts.classes:
        if len(calls.get(cls.name, [])) != 1:
            continue  # none, or several instances with (maybe) different collaborators
        ctor = facts.function(f"{cls.name}.constructor")
        args = calls[cls.name][0].child_by_field_name("arguments")
        if ctor is None or args is None:
            continue
        values = [a for a in args.named_children if a.type != "comment"]
        for i, param in enumerate(ctor.params):
            if i < len(values) and values[i].type == "identifier" and param.name == param.text:  # an untyped parameter
                for field_name, held in list(cls.field_types.items()):
                    if held == "@" + param.name:
                        cls.field_types[field_name] = "@" + text(values[i])


def prototype_classes(facts: FileFacts, constructors: dict[str, Node]) -> None:
    """A constructor function with `X.prototype.m = function () {}` methods is a class:
    its `this.x = new Y()` / `this.x = param` fields type calls of its methods."""
    for name in sorted({fn.class_name for fn in facts.functions if fn.class_name and fn.kind == "method"}):
        node = constructors.get(name)
        if node is None or any(c.name == name for c in facts.classes):
            continue
        fact = ClassFact(name=name, line=line_of(node), start=node.start_byte, end=node.end_byte)
        for fn in facts.functions:
            if fn.start == node.start_byte and fn.class_name is None:
                fn.is_constructor = True  # called with `new`: no span, as for a class constructor
        body = node.child_by_field_name("body")
        for stmt in body.named_children if body is not None else []:
            expr = stmt.named_children[0] if stmt.type == "expression_statement" and stmt.named_children else None
            if expr is None or expr.type != "assignment_expression":
                continue
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            if left is None or right is None or left.type != "member_expression" or text(left.child_by_field_name("object")) != "this":
                continue
            field_name = text(left.child_by_field_name("property"))
            if right.type == "new_expression":
                fact.field_types[field_name] = text(right.child_by_field_name("constructor"))
            elif right.type == "identifier":  # as for a class: a module-level instance, looked up by the graph
                fact.field_types.setdefault(field_name, "@" + text(right))
        facts.classes.append(fact)
    facts.classes.sort(key=lambda c: c.start)


_TYPED_PARAM = re.compile(r"^(?:(?:public|private|protected|readonly|override)\s+)*([A-Za-z_$][\w$]*)\??\s*:\s*([A-Z][\w$]*)\s*(?:=[\s\S]*)?$")


def parameter_types(facts: FileFacts) -> None:
    """`(client: BillingClient) => client.charge()`: parameters typed with a class-like name."""
    for fn in facts.functions:
        for p in fn.params:
            m = _TYPED_PARAM.match(p.text)
            if m is not None:
                facts.local_types.setdefault(fn.qualname, {}).setdefault(m.group(1), m.group(2))


def local_type(node: Node, value: Node | None) -> str | None:
    """The class a function-local `const x = new X()` / `const x: X = ...` holds."""
    annotation = node.child_by_field_name("type")
    if annotation is not None and annotation.named_children and annotation.named_children[0].type == "type_identifier":
        return text(annotation.named_children[0])
    if value is not None and value.type == "new_expression":
        ctor = value.child_by_field_name("constructor")
        if ctor is not None and ctor.type == "identifier":
            return text(ctor)
    return None
