"""Records as plain JSON values (the `to_dict` of the plan's spans, received spans, verify results)."""

from __future__ import annotations

from typing import Any


def pick(record: Any, *names: str) -> dict[str, Any]:
    """The attributes `names` of `record`, in that order, as a dict keyed by name."""
    return {name: getattr(record, name) for name in names}
