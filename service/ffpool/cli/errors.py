"""A command's failure as its user sees it: one line in words and a documented exit code
(docs/cli.md, "Errors"). Pure: it reads the exception (and the --server URL, for the host a
DNS failure names), never the network."""

from __future__ import annotations

import enum
import errno
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from pydantic import ValidationError
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from ffpool import names
from ffpool.cli.config import ConfigError
from ffpool.cli.invalid import describe_invalid, describe_refusal, is_users
from ffpool.cli.op_flags import UsageError
from ffpool.cli.untrusted import UnsafeName, printable, redact
from ffpool.client.endpoints import NotAnFfpoolServer
from ffpool.client.outcomes import ClientError
from ffpool.domain.protocol import ErrorCode


class ExitCode(enum.IntEnum):
    """The exit codes every client command uses (docs/cli.md, "Exit codes")."""

    OK = 0
    JOB_FAILED = 1  # the job failed or was cancelled
    USAGE = 2  # a bad flag or an invalid job, refused before or by the server
    UNREACHABLE = 3  # connection refused, DNS, TLS, time-out, not an ffpool server
    AUTH = 4  # no token, a wrong token, or a forbidden request
    NOT_FOUND = 5  # unknown job (or another tenant's)
    BUSY = 6  # queue full, too many jobs, rate limited, quota exceeded, server trouble
    UNEXPECTED = 70  # an error the CLI has no words for: a bug (sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C (the job was asked to cancel, or left running on a second one)


Described = tuple[str, ExitCode]
TOKEN_HINT: Final = (
    f"pass an API token with --token, ${names.TOKEN_ENV} or the config file (docs/cli.md)"
)
BUSY_WORDS: Final = {
    ErrorCode.QUEUE_FULL: "the job queue is full",
    ErrorCode.TOO_MANY_JOBS: "you have too many jobs queued or running",
    ErrorCode.RATE_LIMITED: "too many requests",
    ErrorCode.QUOTA_EXCEEDED: "the disk quota has no room left",
    ErrorCode.BUSY: "the server is busy",
    ErrorCode.BACKEND_UNAVAILABLE: "the server's queue backend is unavailable",
    ErrorCode.INTERNAL_ERROR: "the server failed",
}
USAGE_CODES: Final = frozenset(
    {ErrorCode.INVALID_JSON, ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.UNKNOWN_TYPE}
    | {ErrorCode.INVALID_MESSAGE, ErrorCode.INVALID_JOB}
)
FILE_ERRORS: Final = (
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
_ADDRESS = re.compile(r"\('([^']+)', (\d+)")


def describe(exc: BaseException, server: str | None = None) -> Described:
    """One line for the user, and the exit code. `server` is the --server URL (or the one
    the configuration gave), named where the exception does not say which host failed.
    What the line quotes (the server's words, URLs) is made safe to print: no control
    characters, no passwords or tokens (cli/untrusted.py)."""
    line, code = _describe(exc, server)
    return printable(redact(line)), code


def _describe(exc: BaseException, server: str | None) -> Described:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0], server)
    for kinds, handler in HANDLERS:
        if isinstance(exc, kinds) and (found := handler(exc, server)) is not None:
            return found
    return (
        f"unexpected error: {type(exc).__name__}: {_short(str(exc))} "
        "(run with --debug for details)",
        ExitCode.UNEXPECTED,
    )


