"""The JavaScript shop apps (tests/fixtures/js-shop-cjs, tests/fixtures/js-shop-esm), made whole.

Both answer the sample app's HTTP contract, and both run the sample app's own contract
test, sample-app/test/api.test.mjs (it starts the entry its package.json names): the file
is copied in here, never kept twice. `materialise` writes one complete app into a folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
CONTRACT_TEST = TESTS.parent / "sample-app" / "test" / "api.test.mjs"
APPS = ("js-shop-cjs", "js-shop-esm")


def materialise(app: str, dest: Path) -> Path:
    """The complete app `app` (one of APPS) in dest, a folder that must not exist yet."""
    if app not in APPS:
        raise ValueError(f"unknown JavaScript shop {app!r}: one of {APPS}")
    shutil.copytree(FIXTURES / app, dest, ignore=shutil.ignore_patterns("node_modules"))
    test = dest / "test" / CONTRACT_TEST.name
    if test.exists():
        raise FileExistsError(f"{app} has its own {test.relative_to(dest)}: the contract test is {CONTRACT_TEST}")
    test.parent.mkdir(exist_ok=True)
    shutil.copyfile(CONTRACT_TEST, test)
    return dest
