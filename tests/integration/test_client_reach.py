"""Reaching a server's WebSocket from one URL, against stand-in servers: through a plain
port-forward of the HTTP port alone (the same-port `/ws` answers 404, the client tries the
server's `ws_port`), a `/ui/config.json` that points elsewhere or is huge (refused), and a
`follow` whose server goes away (told once, then the connection's error, not a silent hang)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ffpool.cli.errors import ExitCode, describe
from ffpool.client.discovery import discover
from ffpool.client.endpoints import NotAnFfpoolServer
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from tests.integration.cli_query_harness import serving
from tests.integration.cli_user import run_cli
from tests.polling import eventually

JOB = "a" * 32


class StandIn:
    """An ffpool server's two ports: HTTP (`/ui/config.json`) and the WebSocket (`/ws`),
    which answers a `subscribe` with the job's completion when `completes`."""

    def __init__(self, completes: bool = True) -> None:
        self.config: dict[str, Any] = {}
        self.completes = completes
        self.sockets: list[web.WebSocketResponse] = []

    async def ui_config(self, _: web.Request) -> web.Response:
        return web.json_response(self.config)

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        self.sockets.append(sock)
        async for _ in sock:
            if self.completes:
                done = CompletedEvent(job_id=JOB, processing_time_s=1.0)
                await sock.send_str(done.model_dump_json())
        return sock

    def http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ui/config.json", self.ui_config)
        return app

    def ws_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.ws)
        return app


@contextlib.asynccontextmanager
async def forwarding(target: int) -> AsyncIterator[int]:
    """A plain TCP forwarder (as `kubectl port-forward` is) from a free port to `target`."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        to_reader, to_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, to_writer), pipe(to_reader, writer))

    server = await asyncio.start_server(each, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


@contextlib.asynccontextmanager
async def stand_in(completes: bool = True) -> AsyncIterator[tuple[StandIn, int]]:
    """The stand-in on two ephemeral ports; yields it and its HTTP port."""
    server = StandIn(completes)
    async with serving(server.http_app()) as http_port, serving(server.ws_app()) as ws_port:
        server.config = {"ws_port": ws_port, "ws_path": "/ws", "http_port": http_port}
        yield server, http_port


async def test_a_port_forward_of_the_http_port_finds_the_websocket() -> None:
    async with contextlib.AsyncExitStack() as stack:
        server, http_port = await stack.enter_async_context(stand_in())
        local = await stack.enter_async_context(forwarding(http_port))
        client = await stack.enter_async_context(Client.connect_to(f"http://127.0.0.1:{local}"))
        assert client.http_url == f"http://127.0.0.1:{local}"
        assert client.ws_url == f"ws://127.0.0.1:{server.config['ws_port']}/ws"
        outcome = await client.follow(JOB, timeout=10)
        assert isinstance(outcome, CompletedEvent)


@pytest.mark.parametrize(
    "config",
    [
        {"ws_path": "@evil.example.com/ws"},
        {"ws_path": "//evil.example.com/ws"},
        {"ws_path": "ws://evil.example.com/ws"},
        {"ws_path": "ws"},
        {"ws_path": "/ws?x=@evil"},
        {"ws_port": 0},
        {"ws_port": 70000},
        {"http_port": -1},
        {"padding": "x" * 10_000},
    ],
)
async def test_a_config_that_points_elsewhere_is_no_ffpool_server(config: dict[str, Any]) -> None:
    async with stand_in() as (server, http_port):
        server.config = server.config | config
        with pytest.raises(NotAnFfpoolServer, match="not an ffpool server"):
            async with Client.connect_to(f"http://127.0.0.1:{http_port}"):
                pass


async def test_a_follow_whose_server_is_gone_says_so_and_gives_up() -> None:
    said: list[BaseException] = []
    async with contextlib.AsyncExitStack() as servers:
        server, http_port = await servers.enter_async_context(stand_in(completes=False))
        url = f"http://127.0.0.1:{http_port}"
        async with Client.connect_to(url, timeout=2) as client:
            following = asyncio.create_task(
                client.follow(JOB, reconnect_for=0.5, on_reconnecting=said.append)
            )
            await eventually(lambda: server.sockets, timeout=5, what="the follow's socket")
            assert not following.done()
            for sock in server.sockets:
                await sock.close()
            await servers.aclose()  # the server is gone: its ports refuse
            with pytest.raises(ConnectionRefusedError) as info:
                await asyncio.wait_for(following, 10)
    assert len(said) == 1  # told once, not at every attempt
    assert describe(info.value, url)[1] == ExitCode.UNREACHABLE


async def test_the_cli_through_a_port_forward(tmp_path: Path) -> None:
    async with stand_in() as (_, http_port), forwarding(http_port) as local:
        done = await run_cli("watch", JOB, "--server", f"http://127.0.0.1:{local}", cwd=tmp_path)
    assert done.code == ExitCode.OK, done.err
    assert f"completed job {JOB}" in done.err


async def test_watch_tells_of_a_lost_server_and_exits_3(tmp_path: Path) -> None:
    server = StandIn(completes=False)
    async with serving(server.http_app()) as http_port, contextlib.AsyncExitStack() as ws_site:
        ws_port = await ws_site.enter_async_context(serving(server.ws_app()))
        server.config = {"ws_port": ws_port, "ws_path": "/ws", "http_port": http_port}
        argv = ("watch", JOB, "--server", f"http://127.0.0.1:{http_port}", "--reconnect-for", "1")
        watching = asyncio.create_task(run_cli(*argv, cwd=tmp_path, timeout=30))
        await eventually(lambda: server.sockets, timeout=20, what="the watch's socket")
        for sock in server.sockets:
            await sock.close()
        await ws_site.aclose()  # the WebSocket port now refuses
        done = await watching
    assert done.code == ExitCode.UNREACHABLE, done.err
    assert done.err.count("connection lost; reconnecting…") == 1
    assert f"cannot connect to 127.0.0.1:{ws_port}: connection refused" in done.err


@pytest.mark.parametrize(("pieces", "usable"), [(1, True), (200, False)])
async def test_a_config_in_pieces_is_read_whole_and_bounded(pieces: int, usable: bool) -> None:
    """Sent chunked, in small writes: read to its end, but never past MAX_CONFIG_BYTES."""
    async with stand_in() as (server, _):
        text = json.dumps(server.config).encode() + b" " * 64 * (pieces - 1)

        async def chunked(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for start in range(0, len(text), 16):
                await resp.write(text[start : start + 16])
                await asyncio.sleep(0)
            return resp

        app = web.Application()
        app.router.add_get("/ui/config.json", chunked)
        async with serving(app) as port:
            if usable:
                found = await discover(f"http://127.0.0.1:{port}")
                assert found.ws_fallback == f"ws://127.0.0.1:{server.config['ws_port']}/ws"
            else:
                with pytest.raises(NotAnFfpoolServer):
                    await discover(f"http://127.0.0.1:{port}")
