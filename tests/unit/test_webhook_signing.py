"""Standard Webhooks signatures: the published test vector, verify's refusals, secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ffpool import names
from ffpool.webhooks import signing
from ffpool.webhooks.signing import SecretError, VerificationError

# The vector of the Standard Webhooks reference libraries (and of svix's): the reference
# Python package `standardwebhooks` 1.1.0 computes the same signature for these inputs.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _headers(signature: str, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        names.WEBHOOK_ID_HEADER: MSG_ID,
        names.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        names.WEBHOOK_SIGNATURE_HEADER: signature,
    }


def test_sign_matches_the_reference_vector() -> None:
    assert signing.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_sign_is_plain_hmac_sha256_over_id_timestamp_body() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY, hashlib.sha256).digest()
    assert (
        signing.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == "v1," + base64.b64encode(digest).decode()
    )


def test_headers_carry_id_timestamp_and_signature() -> None:
    assert signing.headers(SECRET, MSG_ID, TIMESTAMP, BODY) == _headers(EXPECTED)


def test_verify_accepts_a_valid_message() -> None:
    signing.verify(SECRET, _headers(EXPECTED), BODY, now=TIMESTAMP + 10)


def test_verify_takes_headers_in_any_case() -> None:
    upper = {k.upper(): v for k, v in _headers(EXPECTED).items()}
    signing.verify(SECRET, upper, BODY, now=TIMESTAMP)


def test_verify_accepts_any_of_several_signatures() -> None:
    other = signing.sign(signing.new_secret(), MSG_ID, TIMESTAMP, BODY)
    signing.verify(SECRET, _headers(f"v1a,xyz {other} {EXPECTED}"), BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("headers", "body", "now"),
    [
        (_headers(EXPECTED), b'{"test": 2432232315}', TIMESTAMP),  # tampered body
        ({**_headers(EXPECTED), names.WEBHOOK_ID_HEADER: "msg_other"}, BODY, TIMESTAMP),
        (_headers(EXPECTED, TIMESTAMP + 1), BODY, TIMESTAMP),  # tampered timestamp
        (_headers(EXPECTED), BODY, TIMESTAMP + 301),  # too old: a replay
        (_headers(EXPECTED), BODY, TIMESTAMP - 301),  # too far ahead
        (_headers("v2," + EXPECTED[3:]), BODY, TIMESTAMP),  # unknown version
        (_headers("v1,not base64!"), BODY, TIMESTAMP),
        ({names.WEBHOOK_ID_HEADER: MSG_ID}, BODY, TIMESTAMP),  # headers missing
        (_headers(EXPECTED) | {names.WEBHOOK_TIMESTAMP_HEADER: "soon"}, BODY, TIMESTAMP),
    ],
)
def test_verify_refuses(headers: dict[str, str], body: bytes, now: float) -> None:
    with pytest.raises(VerificationError):
        signing.verify(SECRET, headers, body, now=now)


def test_verify_refuses_another_secret() -> None:
    with pytest.raises(VerificationError):
        signing.verify(signing.new_secret(), _headers(EXPECTED), BODY, now=TIMESTAMP)


def test_new_secrets_are_whsec_base64_and_distinct() -> None:
    first, second = signing.new_secret(), signing.new_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(signing.secret_key(first)) == signing.SECRET_BYTES


@pytest.mark.parametrize("secret", ["whsec_", "whsec_c2hvcnQ=", "whsec_" + "QUFB" * 30])
def test_unusable_secrets_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(SecretError) as caught:
        signing.secret_key(secret)
    encoded = secret.removeprefix("whsec_")
    assert not encoded or encoded not in str(caught.value)
