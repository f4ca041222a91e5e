"""The client library's HTTP side against a small stand-in server: `save` writes exactly its
path or nothing (never a partial file under the real name), refusals become ClientError with
the server's code and message, and `connect_to` says when a URL is no ffpool server."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ffpool.client.endpoints import NotAnFfpoolServer
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import OutputFile
from ffpool.domain.protocol import ErrorCode
from tests.integration.cli_query_harness import serving

BODY = b"x" * 300_000


async def whole(_: web.Request) -> web.Response:
    return web.Response(body=BODY)


async def cut(request: web.Request) -> web.StreamResponse:
    """Promises the whole body, sends a part, and hangs up."""
    resp = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await resp.prepare(request)
    await resp.write(BODY[:1000])
    assert request.transport is not None
    request.transport.close()
    return resp


async def refused(_: web.Request) -> web.Response:
    return web.json_response({"error": "unknown_job", "message": "no job with this id"}, status=404)


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/whole", whole)
    application.router.add_get("/cut", cut)
    application.router.add_get("/jobs/{job_id}", refused)
    return application


def output(url: str) -> OutputFile:
    return OutputFile(
        name="out.bin", size=len(BODY), content_type="application/octet-stream", url=url
    )


async def test_save_is_all_or_nothing(tmp_path: Path) -> None:
    async with serving(app()) as port:
        base = f"http://127.0.0.1:{port}"
        async with Client("ws://127.0.0.1:1/ws", base, websocket=False) as client:
            target = tmp_path / "dir" / "exact.bin"
            assert await client.save(output("/whole"), target) == target
            assert target.read_bytes() == BODY
            target.write_bytes(b"earlier")
            with pytest.raises(aiohttp.ClientError):
                await client.save(output("/cut"), target)
            assert target.read_bytes() == b"earlier"  # untouched by the failed download
            with pytest.raises(ClientError) as info:
                await client.save(output("/jobs/" + "f" * 32), tmp_path / "missing.bin")
            assert info.value.error.code is ErrorCode.UNKNOWN_JOB
            with pytest.raises(ClientError) as info:
                await client.job("f" * 32)
            assert info.value.error.message == "no job with this id"
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["exact.bin"]
    assert not (tmp_path / "missing.bin").exists()


async def test_connect_to_something_else(tmp_path: Path) -> None:
    async with serving(app()) as port:
        with pytest.raises(NotAnFfpoolServer, match="not an ffpool server"):
            async with Client.connect_to(f"http://127.0.0.1:{port}"):
                pass
