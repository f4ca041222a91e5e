"""How a job ends for a client: its outcome event, or the server's refusal as ClientError.

A module of its own so that both the session (session.py) and the follow that rides out
reconnects (resume.py) use them without importing each other. The HTTP side's refusals
(`{"error", "message"}` bodies, server/http.py's ErrorBody) become ClientError too, so a caller
handles one kind of refusal whichever way a request went.
"""

from __future__ import annotations

import json
from typing import Any, Final

import aiohttp

from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent
from ffpool.domain.protocol import Error, ErrorCode

Outcome = CompletedEvent | FailedEvent | CancelledEvent
TERMINAL = (CompletedEvent, FailedEvent, CancelledEvent)
# An HTTP error whose body names no protocol error code: the code its status stands for.
CODE_FOR_STATUS: Final = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.UNAUTHORIZED,
    404: ErrorCode.UNKNOWN_JOB,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.BACKEND_UNAVAILABLE,
    507: ErrorCode.QUOTA_EXCEEDED,
}


class ClientError(Exception):
    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def error_from_http(status: int, body: str) -> Error:
    """The refusal an HTTP answer carries: its body's code and message where it has them."""
    word, message = "", body.strip()[:200]
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        word = str(parsed.get("error", ""))
        message = str(parsed.get("message", "")) or message
    if word in {c.value for c in ErrorCode}:
        code = ErrorCode(word)
    elif status in CODE_FOR_STATUS:
        code = CODE_FOR_STATUS[status]
    else:
        code = ErrorCode.INVALID_MESSAGE if status < 500 else ErrorCode.INTERNAL_ERROR
    return Error(code=code, message=message or f"HTTP {status}")


async def http_error(resp: aiohttp.ClientResponse) -> ClientError:
    """A ClientError for a refused HTTP request (`raise await http_error(resp)`)."""
    return ClientError(error_from_http(resp.status, await resp.text(errors="replace")))
