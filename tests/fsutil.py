"""Making a file or folder really read-only in tests, also when the tests run as root."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """chmod `path` read-only; as root (CI), where mode bits do not stop writes, set the
    immutable flag (chattr +i) instead, or skip when that is not possible either."""
    folder = path.is_dir()
    path.chmod(0o555 if folder else 0o444)
    immutable = False
    try:
        if os.access(path, os.W_OK):  # root ignores mode bits
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
                pytest.skip("cannot make it read-only for this user")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o755 if folder else 0o644)