def address(server: str | None) -> str:
    """`host:port` of a server URL (the scheme's port if it names none); `the server` if
    there is no URL to read."""
    if not server:
        return "the server"
    parts = urlsplit(server if "://" in server else f"http://{server}")
    secure = parts.scheme in ("https", "wss")
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError:
        return parts.netloc or server
    host = parts.hostname or server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _short(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _invalid(exc: Any, server: str | None) -> Described:
    if is_users(exc):
        return describe_invalid(exc), ExitCode.USAGE
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or exc.title
    return (
        f"cannot read the answer of {address(server)} ({exc.title}, {where}: {first['msg']}); "
        "is --server an ffpool server of a compatible version?",
        ExitCode.UNREACHABLE,
    )


def _usage(exc: Any, server: str | None) -> Described:
    return _short(str(exc)), ExitCode.USAGE


def _refused(exc: Any, server: str | None) -> Described:
    """A refusal by the server, by its protocol error code (domain/protocol.py ErrorCode)."""
    error = exc.error
    code, message = error.code, _short(error.message)
    if code is ErrorCode.UNKNOWN_JOB:
        job = f"job {error.job_id}" if error.job_id else "job"
        return (
            f"no such {job}: {message} (unknown_job: it does not exist, is forgotten, or is "
            "another tenant's)",
            ExitCode.NOT_FOUND,
        )
    if code is ErrorCode.UNAUTHORIZED:
        return f"not authorized ({message}); {TOKEN_HINT}", ExitCode.AUTH
    if code in BUSY_WORDS:
        hint = "tell the server's operator" if code is ErrorCode.INTERNAL_ERROR else "try later"
        return f"{BUSY_WORDS[code]} ({code.value}: {message}); {hint}", ExitCode.BUSY
    if code in USAGE_CODES:
        return f"the server refused it ({code.value}): {describe_refusal(message)}", ExitCode.USAGE
    return f"the server refused it ({code.value}): {message}", ExitCode.USAGE


def _handshake(exc: Any, server: str | None) -> Described:
    """The WebSocket upgrade answered with an HTTP status instead of the protocol."""
    where = _ws_url(exc) or address(server)
    if not isinstance(exc, InvalidStatus):
        return (
            f"{where} is not an ffpool server (the WebSocket handshake failed: {exc}); "
            "check --server",
            ExitCode.UNREACHABLE,
        )
    status = exc.response.status_code
    if status == 401:
        return f"{where} refused the connection: not authorized (HTTP 401); {TOKEN_HINT}", (
            ExitCode.AUTH
        )
    if status == 403:
        body = _short(bytes(exc.response.body or b"").decode(errors="replace"), 100)
        return f"{where} refused the connection: forbidden (HTTP 403: {body})", ExitCode.AUTH
    if status == 429:
        return f"{where} refused the connection: too many connections (HTTP 429)", ExitCode.BUSY
    if status >= 500:
        return (
            f"{where} answered HTTP {status} to the WebSocket handshake; is the server (or "
            "its Ingress's backend) up?",
            ExitCode.UNREACHABLE,
        )
    return (
        f"{where} is not an ffpool server: no WebSocket there (HTTP {status}); check --server",
        ExitCode.UNREACHABLE,
    )


def _ws_url(exc: BaseException) -> str | None:
    """The WebSocket URL that failed (the innermost `uri` or `ws_url` in the traceback): not
    --server's when the server's /ui/config.json names another port or path."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        url = getattr(owner, "uri", None) or getattr(owner, "ws_url", None)
        found = url if isinstance(url, str) else found
        tb = tb.tb_next
    return found


def _http_status(exc: Any, server: str | None) -> Described:
    """An HTTP request answered with an error status (aiohttp's raise_for_status)."""
    status, url = exc.status, exc.request_info.real_url
    if exc.headers is None:  # no HTTP answer at all: aiohttp could not parse one
        return (
            f"{url.host}:{url.port} is not an ffpool server (it does not answer HTTP); "
            "check --server",
            ExitCode.UNREACHABLE,
        )
    said = f"HTTP {status} {_short(exc.message, 80)}".strip() + f" from {_short(str(url), 120)}"
    if status in (401, 403):
        return f"not authorized ({said}); {TOKEN_HINT}", ExitCode.AUTH
    if status == 404:
        return f"not found ({said})", ExitCode.NOT_FOUND
    if status in (429, 503, 507):
        return f"the server is busy ({said}); try later", ExitCode.BUSY
    if status in (400, 413):
        return f"the server refused it ({said})", ExitCode.USAGE
    return f"the request failed ({said})", ExitCode.UNREACHABLE


def _connector(exc: Any, server: str | None) -> Described | None:
    """aiohttp could not connect: the same words as a direct socket error, for its host."""
    inner = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None)
    where = f"{exc.host}:{exc.port}"
    if isinstance(inner, BaseException):
        return _network(inner, where)
    return f"cannot connect to {where}: {_short(str(exc))} (--server)", ExitCode.UNREACHABLE


def _socket(exc: Any, server: str | None) -> Described | None:
    match = _ADDRESS.search(str(exc))
    where = f"{match.group(1)}:{match.group(2)}" if match else address(server)
    return _network(exc, where)


def _network(exc: BaseException, where: str) -> Described | None:
    """Socket, DNS and TLS failures in words; None for an error of another kind."""
    unreachable = ExitCode.UNREACHABLE
    host = where.rpartition(":")[0] or where
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return f"the TLS certificate of {where} is not trusted: {reason} (--server)", unreachable
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake with {where} failed ({exc.reason or exc}); is it a TLS server? "
            "(a plain one is http:// or ws:// in --server)",
            unreachable,
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror or exc}; check --server", unreachable
    if isinstance(exc, TimeoutError):
        return f"timed out talking to {where}; is the server up and reachable?", unreachable
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return (
            f"cannot connect to {where}: connection refused; is the server running? (--server)",
            unreachable,
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"cannot connect to {where}: {exc.strerror} (--server)", unreachable
    if isinstance(exc, ConnectionError | ConnectionClosed | aiohttp.ServerDisconnectedError):
        return (
            f"the connection to {where} closed unexpectedly ({_short(str(exc), 80)}); the "
            "server may have restarted: try again",
            unreachable,
        )
    return None


def _file(exc: Any, server: str | None) -> Described | None:
    """A local file (--file, -o, an output directory) that cannot be read or written."""
    if exc.filename is not None:
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}", ExitCode.USAGE
    if isinstance(exc, FILE_ERRORS):  # raised with a message of its own (cli/saving.py)
        return _short(str(exc)), ExitCode.USAGE
    return None


def _other_http(exc: Any, server: str | None) -> Described:
    return f"the HTTP request failed: {_short(str(exc))} (--server)", ExitCode.UNREACHABLE


Handler = Callable[[Any, str | None], Described | None]
# First match wins: the specific kinds before the OSError/ConnectionError they derive from.
HANDLERS: Final[
    tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Handler], ...]
] = (
    (ValidationError, _invalid),
    (UnsafeName, lambda exc, server: (str(exc), ExitCode.UNREACHABLE)),
    ((UsageError, ConfigError, InvalidURI), _usage),
    (ClientError, _refused),
    (NotAnFfpoolServer, lambda exc, server: (f"{exc}; check --server", ExitCode.UNREACHABLE)),
    (InvalidHandshake, _handshake),
    (aiohttp.ClientResponseError, _http_status),
    (aiohttp.ClientConnectorError, _connector),
    (TimeoutError, lambda exc, server: _network(exc, address(server))),
    ((ssl.SSLError, socket.gaierror, ConnectionError, ConnectionClosed), _socket),
    (aiohttp.ServerDisconnectedError, _socket),
    (OSError, _file),
    (OSError, _socket),
    (aiohttp.ClientError, _other_http),
)
