"""routedecorators: decorator routes and the frameworks' mount options.

routing-controllers (`@JsonController('/users')`, `@Get('/:id')`, the `routePrefix`
option of createExpressServer / useExpressServer), Ts.ED (`@Controller('/users')`,
`children`, the `mount` configuration), tsoa (`@Route('users')`, `@Get('{id}')`) and
inversify-express-utils (`@controller('/users')`, `@httpGet('/:id')`, `@httpMethod('get', p)`,
the `rootPath` of `new InversifyExpressServer(container, router, { rootPath })`):
the controllers, their method routes (owner `@Class`) and the framework mounts the
graph prefixes them with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from otelize.analysis.express import path_values
from otelize.analysis.parse import line_of, source_order, text
from otelize.analysis.records import HandlerRef, RouteReg
from otelize.analysis.routepaths import computed
from otelize.analysis.routescope import class_of
from otelize.analysis.syntax import string_value


# method decorator -> the HTTP method it registers ("": the method is its first argument,
# the path its second: inversify's `@httpMethod('get', '/x')`)
_CAPITALIZED = {name: name.upper() for name in ("Get", "Post", "Put", "Patch", "Delete", "Head", "Options", "All")}
_INVERSIFY = {
    "httpGet": "GET", "httpPost": "POST", "httpPut": "PUT", "httpPatch": "PATCH", "httpDelete": "DELETE",
    "httpHead": "HEAD", "httpOptions": "OPTIONS", "all": "ALL", "httpMethod": "",
}


# decorator frameworks: (module prefix, framework, class decorators, method decorators)
_FRAMEWORKS = (
    ("routing-controllers", "routing-controllers", ("JsonController", "Controller"), _CAPITALIZED),
    ("@tsed/", "tsed", ("Controller",), _CAPITALIZED),
    ("tsoa", "tsoa", ("Route",), _CAPITALIZED),
    ("inversify-express-utils", "inversify", ("controller",), _INVERSIFY),
)


@dataclass(frozen=True)
class Controller:
    """A decorator controller class: its framework, path and Ts.ED children."""

    name: str
    framework: str  # routing-controllers | tsed | tsoa | inversify
    path: str
    line: int
    children: tuple[str, ...] = ()


def _decorator_imports(facts) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """local decorator name -> (framework, imported name)."""
    out: dict[str, tuple[str, str]] = {}
    for imp in facts.imports:
        framework = next((fw for prefix, fw, _, _ in _FRAMEWORKS if imp.module == prefix or (prefix.endswith("/") and imp.module.startswith(prefix))), None)
        if framework is None:
            continue
        for local, imported in imp.names:
            out[local] = (framework, imported)
    return out


def _decorator_call(node: Node) -> tuple[str, list[Node]] | None:
    expr = node.named_children[0] if node.named_children else None
    if expr is None:
        return None
    if expr.type == "identifier":
        return text(expr), []
    if expr.type != "call_expression":
        return None
    fn = expr.child_by_field_name("function")
    if fn is None or fn.type != "identifier":
        return None
    args = expr.child_by_field_name("arguments")
    return text(fn), [a for a in (args.named_children if args is not None else []) if a.type != "comment"]


def _decorator_path(args: list[Node], facts, framework: str) -> tuple[str, tuple[str, ...]] | None:  # noqa: ANN001
    """The path of `@Get('/:id')` / `@Controller({ path, children })`; '' without one."""
    if not args:
        return "", ()
    first = args[0]
    children: tuple[str, ...] = ()
    if first.type == "object":
        path_node = None
        for pair in first.named_children:
            if pair.type != "pair":
                continue
            key = text(pair.child_by_field_name("key"))
            value = pair.child_by_field_name("value")
            if key == "path":
                path_node = value
            elif key == "children" and value is not None and value.type == "array":
                children = tuple(text(c) for c in value.named_children if c.type == "identifier")
        if path_node is None:
            return "", children
        first = path_node
    paths = path_values(first, facts)
    if not paths:
        return None
    path = paths[0]
    if framework == "tsoa":
        path = re.sub(r"\{([A-Za-z_$][\w$]*)\}", r":\1", path)
    return path, children


def decorators(caps: dict, facts) -> None:  # noqa: ANN001
    known = _decorator_imports(facts)
    if not known:
        return
    for node in sorted(caps.get("decorator", []), key=source_order):
        call = _decorator_call(node)
        if call is None or call[0] not in known:
            continue
        framework, imported = known[call[0]]
        parent = node.parent
        if parent is None:
            continue
        if parent.type in ("class_declaration", "abstract_class_declaration", "export_statement"):
            cls_node = parent if parent.type != "export_statement" else parent.child_by_field_name("declaration")
            class_decorators = next(d for _, fw, d, _ in _FRAMEWORKS if fw == framework)
            if cls_node is None or imported not in class_decorators:
                continue
            found = _decorator_path(call[1], facts, framework)
            if found is None:
                continue
            name = text(cls_node.child_by_field_name("name")) or "default"
            facts.controllers.append(Controller(name, framework, found[0], line_of(node), found[1]))
        elif parent.type == "class_body" and imported in (methods := next(m for _, fw, _, m in _FRAMEWORKS if fw == framework)):
            method = node.next_named_sibling
            while method is not None and method.type == "decorator":
                method = method.next_named_sibling
            if method is None or method.type != "method_definition":
                continue
            verb, args = methods[imported], call[1]
            if not verb:  # `@httpMethod('get', '/x')`
                verb = (string_value(args[0]) or "").upper() if args else ""
                args = args[1:]
                if not verb:
                    continue
            found = _decorator_path(args, facts, framework)
            if found is None:
                continue
            cls = class_of(method) or "default"
            mname = text(method.child_by_field_name("name"))
            handler = HandlerRef("member", f"{cls}.{mname}", line_of(method))
            facts.routes.append(RouteReg("@" + cls, verb, found[0], (handler,), line_of(node)))


def framework_options(caps: dict, facts, call_nodes: list[Node]) -> None:  # noqa: ANN001
    """routing-controllers' `routePrefix` (createExpressServer / useExpressServer) and
    Ts.ED's `mount` configuration: `(framework, prefix, controller names, globs)`."""
    known = _decorator_imports(facts)
    frameworks = {fw for fw, _ in known.values()}
    if "routing-controllers" in frameworks:
        for node in call_nodes:
            fn = node.child_by_field_name("function") if node.type == "call_expression" else None
            if fn is None or fn.type != "identifier" or known.get(text(fn), ("", ""))[1] not in ("createExpressServer", "useExpressServer"):
                continue
            args = node.child_by_field_name("arguments")
            options = next((a for a in (args.named_children if args is not None else []) if a.type == "object"), None)
            prefix = ""
            for pair in options.named_children if options is not None else []:
                if pair.type == "pair" and text(pair.child_by_field_name("key")) == "routePrefix":
                    value = pair.child_by_field_name("value")
                    paths = path_values(value, facts) if value is not None else None
                    prefix = paths[0] if paths else "${" + text(value) + "}"
            facts.framework_mounts.append(("routing-controllers", prefix, (), ()))
    if "inversify" in frameworks:  # `new InversifyExpressServer(container, router, { rootPath: '/api' })`
        for node in call_nodes:
            ctor = node.child_by_field_name("constructor") if node.type == "new_expression" else None
            if ctor is None or ctor.type != "identifier" or known.get(text(ctor), ("", ""))[1] != "InversifyExpressServer":
                continue
            args = node.child_by_field_name("arguments")
            items = [a for a in (args.named_children if args is not None else []) if a.type != "comment"]
            config = items[2] if len(items) > 2 else None
            prefix = ""
            if config is not None and config.type == "object":
                for pair in config.named_children:
                    if pair.type == "pair" and text(pair.child_by_field_name("key")) == "rootPath":
                        value = pair.child_by_field_name("value")
                        paths = path_values(value, facts) if value is not None else None
                        prefix = paths[0] if paths else computed(value)
            elif config is not None and config.type not in ("null", "undefined"):
                prefix = computed(config)  # a routing config built elsewhere: its rootPath is not read
            facts.framework_mounts.append(("inversify", prefix, (), ()))
    if "tsed" in frameworks:
        for node in sorted(caps.get("pair", []), key=source_order):
            if text(node.child_by_field_name("key")) != "mount":
                continue
            value = node.child_by_field_name("value")
            if value is None or value.type != "object":
                continue
            for pair in value.named_children:
                if pair.type != "pair":
                    continue
                key = pair.child_by_field_name("key")
                prefix = string_value(key) if key is not None and key.type == "string" else None
                target = pair.child_by_field_name("value")
                if prefix is None or target is None:
                    continue
                items = target.named_children if target.type == "array" else [target]
                names = tuple(text(i) for i in items if i.type == "identifier")
                globs = tuple(g for i in items if (g := _glob_text(i)) is not None)
                facts.framework_mounts.append(("tsed", prefix, names, globs))


def _glob_text(node: Node) -> str | None:
    """`${rootDir}/controllers/**/*.ts` -> `controllers/**/*.ts` (what follows the root)."""
    if node.type not in ("string", "template_string"):
        return None
    raw = text(node)[1:-1]
    return re.sub(r"^\$\{[^}]*\}/?", "", raw).lstrip("./")
