"""A service with a tokens file, and clients that present tokens: for the auth edge's tests.
Fixtures are in tests/integration/auth_fixtures.py (`pytest_plugins`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

from ffpool.app import Running
from ffpool.auth.tokens import file_line, new_token
from tests.integration.service import Conn, service

TENANTS = ("acme", "globex")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path: Path, tenants: tuple[str, ...] = TENANTS) -> dict[str, str]:
    """A tokens file with one new token per tenant; returns tenant → token."""
    tokens = {tenant: new_token() for tenant in tenants}
    path.write_text("".join(file_line(t, tok) + "\n" for t, tok in tokens.items()))
    return tokens


@asynccontextmanager
async def secured(
    media_root: Path, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[Running, dict[str, str]]]:
    tokens = write_tokens(tmp_path / "tokens")
    async with service(media_root, auth_tokens_file=tmp_path / "tokens", **overrides) as svc:
        yield svc, tokens


@asynccontextmanager
async def conn_as(svc: Running, token: str, **kwargs: Any) -> AsyncIterator[Conn]:
    async with connect(svc.ws_url, additional_headers=bearer(token), **kwargs) as ws:
        yield Conn(ws)


async def http_status(
    method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Any]:
    limit = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=limit) as http,
        http.request(method, url, headers=headers, **kwargs) as resp,
    ):
        body = await resp.read()
        is_json = resp.content_type == "application/json"
        return resp.status, (await resp.json() if is_json else body)
