"""journal: the run lock, and an in-place commit that a kill cannot leave half done.

The lock. A run that writes in place (`instrument`, `strip`) holds an
exclusive `flock` on the project's root folder for the whole run, so a second
run waits (at most `OTELIZE_LOCK_WAIT` seconds, default 30) and then refuses
with exit code 4. The kernel drops the lock when its process dies, so a lock
of a killed run never has to be detected or broken. No lock file is left in
the tree.

The commit (`otelize.synthesize.write.write_changes`) goes in three steps:

1. `<root>/.otelize-journal` is written in state `staging`, listing every
   target, its temp file (`<folder>/.otelize-<name>.tmp`) and the folders the
   commit creates; then the temp files are written and fsynced;
2. the journal is rewritten in state `commit`, with the SHA-256 of every
   target's old and new bytes; then each temp file is renamed over its target
   (deletions unlinked) and the folders are fsynced; SIGINT and SIGTERM wait
   until this step is over;
3. the journal is removed.

`recover` runs before any command reads the project. A `staging` journal (a
run killed while writing temp files) is rolled back: its temp files and new
folders go. A `commit` journal (killed during the renames) is rolled forward:
each target still at its old bytes gets its new bytes, so the tree ends up as
the completed run would have left it; a target that someone changed since is
left as it is and named in a warning. Each journal entry's temp file is
removed either way.

Every journal write is a temp file, fsync, rename, fsync of the root folder.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otelize.errors import Busy

JOURNAL = ".otelize-journal"
FORMAT = 1
DEFAULT_WAIT = 30.0


class OtelizeWarning(UserWarning):
    """Something the user should hear about (printed by the CLI as `otelize: warning: ...`)."""


# --- the run lock ----------------------------------------------------------------

_held: dict[str, list[int]] = {}  # real root -> [fd, depth]: re-entrant within this process


def lock_wait() -> float:
    try:
        return max(0.0, float(os.environ.get("OTELIZE_LOCK_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


@contextmanager
def run_lock(root: str | os.PathLike[str], wait: float | None = None) -> Iterator[None]:
    """Hold the project's lock (an exclusive flock on its root folder) for the block."""
    real = os.path.realpath(root)
    if real in _held:
        _held[real][1] += 1
        try:
            yield
        finally:
            _held[real][1] -= 1
        return
    try:
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # no such folder: discovery says so, in its own words
        yield
        return
    try:
        wait = lock_wait() if wait is None else wait
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise Busy(
                    f"{root}: another otelize run is writing to this project (waited {wait:g} s); "
                    "nothing was written, run it again"
                )
            time.sleep(0.05)
        _held[real] = [fd, 1]
        try:
            yield
        finally:
            del _held[real]
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


# --- signals ----------------------------------------------------------------------


@contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM received in the block are recorded (the list) instead of acted on."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    got: list[int] = []

    def note(signum: int, _frame: Any) -> None:
        got.append(signum)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# --- the journal ------------------------------------------------------------------


def sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def temp_name(rel: str) -> str:
    """The temp file beside `rel` that the commit stages its new bytes in."""
    folder, _, name = rel.rpartition("/")
    return f"{folder}/.otelize-{name}.tmp" if folder else f".otelize-{name}.tmp"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_journal(root: Path, state: str, entries: list[dict[str, Any]], dirs: list[str]) -> None:
    data = json.dumps({"format": FORMAT, "state": state, "entries": entries, "dirs": dirs}, sort_keys=True).encode()
    tmp = root / (JOURNAL + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink(tmp)
        raise
    os.rename(tmp, root / JOURNAL)  # (os.rename: the fault tests count os.replace for the targets)
    fsync_dir(root)


def remove_journal(root: Path) -> None:
    try:
        os.unlink(root / JOURNAL)
    except FileNotFoundError:
        pass
    fsync_dir(root)


def read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file (never through a symlink); None when absent or not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def pending(root: str | os.PathLike[str]) -> bool:
    return os.path.lexists(os.path.join(root, JOURNAL)) or os.path.lexists(os.path.join(root, JOURNAL + ".tmp"))


def recover(root: str | os.PathLike[str]) -> str | None:
    """Finish or undo a commit that a killed run left behind; a one-line account, or None.

    Takes the project's lock without waiting: a journal that another running
    otelize holds is that run's, not a leftover.
    """
    if not pending(root):
        return None
    real = Path(os.path.realpath(root))
    try:
        with run_lock(real, wait=0):
            return _recover(real)
    except Busy:
        return None
    except OSError as exc:  # a read-only tree, say: the journal stays for a run that can
        return (
            f"an earlier run was interrupted while writing and cannot be finished now ({exc.strerror}); "
            f"{JOURNAL} is kept for the next run"
        )


def _recover(root: Path) -> str | None:
    raw = read_regular(root / JOURNAL)
    _unlink(root / (JOURNAL + ".tmp"))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        state, entries, dirs = data["state"], list(data["entries"]), list(data["dirs"])
    except (ValueError, KeyError, TypeError):
        remove_journal(root)
        return f"{JOURNAL}: unreadable journal of an interrupted run removed; check the tree (git status)"
    changed: list[str] = []
    conflicts: list[str] = []
    for entry in entries:
        rel, tmp, old, new = entry["path"], entry.get("tmp"), entry.get("old"), entry.get("new")
        if not _inside(root, rel) or (tmp is not None and not _inside(root, tmp)):
            continue  # a journal is never a way to write outside the root
        target = root / rel
        if state != "commit":
            if tmp is not None:
                _unlink(root / tmp)
            continue
        current = sha(read_regular(target)) if os.path.lexists(target) else None
        if current == new:  # this one was renamed before the kill
            if tmp is not None:
                _unlink(root / tmp)
            continue
        if current != old:
            conflicts.append(rel)
            if tmp is not None:
                _unlink(root / tmp)
            continue
        if new is None:
            _unlink(target)
            changed.append(rel)
            continue
        staged = root / tmp if tmp is not None else None
        if staged is None or sha(read_regular(staged)) != new:
            conflicts.append(rel)
            if staged is not None:
                _unlink(staged)
            continue
        os.replace(staged, target)
        changed.append(rel)
    if state != "commit":
        for d in sorted(dirs, key=lambda d: -d.count("/")):
            if _inside(root, d):
                try:
                    (root / d).rmdir()
                except OSError:
                    pass
    for folder in sorted({(root / e["path"]).parent for e in entries if _inside(root, e["path"])}):
        fsync_dir(folder)
    remove_journal(root)
    if state != "commit":
        return "an earlier run was interrupted before it changed anything; its temp files were removed"
    msg = f"an earlier run was interrupted while writing; its write was completed ({len(changed)} file(s) finished)"
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (", ..." if len(conflicts) > 5 else "")
        msg += f"; changed since and left as they are: {shown}"
    return msg


def sweep_temps(root: Path, temps: list[str]) -> None:
    """Remove `.otelize-*.tmp` files (found by discovery) that no running otelize owns:
    left by a run killed before the journal existed (older otelize versions)."""
    if not temps:
        return
    try:
        with run_lock(root, wait=0):
            if pending(root):
                return  # recover() owns these
            gone = sum(1 for rel in temps if _inside(root, rel) and _unlink(root / rel))
    except Busy:
        return  # another run is writing: they are its own
    if gone:
        warnings.warn(f"removed {gone} temp file(s) (.otelize-*.tmp) left by an interrupted run", OtelizeWarning, stacklevel=2)


def recover_and_warn(root: str | os.PathLike[str]) -> None:
    msg = recover(root)
    if msg is not None:
        warnings.warn(msg, OtelizeWarning, stacklevel=2)


def _inside(root: Path, rel: str) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\0" in rel:
        return False
    parts = rel.split("/")
    return ".." not in parts and "" not in parts
