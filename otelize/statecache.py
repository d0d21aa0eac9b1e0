"""Opt-in content-hash cache: a re-run on an unchanged, already-clean project is instant.

The key hashes everything the result depends on: otelize's code, the
settings, every rule file, package.json, tsconfig.json and every source file
(path and bytes). When a run found nothing to change and nothing partial, the
key is remembered in `<root>/.otelize-cache/` (which carries its own
`.gitignore`, so git ignores it), signed with a per-user secret (see
`user_secret`). A later run with the same key skips parsing altogether. Any
change to any input gives a new key, and a marker that this user's otelize did
not write (one committed to the repository, say) counts as no marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from otelize import __version__
from otelize.project import Project

CACHE_DIR = ".otelize-cache"
CLEAN_FILE = "clean"
SECRET_FILE = "secret"


def user_secret() -> bytes | None:
    """This user's key for signing cache files, in their own cache folder (made on first use).

    A cache file lives in the project, where a pull request could plant one; it is
    unpickled only when it carries a valid HMAC under this key, so a planted or
    tampered file is ignored instead of being run. None when no key can be kept.
    """
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "otelize"
    except RuntimeError:  # no home directory to be found
        return None
    path = base / SECRET_FILE
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    try:
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=base)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # first writer wins; a concurrent run reads the winner's key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        data = path.read_bytes()
        return data if len(data) == 32 else None
    except OSError:
        return None


def mac(secret: bytes, payload: bytes) -> bytes:
    import hmac

    return hmac.new(secret, payload, hashlib.sha256).digest()


def hash_folders(h: Any, folders: list[Path]) -> None:
    """Feed every file directly in `folders` (rules, templates), by name and bytes, into `h`."""
    for folder in folders:
        for path in sorted(Path(folder).glob("*")):
            if path.is_file():
                h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")


@cache
def code_digest() -> bytes:
    """otelize's own code (every module of the package), so that a changed otelize,
    even at the same version number (an editable install), never reads an old cache."""
    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def fingerprint(project: Project, settings: dict[str, Any], rule_dirs: list[Path]) -> str:
    from otelize.resources import data_dir

    h = hashlib.sha256()
    h.update(code_digest())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    hash_folders(h, [data_dir("rules"), data_dir("templates"), *rule_dirs])
    for rel in ["package.json", "tsconfig.json", *project.files]:
        path = project.root / rel
        try:
            data = path.read_bytes()
        except OSError:
            data = b"<unreadable>"
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _signed(key: str) -> str | None:
    """The clean marker for `key`: signed with this user's secret, so that a marker
    committed to a repository cannot make `--check --cache` pass in CI."""
    secret = user_secret()
    return None if secret is None else mac(secret, key.encode()).hex()


def is_clean(root: Path, key: str) -> bool:
    import hmac

    marker = _signed(key)
    if marker is None:
        return False
    try:
        return hmac.compare_digest((root / CACHE_DIR / CLEAN_FILE).read_text("ascii").strip(), marker)
    except (OSError, UnicodeDecodeError):
        return False


def ensure_cache_dir(root: Path) -> Path | None:
    """`<root>/.otelize-cache/` with its own `.gitignore`; None when it cannot be made."""
    folder = root / CACHE_DIR
    if folder.is_symlink():  # nothing is ever written outside the project root
        return None
    try:
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.is_file():
            ignore.write_text("# created by otelize\n*\n")
    except OSError:
        return None  # a cache is an optimisation; a read-only tree just doesn't get one
    return folder


def remember_clean(root: Path, key: str) -> None:
    folder = ensure_cache_dir(root)
    if folder is None:
        return
    marker = _signed(key)
    if marker is None:
        return
    try:
        (folder / CLEAN_FILE).write_text(marker + "\n")
    except OSError:
        pass
