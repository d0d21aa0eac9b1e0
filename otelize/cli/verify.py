"""`otelize verify`: thin — options in, otelize.verification.verify, table out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from otelize.cli.main import cli, config_option, project_argument, reports_errors
from otelize.cli.output import output

VERIFY_EPILOG = """\b
Examples:
  otelize verify ./my-app                          # run its tests (`npm test`, `pnpm test`, ...), compare spans
  otelize verify ./my-app --requests smoke.yaml    # start the app, send the requests
  otelize verify ./my-app --tree --format json
\b
Exit codes: 0 every planned span was observed, 1 some were not, 2 bad input.
"""


@cli.command(epilog=VERIFY_EPILOG)
@project_argument
@config_option
@click.option("--command", "command", metavar="CMD", help="Command to run instead of the app's `test` script (or `start` with --requests), "
                   "through its package manager.")
@click.option("--requests", "requests_file", type=click.Path(path_type=Path, exists=True), metavar="FILE",
              help="YAML list of HTTP requests; otelize starts the app itself and sends them.")
@click.option("--preload/--no-preload", default=None,
              help="Preload the built tracing bootstrap through NODE_OPTIONS (default: only for ESM apps).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tree", is_flag=True, help="Also print the received trace trees.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for the command.")
@reports_errors
def verify(path: Path, config: Path | None, command: str | None, requests_file: Path | None, preload: bool | None,
           fmt: str, tree: bool, timeout: float) -> None:
    """Run the app against an embedded OTLP receiver and check the spans it emits."""
    from otelize.verification import verify as v
    from otelize.project.settings import load_settings

    settings = load_settings(path, config)
    if settings.source:
        output().detail(f"otelize: settings from {settings.source}")

    output().status(f"otelize: running {path} against the embedded OTLP receiver ...")
    result = v.verify(path, command=command, requests_file=requests_file, preload=preload, timeout=timeout,
                      settings=settings)
    output().clear()
    if result.not_installed:
        output().info(f"otelize: warning: {path}: node_modules has no @opentelemetry/api: run `{result.not_installed}` first")
    if result.command_exit:
        output().info(f"otelize: warning: `{result.command}` exited with {result.command_exit}; the last lines of its output:")
        output().info("\n".join(f"  | {line}" for line in result.command_output))
    if fmt == "json":
        data = result.to_dict()
        if tree:
            data["trees"] = v.render_trees(result)
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(v.render_table(result), nl=False)
        if tree:
            click.echo("")
            click.echo(v.render_trees(result), nl=False)
    sys.exit(result.exit_code())
