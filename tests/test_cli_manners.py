"""CLI manners: examples in every --help, `python -m otelize`, colour and progress
only on a terminal (NO_COLOR honoured), -q / -v, the package manager from the
lockfile in the next steps, and the README's mermaid diagram."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from otelize.cli.main import cli

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = REPO_ROOT / "sample-app"
ANSI = re.compile(r"\x1b\[")


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append(prefix + (name,))
        if isinstance(cmd, click.Group):
            out += all_commands(cmd, prefix + (name,))
    return out


def test_the_commands_are_the_documented_ones() -> None:
    assert all_commands() == [("graph",), ("instrument",), ("plan",), ("rules",), ("rules", "list"), ("rules", "test"),
                              ("strip",), ("verify",)]


@pytest.mark.parametrize("command", [()] + all_commands(), ids=lambda c: " ".join(c) or "otelize")
def test_every_help_has_one_line_examples(command: tuple[str, ...]) -> None:
    r = CliRunner().invoke(cli, [*command, "--help"])
    assert r.exit_code == 0
    assert "Example" in r.output
    examples = [line.strip() for line in r.output.splitlines() if line.strip().startswith("otelize ")]
    mine = [e for e in examples if e.startswith(" ".join(("otelize",) + command))]
    assert mine, f"no example of `otelize {' '.join(command)}` in its --help:\n{r.output}"


def test_python_dash_m_otelize() -> None:
    proc = subprocess.run([sys.executable, "-m", "otelize", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: python -m otelize") or proc.stdout.startswith("Usage: otelize")
    assert "instrument" in proc.stdout and "rules" in proc.stdout


# --- colour and progress: only on a terminal ---------------------------------------------


def run_with_tty_stderr(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m otelize ARGS` with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "otelize", *args], stdout=subprocess.PIPE, stderr=slave,
                            cwd=REPO_ROOT, env=full_env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=120)
    os.close(master)
    return code, stdout, b"".join(chunks).decode()


def no_color_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "NO_COLOR"}


def test_error_is_red_on_a_terminal(tmp_path: Path) -> None:
    code, _, err = run_with_tty_stderr(["plan", str(tmp_path / "nope")], env={"NO_COLOR": ""})
    assert code == 2
    assert "\x1b[31motelize: error: " in err


def test_no_color_turns_colour_off_on_a_terminal(tmp_path: Path) -> None:
    code, _, err = run_with_tty_stderr(["plan", str(tmp_path / "nope")], env={"NO_COLOR": "1"})
    assert code == 2
    assert "otelize: error: " in err
    assert "\x1b[31m" not in err


def test_no_colour_or_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    bad = subprocess.run([sys.executable, "-m", "otelize", "plan", str(tmp_path / "nope")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2
    assert bad.stderr == f"otelize: error: {tmp_path / 'nope'}: no such directory\n"
    ok = subprocess.run([sys.executable, "-m", "otelize", "instrument", str(SAMPLE_APP), "--check"], capture_output=True, text=True, env=env)
    assert ok.returncode == 1
    assert not ANSI.search(ok.stderr) and "\r" not in ok.stderr
    assert ok.stderr.startswith("otelize: would change ")


def test_progress_on_a_terminal_is_cleared_before_the_output() -> None:
    code, out, err = run_with_tty_stderr(["plan", str(SAMPLE_APP)])
    assert code == 0
    assert "otelize: analysing " in err
    assert err.endswith("\r\x1b[K")  # the status line is erased, leaving the terminal clean
    assert not ANSI.search(out)  # stdout is a pipe: the plan itself is plain
    assert out.startswith("app: shop-api\n")


def test_quiet_has_no_progress_on_a_terminal() -> None:
    code, _, err = run_with_tty_stderr(["-q", "instrument", str(SAMPLE_APP), "--check"])
    assert code == 1
    assert err == ""


# --- -q and -v -------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Path:
    dest = tmp_path / "shop"
    shutil.copytree(SAMPLE_APP, dest, ignore=shutil.ignore_patterns("node_modules", "dist"))
    return dest


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_quiet_keeps_warnings_and_errors_only(app: Path) -> None:
    (app / "src/utils/latency.ts").write_text("export function f( {\n")
    code, out, err = invoke("-q", "instrument", str(app), "--check")
    assert code == 1
    # only the warning: no summary line
    assert err.startswith("otelize: warning: src/utils/latency.ts: left untouched: the TypeScript grammar (tree-sitter-typescript 0.23.2) could not parse it at line 1 ")
    assert err.count("\n") == 1
    code, _, err = invoke("-q", "plan", str(app / "nope"))
    assert code == 2 and err.startswith("otelize: error: ")


def test_default_and_verbose(app: Path) -> None:
    code, _, err = invoke("instrument", str(app), "--check")
    assert code == 1
    assert err.startswith("otelize: would change ") and "otelize: skipped" not in err
    code, _, err = invoke("-v", "instrument", str(app), "--check")
    assert code == 1
    assert "otelize: skipped src/services/paymentService.ts:12 PaymentService.constructor: constructor\n" in err
    (app / ".otelize.yaml").write_text("protocol: grpc\n")
    _, _, err = invoke("-v", "instrument", str(app), "--check")
    assert "otelize: settings from .otelize.yaml\n" in err


def test_exit_nonzero_on_change_writes_then_fails_then_passes(app: Path) -> None:
    code, _, err = invoke("instrument", str(app), "--exit-nonzero-on-change")
    assert code == 1, err
    assert (app / "src/tracing.ts").is_file()
    code, _, err = invoke("instrument", str(app), "--exit-nonzero-on-change")
    assert code == 0, err
    assert err.startswith("otelize: nothing to do")
    code, _, err = invoke("instrument", str(app), "--exit-nonzero-on-change", "--check")
    assert code == 2 and "does not go with" in err


# --- the package manager, from the lockfile ---------------------------------------------------

LOCKFILES = {
    "package-lock.json": ("npm", "npm install", "npm run build", "npm test"),
    "pnpm-lock.yaml": ("pnpm", "pnpm install", "pnpm run build", "pnpm test"),
    "yarn.lock": ("yarn", "yarn install", "yarn build", "yarn test"),
    "bun.lockb": ("bun", "bun install", "bun run build", "bun run test"),
    "bun.lock": ("bun", "bun install", "bun run build", "bun run test"),
    None: ("npm", "npm install", "npm run build", "npm test"),
}


@pytest.mark.parametrize("lockfile", list(LOCKFILES), ids=lambda x: x or "no-lockfile")
def test_next_steps_use_the_package_manager_of_the_lockfile(app: Path, tmp_path: Path, lockfile: str | None) -> None:
    (app / "package-lock.json").unlink()
    if lockfile:
        (app / lockfile).write_text("{}\n" if lockfile.endswith(".json") else "")
    pm, install, build, test = LOCKFILES[lockfile]
    code, _, err = invoke("instrument", str(app), "--out", str(tmp_path / "out"), "--report", str(tmp_path / "r.md"))
    assert code == 0, err
    assert f"otelize: next: `{install}`, then `{build}` and `{test}`\n" in err
    assert err.count("otelize: next:") == 1, err  # not a second, build-less line besides it
    md = (tmp_path / "r.md").read_text()
    assert f"1. `{install}` to fetch the OpenTelemetry packages." in md
    assert f"2. `{build}` and `{test}`" in md
    others = {v[1] for v in LOCKFILES.values()} - {install}
    assert not any(f"`{o}`" in md for o in others)
    invoke("instrument", str(app), "--diff", "--report", str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["app"]["package_manager"] == pm


def test_an_app_without_a_build_script_gets_one_next_line_without_a_build(app: Path, tmp_path: Path) -> None:
    pkg = json.loads((app / "package.json").read_text())
    del pkg["scripts"]["build"]
    (app / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    (app / "yarn.lock").write_text("")  # two lockfiles: the note comes as well, not instead
    code, _, err = invoke("instrument", str(app), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("otelize: next:")] == [
        "otelize: next: `npm install`, then `npm test`"]
    assert "otelize: note: lockfiles of several package managers" in err


def test_check_mode_prints_no_next_steps(app: Path) -> None:
    _, _, err = invoke("instrument", str(app), "--check")
    assert "otelize: next:" not in err


# --- the README's architecture diagram --------------------------------------------------------


def test_readme_mermaid_diagram_is_the_current_graph_of_the_sample_app() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Architecture diagram", 1)[1]
    block = re.search(r"```mermaid\n(.*?)```", section, re.S)
    assert block, "no ```mermaid block under ## Architecture diagram"
    code, out, _ = invoke("graph", str(SAMPLE_APP))
    assert code == 0
    assert block.group(1).rstrip("\n") == out.rstrip("\n")


def test_the_command_leaves_fast_but_flushes_its_output_and_runs_exit_handlers(tmp_path: Path) -> None:
    # main() skips the interpreter's teardown (os._exit): it must still run the exit
    # handlers (the pool's finalizers are among them), deliver the whole output through a
    # pipe, and exit with the command's code
    code = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        "threading.Thread(target=lambda: (time.sleep(0.5), print('thread finished', file=sys.stderr))).start()\n"
        "from otelize.cli.main import main\n"
        "sys.argv = ['otelize'] + sys.argv[1:]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "plan", str(SAMPLE_APP), "--format", "json"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)  # all of it: a lost buffer would cut the document
    assert plan["files"] and plan["tasks"]
    assert proc.stderr.index("thread finished") < proc.stderr.index("exit handler ran")  # as the interpreter orders them
    bad = subprocess.run([sys.executable, "-c", code, "plan", str(tmp_path / "missing")], capture_output=True, text=True)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert len(lines) == 3 and "no such directory" in lines[0]  # the one-line error, then the thread's and handler's lines
