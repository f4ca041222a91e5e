"""Asking a server where its endpoints are: one GET of its public `/ui/config.json`, whose
answer endpoints.py turns into the HTTP base and the WebSocket URL; and opening that WebSocket,
on its fallback when the derived one answers 404 (endpoints.py's docstring)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Final

import aiohttp
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from ffpool.client import endpoints
from ffpool.client.endpoints import Endpoints, NotAnFfpoolServer, ServerConfig

# The server's answer is ~100 bytes; anything past this is not it (and is not read into memory).
MAX_CONFIG_BYTES: Final = 4096
MAX_MESSAGE_BYTES: Final = 2**24


async def discover(
    server_url: str, http_override: str | None = None, timeout: float = 30.0
) -> Endpoints:
    """The endpoints of the server at `server_url`. Raises ValueError for a URL that is not
    one, NotAnFfpoolServer when it answers as something else, and aiohttp's errors (DNS,
    refused, TLS) or TimeoutError when it cannot be reached."""
    base = endpoints.checked(server_url)
    if endpoints.is_websocket(base):
        return endpoints.from_websocket(base, http_override)
    config = await fetch_config(base, timeout)
    return endpoints.from_http(base, config, http_override)


async def fetch_config(base_url: str, timeout: float) -> ServerConfig:
    url = endpoints.config_url(base_url)
    limits = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=limits) as http,
        http.get(url, allow_redirects=True) as resp,
    ):
        status = resp.status
        body = b""
        # read(n) returns what has arrived (maybe a part): read on to the end or past the cap.
        while len(body) <= MAX_CONFIG_BYTES and (
            chunk := await resp.content.read(MAX_CONFIG_BYTES + 1 - len(body))
        ):
            body += chunk
    if status != 200:
        raise NotAnFfpoolServer(
            f"{base_url} is not an ffpool server (GET {endpoints.config_url('')} "
            f"answered HTTP {status})"
        )
    not_config = NotAnFfpoolServer(
        f"{base_url} is not an ffpool server (its {endpoints.config_url('')} is not "
        "the server's configuration)"
    )
    if len(body) > MAX_CONFIG_BYTES:
        raise not_config
    try:
        return ServerConfig.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        raise not_config from None


async def open_websocket(
    ws_url: str, fallback: str | None, headers: Mapping[str, str], timeout: float
) -> tuple[ClientConnection, str]:
    """The WebSocket at `ws_url`, or, when that answers 404 (a port-forward of the HTTP port
    alone), at `fallback`; and the URL that worked. When the fallback fails too, the first
    error is raised: it is the one that says what is wrong with the URL the user gave."""
    try:
        return await _connect(ws_url, headers, timeout), ws_url
    except InvalidStatus as exc:
        if fallback is None or exc.response.status_code != 404:
            raise
        first = exc
    try:
        return await _connect(fallback, headers, timeout), fallback
    except (OSError, TimeoutError, WebSocketException):
        raise first from None


async def _connect(url: str, headers: Mapping[str, str], timeout: float) -> ClientConnection:
    connecting = connect(url, max_size=MAX_MESSAGE_BYTES, additional_headers=dict(headers))
    return await asyncio.wait_for(connecting, timeout)
