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
from otelize.project.model import Project

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
    from otelize.project.workspace import toolchain_files  # the version line and instrumentations depend on them

    for path in toolchain_files(project.root):
        try:
            h.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            h.update(b"-")
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
    data = cache_read(root, CLEAN_FILE)
    if data is None:
        return False
    try:
        return hmac.compare_digest(data.decode("ascii").strip(), marker)
    except UnicodeDecodeError:
        return False


# --- the cache folder, never through a symlink --------------------------------------------
#
# The folder lives in the project, so anything in it may have been planted by someone
# else's commit. Every access opens `.otelize-cache` relative to the root with
# O_NOFOLLOW, and each file in it relative to that folder with O_NOFOLLOW; writes go
# to a new temp file (O_EXCL) renamed over the name, which replaces a planted symlink
# instead of writing through it.

_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _open_cache_dir(root: Path, create: bool) -> int | None:
    try:
        rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if create:
            try:
                os.mkdir(CACHE_DIR, 0o755, dir_fd=rootfd)
            except FileExistsError:
                pass
        return os.open(CACHE_DIR, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=rootfd)
    except OSError:  # absent, a symlink (ELOOP), not a folder, read-only tree
        return None
    finally:
        os.close(rootfd)


def cache_read(root: Path, name: str) -> bytes | None:
    """The bytes of the regular file `<root>/.otelize-cache/<name>`, or None (absent, a symlink, a FIFO...)."""
    import stat

    folder = _open_cache_dir(root, create=False)
    if folder is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def cache_write(root: Path, name: str, data: bytes) -> bool:
    """Write `<root>/.otelize-cache/<name>` atomically (made with its .gitignore if needed); False if it cannot."""
    folder = _open_cache_dir(root, create=True)
    if folder is None:
        return False
    try:
        if name != GITIGNORE and not _has_gitignore(folder):
            _write_at(folder, GITIGNORE, GITIGNORE_TEXT)
        _write_at(folder, name, data)
        return True
    except OSError:
        return False  # a cache is an optimisation; a read-only tree just doesn't get one
    finally:
        os.close(folder)


GITIGNORE = ".gitignore"
GITIGNORE_TEXT = b"# created by otelize\n*\n"


def _has_gitignore(folder: int) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.stat(GITIGNORE, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _write_at(folder: int, name: str, data: bytes) -> None:
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=folder)
        raise
    os.close(fd)
    try:
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces a symlink, never follows it
    except BaseException:
        os.unlink(tmp, dir_fd=folder)
        raise


def ensure_cache_dir(root: Path) -> bool:
    """Make `<root>/.otelize-cache/` with its own `.gitignore`; False when it cannot be made."""
    folder = _open_cache_dir(root, create=True)
    if folder is None:
        return False
    try:
        if not _has_gitignore(folder):
            _write_at(folder, GITIGNORE, GITIGNORE_TEXT)
        return True
    except OSError:
        return False
    finally:
        os.close(folder)


def remember_clean(root: Path, key: str) -> None:
    marker = _signed(key)
    if marker is not None:
        cache_write(root, CLEAN_FILE, (marker + "\n").encode())
