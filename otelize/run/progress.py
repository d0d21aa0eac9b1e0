"""Progress of a long run, for a terminal: (stage, done, total) reported to a callback.

The library never prints. A caller that wants progress (the CLI on a TTY) sets
a callback for the duration of a call with `reporting`; the per-file stages
(`otelize.run.pipeline.run_map`) call `tick` as files finish. Without a callback,
`tick` costs one context-variable read per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Callback = Callable[[str, int, int], None]
_CALLBACK: ContextVar[Callback | None] = ContextVar("otelize_progress", default=None)


@contextmanager
def reporting(callback: Callback | None) -> Iterator[None]:
    token = _CALLBACK.set(callback)
    try:
        yield
    finally:
        _CALLBACK.reset(token)


def current() -> Callback | None:
    return _CALLBACK.get()
