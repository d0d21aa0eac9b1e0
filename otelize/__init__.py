"""otelize: deterministic, offline OpenTelemetry instrumentation for Express/TypeScript.

The library API, imported lazily (this file imports nothing, so the cached
`--check` stays fast)::

    import otelize
    result = otelize.instrument("my-app", write=False, settings={"span_naming": "method"})
    sys.exit(result.exit_code(check=True))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "otelize.api",
    "instrument": "otelize.api",
    "strip": "otelize.stripping.strip",
    "verify": "otelize.verification.verify",
    "Settings": "otelize.project.settings",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from otelize.api import analyze, instrument
    from otelize.project.settings import Settings
    from otelize.stripping.strip import strip
    from otelize.verification.verify import verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otelize' has no attribute {name!r}")
    import importlib

    # the stage packages are named apart from these functions (otelize.stripping, not
    # otelize.strip), so importing a submodule never rebinds an exported name here
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
