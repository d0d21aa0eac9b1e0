"""The `--out` folder: checked before anything is written, and what its copy leaves out."""

from __future__ import annotations

from pathlib import Path
from typing import Any


COPY_IGNORE = ("node_modules", ".git", ".otelize-cache")


def out_folder(src: Path, dest: Path, build_dir: str | None = None) -> tuple[Path, Any]:
    """Check the `--out` folder; return it resolved and the copy's ignore function
    (node_modules, .git, the state cache, and the app's stale build folder)."""
    import shutil

    from otelize.errors import BadInput

    dest = dest.resolve()
    if dest == src or str(dest).startswith(str(src) + "/"):
        raise BadInput(f"{dest}: --out must not be inside the project")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BadInput(f"{dest}: --out directory exists and is not empty")
    skip_build = (src / build_dir).resolve() if build_dir else None
    names = shutil.ignore_patterns(*COPY_IGNORE)

    def ignore(folder: str, entries: list[str]) -> set[str]:
        # a stale build of the uninstrumented app would be misleading in the copy
        out = set(names(folder, entries))
        if skip_build is not None and Path(folder).resolve() == skip_build.parent:
            out |= {e for e in entries if e == skip_build.name}
        return out

    return dest, ignore
