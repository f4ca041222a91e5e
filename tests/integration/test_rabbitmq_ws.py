"""The RabbitMQ backend behind the real WebSocket and HTTP servers, in process."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from ffpool.app import Role, running
from tests.integration.rabbit_harness import make_settings, need_broker, prefix_for_test
from tests.integration.service import conn, submit


async def test_full_queue_answers_clients_with_an_error(tmp_path: Path) -> None:
    need_broker()
    async with prefix_for_test() as prefix:
        settings = make_settings(
            prefix,
            tmp_path,
            "ws-server",
            queue_max_length=2,
            host="127.0.0.1",
            ws_port=0,
            http_port=0,
        )
        async with running(settings, Role.SERVER) as svc, conn(svc) as c:
            for i in range(2):
                await c.send(submit({"op": "probe"}, request_id=f"ok-{i}"))
                assert (await c.expect("accepted")).request_id == f"ok-{i}"
            await c.send(submit({"op": "probe"}, request_id="third"))
            refused = await c.expect("error")
            assert (refused.code, refused.request_id) == ("queue_full", "third")
            await c.send({"type": "ping"})
            assert (await c.expect("pong")).type == "pong"
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{svc.http_url}/health") as resp,
            ):
                body = await resp.json()
            assert resp.status == 200
            assert body["stats"]["backend"] == "RabbitMQ"
            assert body["stats"]["queued_jobs"] == 2
