"""Bad input through the real CLI: a clear one-line message, a documented exit code, nothing written.

Exit codes (README): 0 ok, 1 --check found changes, 2 bad input, 3 partial
(some files unparsable and left untouched, the rest done). For every exit-2
case: stderr is exactly one line starting `otelize: error:`, stdout is empty,
there is no traceback, and every file of the tree (and of its surroundings) has
the same bytes, mode and symlink target as before.

A few cases go through `python -m otelize` in a subprocess; the rest through
click's CliRunner (same code path, in-process, so `os.access` can be
monkeypatched to simulate read-only files when running as root, as CI does).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from transform import untyped
from click.testing import CliRunner

from fsutil import read_only

import otelize.synthesize.write as synthesize_mod
from otelize.api import analyze, instrument
from otelize.cli.main import cli
from otelize.errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL
from otelize.analysis.parse import parse_source
from otelize.synthesize.write import WriteError

REPO_ROOT = Path(__file__).resolve().parent.parent

PACKAGE_JSON = """{
  "name": "mini-api",
  "version": "1.0.0",
  "scripts": {"start": "node dist/index.js"},
  "dependencies": {"express": "4.21.2"}
}
"""
TSCONFIG = """{
  // CommonJS build
  "compilerOptions": {"strict": true, "module": "commonjs", "outDir": "dist", "rootDir": "src",},
}
"""
SOURCES = {
    "src/index.ts": """\
import express from 'express';
import { ordersRouter } from './routes/orders';

const app = express();
app.use(express.json());
app.use('/api/orders', ordersRouter);
app.listen(3000);
""",
    "src/routes/orders.ts": """\
import { Router } from 'express';
import { orderService } from '../services/orderService';

export const ordersRouter = Router();

ordersRouter.get('/:id', async (req, res) => {
  const order = await orderService.getOrder(req.params.id);
  res.json(order);
});
""",
    "src/services/orderService.ts": """\
export class OrderService {
  async getOrder(id: string): Promise<{ id: string; total: number }> {
    const total = id.length * 10;
    return { id, total };
  }

  async cancelOrder(id: string): Promise<boolean> {
    const ok = id.length > 0;
    return ok;
  }
}

export const orderService = new OrderService();
""",
    "src/services/userService.ts": """\
export class UserService {
  async getUser(id: string): Promise<{ id: string }> {
    const user = { id };
    return user;
  }
}

