"""Helpers for tests that need Node: install, free ports, run a built app."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


@contextlib.contextmanager
def _install_lock(app_dir: Path) -> Iterator[None]:
    """Serialise installs of the same app dir across processes (xdist, parallel sessions)."""
    digest = hashlib.sha1(str(app_dir.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"otelize-npm-{digest}.lock"
    with open(lock_path, "w") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _install_is_current(app_dir: Path) -> bool:
    lock = app_dir / "package-lock.json"
    # npm writes node_modules/.package-lock.json at the end of every install.
    marker = app_dir / "node_modules" / ".package-lock.json"
    if not marker.exists():
        return False
    return not lock.exists() or marker.stat().st_mtime >= lock.stat().st_mtime


def npm_install(app_dir: os.PathLike[str] | str) -> None:
    """Run `npm ci` in app_dir unless node_modules is present and newer than package-lock.json."""
    app_dir = Path(app_dir)
    with _install_lock(app_dir):
        if _install_is_current(app_dir):
            return
        proc = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"npm ci failed in {app_dir} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # SIGTERM: the app closes its server and exits
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def run_node_app(
    app_dir: os.PathLike[str] | str,
    env: Mapping[str, str] | None = None,
    entry: str = "dist/index.js",
    timeout: float = STARTUP_TIMEOUT_S,
) -> Iterator[str]:
    """Start `node <entry>` on a free port and yield its base URL.

    The child inherits os.environ, updated with `env`; PORT is set to a free
    port unless `env` provides one. Output goes to a temp file and is quoted
    in the error if the app dies or does not listen within `timeout` seconds.
    """
    app_dir = Path(app_dir)
    child_env = dict(os.environ)
    if env:
        child_env.update(env)
    child_env.setdefault("PORT", str(free_port()))
    port = int(child_env["PORT"])

    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            ["node", entry],
            cwd=app_dir,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def output() -> str:
            log.flush()
            log.seek(0)
            return log.read().decode("utf-8", "replace")

        try:
            deadline = time.monotonic() + timeout
            while not _accepts_connections(port):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"node {entry} in {app_dir} exited with {proc.returncode} before listening "
                        f"on port {port}; output:\n{output()}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"node {entry} in {app_dir} did not accept connections on port {port} "
                        f"within {timeout:.0f}s; output:\n{output()}"
                    )
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)


NODE_MODULES_CACHE = Path(os.environ.get("OTELIZE_TEST_CACHE", Path.home() / ".cache" / "otelize-tests"))


def npm_install_cached(app_dir: os.PathLike[str] | str) -> None:
    """`npm install` for a generated/instrumented copy whose lockfile is stale.

    node_modules is cached per sha256 of package.json (hard-linked copies), so
    the suite pays for the OpenTelemetry install once per dependency set.
    """
    import hashlib

    app = Path(app_dir)
    key = hashlib.sha256((app / "package.json").read_bytes()).hexdigest()[:16]
    cached = NODE_MODULES_CACHE / f"node_modules-{key}"
    target = app / "node_modules"
    if target.exists():
        shutil.rmtree(target)
    if (cached / ".complete").exists():
        subprocess.run(["cp", "-al", str(cached / "node_modules"), str(target)], check=True)
        return
    proc = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefer-offline"],
        cwd=app, capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"npm install failed in {app} (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    tmp = NODE_MODULES_CACHE / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(target), str(tmp / "node_modules")], check=True)
    (tmp / ".complete").write_text("ok")
    try:
        os.rename(tmp, cached)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
