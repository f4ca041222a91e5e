"""Authentication across replicas: two `ffpool server` processes and one `ffpool worker` on
RabbitMQ sharing SIGNING_KEY_FILE and AUTH_TOKENS_FILE. A browser ticket fetched from one
server opens a WebSocket on the other, a download link signed by one opens on the other, and a
rotated tokens file is picked up by running servers without a restart."""

from __future__ import annotations

import asyncio
import os
import secrets
from functools import partial
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from ffpool import names
from ffpool.auth.tokens import file_line, new_token
from tests.integration.auth_harness import bearer, http_status
from tests.integration.rabbit_harness import AMQP_URL, need_broker, prefix_for_test
from tests.integration.rabbit_procs import Client, Proc, procs, service_env
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.ffmpeg]
THUMB = {"input": {"kind": "path", "path": "clips/sample.mp4"}, "operation": {"op": "thumbnail"}}


async def opens(url: str, token: str) -> bool:
    return await upgrade_status(url, token) == 101


def http_url(proc: Proc) -> str:
    return f"http://127.0.0.1:{proc.http_port}"


async def upgrade_status(url: str, token: str) -> int:
    """101 if a WebSocket with this token opens, else the refusal's status."""
    try:
        async with connect(url, additional_headers=bearer(token), open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_tickets_and_links_work_on_every_replica_and_tokens_rotate(
    media_root: Path, tmp_path: Path
) -> None:
    need_broker()
    old, new = new_token(), new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(file_line("acme", old) + "\n")
    key_file = tmp_path / "signing.key"
    key_file.write_text(secrets.token_hex(32))
    async with prefix_for_test() as prefix:

        def env(instance: str) -> dict[str, str]:
            return service_env(
                prefix,
                media_root,
                instance,
                AMQP_URL,
                auth_tokens_file=tokens,
                signing_key_file=key_file,
            )

        async with procs(("server", env("s1")), ("server", env("s2")), ("worker", env("w1"))) as (
            one,
            two,
            _,
        ):
            # A ticket from s1's HTTP side opens a WebSocket on s2.
            status, body = await http_status(
                "POST", http_url(one) + names.AUTH_TICKET_PATH, bearer(old)
            )
            assert status == 200
            offered = [Subprotocol("ffpool.v1"), Subprotocol(f"ffpool.ticket.{body['ticket']}")]
            async with connect(two.ws_url, subprotocols=offered, open_timeout=10) as ws:
                assert ws.subprotocol == "ffpool.v1"
                cl = Client(ws)
                reader = asyncio.create_task(cl.read_forever())
                try:
                    job_id = await cl.submit(THUMB)
                    completed = (await cl.until(job_id, {"completed", "failed"}))[-1]
                finally:
                    reader.cancel()
            assert completed.type == "completed", completed
            # The link s2 signed opens on s1, without a token.
            [out] = completed.outputs
            status, data = await http_status("GET", http_url(one) + out.url)
            assert status == 200
            assert len(data) == out.size

            # Rotation: the new token works and the old one stops, on both, no restart.
            swap = tmp_path / "tokens.new"
            swap.write_text(file_line("acme", new) + "\n")
            os.replace(swap, tokens)
            for proc in (one, two):
                await eventually(
                    partial(opens, proc.ws_url, new),
                    timeout=15,
                    interval=0.1,
                    what="the rotated token taken",
                )
                assert await upgrade_status(proc.ws_url, old) == 401
    for proc in (one, two):
        assert not any(secret in line for line in proc.lines for secret in (old, new))
