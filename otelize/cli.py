"""Thin click CLI: parse options, call otelize.api, print the result."""

from __future__ import annotations

import click

from otelize import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="otelize")
def cli() -> None:
    """Add OpenTelemetry tracing to an Express/TypeScript app, deterministically."""


def main() -> None:
    cli(prog_name="otelize")
