"""`otelize instrument`: thin — options in, api.instrument, report out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from otelize.cli.main import cli, project_argument, reports_errors, resolve_settings, settings_options
from otelize.cli.output import echo_diff, output
from otelize.errors import BadInput

INSTRUMENT_EPILOG = """\b
Examples:
  otelize instrument ./my-app                 # write in place
  otelize instrument ./my-app --diff          # show the diff, write nothing
  otelize instrument ./my-app --check         # CI / pre-commit: exit 1 if anything would change
  otelize instrument ./my-app --out build/app --report report.md
  otelize instrument ./my-app --exit-nonzero-on-change   # pre-commit: fix, then fail
  otelize instrument ./my-app --protocol grpc --disable cache
\b
Exit codes: 0 done or nothing to do, 1 --check found changes (or files were
changed with --exit-nonzero-on-change), 2 bad input, 3 partial (some files
unparsable and left untouched), 4 nothing written (a file changed during the
run, or another run holds the lock), 5 nothing to instrument (no source files,
or no route and no function to wrap; nothing written), 130 interrupted.
"""


@cli.command(epilog=INSTRUMENT_EPILOG)
@project_argument
@settings_options
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff and write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if anything would change; write nothing.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), metavar="DIR", help="Write an instrumented copy to DIR.")
@click.option("--report", "report_file", type=click.Path(path_type=Path), metavar="FILE", help="Write a report (.json or .md).")
@click.option("--cache", "use_cache", is_flag=True,
              help="Reuse earlier runs: parse only changed files, and skip all work when nothing changed since "
                   "the last clean run (state in PATH/.otelize-cache/, git-ignored; not with --out).")
@click.option("--exit-nonzero-on-change", "fail_on_change", is_flag=True,
              help="Write in place, then exit 1 if any file changed (like a formatter in pre-commit).")
@reports_errors
def instrument(
    path: Path,
    show_diff: bool,
    check: bool,
    out_dir: Path | None,
    report_file: Path | None,
    fail_on_change: bool,
    use_cache: bool,
    **flags: Any,
) -> None:
    """Add OpenTelemetry packages, the SDK bootstrap and spans to the app."""
    from otelize.run import progress
    from otelize.report import instrument as report
    from otelize.api import instrument as run

    if sum(bool(x) for x in (show_diff, check, out_dir)) > 1:
        raise BadInput("--diff, --check and --out are mutually exclusive")
    if fail_on_change and (show_diff or check or out_dir):
        raise BadInput("--exit-nonzero-on-change writes in place: it does not go with --diff, --check or --out")
    if report_file is not None and report_file.suffix not in (".json", ".md"):
        raise BadInput(f"{report_file}: --report must end in .json or .md")
    if report_file is not None and not report_file.parent.is_dir():  # checked before anything is written
        raise BadInput(f"{report_file}: --report folder does not exist")
    if out_dir is not None and use_cache:
        raise BadInput("--cache does not go with --out: the copy is always written whole")
    if report_file is not None:
        from otelize.report.instrument import check_report_path

        check_report_path(path, report_file)
    mode = "diff" if show_diff else "check" if check else "out" if out_dir else "write"
    settings, rule_dirs = resolve_settings(path, flags)
    out = output()
    out.status(f"otelize: instrumenting {path} ...")
    with progress.reporting(out.progress()):
        result = run(
            path,
            write=mode == "write",
            out_dir=out_dir,
            rule_dirs=rule_dirs or None,
            settings=settings,
            cache=use_cache,
            cached_answer=report_file is None and not show_diff,
        )
    out.clear()
    if show_diff:
        echo_diff(report.unified_diff(result))
    if report_file is not None:
        text = report.render_json(result) if report_file.suffix == ".json" else report.render_markdown(result)
        try:
            report_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"{report_file}: cannot write the report ({exc.strerror})") from None
    for skip in result.synthesis.skips:
        out.detail(f"otelize: skipped {skip.file}:{skip.line} {skip.symbol}: {skip.reason}")
    out.info(report.summary(result, mode=mode))
    for skip in result.not_loaded:  # a warning whatever the verbosity: every span would stay a no-op
        click.echo(f"otelize: warning: {skip.reason}", err=True)
    if result.synthesis.skips:  # (a cached clean --check has none: it imports no worker)
        from otelize.workers.config import env_unseen

        for skip in env_unseen(result.synthesis.skips):  # the SDK runs, but not as the user configured it
            click.echo(f"otelize: warning: {skip.file}:{skip.line}: {skip.reason}", err=True)
    for skip in result.left_out:  # a warning whatever the verbosity: those calls get no spans
        click.echo(f"otelize: warning: {skip.reason}", err=True)
    sys.exit(result.exit_code(check=check or fail_on_change))


STRIP_EPILOG = """\b
Examples:
  otelize strip ./my-app           # remove everything otelize added
  otelize strip ./my-app --diff    # show what would be removed
\b
Instrumentation edited by hand since is left alone and reported.
Exit codes: 0 done or nothing to do, 1 --check found instrumentation, 2 bad input,
4 nothing written (a file changed during the run, or another run holds the lock), 130 interrupted.
"""


@cli.command(epilog=STRIP_EPILOG)
@project_argument
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff and write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if anything would be removed; write nothing.")
@reports_errors
def strip(path: Path, show_diff: bool, check: bool) -> None:
    """Remove exactly what otelize added: spans, imports, generated files, packages."""
    from otelize.report import instrument as report
    from otelize.stripping.strip import strip as run

    result = run(path, write=not (show_diff or check))
    if show_diff:
        changes = {p: (old, new if new is not None else b"") for p, (old, new) in result.changes.items()}
        echo_diff(report.diff_changes(changes))
    out = output()
    for skip in result.kept:
        out.info(f"otelize: kept {skip.file}:{skip.line} {skip.symbol}: {skip.reason}")
    preview = show_diff or check
    if not result.changes:
        out.info(f"otelize: nothing to do (no otelize instrumentation found; {len(result.kept)} left alone)")
    else:
        verb = "would strip" if preview else "stripped"
        if not show_diff:
            for file, (_, new) in sorted(result.changes.items()):
                out.info(f"otelize: {verb} {file}{' (deleted)' if new is None else ''}")
        out.info(f"otelize: {verb} {len(result.changes)} file(s); {len(result.kept)} left alone")
    if result.lockfile is not None and not preview:
        from otelize.report.instrument import next_steps

        out.info(f"otelize: next: `{next_steps(result.package_manager)[0]}` to drop the removed packages "
                 f"from {result.lockfile} and node_modules")
    sys.exit(result.exit_code(check=check))
