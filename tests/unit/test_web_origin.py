"""The WebSocket's Origin check lets the service's own page in (ffpool.auth.policy)."""

from __future__ import annotations

import pytest

from ffpool.auth.policy import is_own_page, origin_allowed

HTTP_PORT = 8081


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8081", "127.0.0.1:8080"),
        ("http://Media.Example.com:8081", "media.example.com:8080"),
        ("https://media.example.com:8081", "media.example.com"),
        ("http://[::1]:8081", "[::1]:8080"),
    ],
)
def test_the_page_on_the_same_host_and_http_port_is_allowed(origin: str, host: str) -> None:
    assert is_own_page(origin, host, HTTP_PORT)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://evil.example.com:8081", "media.example.com:8080"),  # another host
        ("http://127.0.0.2:8081", "127.0.0.1:8080"),
        ("http://media.example.com:3000", "media.example.com:8080"),  # another port
        ("http://media.example.com", "media.example.com:8080"),  # port 80
        ("ftp://media.example.com:8081", "media.example.com:8080"),
        ("null", "media.example.com:8080"),
        ("http://media.example.com:99999", "media.example.com:8080"),
        ("http://media.example.com:8081", None),  # no Host header
        ("http://media.example.com:8081", "\0"),  # Host sent twice
    ],
)
def test_any_other_origin_is_not_the_page(origin: str, host: str | None) -> None:
    assert not is_own_page(origin, host, HTTP_PORT)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://media.example.com", "media.example.com"),
        ("http://media.example.com", "media.example.com"),
        ("https://media.example.com:8443", "media.example.com:8443"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
    ],
)
def test_the_same_origin_as_the_upgrade_is_allowed(origin: str, host: str) -> None:
    """Through an Ingress the page and `/ws` share one host: the page's origin is the upgrade's."""
    assert is_own_page(origin, host, HTTP_PORT)


def test_the_same_host_with_another_scheme_port_is_not() -> None:
    assert not is_own_page("http://media.example.com", "media.example.com:443", HTTP_PORT)
    assert not is_own_page("https://media.example.com", "media.example.com:80", HTTP_PORT)


def test_the_default_ports_count() -> None:
    assert is_own_page("http://media.example.com", "media.example.com:8080", 80)
    assert is_own_page("https://media.example.com", "media.example.com", 443)


def test_allowed_origins_still_work_on_their_own() -> None:
    allowed = ("https://app.example.com",)
    assert origin_allowed("https://app.example.com", allowed)
    assert not is_own_page("https://app.example.com", "media.example.com:8080", HTTP_PORT)
    assert not origin_allowed("http://media.example.com:8081", allowed)