export const userService = new UserService();
""",
}
SERVICE = "src/services/orderService.ts"


def make_app(root: Path, *, package_json: str | bytes | None = PACKAGE_JSON, tsconfig: str | bytes | None = TSCONFIG) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes | None] = {"package.json": package_json, "tsconfig.json": tsconfig, **SOURCES}
    for rel, data in files.items():
        if data is None:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode("utf-8")
        (root / rel).write_bytes(data)
    return root


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under root, without following symlinks: file hash + mode, link target, folder."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                state[rel] = "link -> " + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                state[rel] = f"dir {stat.S_IMODE(st.st_mode):o}"
            else:
                state[rel] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {stat.S_IMODE(st.st_mode):o}"
    return state


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_module(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "otelize", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(code: int, out: str, err: str, *expected: str) -> None:
    assert code == EXIT_BAD_INPUT, (code, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("otelize: error: "), err
    for text in expected:
        assert text in err, (text, err)


def assert_refused(tmp_path: Path, args: list[str], *expected: str, run=invoke) -> None:  # noqa: ANN001
    """`otelize ARGS` (in-process; `python -m otelize` with run=run_module) exits 2 with one line
    naming each of expected, and nothing under tmp_path (the app and its surroundings) changed."""
    before = tree_state(tmp_path)
    code, out, err = run(*args)
    assert_one_line_error(code, out, err, *expected)
    assert tree_state(tmp_path) == before


# --- the project: exit 2, nothing written ------------------------------------------------


def test_missing_root_via_subprocess(tmp_path: Path) -> None:
    assert_refused(tmp_path, ["instrument", str(tmp_path / "nope")], "nope: no such directory", run=run_module)


def test_no_package_json_via_subprocess(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", package_json=None)
    assert_refused(tmp_path, ["instrument", str(root)], "no package.json found", run=run_module)


PROJECT_CASES: dict[str, tuple[dict[str, str | bytes | None], tuple[str, ...]]] = {
    "package-json-invalid": ({"package_json": '{"dependencies": {"express": "4"},}'}, ("package.json: invalid JSON at line 1",)),
    "package-json-comments": ({"package_json": '{\n  // no comments in package.json\n  "dependencies": {"express": "4"}\n}'}, ("package.json: invalid JSON at line 2",)),
    "package-json-empty": ({"package_json": ""}, ("package.json: invalid JSON at line 1 column 1",)),
    "package-json-not-utf8": ({"package_json": b'{"name": "\xff\xfe", "dependencies": {"express": "4"}}'}, ("package.json: not valid UTF-8",)),
    "package-json-array": ({"package_json": "[]"}, ("package.json: top level must be a JSON object",)),
    "tsconfig-invalid": ({"tsconfig": '{\n  // fine\n  "compilerOptions": {"strict": true,,}\n}'}, ("tsconfig.json: invalid JSON at line 3",)),
    "tsconfig-unterminated": ({"tsconfig": '{"compilerOptions": {"strict": true}'}, ("tsconfig.json: invalid JSON at line 1",)),
    "tsconfig-not-utf8": ({"tsconfig": b'{"compilerOptions": {"outDir": "\xc3("}}'}, ("tsconfig.json: not valid UTF-8",)),
    "tsconfig-array": ({"tsconfig": "[]"}, ("tsconfig.json: top level must be an object",)),
    "not-express": ({"package_json": '{"dependencies": {"fastify": "4.0.0"}}'}, ("not an Express app",)),
    "not-express-no-deps": ({"package_json": '{"name": "x"}'}, ("not an Express app",)),
}


@pytest.mark.parametrize("case", sorted(PROJECT_CASES))
def test_bad_project_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    kwargs, expected = PROJECT_CASES[case]
    root = make_app(tmp_path / "app", **kwargs)  # type: ignore[arg-type]
    assert_refused(tmp_path, ["instrument", str(root)], *expected)


def test_tsconfig_extends_cycle(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", tsconfig='{"extends": "./tsconfig.base.json"}')
    (root / "tsconfig.base.json").write_text('{"extends": "./tsconfig.json"}')
    assert_refused(tmp_path, ["instrument", str(root)], "`extends` cycle")


def test_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, out, err = invoke("instrument", str(tmp_path / "file"))
    assert_one_line_error(code, out, err, "not a directory")


class _OsWithAccess:
    """`os` for one module, with `access` replaced."""

    def __init__(self, access: object) -> None:
        self.access = access

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


def deny_read(monkeypatch: pytest.MonkeyPatch, module: str, denied: Path) -> None:
    real_access = os.access

    def access(path: object, mode: int, *args: object, **kwargs: object) -> bool:
        if mode & os.R_OK and Path(str(path)) == denied:
            return False
        return real_access(path, mode, *args, **kwargs)  # type: ignore[arg-type]

    if module == "os":
        monkeypatch.setattr(os, "access", access)
    else:
        monkeypatch.setattr(f"{module}.os", _OsWithAccess(access))


def test_unreadable_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """otelize's own check (chmod 000 has no effect for root, so os.access is simulated)."""
    root = make_app(tmp_path / "app")
    deny_read(monkeypatch, "otelize.project.discover", root)
    assert_refused(tmp_path, ["instrument", str(root)], "app: directory is not readable")


