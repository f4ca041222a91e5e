"""The web page's server side (ffpool.server.web) on the real HTTP app: the page and its assets
with their headers, no way out of the static folder, /ui/config.json, no token needed for any
of them, the page's own origin on the WebSocket, and the files shipped in the package.
The page's behaviour in a browser is tested in tests/browser."""

from __future__ import annotations

import asyncio
import fnmatch
import re
import socket
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ffpool import names
from ffpool.server.web import ASSET_CACHE, PAGE_CACHE
from ffpool.storage.media import LocalStorage
from tests.integration.auth_harness import bearer, conn_as, secured, write_tokens
from tests.integration.http_harness import UPLOAD_LIMIT, Client, FakeBackend, Ready, app_for

pytest_plugins = ["tests.integration.http_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "form.js": "text/javascript",
    "jobs.js": "text/javascript",
    "uploads.js": "text/javascript",
    "style.css": "text/css",
}
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "object-src 'none'",
)
TRAVERSALS = (
    "/static/../settings.py",
    "/static/%2e%2e/x",
    "/static/%2e%2e/settings.py",
    "/static/%2E%2E",
    "/static/..%2fsettings.py",
    "/static/..%2f..%2fsettings.py",
    "/static/",
    "/static/nothing.js",
    "/static/__init__.py",
    "/static/.%2e/__init__.py",
)


def assert_security_headers(headers: object) -> None:
    csp = headers["Content-Security-Policy"]  # type: ignore[index]
    for directive in CSP_DIRECTIVES:
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert headers["Referrer-Policy"] == "no-referrer"  # type: ignore[index]


async def raw_status(client: Client, path: str) -> int:
    """The status of a GET sent byte for byte: no client library normalizes the path."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {client.host}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def test_the_page_is_served_with_its_headers(client: Client) -> None:
    response = await client.get(names.PAGE_PATH)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == PAGE_CACHE
    assert_security_headers(response.headers)
    html = await response.text()
    assert '<script type="module" src="/static/app.js"></script>' in html
    # The CSP allows no inline code: every script has a src, and there is no style at all.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r'<label for="file">Input file</label>', html)


async def test_assets_are_served_with_types_and_caching(client: Client) -> None:
    for name, content_type in ASSETS.items():
        response = await client.get(names.STATIC_PREFIX + name)
        assert response.status == 200, name
        assert response.content_type == content_type, name
        assert response.headers["Cache-Control"] == ASSET_CACHE
        assert_security_headers(response.headers)
        etag = response.headers["ETag"]
        again = await client.get(names.STATIC_PREFIX + name, headers={"If-None-Match": etag})
        assert again.status == 304
        assert again.headers["ETag"] == etag


async def test_nothing_outside_the_static_folder_is_served(client: Client) -> None:
    for path in TRAVERSALS:
        assert await raw_status(client, path) == 404, path


async def test_ui_config_says_what_the_page_needs(client: Client) -> None:
    response = await client.get(names.UI_CONFIG_PATH)
    assert response.status == 200
    assert response.headers["Cache-Control"] == PAGE_CACHE
    assert await response.json() == {
        "auth_required": False,  # no tokens file on loopback: anonymous
        "ws_port": 8080,
        "ws_path": names.WS_PATH,
        "http_port": 8081,
        "max_upload_bytes": UPLOAD_LIMIT,
    }


async def test_the_page_needs_no_token_when_tokens_are_required(
    backend: FakeBackend, storage: LocalStorage, ready: Ready, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens")
    app = app_for(backend, storage, ready, auth_tokens_file=tmp_path / "tokens")
    async with TestClient(TestServer(app, host="127.0.0.1")) as secured_client:
        for path in (names.PAGE_PATH, names.STATIC_PREFIX + "app.js", names.UI_CONFIG_PATH):
            assert (await secured_client.get(path)).status == 200, path
        config = await (await secured_client.get(names.UI_CONFIG_PATH)).json()
        assert config["auth_required"] is True
        assert (await secured_client.get(names.SCHEMA_PATH)).status == 401
        ok = bearer(tokens["acme"])
        assert (await secured_client.get(names.SCHEMA_PATH, headers=ok)).status == 200
        # No spelling of a path through /static/ reaches another route without a token.
        for path in ("/static/../schema/protocol.json", "/static/%2e%2e/schema/protocol.json"):
            assert await raw_status(secured_client, path) in (401, 404), path


async def test_a_worker_only_process_serves_no_page(storage: LocalStorage, ready: Ready) -> None:
    app = app_for(None, storage, ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as worker:
        for path in (names.PAGE_PATH, names.STATIC_PREFIX + "app.js", names.UI_CONFIG_PATH):
            assert (await worker.get(path)).status == 404, path


async def refused_status(url: str, origin: str, headers: dict[str, str]) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers, origin=origin):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code, refused.value.response.body or b""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_page_may_open_the_websocket(media_root: Path, tmp_path: Path) -> None:
    http_port, ws_port = free_port(), free_port()
    ports = {"http_port": http_port, "ws_port": ws_port}
    async with secured(media_root, tmp_path, **ports) as (svc, tokens):
        page = f"http://127.0.0.1:{http_port}"
        async with conn_as(svc, tokens["acme"], origin=page) as c:
            await c.send({"type": "ping"})
            await c.expect("pong")
        auth = bearer(tokens["acme"])
        for origin in (f"http://127.0.0.1:{ws_port + 1}", f"http://127.0.0.2:{http_port}"):
            refused = await refused_status(svc.ws_url, origin, auth)
            assert refused == (403, b"origin not allowed\n"), origin


def test_the_package_ships_the_static_files() -> None:
    folder = resources.files("ffpool.web").joinpath("static")
    shipped = {entry.name for entry in folder.iterdir() if entry.is_file()}
    assert {"index.html", *ASSETS} <= shipped
    # And the packaging keeps them: every file matches the package-data patterns.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["ffpool"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"web/static/{name}", p) for p in patterns), name
