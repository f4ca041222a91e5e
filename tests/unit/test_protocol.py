"""Protocol parsing and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ffpool.domain.protocol import (
    ErrorCode,
    ProtocolError,
    Submit,
    json_schema,
    parse_client_message,
)

SCHEMA_FILE = Path(__file__).parents[2] / "service" / "ffpool" / "schema" / "protocol.json"


def test_committed_schema_matches_the_models() -> None:
    committed = json.loads(SCHEMA_FILE.read_text())
    assert committed == json_schema(), "run `make schema` and commit the result"


def test_schema_validates_a_real_submit() -> None:
    schema = json_schema()
    client = {"$defs": schema["$defs"], **schema["properties"]["client"]}
    message = {
        "type": "submit",
        "job": {"input": {"kind": "path", "path": "a.mp4"}, "operation": {"op": "probe"}},
    }
    jsonschema.validate(message, client)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "submit", "job": {}}, client)


def test_parse_submit_defaults() -> None:
    raw = (
        '{"type":"submit","job":{"input":{"kind":"path","path":"a.mp4"},'
        '"operation":{"op":"trim","duration":2}}}'
    )
    msg = parse_client_message(raw, 65536)
    assert isinstance(msg, Submit)
    assert msg.priority == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe", ErrorCode.INVALID_JSON),
        ("x" * 100, ErrorCode.MESSAGE_TOO_LARGE),
        ('{"type": 5}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "ping", "extra": 1}', ErrorCode.INVALID_MESSAGE),
    ],
)
def test_parse_errors(raw: str | bytes, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw, 64)
    assert info.value.reply.code is code


def test_errors_do_not_echo_input() -> None:
    secret = "s3cr3t-token-value"
    raw = json.dumps({"type": "submit", "job": {"input": {"kind": "path", "path": secret + "|"}}})
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw, 65536)
    assert secret not in info.value.reply.message
