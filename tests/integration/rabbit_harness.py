"""Shared helpers of the RabbitMQ tests (no tests here): per-test topology, settings, jobs
for the fake executor (tests/fakes.py), and broker clean-up."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aio_pika
import aiohttp

from ffpool.backends.base import JobBackend, ServiceBackend
from ffpool.domain.events import (
    JobRecord,
    JobState,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.topology import Topology
from tests.conftest import broker_reachable, require
from tests.polling import eventually

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
MGMT = "http://127.0.0.1:15672/api"
GUEST = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
QUORUM = {"queue_type": "quorum"}
_B = TypeVar("_B", bound=ServiceBackend)


def need_broker() -> None:
    require(broker_reachable(), "RabbitMQ is not reachable on 127.0.0.1:5672")


def topology_env(prefix: str, **extra: Any) -> dict[str, Any]:
    """Unique names per test, so tests never share queues."""
    return {
        "job_exchange": f"{prefix}.jobs",
        "job_queue": f"{prefix}.queue",
        "dlq_queue": f"{prefix}.dlq",
        "events_exchange": f"{prefix}.events",
        "control_exchange": f"{prefix}.control",
        **extra,
    }


def make_settings(prefix: str, media_root: Path, instance: str, **extra: Any) -> Settings:
    fields: dict[str, Any] = {
        "backend": "rabbitmq",
        "rabbitmq_url": AMQP_URL,
        "media_root": media_root,
        "instance_name": instance,
        "max_concurrent_jobs": 2,
        "broker_timeout_seconds": 5,
        "ops_port": 0,
        **topology_env(prefix),
        **extra,
    }
    return Settings(**fields)


def job(mode: str = "ok", priority: int = 0) -> Job:
    """A job whose input path picks what the fake executor does (ok, fail, block, slow)."""
    return Job(spec=JobSpec(input=PathInput(path=mode), operation=ProbeOp()), priority=priority)


async def state_of(backend: JobBackend, job_id: str, state: JobState) -> JobRecord | None:
    record = await backend.get(job_id)
    return record if record is not None and record.state is state else None


async def until_state(
    backend: JobBackend, job_id: str, state: JobState, timeout: float = 15.0
) -> JobRecord:
    """The job's record once `backend` sees it in `state` (polled with a deadline)."""
    return await eventually(
        lambda: state_of(backend, job_id, state),
        timeout=timeout,
        what=f"job {job_id} {state.value}",
    )


async def delete_topology(prefix: str, url: str = AMQP_URL, **extra: Any) -> None:
    """Delete the queues (every band and the DLQ) and exchanges of the topology `prefix` with
    `extra` knobs (queue_type, queue_priority_bands: the bands' names depend on them)."""
    topo = Topology(**topology_env(prefix, **extra))
    conn = await aio_pika.connect(url, timeout=5)
    async with conn:
        channel = await conn.channel()
        for queue in (*topo.job_queues(), topo.dlq_queue):
            await channel.queue_delete(queue, timeout=5)
        for exchange in (topo.job_exchange, topo.events_exchange, topo.control_exchange):
            await channel.exchange_delete(exchange, timeout=5)


@asynccontextmanager
async def prefix_for_test(tag: str = "", **extra: Any) -> AsyncIterator[str]:
    """A unique topology prefix; its topology (with `extra` knobs) deleted at the end."""
    prefix = f"fftest.{tag}{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        await delete_topology(prefix, **extra)


@asynccontextmanager
async def started(backend: _B) -> AsyncIterator[_B]:
    await backend.start()
    try:
        yield backend
    finally:
        async with asyncio.timeout(30):
            await backend.stop()


async def raw_channel(url: str = AMQP_URL) -> tuple[aio_pika.abc.AbstractConnection, Any]:
    conn = await aio_pika.connect(url, timeout=5)
    return conn, await conn.channel()


async def message_count(queue: str) -> int:
    """Ready messages in `queue` now (a passive declare: the management API's counts lag)."""
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        declared = await channel.declare_queue(queue, passive=True, timeout=5)
        return int(declared.declaration_result.message_count or 0)


def _management() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers=GUEST, timeout=aiohttp.ClientTimeout(total=5))


async def queue_info(queue: str) -> dict[str, Any]:
    """The management API's view of `queue` (type, arguments, consumers)."""
    url = f"{MGMT}/queues/%2F/{quote(queue, safe='')}"
    async with _management() as http, http.get(url) as resp:
        resp.raise_for_status()
        info: dict[str, Any] = await resp.json()
        return info


async def close_connections(name: str) -> int:
    """Close (management API) every broker connection whose client-given name contains `name`;
    how many there were (0: none up yet, so it suits `eventually`)."""
    async with _management() as http:
        async with http.get(f"{MGMT}/connections") as resp:
            resp.raise_for_status()
            listed: list[dict[str, Any]] = await resp.json()
        found = [
            c["name"]
            for c in listed
            if name in str(c.get("client_properties", {}).get("connection_name", ""))
        ]
        for conn in found:
            async with http.delete(f"{MGMT}/connections/{quote(conn, safe='')}") as resp:
                assert resp.status in (204, 404), resp.status  # 404: it closed meanwhile
    return len(found)
