"""The real RabbitMQ backend against a throwaway broker node: /health follows the broker, and a
resource alarm makes submissions fail fast with `busy`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ffpool import names
from ffpool.app import Role, running
from ffpool.backends.base import BackendBusy
from ffpool.backends.rabbitmq import RabbitServer, build_server
from tests.fakes import FakeMetrics
from tests.integration.rabbit_harness import (
    job,
    make_settings,
    need_broker,
    started,
)
from tests.integration.rabbit_procs import RABBIT_BIN, ThrowawayBroker
from tests.polling import eventually

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[ThrowawayBroker]:
    need_broker()
    node = ThrowawayBroker(tmp_path / "broker")
    node.root.mkdir()
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def _status(url: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, timeout=aiohttp.ClientTimeout(5)) as r,
    ):
        return r.status


async def test_health_follows_the_broker(broker: ThrowawayBroker, tmp_path: Path) -> None:
    settings = make_settings(
        f"fftest.{uuid.uuid4().hex[:8]}",
        tmp_path,
        "health-1",
        rabbitmq_url=broker.url,
        host="127.0.0.1",
        ws_port=0,
        http_port=0,
    )
    async with running(settings, Role.SERVER) as svc:
        url = f"{svc.http_url}{names.HEALTH_PATH}"
        assert await _status(url) == 200
        await broker.stop()

        async def down() -> bool:
            return await _status(url) == 503

        await eventually(down, timeout=15, what="/health 503 while the broker is down")
        await broker.start()

        async def up() -> bool:
            return await _status(url) == 200

        await eventually(up, timeout=30, what="/health 200 once the broker is back")


async def _ctl(broker: ThrowawayBroker, *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(RABBIT_BIN / "rabbitmqctl"),
        "-n",
        broker.name,
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err


async def test_an_alarm_makes_submissions_fail_fast(
    broker: ThrowawayBroker, tmp_path: Path
) -> None:
    settings = make_settings(
        f"fftest.{uuid.uuid4().hex[:8]}",
        tmp_path,
        "alarm-1",
        rabbitmq_url=broker.url,
        broker_timeout_seconds=15,
    )
    async with started(build_server(settings, FakeMetrics())) as backend:
        await backend.submit(job())
        await _ctl(broker, "set_disk_free_limit", "1000GB")
        try:
            began = time.monotonic()
            with pytest.raises(BackendBusy):
                await backend.submit(job())
            assert time.monotonic() - began < 5  # not the 15 s confirm timeout
        finally:
            await _ctl(broker, "set_disk_free_limit", "50MB")
        await eventually(lambda: _submits(backend), timeout=15, what="submissions after the alarm")


async def _submits(backend: RabbitServer) -> bool:
    try:
        await backend.submit(job())
    except BackendBusy:
        return False
    return True
