"""Thin click CLI: parse options, call otelize.api, print the result.

One click command per verb. Every command is wrapped in `@reports_errors`,
the one place where an `OtelizeError` becomes a one-line
`otelize: error: <msg>` on stderr and its exit code. Commands hold no logic:
formatting lives in `otelize.report_*`, analysis in `otelize.api`.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from otelize import __version__
from otelize.cli.output import Output, echo_plan, error_line, output
from otelize.errors import EXIT_INTERRUPTED, Interrupted, OtelizeError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes:
  0  ok
  1  check found changes / verify incomplete
  2  bad input (no such path, no package.json, invalid JSON, not an Express app, bad rule file)
  3  partial: some files are unparsable and were left alone
  4  nothing written: a file changed during the run, or another run holds the project's lock
  130  interrupted (Ctrl-C, SIGTERM); the message says what state the tree is in
"""


def reports_errors(fn: F) -> F:
    """Turn an OtelizeError into `otelize: error: <msg>` on stderr and its exit code. Never a traceback.

    Ctrl-C and SIGTERM become `otelize: interrupted: <state of the tree>` and
    exit code 130 (a commit in progress defers them until it is complete:
    otelize.synthesize.journal). Warnings the library raises (OtelizeWarning) are printed
    as `otelize: warning: <msg>`.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import warnings

        from otelize.synthesize.journal import OtelizeWarning

        previous = _sigterm_as_interrupt()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", OtelizeWarning)
                try:
                    return fn(*args, **kwargs)
                finally:
                    for w in caught:
                        if issubclass(w.category, OtelizeWarning):
                            output().info(f"otelize: warning: {w.message}")
        except Interrupted as exc:
            output().error(f"otelize: interrupted: {exc}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            output().error(f"otelize: interrupted: {_tree_state()}")
            sys.exit(EXIT_INTERRUPTED)
        except OtelizeError as exc:
            output().error(error_line(exc))
            sys.exit(exc.exit_code)
        finally:
            output().clear()
            if previous is not None:
                import signal

                signal.signal(signal.SIGTERM, previous)

    return wrapper  # type: ignore[return-value]


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        out = ctx.find_object(Output)
        if out is not None:
            setattr(out, param.name or "", True)


def verbosity_options(fn: F) -> F:
    """-q/-v after the subcommand too (`otelize instrument . --check -q`), as before it."""
    fn = click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_set_verbosity,
                      help="More detail on stderr (each skip, the settings file).")(fn)
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_verbosity,
                        help="Only warnings and errors on stderr.")(fn)


def _sigterm_as_interrupt() -> Any:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does; returns the handler it replaced."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _tree_state() -> str:
    from otelize.synthesize.write import COMMITTED

    if COMMITTED[0]:
        return f"after every change was written ({COMMITTED[0]} file(s)); the tree is consistent"
    return "nothing was written"


def project_argument(fn: F) -> F:
    """The PATH argument shared by every command that reads a project (default: the current folder),
    and the -q/-v options every such command takes.

    Existence is checked by `otelize.project.discover` (a one-line BadInput), not by click.
    """
    fn = click.argument("path", type=click.Path(path_type=Path, readable=False), metavar="[PATH]", default=".")(fn)
    return verbosity_options(fn)


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


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE",
        help="Settings file to use instead of PATH/.otelize.yaml.",
    )(fn)


def settings_options(fn: F) -> F:
    """`--config` and the settings of .otelize.yaml as flags (a flag given wins over the file)."""
    from otelize.project.settings import PROTOCOLS, SPAN_NAMING

    options = [
        config_option,
        click.option("--service-name", metavar="NAME", help="service.name of the spans (default: package.json name)."),
        click.option("--protocol", type=click.Choice(PROTOCOLS), help="Exporter protocol [default: http/protobuf]."),
        click.option("--include", multiple=True, metavar="GLOB", help="Only these source files (repeatable; replaces `include:`)."),
        click.option("--exclude", multiple=True, metavar="GLOB", help="Leave these files out (repeatable; replaces `exclude:`)."),
        click.option("--enable", multiple=True, metavar="NAME", help="Turn a worker or category on (repeatable)."),
        click.option("--disable", multiple=True, metavar="NAME", help="Turn a worker or category off (repeatable)."),
        click.option("--span-naming", type=click.Choice(SPAN_NAMING), help="Span name style [default: class.method]."),
        click.option("--force-toolchain", is_flag=True,
                     help="Add the OpenTelemetry packages even to a TypeScript/Node toolchain no supported line fits."),
        rules_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def resolve_settings(path: Path, flags: dict[str, Any]) -> tuple[Any, list[Path]]:
    """(settings, extra rule dirs): the config file, then the flags over it."""
    from otelize.project.settings import load_settings, with_flags

    flags = dict(flags)
    config, rule_dirs = flags.pop("config", None), flags.pop("rule_dirs", ())
    settings = with_flags(load_settings(path, config), **flags)
    if settings.source:
        output().detail(f"otelize: settings from {settings.source}")
    return settings, list(rule_dirs)


def cache_option(fn: F) -> F:
    return click.option(
        "--cache", "use_cache", is_flag=True,
        help="Parse only the files that changed since the last cached run (PATH/.otelize-cache/, git-ignored).",
    )(fn)


def analyze_project(path: Path, flags: dict[str, Any], cache: bool = False) -> Any:
    from otelize.api import analyze

    from otelize.run import progress

    settings, rule_dirs = resolve_settings(path, flags)
    output().status(f"otelize: analysing {path} ...")
    with progress.reporting(output().progress()):
        return analyze(path, rule_dirs=rule_dirs or None, settings=settings, cache=cache)


class OtelizeGroup(click.Group):
    """A click group whose usage errors are one line, `otelize: error: …`, exit 2, like every other error."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            click.echo(error_line(Exception(exc.format_message() + where)), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(error_line(Exception(exc.format_message())), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("otelize: interrupted: nothing was written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OtelizeGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="otelize")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.option("-v", "--verbose", is_flag=True, help="More detail on stderr (each skip, the settings file).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Add OpenTelemetry tracing to an Express/TypeScript app, deterministically.

    \b
    Examples:
      otelize plan ./my-app
      otelize instrument ./my-app --diff
      otelize -q instrument ./my-app --check
    """
    ctx.obj = Output.detect(quiet=quiet, verbose=verbose)


PLAN_EPILOG = """\b
Examples:
  otelize plan ./my-app
  otelize plan ./my-app --format json > plan.json
  otelize plan ./my-app --rules ./otelize-rules --disable cache
"""

GRAPH_EPILOG = """\b
Examples:
  otelize graph ./my-app > architecture.mmd
  otelize graph ./my-app --format dot | dot -Tsvg > architecture.svg
"""


def analysis_command(epilog: str, formats: tuple[str, ...]) -> Callable[[Callable[[Any, str], None]], click.Command]:
    """Register a command that analyses PATH (the settings flags, --cache) and shows the
    analysis in one of `formats` (the first is the default): the decorated function,
    named as the command and documented as its help, gets (analysis, format)."""

    def register(show: Callable[[Any, str], None]) -> click.Command:
        @cli.command(name=show.__name__, help=show.__doc__, epilog=epilog)
        @project_argument
        @settings_options
        @click.option("--format", "fmt", type=click.Choice(list(formats)), default=formats[0], show_default=True)
        @cache_option
        @reports_errors
        def command(path: Path, fmt: str, use_cache: bool, **flags: Any) -> None:
            analysis = analyze_project(path, flags, use_cache)
            output().clear()
            show(analysis, fmt)

        return command

    return register


@analysis_command(PLAN_EPILOG, ("text", "json"))
def plan(analysis: Any, fmt: str) -> None:
    """Show the app, its routes, file categories and the planned tasks."""
    from otelize.report import plan as report_plan

    text = report_plan.FORMATS[fmt](analysis)
    echo_plan(text) if fmt == "text" else click.echo(text, nl=False)


@analysis_command(GRAPH_EPILOG, ("mermaid", "dot"))
def graph(analysis: Any, fmt: str) -> None:
    """Draw the architecture: routes, modules by category, calls."""
    from otelize.report import plan as report_plan

    click.echo(report_plan.GRAPH_FORMATS[fmt](analysis), nl=False)


def main() -> None:
    """The `otelize` command (console script and `python -m otelize`).

    A finished run leaves without tearing the interpreter down: what the interpreter does
    first still happens (running threads and executors are joined, then the exit handlers
    run: pool finalizers, anything registered with atexit), the standard
    streams are flushed, and the process exits with its code. Freeing every module and
    object one by one (networkx alone is ~300 modules) took 100-200 ms after the work
    was done, a third of a small app's `--check`. Every file otelize writes is written
    and closed (atomically) before this point; library callers and `cli` itself are
    unaffected."""
    try:
        cli(prog_name="otelize")
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    _leave(code)


def _leave(code: Any) -> None:
    import atexit

    if code is None:
        code = 0
    elif not isinstance(code, int):  # `sys.exit("message")`: as Python prints it
        print(code, file=sys.stderr)
        code = 1
    threading = sys.modules.get("threading")
    if threading is not None and hasattr(threading, "_shutdown"):
        threading._shutdown()  # as the interpreter does first: join the threads (and executors) still running
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`otelize plan | head`): nothing more to say
            pass
    os._exit(code & 0xFF)


# Commands defined in their own modules register on `cli` when imported.
from otelize.cli import instrument as cli_instrument  # noqa: E402,F401
from otelize.cli import verify as cli_verify  # noqa: E402,F401
from otelize.cli import rules as cli_rules  # noqa: E402,F401
