"""Thin click CLI: parse options, call otelize.api, print the result.

One click command per verb. Every command is wrapped in `@reports_errors`,
the one place where an `OtelizeError` becomes a one-line
`otelize: error: <msg>` on stderr and its exit code. Commands hold no logic:
formatting lives in `otelize.report_*`, analysis in `otelize.api`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from otelize import __version__
from otelize.errors import OtelizeError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  check found changes / verify incomplete
  2  bad input (no such path, no package.json, invalid JSON, not an Express app, bad rule file)
  3  partial: some files are unparsable and were left alone
"""


def error_line(exc: BaseException) -> str:
    """The one-line message for a user-facing error."""
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"otelize: error: {msg}"


def reports_errors(fn: F) -> F:
    """Turn an OtelizeError into `otelize: error: <msg>` on stderr and its exit code. Never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OtelizeError as exc:
            click.echo(error_line(exc), err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def project_argument(fn: F) -> F:
    """The PATH argument shared by every command that reads a project.

    Existence is checked by `otelize.discover` (a one-line BadInput), not by click.
    """
    return click.argument("path", type=click.Path(path_type=Path), metavar="PATH")(fn)


def rules_option(fn: F) -> F:
    """`--rules DIR` (repeatable): extra rule folders, loaded after the built-in rules."""
    return click.option(
        "--rules",
        "rule_dirs",
        multiple=True,
        type=click.Path(path_type=Path),
        metavar="DIR",
        help="Extra rule folder (repeatable); its rules are enabled and override built-in ids.",
    )(fn)


def analyze_project(path: Path, rule_dirs: tuple[Path, ...]) -> Any:
    from otelize.api import analyze

    return analyze(path, rule_dirs=list(rule_dirs) or None)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="otelize")
def cli() -> None:
    """Add OpenTelemetry tracing to an Express/TypeScript app, deterministically."""


@cli.command(epilog="Example: otelize plan ./my-app --format json > plan.json")
@project_argument
@rules_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def plan(path: Path, rule_dirs: tuple[Path, ...], fmt: str) -> None:
    """Show the app, its routes, file categories and the planned tasks."""
    from otelize import report_plan

    analysis = analyze_project(path, rule_dirs)
    click.echo(report_plan.FORMATS[fmt](analysis), nl=False)


@cli.command(epilog="Example: otelize graph ./my-app > architecture.mmd")
@project_argument
@rules_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@reports_errors
def graph(path: Path, rule_dirs: tuple[Path, ...], fmt: str) -> None:
    """Draw the architecture: routes, modules by category, calls."""
    from otelize import report_plan

    analysis = analyze_project(path, rule_dirs)
    click.echo(report_plan.GRAPH_FORMATS[fmt](analysis), nl=False)


def main() -> None:
    cli(prog_name="otelize")


# Commands defined in their own modules register on `cli` when imported.
from otelize import cli_instrument  # noqa: E402,F401
from otelize import cli_verify  # noqa: E402,F401
