"""From ONE server URL, the HTTP base and the WebSocket URL (pure; discovery.py fetches).

`https://ffpool.example.com` (an Ingress with TLS, serving both) → HTTP there, WebSocket
`wss://ffpool.example.com/ws`; `http://127.0.0.1:8081` (a server's own HTTP port) → the
WebSocket on the port its `/ui/config.json` names. The rule is the web page's
(service/ffpool/web/static/api.js, `socketUrl`): when the URL's port is the server's
`http_port`, the WebSocket is host:`ws_port``ws_path`; any other port (80/443 through an
Ingress, a proxy) serves it on the same host and port, under the URL's path prefix. There a
plain port-forward of the HTTP port alone answers 404 on the WebSocket path, so the client then
tries the same host's `ws_port` (`ws_fallback`; discovery.open_websocket): that is where
`kubectl port-forward svc/ffpool 8081 8080` (both ports, same numbers) puts it.

`ws://`/`wss://` URLs are the older style: the WebSocket as given, the HTTP side `--http` or
the same host's port 8081.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ffpool import names

DEFAULT_HTTP_PORT: Final = 8081
HTTP_SCHEMES: Final = ("http", "https")
WS_SCHEMES: Final = ("ws", "wss")
# A path and nothing else: no "@" (it would read as userinfo and move the host), no "//" (a
# network-path reference), no scheme, query or fragment.
_WS_PATH_RE: Final = re.compile(r"/(?!/)[A-Za-z0-9._~%/-]{0,200}")
Port = Annotated[int, Field(ge=1, le=65535)]


class NotAnFfpoolServer(ConnectionError):
    """The URL answers, but not as an ffpool server does (no /ui/config.json)."""


class ServerConfig(BaseModel):
    """What the client needs of the server's `/ui/config.json` (server/web.py, UiConfig)."""

    model_config = ConfigDict(extra="ignore")

    ws_port: Port
    ws_path: str
    http_port: Port

    @field_validator("ws_path")
    @classmethod
    def _only_a_path(cls, value: str) -> str:
        # The token goes where this points: a value that could name another host is refused.
        if not _WS_PATH_RE.fullmatch(value) or "//" in value:
            raise ValueError(f"ws_path {value!r} is not a plain absolute path")
        return value


@dataclass(frozen=True)
class Endpoints:
    http_url: str
    ws_url: str
    ws_fallback: str | None = None
    """Where to try the WebSocket when `ws_url` answers 404 (module docstring)."""


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
    own_port = f"{scheme}://{_host(parts.hostname or '')}:{config.ws_port}{config.ws_path}"
    http = checked(http_override) if http_override else urlunsplit(parts)
    if port == config.http_port:
        return Endpoints(http_url=http, ws_url=own_port)
    same_port = f"{scheme}://{parts.netloc}{parts.path}{config.ws_path}"
    return Endpoints(http_url=http, ws_url=same_port, ws_fallback=own_port)
