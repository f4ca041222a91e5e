"""Authentication at the edge of a real service (memory backend, FFmpeg, 127.0.0.1): tokens on
the WebSocket upgrade and every HTTP route, browser tickets, Origin, per-tenant connections,
other tenants' jobs, signed download links, the ops port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from ffpool import logs, names
from ffpool.auth.tokens import new_token
from tests.integration.auth_harness import bearer, conn_as, http_status, secured

pytest_plugins = ["tests.integration.auth_fixtures"]


UNAUTHORIZED = {"error": "unauthorized", "message": "authentication required"}


async def refused_status(url: str, **kwargs: Any) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, **kwargs):
            pass
    return refused.value.response.status_code, refused.value.response.body or b""


@pytest.mark.usefixtures("restore_logging")
async def test_websocket_upgrade_needs_a_valid_token(
    media_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure("DEBUG")
    wrong = new_token()
    async with secured(media_root, tmp_path) as (svc, tokens):
        missing = await refused_status(svc.ws_url)
        bad = await refused_status(svc.ws_url, additional_headers=bearer(wrong))
        basic = await refused_status(svc.ws_url, additional_headers={"Authorization": "Basic x"})
        assert missing == bad == basic == (401, b"unauthorized\n")  # no detail about why
        async with conn_as(svc, tokens["acme"]) as c:
            await c.send({"type": "ping"})
            assert (await c.expect("pong")).type == "pong"
    out, err = capfd.readouterr()
    for secret in (wrong, *tokens.values()):
        assert secret not in out + err


async def test_every_http_route_but_the_probes_needs_a_token(
    media_root: Path, tmp_path: Path
) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        base = svc.http_url
        for path in (names.LIVE_PATH, names.READY_PATH, names.HEALTH_PATH):
            assert (await http_status("GET", base + path))[0] == 200
        routes = [
            ("GET", f"/jobs/{'f' * 32}"),
            ("GET", f"/jobs/{'f' * 32}/outputs/out.mp4"),
            ("GET", names.SCHEMA_PATH),
            ("GET", names.DEAD_LETTERS_PATH),
            ("POST", names.UPLOADS_PATH),
            ("POST", names.AUTH_TICKET_PATH),
            ("GET", names.METRICS_PATH),
        ]
        for method, path in routes:
            for headers in (None, bearer(new_token()), {"Authorization": "Bearer"}):
                status, body = await http_status(method, base + path, headers, data=b"x")
                assert (status, body) == (401, UNAUTHORIZED), path
        ok = bearer(tokens["acme"])
        assert (await http_status("GET", base + names.SCHEMA_PATH, ok))[0] == 200
        assert (await http_status("GET", base + f"/jobs/{'f' * 32}", ok))[0] == 404


async def test_metrics_and_all_dead_letters_only_on_the_ops_port(
    media_root: Path, tmp_path: Path
) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        ok = bearer(tokens["acme"])
        assert (await http_status("GET", svc.http_url + names.METRICS_PATH, ok))[0] == 404
        assert svc.ops_port not in (svc.http_port, svc.ws_port)
        status, text = await http_status("GET", svc.ops_url + names.METRICS_PATH)
        assert status == 200
        assert b"ffpool_jobs_submitted_total" in text
        status, body = await http_status("GET", svc.ops_url + names.DEAD_LETTERS_PATH)
        assert (status, body) == (200, {"dead_letters": []})


async def test_a_browser_ticket_is_single_use_and_never_echoed(
    media_root: Path, tmp_path: Path
) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        url = svc.http_url + names.AUTH_TICKET_PATH
        status, body = await http_status("POST", url, bearer(tokens["acme"]))
        assert status == 200
        assert body["expires_in"] == 30
        offered = [Subprotocol("ffpool.v1"), Subprotocol(f"ffpool.ticket.{body['ticket']}")]
        async with connect(svc.ws_url, subprotocols=offered) as ws:
            assert ws.subprotocol == "ffpool.v1"
            assert ws.response is not None
            assert body["ticket"] not in str(ws.response.headers)
            await ws.send('{"type": "ping"}')
            assert "pong" in str(await ws.recv())
        again = await refused_status(svc.ws_url, subprotocols=offered)
        assert again == (401, b"unauthorized\n")
        forged = [
            Subprotocol("ffpool.v1"),
            Subprotocol(f"ffpool.ticket.acme.{10**10}.00.{'0' * 64}"),
        ]
        assert (await refused_status(svc.ws_url, subprotocols=forged))[0] == 401


async def test_origin_is_checked_against_the_allow_list(media_root: Path, tmp_path: Path) -> None:
    allowed = "https://app.example.com"
    async with secured(media_root, tmp_path, allowed_origins=allowed) as (svc, tokens):
        auth = bearer(tokens["acme"])
        refused = await refused_status(
            svc.ws_url, additional_headers=auth, origin="https://evil.example"
        )
        assert refused == (403, b"origin not allowed\n")
        async with conn_as(svc, tokens["acme"], origin=allowed) as c:
            await c.send({"type": "ping"})
            await c.expect("pong")
        async with conn_as(svc, tokens["acme"]) as c:  # no Origin: not a browser
            await c.send({"type": "ping"})
            await c.expect("pong")


async def test_connections_per_tenant_are_limited(media_root: Path, tmp_path: Path) -> None:
    async with secured(media_root, tmp_path, tenant_max_connections=2) as (svc, tokens):
        acme = bearer(tokens["acme"])
        async with conn_as(svc, tokens["acme"]), conn_as(svc, tokens["acme"]) as second:
            assert await refused_status(svc.ws_url, additional_headers=acme) == (
                429,
                b"too many connections\n",
            )
            async with conn_as(svc, tokens["globex"]) as other:
                await other.send({"type": "ping"})
                await other.expect("pong")
            await second.ws.close()
            async with conn_as(svc, tokens["acme"]) as third:  # the closed one's slot
                await third.send({"type": "ping"})
                await third.expect("pong")


async def test_cors_lets_a_listed_web_app_use_its_token(media_root: Path, tmp_path: Path) -> None:
    app = "https://app.example.com"
    async with secured(media_root, tmp_path, allowed_origins=app) as (svc, tokens):
        url = svc.http_url + names.AUTH_TICKET_PATH
        ask = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        async with aiohttp.ClientSession() as http:
            async with http.options(url, headers={"Origin": app, **ask}) as pre:
                assert pre.status == 204
                assert pre.headers["Access-Control-Allow-Origin"] == app
                assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
                assert "Access-Control-Allow-Credentials" not in pre.headers
            other = {"Origin": "https://evil.example", **ask}
            async with http.options(url, headers=other) as refused:
                assert refused.status == 403
                assert "Access-Control-Allow-Origin" not in refused.headers
            headers = {"Origin": app, **bearer(tokens["acme"])}
            async with http.post(url, headers=headers) as resp:
                assert resp.status == 200
                assert resp.headers["Access-Control-Allow-Origin"] == app
            async with http.get(svc.http_url + f"/jobs/{'f' * 32}", headers=headers) as resp:
                assert resp.status == 404
                assert resp.headers["Access-Control-Allow-Origin"] == app
