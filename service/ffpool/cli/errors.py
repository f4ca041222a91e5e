"""A command's failure as its user sees it: one line in words and a documented exit code."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes every client command uses (docs/cli.md, "Exit codes")."""

    OK = 0
    JOB_FAILED = 1  # the job failed or was cancelled
    USAGE = 2  # a bad flag or an invalid job, refused before or by the server
    UNREACHABLE = 3  # connection refused, DNS, TLS, time-out, not an ffpool server
    AUTH = 4  # no token, a wrong token, or a forbidden request
    NOT_FOUND = 5  # unknown job (or another tenant's)
    BUSY = 6  # queue full, too many jobs, rate limited, quota exceeded
    INTERRUPTED = 130  # Ctrl-C (the job was asked to cancel, or left running on a second one)


def describe(exc: BaseException) -> tuple[str, ExitCode]:
    """One line for the user, and the exit code."""
    return f"error: {exc}", ExitCode.USAGE
