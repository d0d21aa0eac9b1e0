"""The synthetic Express/TypeScript app generator (tests/bench/gen_app.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gen_app import generate
from otelize.analysis.parse import parse_source

REPO_ROOT = Path(__file__).resolve().parent.parent
DOMAIN_DIRS = ("routes", "services", "repositories", "cache", "clients")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def app40(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("app40")
    summary = generate(out, 40, seed=7)
    return out, summary


def test_same_seed_is_byte_identical_and_other_seed_differs(app40, tmp_path: Path) -> None:
    out, summary = app40
    again = tmp_path / "again"
    assert generate(again, 40, seed=7) == summary
    assert tree(again) == tree(out)

    other = tmp_path / "other"
    generate(other, 40, seed=8)
    assert tree(other) != tree(out)


def test_summary_matches_files_on_disk(app40) -> None:
    out, summary = app40
    files = tree(out)
    assert summary == {
        "files": len(files),
        "lines": sum(data.count(b"\n") for data in files.values()),
        "bytes": sum(len(data) for data in files.values()),
    }


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_every_ts_file_parses_cleanly(seed: int, app40, tmp_path: Path) -> None:
    if seed == 7:
        out = app40[0]
    else:
        out = tmp_path / "app"
        generate(out, 60, seed=seed)
    ts_files = sorted(out.rglob("*.ts"))
    assert ts_files
    for path in ts_files:
        rel = path.relative_to(out).as_posix()
        parsed = parse_source(rel, path.read_bytes())
        assert parsed.errors == [], f"{rel}: {parsed.errors[:5]}"
        assert parsed.problem is None, f"{rel}: {parsed.problem}"


@pytest.mark.parametrize("n", [10, 40, 100, 250])
def test_file_count_close_to_request(n: int, tmp_path: Path) -> None:
    summary = generate(tmp_path, n, seed=1)
    files = tree(tmp_path)
    assert summary["files"] == len(files)
    assert abs(len(files) - n) <= max(1, 0.1 * n), (n, len(files))


def test_domain_files_have_realistic_sizes_and_shape(app40) -> None:
    out, _ = app40
    files = tree(out)
    domain_files = {rel: data for rel, data in files.items() if rel.split("/")[1:2] and rel.split("/")[1] in DOMAIN_DIRS}
    assert len(domain_files) == 35  # 7 domains x 5 files
    for rel, data in domain_files.items():
        n = data.count(b"\n")
        assert 100 <= n <= 300, f"{rel}: {n} lines"
    assert any(max(data) > 0x7F for data in domain_files.values()), "expected some non-ASCII text"

    pkg = json.loads(files["package.json"])
    assert pkg["name"] == "synthetic-app" and pkg["version"] == "1.0.0"
    assert pkg["dependencies"]["express"] == "4.22.3"
    assert re.fullmatch(r"8\.\d+\.\d+", pkg["dependencies"]["pg"])
    assert {"typescript", "@types/express", "@types/node", "@types/pg"} <= set(pkg["devDependencies"])
    assert {"build", "start"} <= set(pkg["scripts"])
    tsconfig = json.loads(files["tsconfig.json"])["compilerOptions"]
    assert tsconfig["strict"] is True and tsconfig["module"] == "commonjs"
    assert (tsconfig["outDir"], tsconfig["rootDir"]) == ("dist", "src")

    index = files["src/index.ts"].decode()
    domains = sorted(rel[len("src/routes/") : -3] for rel in files if rel.startswith("src/routes/"))
    for d in domains:
        assert f"app.use('/api/{d}', {d}Router);" in index
        service = files[f"src/services/{d}Service.ts"].decode()
        assert f"export const {d}Service = new " in service
        assert "this.repository." in service and "this.cache." in service
        routes = files[f"src/routes/{d}.ts"].decode()
        assert 3 <= len(re.findall(r"^router\.(get|post|patch|put|delete)\(", routes, re.M)) <= 6
        assert f"{d}Service." in routes
        repo = files[f"src/repositories/{d}Repository.ts"].decode()
        assert "from 'pg';" in repo and "SELECT " in repo and "DELETE FROM " in repo
        assert "from 'ioredis';" in files[f"src/cache/{d}Cache.ts"].decode()
        client = files[f"src/clients/{d}Client.ts"].decode()
        assert f"private readonly baseUrl = 'https://{d}.example.com';" in client
        assert "await fetch(" in client
    assert "app.listen(" in index and "app.use(errorHandler);" in index
    assert "(err: unknown, req: Request, res: Response, next: NextFunction)" in files[
        "src/middleware/errorHandler.ts"
    ].decode()


def test_cli_matches_library(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.bench.gen_app", str(out), "--files", "25", "--seed", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    lib = tmp_path / "lib"
    assert generate(lib, 25, seed=3) == summary
    assert tree(out) == tree(lib)
