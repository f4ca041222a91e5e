"""The edge's pure decisions: credentials in headers, Origin, loopback and the secure default,
connection limits, the signing key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.auth import keys
from ffpool.auth.connection_limits import ConnectionLimits
from ffpool.auth.policy import (
    anonymous_allowed,
    bearer_token,
    is_loopback,
    origin_allowed,
    startup_refusal,
    ticket_from_protocols,
)
from ffpool.settings import Settings


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_ticket_from_protocols() -> None:
    assert ticket_from_protocols("ffpool.v1, ffpool.ticket.t.1.n.s") == "t.1.n.s"
    assert ticket_from_protocols("ffpool.v1") is None
    assert ticket_from_protocols("ffpool.ticket.") is None
    assert ticket_from_protocols(None) is None


def test_origin_allowed() -> None:
    allowed = ("https://app.example.com", "http://localhost:3000")
    assert origin_allowed(None, ())  # not a browser
    assert origin_allowed("https://app.example.com", allowed)
    assert origin_allowed("HTTPS://App.Example.com/", allowed)
    assert origin_allowed("http://localhost:3000", allowed)
    for refused in ("https://evil.example", "http://app.example.com", "null", ""):
        assert not origin_allowed(refused, allowed)
    assert not origin_allowed("https://app.example.com", ())


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_secure_default(tmp_path: Path) -> None:
    everywhere = "0.0.0.0"
    refusal = startup_refusal(settings(host=everywhere))
    assert refusal is not None
    assert "AUTH_TOKENS_FILE" in refusal
    assert "ALLOW_ANONYMOUS" in refusal
    assert startup_refusal(settings(host=everywhere, allow_anonymous=True)) is None
    assert startup_refusal(settings(host=everywhere, auth_tokens_file=tmp_path / "t")) is None
    assert startup_refusal(settings(host="127.0.0.1")) is None
    assert anonymous_allowed(settings(host="127.0.0.1"))
    assert not anonymous_allowed(settings(auth_tokens_file=tmp_path / "t"))
    assert anonymous_allowed(settings(auth_tokens_file=tmp_path / "t", allow_anonymous=True))


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example, http://b.example:8080/")
    assert settings().allowed_origins == ("https://a.example", "http://b.example:8080")


def test_connection_limits() -> None:
    limits = ConnectionLimits(2)
    assert limits.acquire("acme")
    assert limits.acquire("acme")
    assert not limits.acquire("acme")
    assert limits.acquire("globex")
    limits.release("acme")
    assert limits.acquire("acme")
    limits.release("globex")
    assert "globex" not in limits.open


def test_signing_key_from_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    assert keys.load_signing_key(settings(signing_key_file=path)) == b"0123456789abcdef" * 2
    path.write_bytes(b"short\n")
    with pytest.raises(keys.SigningKeyError):
        keys.load_signing_key(settings(signing_key_file=path))
    with pytest.raises(keys.SigningKeyError):
        keys.load_signing_key(settings(signing_key_file=tmp_path / "missing"))
