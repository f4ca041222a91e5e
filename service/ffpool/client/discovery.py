"""Asking a server where its endpoints are: one GET of its public `/ui/config.json`, whose
answer endpoints.py turns into the HTTP base and the WebSocket URL."""

from __future__ import annotations

import json

import aiohttp
from pydantic import ValidationError

from ffpool.client import endpoints
from ffpool.client.endpoints import Endpoints, NotAnFfpoolServer, ServerConfig


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
        text = await resp.text(errors="replace")
    if status != 200:
        raise NotAnFfpoolServer(
            f"{base_url} is not an ffpool server (GET {endpoints.config_url('')} "
            f"answered HTTP {status})"
        )
    try:
        return ServerConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        raise NotAnFfpoolServer(
            f"{base_url} is not an ffpool server (its {endpoints.config_url('')} is not "
            "the server's configuration)"
        ) from None
