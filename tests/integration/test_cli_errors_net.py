"""The network's failures, built for real on loopback, in the words cli/errors.py gives them:
a closed port, a name under `.invalid`, TLS against a plain server and an untrusted
certificate, a time-out, a WebSocket handshake refused, servers that are not ffpool, a
connection that closes. Then the real `ffpool` script against a real service: exit codes, one
line on stderr, the traceback only with --debug."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from ffpool.cli.errors import ExitCode, describe
from ffpool.client.session import Client
from tests.integration.auth_harness import secured
from tests.integration.service import service

TIMEOUT = 5.0


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def failure(server: str, *, old_style: bool = False, timeout: float = TIMEOUT) -> Any:
    """What connecting to `server` raises (`old_style`: a ws:// URL, no discovery)."""
    try:
        if old_style:
            async with Client(server, timeout=timeout):
                pass
        else:
            async with Client.connect_to(server, timeout=timeout):
                pass
    except Exception as exc:  # any of them: describe() sorts them
        return exc
    pytest.fail(f"connecting to {server} did not fail")


@pytest.fixture
async def plain_http() -> AsyncIterator[int]:
    """An HTTP server that is not ffpool: `/status/<code>/ws` answers that status; no
    /ui/config.json."""

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="no")

    app = web.Application()
    app.router.add_get("/status/{code}/ws", status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


@pytest.fixture
async def raw_tcp() -> AsyncIterator[dict[str, int]]:
    """`silent`: accepts and never answers; `amqp`: answers with a RabbitMQ greeting."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def amqp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"AMQP\x00\x00\x09\x01")
        await writer.drain()
        writer.close()

    servers = {
        "silent": await asyncio.start_server(silent, "127.0.0.1", 0),
        "amqp": await asyncio.start_server(amqp, "127.0.0.1", 0),
    }
    try:
        yield {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_a_closed_port(closed_port: int) -> None:
    expected = (
        f"cannot connect to 127.0.0.1:{closed_port}: connection refused; "
        "is the server running? (--server)",
        ExitCode.UNREACHABLE,
    )
    server = f"http://127.0.0.1:{closed_port}"
    assert describe(await failure(server), server) == expected
    ws = f"ws://127.0.0.1:{closed_port}/ws"
    assert describe(await failure(ws, old_style=True), ws) == expected


async def test_a_name_that_does_not_resolve() -> None:
    for server, old_style in (
        ("http://ffpool.invalid", False),
        ("ws://ffpool.invalid:8080/ws", True),
    ):
        line, code = describe(await failure(server, old_style=old_style), server)
        assert line.startswith("cannot resolve ffpool.invalid: "), line
        assert line.endswith("; check --server")
        assert code is ExitCode.UNREACHABLE


async def test_tls_against_a_plain_server(plain_http: int) -> None:
    for server, old_style in (
        (f"https://127.0.0.1:{plain_http}", False),
        (f"wss://127.0.0.1:{plain_http}/status/200/ws", True),
    ):
        line, code = describe(await failure(server, old_style=old_style), server)
        assert line.startswith(f"TLS handshake with 127.0.0.1:{plain_http} failed (")
        assert line.endswith("is it a TLS server? (a plain one is http:// or ws:// in --server)")
        assert code is ExitCode.UNREACHABLE


async def test_an_untrusted_certificate(self_signed: ssl.SSLContext) -> None:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        for server, old_style in (
            (f"https://127.0.0.1:{port}", False),
            (f"wss://127.0.0.1:{port}/ws", True),
        ):
            line, code = describe(await failure(server, old_style=old_style), server)
            assert line == (
                f"the TLS certificate of 127.0.0.1:{port} is not trusted: "
                "self-signed certificate (--server)"
            )
            assert code is ExitCode.UNREACHABLE
    finally:
        await runner.cleanup()


async def test_a_server_that_never_answers(raw_tcp: dict[str, int]) -> None:
    port = raw_tcp["silent"]
    for server, old_style in (
        (f"http://127.0.0.1:{port}", False),
        (f"ws://127.0.0.1:{port}", True),
    ):
        exc = await failure(server, old_style=old_style, timeout=0.5)
        line, code = describe(exc, server)
        assert line == (
            f"timed out talking to 127.0.0.1:{port}; is the server up and reachable?"
        ), type(exc)
        assert code is ExitCode.UNREACHABLE


@pytest.mark.parametrize(
    ("status", "words", "code"),
    [
        (
            401,
            "refused the connection: not authorized (HTTP 401); pass an API token with --token",
            ExitCode.AUTH,
        ),
        (403, "refused the connection: forbidden (HTTP 403: no)", ExitCode.AUTH),
        (
            404,
            "is not an ffpool server: no WebSocket there (HTTP 404); check --server",
            ExitCode.UNREACHABLE,
        ),
        (
            200,
            "is not an ffpool server: no WebSocket there (HTTP 200); check --server",
            ExitCode.UNREACHABLE,
        ),
        (429, "refused the connection: too many connections (HTTP 429)", ExitCode.BUSY),
        (502, "answered HTTP 502 to the WebSocket handshake", ExitCode.UNREACHABLE),
    ],
)
async def test_a_refused_websocket_handshake(
    plain_http: int, status: int, words: str, code: ExitCode
) -> None:
    server = f"ws://127.0.0.1:{plain_http}/status/{status}/ws"
    line, exit_code = describe(await failure(server, old_style=True), server)
    assert line.startswith(f"{server} {words}"), line  # the WebSocket URL tried
    assert exit_code is code


async def test_servers_that_are_not_ffpool(plain_http: int, raw_tcp: dict[str, int]) -> None:
    server = f"http://127.0.0.1:{plain_http}"
    line, code = describe(await failure(server), server)
    assert line == (
        f"{server} is not an ffpool server (GET /ui/config.json answered HTTP 404); check --server"
    )
    assert code is ExitCode.UNREACHABLE
    for server, old_style in (
        (f"http://127.0.0.1:{raw_tcp['amqp']}", False),
        (f"ws://127.0.0.1:{raw_tcp['amqp']}/ws", True),
    ):
        line, code = describe(await failure(server, old_style=old_style), server)
        where = server if old_style else f"127.0.0.1:{raw_tcp['amqp']}"  # a WebSocket: its URL
        assert line.startswith(f"{where} is not an ffpool server ("), line
        assert code is ExitCode.UNREACHABLE


async def test_a_connection_that_closes() -> None:
    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close()

    async with serve(close_at_once, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ws"
        async with Client(url, timeout=TIMEOUT) as client:
            with pytest.raises(ConnectionError) as caught:
                await client.wait("a" * 32, timeout=TIMEOUT)
    line, code = describe(caught.value, url)
    assert line == (
        f"the connection to 127.0.0.1:{port} closed unexpectedly (connection closed); "
        "the server may have restarted: try again"
    )
    assert code is ExitCode.UNREACHABLE


async def ffpool(*argv: str, home: Path, **env: str) -> tuple[int, str]:
    """The real command line, as a user runs it: its exit code and stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FFPOOL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from ffpool.cli import main; main()",
        *argv,
        env=clean | {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")} | env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_the_cli_exits_with_one_line_or_with_debug_the_traceback(
    tmp_path: Path, closed_port: int
) -> None:
    server = f"http://127.0.0.1:{closed_port}"
    code, err = await ffpool("status", "a" * 32, "--server", server, home=tmp_path)
    assert code == ExitCode.UNREACHABLE
    assert err == (
        f"ffpool status: cannot connect to 127.0.0.1:{closed_port}: connection refused; "
        "is the server running? (--server)\n"
    )
    code, err = await ffpool("status", "a" * 32, "--debug", home=tmp_path, FFPOOL_SERVER=server)
    assert code == ExitCode.UNREACHABLE
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith(
        f"ffpool status: cannot connect to 127.0.0.1:{closed_port}: "
        "connection refused; is the server running? (--server)\n"
    )


async def test_the_cli_against_a_real_service(tmp_path: Path) -> None:
    """unknown_job and auth failures, from the real server through the real script."""
    async with service(tmp_path / "media") as svc:
        code, err = await ffpool("status", "b" * 32, "--server", svc.http_url, home=tmp_path)
    assert code == ExitCode.NOT_FOUND, err
    assert err.count("\n") == 1  # the words are `ffpool status`'s own (cli/query_cmd.py)
    assert "Traceback" not in err
    async with secured(tmp_path / "media", tmp_path) as (svc, tokens):
        code, err = await ffpool("status", "b" * 32, "--server", svc.http_url, home=tmp_path)
        assert code == ExitCode.AUTH, err
        assert err.startswith("ffpool status: not authorized (")
        assert "--token, $FFPOOL_TOKEN or the config file" in err
        code, err = await ffpool(
            "watch", "b" * 32, "--server", svc.http_url, home=tmp_path, FFPOOL_TOKEN="wrong"
        )
        assert code == ExitCode.AUTH, err
        code, err = await ffpool(
            "status",
            "b" * 32,
            "--server",
            svc.http_url,
            home=tmp_path,
            FFPOOL_TOKEN=tokens["acme"],
        )
        assert code == ExitCode.NOT_FOUND, err
