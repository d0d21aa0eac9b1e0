"""What the CLI prints: messages on stderr (`Output`: -q/-v, colour and progress only on
a terminal, NO_COLOR), the one-line error, and the diff and plan on stdout."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click


def error_line(exc: BaseException) -> str:
    """The one-line message for a user-facing error."""
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"otelize: error: {msg}"


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Output:
    """Messages on stderr. Colour and progress only on a terminal; NO_COLOR turns colour off.

    -q: only warnings and errors; -v: also details (each skip, the config file used).
    """

    quiet: bool = False
    verbose: bool = False
    tty: bool = False
    color: bool = False
    _status: bool = False

    @classmethod
    def detect(cls, quiet: bool = False, verbose: bool = False) -> "Output":
        tty = stderr_is_tty()
        return cls(quiet, verbose, tty, tty and not os.environ.get("NO_COLOR"))

    def _echo(self, msg: str, fg: str | None = None) -> None:
        self.clear()
        click.echo(click.style(msg, fg=fg) if self.color and fg else msg, err=True, color=self.color)

    def info(self, msg: str) -> None:
        for line in msg.splitlines():
            if "warning:" in line:
                self._echo(line, "yellow")
            elif not self.quiet:
                self._echo(line)

    def detail(self, msg: str) -> None:
        if self.verbose and not self.quiet:
            self._echo(msg, "bright_black")

    def error(self, msg: str) -> None:
        self._echo(msg, "red")

    def status(self, msg: str) -> None:
        """A transient progress line, overwritten by the next message (terminal only)."""
        if self.tty and not self.quiet:
            click.echo(f"\r\x1b[K{msg}", err=True, nl=False, color=True)
            self._status = True

    def progress(self) -> Callable[[str, int, int], None] | None:
        """A callback for otelize.run.progress: `otelize: parsed 120/959 files` on one line, at most 10 times a
        second (terminal only, not with -q)."""
        if not self.tty or self.quiet:
            return None
        last = [0.0]

        def tick(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= 0.1:
                last[0] = now
                self.status(f"otelize: {stage} {done}/{total} files")

        return tick

    def clear(self) -> None:
        if self._status:
            click.echo("\r\x1b[K", err=True, nl=False, color=True)
            self._status = False


def stdout_colour() -> bool:
    """Colour on stdout: only a terminal, never with NO_COLOR."""
    try:
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    except (AttributeError, ValueError):
        return False


DIFF_COLOURS = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def echo_diff(text: str) -> None:
    """A unified diff on stdout, coloured as git colours it when stdout is a terminal."""
    if not stdout_colour():
        click.echo(text, nl=False)
        return
    out = []
    for line in text.splitlines(keepends=True):
        style = next((s for prefix, s in DIFF_COLOURS if line.startswith(prefix)), None)
        body, nl = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        out.append((click.style(body, bold=True) if style == "bold" else click.style(body, fg=style) if style else body) + nl)
    click.echo("".join(out), nl=False, color=True)


def echo_plan(text: str) -> None:
    """The plan on stdout, its section headings (unindented `name:` lines) in bold on a terminal."""
    if not stdout_colour():
        click.echo(text, nl=False)
        return
    lines = [click.style(line, bold=True) if line and not line.startswith(" ") and line.rstrip().endswith(":") or
             line.startswith("app: ") else line for line in text.split("\n")]
    click.echo("\n".join(lines), nl=False, color=True)


def output() -> Output:
    """The Output of the current command (set up by the group's -q/-v)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Output) if ctx is not None else None
    return obj if obj is not None else Output.detect()
