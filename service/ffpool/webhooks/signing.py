"""Standard Webhooks signatures: pure functions, no I/O (docs/webhooks.md).

A secret is `whsec_` + base64 of random bytes; the signature of a message is
`v1,` + base64(HMAC-SHA256(secret bytes, "<id>.<timestamp>.<body>")), the timestamp in whole
seconds since the epoch. The same output as the Standard Webhooks reference libraries
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Final

from ffpool import names

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SIGNATURE_VERSION: Final = "v1"
# Replay window: a message signed longer ago (or further ahead) than this is refused.
DEFAULT_TOLERANCE_S: Final = 300
SECRET_BYTES: Final = 32
# A secret shorter than this is no secret (the reference libraries' own are 24 bytes).
MIN_SECRET_BYTES: Final = 16
MAX_SECRET_BYTES: Final = 64


class SecretError(ValueError):
    """A webhook secret that cannot be used; the message never holds the secret itself."""


class VerificationError(Exception):
    """A message whose headers or signature do not check out."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the reference
    libraries); SecretError if it is not base64 or too short or too long."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Unpadded base64 is accepted, as by the reference libraries; stray characters are not.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("the webhook secret is not base64 after `whsec_`") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise SecretError(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(key)}"
        )
    return key


def _digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 signature>` of one message."""
    digest = _digest(secret_key(secret), msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one POST."""
    return {
        names.WEBHOOK_ID_HEADER: msg_id,
        names.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        names.WEBHOOK_SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    message_headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise VerificationError unless one of the (space-separated) `v1` signatures matches
    and the timestamp is within `tolerance` seconds of `now`; compared in constant time."""
    lowered = {key.lower(): value for key, value in message_headers.items()}
    msg_id = lowered.get(names.WEBHOOK_ID_HEADER)
    stamp = lowered.get(names.WEBHOOK_TIMESTAMP_HEADER)
    signatures = lowered.get(names.WEBHOOK_SIGNATURE_HEADER)
    if not (msg_id and stamp and signatures):
        raise VerificationError("missing webhook headers")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise VerificationError("the timestamp is not a whole number of seconds") from None
    if abs(now - timestamp) > tolerance:
        raise VerificationError("the timestamp is outside the tolerance")
    try:
        expected = _digest(secret_key(secret), msg_id, timestamp, body)
    except SecretError as exc:
        raise VerificationError(str(exc)) from None
    for candidate in signatures.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise VerificationError("no matching signature")
