"""Running `ffpool` client commands as a user would (the installed script, in a subprocess,
with its own environment), and a tiny reverse proxy standing in for an Ingress: one port and a
path prefix in front of a server's WebSocket and HTTP ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.integration.cli_user import Result, run_cli

PREFIX = "/ffpool"
# Headers a proxy must not copy from one hop to the next.
HOP = {"host", "connection", "upgrade", "transfer-encoding", "content-length", "keep-alive"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Run = Result


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no FFPOOL_* of the machine's, a HOME of the test's own (so no
    config file is found unless the test writes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFPOOL_")}
    env.pop("XDG_CONFIG_HOME", None)
    return env | {"HOME": str(home), "COLUMNS": "200"} | extra


async def ffpool(*argv: str, env: dict[str, str], timeout: float = 60.0) -> Run:
    return await run_cli(*argv, cwd=Path.cwd(), timeout=timeout, env=env)


async def _pump_ws(source: Any, sink: Any) -> None:
    async for msg in source:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        else:
            break
    await sink.close()


def proxy_app(ws_port: int, http_port: int) -> web.Application:
    """`PREFIX/ws` → the WebSocket port's /ws, any other `PREFIX/...` → the HTTP port."""
    session: dict[str, aiohttp.ClientSession] = {}

    async def start(_: web.Application) -> None:
        session["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def stop(_: web.Application) -> None:
        await session["s"].close()

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        upstream = await session["s"].ws_connect(
            f"ws://127.0.0.1:{ws_port}/ws", headers=headers, max_msg_size=2**24
        )
        downstream = web.WebSocketResponse(max_msg_size=2**24)
        await downstream.prepare(request)
        pumps = [
            asyncio.create_task(_pump_ws(upstream, downstream)),
            asyncio.create_task(_pump_ws(downstream, upstream)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await upstream.close()
        return downstream

    async def forward(request: web.Request) -> web.StreamResponse:
        path = request.match_info["rest"]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session["s"].request(
            request.method,
            f"http://127.0.0.1:{http_port}/{path}",
            params=request.query,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            copied = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
            return web.Response(status=resp.status, body=body, headers=copied)

    app = web.Application(client_max_size=2**26)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get(PREFIX + "/ws", websocket)
    app.router.add_route("*", PREFIX + "/{rest:.*}", forward)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """The app on an ephemeral port of 127.0.0.1; yields the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()
