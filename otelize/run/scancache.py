"""Opt-in per-file caches: a re-run parses and edits only the files that changed.

A file's scan (syntax errors, facts, tree-based rule results) depends only on
its path, its bytes, the rules and otelize itself. With `--cache`, scans are
kept in `<root>/.otelize-cache/scan.pickle` keyed by the SHA-256 of the file's
bytes, under a key of otelize's code, the parser's version and every rule file;
a different version or rule set starts an empty cache. Entries of files that
are gone are dropped on the next write. The cross-file steps (graph, graph
rules, plan) always run, so a hit gives exactly what a fresh scan would (tested
against uncached runs).

The edit phase is cached the same way in `edit.pickle`: a file's edit result
(its workers, import step, splice and reparse check) depends on its bytes, its
tasks (with their rule options), the main-process results aimed at it (the
tracing import), and the project context the workers read (module, folders,
package.json, tsconfig, entry point, settings); the digest covers all of them.

Each file is signed (HMAC-SHA256) with a key kept in the user's own cache
folder (`$XDG_CACHE_HOME/otelize/secret`, else `~/.cache/otelize/secret`) and
is unpickled only when the signature holds: a cache file planted in a
repository (say, by a pull request that CI checks with `--cache`) is ignored,
never run.

Each file is written atomically (temp file + rename) and is only an
optimisation: an unreadable or corrupt cache is ignored, an unwritable one is
not written.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Callable, TypeVar

from otelize import __version__
from otelize.run.statecache import cache_read, cache_write, code_digest, hash_folders, mac, user_secret

T = TypeVar("T")
R = TypeVar("R")

SCAN_FILE = "scan.pickle"
EDIT_FILE = "edit.pickle"
FORMAT = 2  # 2: each entry's result pickled on its own (a re-run re-pickles only what it computed)


def rules_key(rule_dirs: list[Path], switches: dict[str, bool] | None = None) -> str:
    """What a scan depends on besides the file: otelize's and the parser's versions, every
    rule file (built-in and extra), and the rules switched on or off by id."""
    from importlib.metadata import PackageNotFoundError, version

    from otelize.resources import data_dir

    parser = []
    for dist in ("tree-sitter", "tree-sitter-typescript"):
        try:
            parser.append(version(dist))
        except PackageNotFoundError:
            parser.append("?")
    h = hashlib.sha256(f"{FORMAT}\0{__version__}\0{parser}\0{sorted((switches or {}).items())}\0".encode() + code_digest())
    hash_folders(h, [data_dir("rules"), *rule_dirs])
    return h.hexdigest()


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


MAGIC = b"otelize-cache-v1\n"
def load(root: Path, key: str, name: str = SCAN_FILE) -> dict[str, tuple[bytes, bytes]]:
    """{path: (input digest, the result pickled)} of a cache file, or {} when absent, stale,
    unsigned or unreadable. Each result is a pickle of its own, signed with the file: a run
    unpickles the ones it takes and writes the others back as they were."""
    import hmac

    secret = user_secret()
    if secret is None:
        return {}
    blob = cache_read(root, name)
    if blob is None:
        return {}
    head = len(MAGIC) + 32
    if not blob.startswith(MAGIC) or len(blob) < head:
        return {}
    payload = memoryview(blob)[head:]
    if not hmac.compare_digest(blob[len(MAGIC):head], mac(secret, payload)):
        return {}  # not written by this user's otelize: never unpickled
    try:
        stored = pickle.loads(payload)
    except Exception:  # noqa: BLE001 - a cache from another otelize build is just a cold start
        return {}
    if not isinstance(stored, dict) or stored.get("key") != key or not isinstance(stored.get("entries"), dict):
        return {}
    return stored["entries"]


def save(root: Path, key: str, entries: dict[str, tuple[bytes, bytes]], name: str = SCAN_FILE) -> None:
    """Write {path: (input digest, the result pickled)}, signed."""
    secret = user_secret()
    if secret is None:
        return
    payload = pickle.dumps({"key": key, "entries": dict(sorted(entries.items()))}, protocol=pickle.HIGHEST_PROTOCOL)
    cache_write(root, name, MAGIC + mac(secret, payload) + payload)  # atomic, never through a symlink


def edit_context_key(rules: str, project: Any, entry: str | None, settings: dict[str, Any], placement: Any = None) -> str:
    """Everything outside a file that its edit result depends on (`placement`: where the
    generated tracing.ts/otel.ts go, which the helper imports point at)."""
    import json

    def plain(o: Any) -> Any:
        return sorted(o) if isinstance(o, (set, frozenset)) else str(o)

    context = {
        "rules": rules, "root": str(project.root), "module": project.module, "src_dir": project.src_dir,
        "out_dir": project.out_dir, "base_url": project.base_url, "tsconfig": project.tsconfig,
        "package_json": hashlib.sha256(project.package_json_bytes).hexdigest(), "entry": entry, "settings": settings,
        "prisma_provider": project.prisma_provider, "placement": placement,
    }
    return hashlib.sha256(json.dumps(context, sort_keys=True, default=plain).encode()).hexdigest()


def edit_job_digest(source: bytes, errors: Any, tasks: Any, extra: Any) -> bytes:
    """A file's own inputs to the edit phase: its bytes, syntax errors, tasks and main-process results."""
    return hashlib.sha256(digest(source) + pickle.dumps((errors, tasks, extra), protocol=4)).digest()


def cached_map(
    root: Path,
    key: str,
    name: str,
    items: list[tuple[str, T]],
    digests: dict[str, bytes],
    compute: Callable[[list[tuple[str, T]]], list[R]],
) -> list[R]:
    """`compute(items)`, in order, with the results of items whose digest is unchanged
    taken from the cache file `name` (under `key`); the file is rewritten when
    anything was computed or an entry went away."""
    stored = load(root, key, name)
    hits: dict[str, Any] = {}
    for path, _ in items:
        entry = stored.get(path)
        if entry is not None and entry[0] == digests[path]:
            try:
                hits[path] = pickle.loads(entry[1])
            except Exception:  # noqa: BLE001 - an entry that does not load is computed again
                continue
    misses = [(path, item) for path, item in items if path not in hits]
    fresh = dict(zip([path for path, _ in misses], compute(misses))) if misses else {}
    results = [hits[path] if path in hits else fresh[path] for path, _ in items]
    if misses or set(stored) != {path for path, _ in items}:
        # the entries taken from the file go back as the bytes they were read as: rewriting
        # the cache after a one-file change pickles that file's result, not all of them
        save(root, key, {path: (digests[path], stored[path][1] if path in hits else
                                pickle.dumps(fresh[path], protocol=pickle.HIGHEST_PROTOCOL))
                         for path, _ in items}, name)
    return results