def test_unreadable_root_through_click(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """click's own Path check (readable=True) would answer with a multi-line usage error first."""
    root = make_app(tmp_path / "app")
    deny_read(monkeypatch, "os", root)
    code, out, err = invoke("instrument", str(root))
    assert_one_line_error(code, out, err, "directory is not readable")


def test_unreadable_root_for_real(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    root.chmod(0)
    try:
        if os.access(root, os.R_OK):
            pytest.skip("running as root: chmod does not make a folder unreadable (see test_unreadable_root)")
        code, out, err = invoke("instrument", str(root))
        assert_one_line_error(code, out, err, "directory is not readable")
    finally:
        root.chmod(0o755)


# --- options: exit 2 -------------------------------------------------------------------------


def test_out_into_a_non_empty_directory(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    out_dir = tmp_path / "build"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine\n")
    assert_refused(tmp_path, ["instrument", str(root), "--out", str(out_dir)], "--out directory exists and is not empty")


def test_out_inside_the_project(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    assert_refused(tmp_path, ["instrument", str(root), "--out", str(root / "build")], "--out must not be inside the project")


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--diff", "--check"), "mutually exclusive"),
        (("--report", "report.txt"), "--report must end in .json or .md"),
    ],
)
def test_bad_option_combinations(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    root = make_app(tmp_path / "app")
    assert_refused(tmp_path, ["instrument", str(root), *args], expected)


def test_report_into_a_missing_folder(tmp_path: Path) -> None:
    """Checked before anything is written: no traceback after the project was already changed."""
    root = make_app(tmp_path / "app")
    assert_refused(tmp_path, ["instrument", str(root), "--report", str(tmp_path / "no-such-folder" / "report.json")], "report.json")


# --- rules: exit 2, the message names the file and the key ------------------------------------

RULE_CASES = {
    "unknown-key": ("id: my-rule\ncategory: service\nmatch: {name: x}\ncolour: red\n", "my-rules/bad.yaml: key `colour`"),
    "bad-category": ("id: my-rule\ncategory: databse\nmatch: {name: x}\n", "my-rules/bad.yaml: key `category`"),
    "missing-match": ("id: my-rule\ncategory: service\n", "my-rules/bad.yaml: key `match`: is required"),
    "bad-id": ("id: My Rule\ncategory: service\nmatch: {name: x}\n", "my-rules/bad.yaml: key `id`"),
    "bad-regex": ("id: my-rule\ncategory: service\nmatch: {name: '(['}\n", "my-rules/bad.yaml: key `match.name`: invalid regular expression"),
    "bad-kind": ("id: my-rule\ncategory: service\nmatch: {kind: no_such_kind}\n", "my-rules/bad.yaml: key `match.kind`"),
    "bad-nested": (
        "id: my-rule\ncategory: service\nmatch:\n  all:\n    - {path: 'src/**'}\n    - {graph: {calls: [nowhere]}}\n",
        "my-rules/bad.yaml: key `match.all[1].graph.calls`",
    ),
    "bad-query": ("id: my-rule\ncategory: service\nmatch: {query: '(call_expression'}\n", "my-rules/bad.yaml: key `match.query`"),
    "priority-not-int": ("id: my-rule\ncategory: service\npriority: high\nmatch: {name: x}\n", "my-rules/bad.yaml: key `priority`"),
    "invalid-yaml": ("id: [unclosed\n", "my-rules/bad.yaml: invalid YAML at line"),
    "not-a-mapping": ("- just\n- a list\n", "my-rules/bad.yaml: a rule must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rule_schema_error_names_file_and_key(tmp_path: Path, case: str) -> None:
    text, expected = RULE_CASES[case]
    root = make_app(tmp_path / "app")
    rules = tmp_path / "my-rules"
    rules.mkdir()
    (rules / "good.yaml").write_text("id: my-good-rule\ncategory: service\nmatch: {name: Order}\n")
    (rules / "bad.yaml").write_text(text)
    assert_refused(tmp_path, ["instrument", str(root), "--rules", str(rules)], expected)


def test_missing_rule_directory(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    assert_refused(tmp_path, ["instrument", str(root), "--rules", str(tmp_path / "no-rules")], "no-rules: rule directory does not exist")


# --- the files: exit 3 (partial) ------------------------------------------------------------


def summary_warnings(err: str) -> dict[str, str]:
    out = {}
    for line in err.splitlines():
        if line.startswith("otelize: warning: "):
            path, _, reason = line[len("otelize: warning: ") :].partition(": ")
            out[path] = reason
    return out


def test_syntax_error_file_is_untouched_others_instrumented_exit_3_via_subprocess(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    broken = b"export class UserService {\n  async getUser(id: string) {\n    return { id ;\n  }\n}\n"
    (root / "src/services/userService.ts").write_bytes(broken)
    code, out, err = run_module("instrument", str(root))
    assert code == EXIT_PARTIAL, err
    assert "Traceback" not in err and "otelize: error:" not in err
    assert (root / "src/services/userService.ts").read_bytes() == broken
    warnings = summary_warnings(err)
    assert set(warnings) == {"src/services/userService.ts"}
    assert warnings["src/services/userService.ts"].startswith("left untouched: the TypeScript grammar (tree-sitter-typescript 0.23.2) could not parse it at line 3")
    # the rest proceeded: the service file got its spans, the entry its tracing import
    service = (root / SERVICE).read_bytes()
    assert b"withSpan('OrderService.getOrder'" in untyped(service) and parse_source(SERVICE, service).ok
    assert (root / "src/index.ts").read_bytes().startswith(b"import './tracing';\n")
    assert (root / "src/tracing.ts").is_file()


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"export const a = 1;\n\x00\x01\x02binary\n", "binary content (NUL bytes)"),
        (b"export function f(): string {\n  return '\xff\xfe';\n}\n", "not valid UTF-8 (byte 40)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content (NUL bytes)"),
        ("export const s = 'caf\u00e9';\n".encode("latin-1"), "not valid UTF-8 (byte 21)"),
    ],
)
def test_binary_or_non_utf8_file_is_untouched_and_reported(tmp_path: Path, content: bytes, reason: str) -> None:
    root = make_app(tmp_path / "app")
    target = root / "src/services/userService.ts"
    target.write_bytes(content)
    code, out, err = invoke("instrument", str(root))
    assert code == EXIT_PARTIAL, err
    assert "Traceback" not in err
    assert target.read_bytes() == content
    assert summary_warnings(err) == {"src/services/userService.ts": f"left untouched: {reason}"}
    assert b"withSpan(" in untyped((root / SERVICE).read_bytes())


def test_unparsable_entry_file_is_never_edited(tmp_path: Path) -> None:
    """Even the tracing import, which the config worker requests for the entry, is not added."""
    root = make_app(tmp_path / "app")
    entry = root / "src/index.ts"
    broken = entry.read_bytes().replace(b"app.use(express.json());", b"app.use(express.json();")
    entry.write_bytes(broken)
    code, out, err = invoke("instrument", str(root))
    assert code == EXIT_PARTIAL, err
    assert entry.read_bytes() == broken
    assert "src/index.ts" in summary_warnings(err)


def test_empty_file_is_fine_and_untouched(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    (root / "src/services/empty.ts").write_bytes(b"")
    (root / "src/services/blank.ts").write_bytes(b"\n\n   \n")
    code, out, err = invoke("instrument", str(root))
    assert code == EXIT_OK, err
    assert "warning" not in err and "Traceback" not in err
    assert (root / "src/services/empty.ts").read_bytes() == b""
    assert (root / "src/services/blank.ts").read_bytes() == b"\n\n   \n"


def test_empty_project_sources_are_fine(tmp_path: Path) -> None:
    """An Express package.json with no source files at all: nothing to parse, no crash, and
    no tracing/otel files or packages it could not use: one line and exit 5 (issue 15)."""
    root = tmp_path / "app"
    root.mkdir()
    (root / "package.json").write_text(PACKAGE_JSON)
    code, out, err = invoke("instrument", str(root), "--check")
    assert code == 5, err
    assert "Traceback" not in err and "otelize: error: nothing to instrument: no source files" in err


# --- symlinks ----------------------------------------------------------------------------------


def test_symlink_loop_does_not_hang_via_subprocess(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    (root / "src/loop").symlink_to(".", target_is_directory=True)
    (root / "src/services/up").symlink_to("../..", target_is_directory=True)
    code, out, err = run_module("instrument", str(root), timeout=60)
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    assert os.readlink(root / "src/loop") == "." and os.readlink(root / "src/services/up") == "../.."
    files = analyze(root).project.files
    assert not any("loop" in f or "/up/" in f for f in files), files
    assert files.count(SERVICE) == 1


def test_symlink_to_a_file_outside_the_root_is_never_read_or_written(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    outside = tmp_path / "outside" / "paymentService.ts"
    outside.parent.mkdir()
    outside.write_text("export class PaymentService {\n  async charge(n: number): Promise<number> {\n    const c = n * 2;\n    return c;\n  }\n}\n")
    (root / "src/services/paymentService.ts").symlink_to(outside)
    (root / "src/shared").symlink_to(outside.parent, target_is_directory=True)
    before_outside = tree_state(tmp_path / "outside")
    analysis = analyze(root)
    assert "src/services/paymentService.ts" not in analysis.project.files
    assert not any(f.startswith("src/shared") for f in analysis.project.files)
    assert ("src/services/paymentService.ts", "symlink points outside the root") in analysis.project.skipped
    code, out, err = invoke("instrument", str(root), "--report", str(tmp_path / "report.json"))
    assert code == EXIT_OK, err
    assert tree_state(tmp_path / "outside") == before_outside
    assert os.readlink(root / "src/services/paymentService.ts") == str(outside)  # still the same link
    report = (tmp_path / "report.json").read_text()
    assert "paymentService" not in report and "PaymentService" not in report


def test_symlink_to_a_file_inside_the_root_stays_a_symlink(tmp_path: Path) -> None:
    """The target is instrumented under its real path; the link is neither replaced by a copy nor edited twice."""
    root = make_app(tmp_path / "app")
    (root / "src/alias.ts").symlink_to("services/orderService.ts")
    (root / "src/svc").symlink_to("services", target_is_directory=True)
    (root / "src/a-first").symlink_to("services", target_is_directory=True)  # sorts before the real folder
    code, out, err = invoke("instrument", str(root))
    assert code == EXIT_OK, err
    assert os.readlink(root / "src/alias.ts") == "services/orderService.ts"
    assert os.readlink(root / "src/svc") == "services"
    files = analyze(root).project.files
    assert SERVICE in files and not any(f.startswith(("src/alias", "src/svc", "src/a-first")) for f in files), files
    assert untyped((root / SERVICE).read_bytes()).count(b"withSpan('OrderService.getOrder'") == 1


# --- read-only targets: exit 2, nothing written anywhere -----------------------------------------


def deny_write(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Simulate a read-only file or folder for the pre-write check (chmod has no effect for root)."""
    real_access = os.access

    def access(path: object, mode: int, *args: object, **kwargs: object) -> bool:
        if mode & os.W_OK and Path(str(path)).resolve() == denied.resolve():
            return False
        return real_access(path, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(synthesize_mod.os, "access", access)


@pytest.mark.parametrize(
    "denied, expected",
    [
        (SERVICE, f"{SERVICE}: file is read-only; nothing was written"),
        ("src/services", "folder is not writable; nothing was written"),
        ("package.json", "package.json: file is read-only; nothing was written"),
        ("src", "src/index.ts: folder is not writable; nothing was written"),
    ],
)
def test_read_only_target_simulated_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denied: str, expected: str) -> None:
    root = make_app(tmp_path / "app")
    before = tree_state(tmp_path)
    deny_write(monkeypatch, root / denied)
    with pytest.raises(WriteError) as info:
        instrument(root, write=True)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("denied", [SERVICE, "src/services"])
def test_read_only_target_simulated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denied: str) -> None:
    root = make_app(tmp_path / "app")
    deny_write(monkeypatch, root / denied)
    assert_refused(tmp_path, ["instrument", str(root)], "nothing was written")


def test_read_only_target_does_not_matter_for_diff_and_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_app(tmp_path / "app")
    before = tree_state(tmp_path)
    deny_write(monkeypatch, root / SERVICE)
    code, out, err = invoke("instrument", str(root), "--check")
    assert code == 1, err
    code, out, err = invoke("instrument", str(root), "--diff")
    assert code == EXIT_OK and "withSpan" in out
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_target_for_real(tmp_path: Path, what: str) -> None:
    """chmod; as root (CI) chmod has no effect, so the immutable flag (chattr +i) is used instead."""
    root = make_app(tmp_path / "app")
    target = root / SERVICE if what == "file" else root / "src/services"
    with read_only(target):
        expected = f"{SERVICE}: file is read-only" if what == "file" else "folder is not writable"
        assert_refused(tmp_path, ["instrument", str(root)], expected, "nothing was written", run=run_module)


# --- the control: the same app, untouched by any of the above, instruments cleanly -----------------


def test_control_app_instruments_and_second_run_is_a_no_op(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app")
    code, out, err = invoke("instrument", str(root))
    assert code == EXIT_OK, err
    first = tree_state(root)
    assert first != tree_state(make_app(tmp_path / "pristine"))
    code, out, err = invoke("instrument", str(root), "--check")
    assert code == EXIT_OK, err
    assert tree_state(root) == first
    pkg = json.loads((root / "package.json").read_text())
    assert "@opentelemetry/api" in pkg["dependencies"]
