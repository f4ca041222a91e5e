"""WebSocket protocol v1: every message, either way, is a JSON object with a `type`.

The models here are the protocol's definition: `docs/protocol.md` explains them and
`schema/protocol.json` is generated from them (`ffpool schema`).
"""

from __future__ import annotations

import enum
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobState,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import IdempotencyKey, JobId, JobSpec, Priority

PROTOCOL_VERSION = 1
# Printable ASCII only: it is echoed back, and must survive any JSON encoder on the way.
RequestId = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{1,64}$")]
_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,64}")


class ErrorCode(enum.StrEnum):
    INVALID_JSON = "invalid_json"
    MESSAGE_TOO_LARGE = "message_too_large"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_MESSAGE = "invalid_message"
    INVALID_JOB = "invalid_job"
    UNKNOWN_JOB = "unknown_job"
    NOT_CANCELLABLE = "not_cancellable"
    QUEUE_FULL = "queue_full"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BUSY = "busy"
    INTERNAL_ERROR = "internal_error"
    # Authentication and per-tenant limits (docs/security.md, docs/protocol.md).
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_JOBS = "too_many_jobs"
    # Disk quotas (docs/security.md, "Limits: records, disk and uploads").
    QUOTA_EXCEEDED = "quota_exceeded"


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- client → server ------------------------------------------------------------------------


class Submit(Message):
    type: Literal["submit"] = "submit"
    job: JobSpec
    priority: Priority = 0
    idempotency_key: IdempotencyKey | None = None
    request_id: RequestId | None = None


class Cancel(Message):
    type: Literal["cancel"] = "cancel"
    job_id: JobId
    request_id: RequestId | None = None


class Subscribe(Message):
    type: Literal["subscribe"] = "subscribe"
    job_id: JobId
    request_id: RequestId | None = None


class Ping(Message):
    type: Literal["ping"] = "ping"
    request_id: RequestId | None = None


ClientMessage = Annotated[Submit | Cancel | Subscribe | Ping, Field(discriminator="type")]
CLIENT_TYPES = frozenset({"submit", "cancel", "subscribe", "ping"})
_client_adapter: TypeAdapter[Submit | Cancel | Subscribe | Ping] = TypeAdapter(ClientMessage)


# --- server → client ------------------------------------------------------------------------


class Accepted(Message):
    type: Literal["accepted"] = "accepted"
    job_id: JobId
    state: JobState = JobState.QUEUED
    duplicate: bool = False
    request_id: RequestId | None = None


class Error(Message):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    request_id: RequestId | None = None
    job_id: str | None = None


class Pong(Message):
    type: Literal["pong"] = "pong"
    request_id: RequestId | None = None
    protocol: int = PROTOCOL_VERSION


ServerMessage = Annotated[
    Accepted
    | Error
    | Pong
    | StateEvent
    | ProgressEvent
    | CompletedEvent
    | FailedEvent
    | CancelledEvent,
    Field(discriminator="type"),
]
server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


class ProtocolError(Exception):
    """A client message that cannot be taken; carries the `error` reply."""

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.reply = Error(code=code, message=message, request_id=request_id)


def parse_client_message(raw: str | bytes, max_bytes: int) -> Submit | Cancel | Subscribe | Ping:
    """Parse one client frame, or raise `ProtocolError` with a precise code and message."""
    if len(raw) > max_bytes:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"message exceeds {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_JSON, "JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "a message must be a JSON object")
    request_id = _echoable_request_id(data.get("request_id"))
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        shown = repr(kind[:40]) if isinstance(kind, str) else type(kind).__name__
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown message type {shown}; expected one of {sorted(CLIENT_TYPES)}",
            request_id,
        )
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        code = ErrorCode.INVALID_JOB if kind == "submit" else ErrorCode.INVALID_MESSAGE
        raise ProtocolError(code, describe_validation_error(exc), request_id) from None


def _echoable_request_id(value: object) -> str | None:
    """The request id to echo in an error, if it is one we may echo (else none)."""
    if isinstance(value, str) and _REQUEST_ID.fullmatch(value):
        return value
    return None


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """A short human message naming each bad field, without echoing the bad input back."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def encode(message: BaseModel) -> str:
    return message.model_dump_json(exclude_none=True)


def json_schema() -> dict[str, Any]:
    """The protocol's JSON Schema: client messages and server messages."""
    client = TypeAdapter(ClientMessage).json_schema(mode="validation")
    server = server_adapter.json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"ffpool WebSocket protocol v{PROTOCOL_VERSION}",
        "$defs": {**client.pop("$defs", {}), **server.pop("$defs", {})},
        "properties": {"client": client, "server": server},
    }
