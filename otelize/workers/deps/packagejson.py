"""The dependency worker's package.json edit: what it declares, and the byte-exact
insertion of the added packages (into `dependencies`, or a new `dependencies` after
`scripts`), in the file's own style (otelize.synthesize.jsonedit)."""

from __future__ import annotations

from otelize.errors import BadInput
from otelize.synthesize import jsonedit
from otelize.synthesize.edits import Edit

PACKAGE_JSON = "package.json"


def package_root(data: bytes) -> jsonedit.Node:
    root = jsonedit.parse(data, PACKAGE_JSON)
    if root.kind != "object":
        raise BadInput(f"{PACKAGE_JSON}: the top-level value must be an object")
    return root


def _declared(root: jsonedit.Node, section: str) -> dict[str, str]:
    member = root.get(section)
    if member is None or member.value.kind != "object":
        return {}
    return {m.key: str(m.value.value) for m in member.value.members}


def present(data: bytes) -> dict[str, str]:
    """What package.json declares (name -> version), `dependencies` winning over `devDependencies`."""
    root = package_root(data)
    return {**_declared(root, "devDependencies"), **_declared(root, "dependencies")}


def add_dependencies(data: bytes, root: jsonedit.Node, to_add: dict[str, str], worker: str) -> list[Edit]:
    """The edits that add `to_add` (name -> version) to the `dependencies` of package.json
    (`data`, parsed as `root`)."""
    style = jsonedit.detect_style(data, root)
    encoded = [(name, jsonedit.encode(version)) for name, version in to_add.items()]
    deps = root.get("dependencies")
    if deps is not None and deps.value.kind != "object":
        raise BadInput(f"{PACKAGE_JSON}: 'dependencies' must be an object")
    if deps is not None:
        return jsonedit.insert_members(PACKAGE_JSON, data, deps.value, encoded, style, worker)
    if not root.members:
        level = style.indent  # the root becomes multi-line too
    elif jsonedit.is_multiline(data, root):
        level = jsonedit.line_indent(data, root.members[0].key_start)
    else:
        level = b""
    value = jsonedit.render_object(encoded, level, style)
    # After "scripts" when present, else at the end.
    return jsonedit.insert_members(PACKAGE_JSON, data, root, [("dependencies", value)], style, worker, after="scripts")
