"""One exception type per exit code; the CLI turns them into a one-line message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHANGES = 1  # --check found changes / verify found missing spans
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_CONFLICT = 4  # the project changed during the run, or another run holds its lock: nothing written
EXIT_NOTHING = 5  # otelize found nothing it can instrument in the app: nothing written
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM (128 + SIGINT, as shells report it)


class OtelizeError(Exception):
    """A user-facing error: printed as one line, mapped to an exit code."""

    exit_code = EXIT_BAD_INPUT


class BadInput(OtelizeError):
    exit_code = EXIT_BAD_INPUT


class RuleError(BadInput):
    """A rule or profile file failed validation. The message names file and key."""


class EditConflict(OtelizeError):
    """Two edits overlap. This is a bug in a worker, never silently merged."""

    exit_code = EXIT_BAD_INPUT


class NothingToInstrument(OtelizeError):
    """No source file otelize can analyse, or no route and no function to wrap: writing
    tracing/otel files and packages the app would never use helps nobody."""

    exit_code = EXIT_NOTHING


class StaleInput(OtelizeError):
    """A file changed between analysis and writing: nothing was written."""

    exit_code = EXIT_CONFLICT


class Busy(OtelizeError):
    """Another otelize run holds the project's lock for longer than we wait."""

    exit_code = EXIT_CONFLICT


class Interrupted(OtelizeError):
    """SIGINT/SIGTERM; the message says what state the tree is in."""

    exit_code = EXIT_INTERRUPTED
