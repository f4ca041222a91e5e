"""One server URL → the HTTP base and the WebSocket URL (client/endpoints.py, the web page's
rule), and the HTTP side's refusals as ClientError (client/outcomes.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ffpool.client.endpoints import (
    ServerConfig,
    checked,
    config_url,
    from_http,
    from_websocket,
    http_url_for,
)
from ffpool.client.outcomes import error_from_http
from ffpool.client.transfer import output_url
from ffpool.domain.protocol import ErrorCode

SERVER = ServerConfig(ws_port=8080, ws_path="/ws", http_port=8081)


@pytest.mark.parametrize(
    ("url", "http", "ws"),
    [
        # An Ingress with TLS: both on the one origin.
        ("https://ffpool.example.com", "https://ffpool.example.com", "wss://ffpool.example.com/ws"),
        (
            "https://ffpool.example.com/",
            "https://ffpool.example.com",
            "wss://ffpool.example.com/ws",
        ),
        ("http://ffpool.local:80", "http://ffpool.local:80", "ws://ffpool.local:80/ws"),
        # A path prefix is kept on both sides.
        (
            "https://example.com/media/ffpool/",
            "https://example.com/media/ffpool",
            "wss://example.com/media/ffpool/ws",
        ),
        # A server's own HTTP port: the WebSocket on the port its /ui/config.json names.
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081", "ws://127.0.0.1:8080/ws"),
        ("http://[::1]:8081", "http://[::1]:8081", "ws://[::1]:8080/ws"),
        # Another port (a proxy, a port-forward): the same host and port.
        ("http://localhost:9000", "http://localhost:9000", "ws://localhost:9000/ws"),
    ],
)
def test_one_url_gives_both(url: str, http: str, ws: str) -> None:
    found = from_http(url, SERVER)
    assert (found.http_url, found.ws_url) == (http, ws)


def test_the_page_rule_uses_the_servers_own_ports() -> None:
    config = ServerConfig(ws_port=9443, ws_path="/socket", http_port=443)
    found = from_http("https://pool.example.com", config)
    assert found.ws_url == "wss://pool.example.com:9443/socket"


def test_http_override_and_old_style_websocket_urls() -> None:
    found = from_http("https://a.example.com", SERVER, "https://b.example.com/x/")
    assert found.http_url == "https://b.example.com/x"
    assert found.ws_url == "wss://a.example.com/ws"
    old = from_websocket("ws://10.0.0.5:8080/ws")
    assert (old.http_url, old.ws_url) == ("http://10.0.0.5:8081", "ws://10.0.0.5:8080/ws")
    assert from_websocket("wss://h:1/ws", "https://h").http_url == "https://h"
    assert http_url_for("wss://h.example.com/ws") == "https://h.example.com:8081"


def test_config_url_keeps_the_prefix() -> None:
    assert config_url("https://e.com/ffpool") == "https://e.com/ffpool/ui/config.json"


@pytest.mark.parametrize("bad", ["ffpool.example.com", "ftp://x", "http://", "http://h:port"])
def test_unusable_urls_are_refused_in_words(bad: str) -> None:
    with pytest.raises(ValueError, match="server URL"):
        checked(bad)


def test_output_links_under_a_prefix() -> None:
    link = "/jobs/ab/outputs/t.jpg?expires=1&sig=2"
    assert output_url("https://e.com/ffpool", link) == "https://e.com/ffpool" + link
    assert output_url("http://h:8081", link) == "http://h:8081" + link
    presigned = "https://bucket.s3.example.com/k?X-Amz=1"
    assert output_url("https://e.com/ffpool", presigned) == presigned


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (
            404,
            '{"error": "unknown_job", "message": "no job with this id"}',
            "unknown_job",
            "no job",
        ),
        (
            401,
            '{"error": "unauthorized", "message": "authentication required"}',
            "unauthorized",
            "auth",
        ),
        (404, '{"error": "not_found", "message": "no such output"}', "unknown_job", "no such"),
        (400, '{"error": "invalid_query", "message": "limit must be"}', "invalid_message", "limit"),
        (429, '{"error": "rate_limited", "message": "slow down"}', "rate_limited", "slow"),
        (502, "<html>Bad Gateway</html>", "internal_error", "Bad Gateway"),
        (403, "origin not allowed\n", "unauthorized", "origin not allowed"),
    ],
)
def test_http_refusals_become_protocol_errors(
    status: int, body: str, code: str, message: str
) -> None:
    error = error_from_http(status, body)
    assert error.code is ErrorCode(code)
    assert message in error.message


def test_another_port_falls_back_to_the_servers_websocket_port() -> None:
    # A port-forward of the HTTP port alone answers 404 on /ws: then the server's ws_port.
    found = from_http("http://127.0.0.1:19500", SERVER)
    assert (found.ws_url, found.ws_fallback) == (
        "ws://127.0.0.1:19500/ws",
        "ws://127.0.0.1:8080/ws",
    )
    assert from_http("http://127.0.0.1:8081", SERVER).ws_fallback is None


@pytest.mark.parametrize(
    "bad",
    [
        {"ws_path": "@evil.example.com/ws"},
        {"ws_path": "//evil.example.com/ws"},
        {"ws_path": "/a//b"},
        {"ws_path": "https://evil.example.com/ws"},
        {"ws_path": "ws"},
        {"ws_path": "/ws#x"},
        {"ws_port": 0},
        {"ws_port": 65536},
        {"http_port": -80},
    ],
)
def test_a_config_that_could_point_elsewhere_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ServerConfig.model_validate({"ws_port": 8080, "ws_path": "/ws", "http_port": 8081} | bad)
