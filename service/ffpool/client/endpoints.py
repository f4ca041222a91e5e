"""From ONE server URL, the HTTP base and the WebSocket URL (pure; discovery.py fetches).

`https://ffpool.example.com` (an Ingress with TLS, serving both) → HTTP there, WebSocket
`wss://ffpool.example.com/ws`; `http://127.0.0.1:8081` (a server's own HTTP port) → the
WebSocket on the port its `/ui/config.json` names. The rule is the web page's
(service/ffpool/web/static/api.js, `socketUrl`): when the URL's port is the server's
`http_port`, the WebSocket is host:`ws_port``ws_path`; any other port (80/443 through an
Ingress, a proxy) serves it on the same host and port, under the URL's path prefix.

`ws://`/`wss://` URLs are the older style: the WebSocket as given, the HTTP side `--http` or
the same host's port 8081.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

from ffpool import names

DEFAULT_HTTP_PORT: Final = 8081
HTTP_SCHEMES: Final = ("http", "https")
WS_SCHEMES: Final = ("ws", "wss")


class NotAnFfpoolServer(ConnectionError):
    """The URL answers, but not as an ffpool server does (no /ui/config.json)."""


class ServerConfig(BaseModel):
    """What the client needs of the server's `/ui/config.json` (server/web.py, UiConfig)."""

    model_config = ConfigDict(extra="ignore")

    ws_port: int
    ws_path: str
    http_port: int


@dataclass(frozen=True)
class Endpoints:
    http_url: str
    ws_url: str


def checked(server_url: str) -> str:
    """The URL without a trailing slash; ValueError, in words, if it is not one we can use."""
    parts = urlsplit(server_url.strip())
    if parts.scheme not in HTTP_SCHEMES + WS_SCHEMES or not parts.hostname:
        raise ValueError(
            f"server URL {server_url!r} must be http(s)://HOST[:PORT][/PREFIX] "
            "(or ws(s)://HOST:PORT/ws)"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"server URL {server_url!r} has a bad port") from None
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def is_websocket(server_url: str) -> bool:
    return urlsplit(server_url).scheme in WS_SCHEMES


def config_url(base_url: str) -> str:
    """Where the server says where its WebSocket is (public: no token needed)."""
    return base_url.rstrip("/") + names.UI_CONFIG_PATH


def _host(hostname: str) -> str:
    return f"[{hostname}]" if ":" in hostname else hostname


def http_url_for(ws_url: str, http_port: int = DEFAULT_HTTP_PORT) -> str:
    """The HTTP side of an old-style WebSocket URL: same host, port 8081 (ws→http, wss→https)."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, f"{_host(parts.hostname or '')}:{http_port}", "", "", ""))


def from_websocket(ws_url: str, http_override: str | None = None) -> Endpoints:
    """Old style: the WebSocket URL as given; HTTP from `--http`, else host:8081."""
    http = checked(http_override) if http_override else http_url_for(ws_url)
    return Endpoints(http_url=http, ws_url=ws_url)


def from_http(base_url: str, config: ServerConfig, http_override: str | None = None) -> Endpoints:
    """The WebSocket for an HTTP base URL, by the page's rule (module docstring)."""
    parts = urlsplit(checked(base_url))
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    scheme = "wss" if secure else "ws"
    if port == config.http_port:
        ws = f"{scheme}://{_host(parts.hostname or '')}:{config.ws_port}{config.ws_path}"
    else:
        ws = f"{scheme}://{parts.netloc}{parts.path}{config.ws_path}"
    http = checked(http_override) if http_override else urlunsplit(parts)
    return Endpoints(http_url=http, ws_url=ws)
