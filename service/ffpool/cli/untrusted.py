"""Text and names that come from outside the CLI, checked or made harmless before they reach
the terminal or the file system (pure functions: no I/O).

A server is trusted with jobs, not with the user's terminal or disk: what it says is printed
without its control characters, and a name it sends becomes part of a local path only when it
is one plain path component (docs/cli.md, "download").
"""

from __future__ import annotations

import argparse
import re
from typing import Final

from rich.markup import escape

# C0 controls, DEL, C1 controls (ESC, CSI … start terminal sequences) and the bidirectional
# overrides that make a line read differently from what it holds.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# `scheme://user:password@` and secrets in a query string.
_USERINFO: Final = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")
_SECRET_QUERY: Final = re.compile(r"(?P<key>[?&;](?:token|sig|signature)=)[^&#\s;]*", re.I)
REDACTED: Final = "***"
# A job id as `ffpool jobs` shows it (domain/jobs.py, JobId); upper case is accepted.
_JOB_ID: Final = re.compile(r"[0-9a-f]{32}")
JOB_HELP: Final = "the job id `submit` printed (32 hex digits)"
# The operation and stem parts of a saved name; an extension after its dot.
_NAME_PART: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXTENSION: Final = re.compile(r"(\.[A-Za-z0-9_-]{1,16})?")


class UnsafeName(ValueError):
    """The server sent a name that cannot be one plain component of a local path."""

    def __init__(self, what: str, value: str) -> None:
        super().__init__(
            f"the server sent an unsafe output name: {what} {printable(repr(value))}; "
            "nothing was saved (is --server a server you trust?)"
        )


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with every control character shown as `\\xNN` instead of acting on the
    terminal; `lines`: newlines and tabs stay (an FFmpeg stderr tail)."""
    pattern = _CONTROL_BUT_LINES if lines else _CONTROL
    return pattern.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, *, lines: bool = False) -> str:
    """Outside text for a rich console: printable, and its `[` never taken as markup."""
    return escape(printable(text, lines=lines))


def redact(text: str) -> str:
    """`text` with URL passwords and `token=`/`sig=` query values replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}:{REDACTED}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


def job_id_arg(text: str) -> str:
    """A JOB argument: 32 hex digits (any case), else a usage error before any request."""
    lowered = text.strip().lower()
    if _JOB_ID.fullmatch(lowered) is None:
        raise argparse.ArgumentTypeError(
            f"not a job id: {printable(repr(text))} (32 hex digits, as `ffpool jobs` shows)"
        )
    return lowered


def name_part(what: str, value: str) -> str:
    """An operation or stem from the server as one part of a file name, or UnsafeName."""
    if _NAME_PART.fullmatch(value) is None:
        raise UnsafeName(what, value)
    return value


def extension(what: str, value: str) -> str:
    """A file extension (`.mp4`, or none) from the server, or UnsafeName."""
    if _EXTENSION.fullmatch(value) is None:
        raise UnsafeName(what, value)
    return value


def leaf(value: str) -> str:
    """An output's own name in a package directory: one component, not `.` or `..`."""
    if (
        value in ("", ".", "..")
        or "/" in value
        or "\\" in value
        or "\x00" in value
        or _CONTROL.search(value)
    ):
        raise UnsafeName("output name", value)
    return value
