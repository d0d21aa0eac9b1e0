"""Locate the data folders (templates/, rules/) in a wheel or in a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the folder `name` ("templates" or "rules").

    In an installed wheel it is `otelize/_data/<name>`; in a source checkout
    (editable install, tests) it is the top-level `<name>/` folder.
    """
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"otelize data folder {name!r} is missing from the installation")
