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
    "strip": "otelize.strip",
    "verify": "otelize.verify",
    "Settings": "otelize.settings",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from otelize.api import analyze, instrument
    from otelize.settings import Settings
    from otelize.strip import strip
    from otelize.verify import verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'otelize' has no attribute {name!r}")
    import importlib

    loaded = importlib.import_module(module)
    if module == f"otelize.{name}":
        # `strip` and `verify` are also submodules, and importing a submodule binds its
        # name here: so the export is the module itself, made callable (_callable_module)
        return loaded
    value = getattr(loaded, name)
    globals()[name] = value  # later lookups skip this function
    return value


def _callable_module(module_name: str, function: str) -> None:
    """Make submodule `module_name` callable as its function `function`: `otelize.strip(root)`
    then works whether or not something imported the module `otelize.strip` first."""
    import sys
    import types

    class Exported(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(self, function)(*args, **kwargs)

    sys.modules[module_name].__class__ = Exported


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
