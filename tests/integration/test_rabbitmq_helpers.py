"""Shared helpers of the RabbitMQ tests (no tests here): per-test topology, fake executor,
polling with deadlines, and broker clean-up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import pytest

from ffpool.backends.rabbitmq import RabbitBackend
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    ProgressEvent,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.topology import Topology
from tests.conftest import broker_reachable, require

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
T = TypeVar("T")


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


class FakeMetrics:
    def __init__(self) -> None:
        self.submitted = 0
        self.finished: list[tuple[str, JobState]] = []

    def observe_submitted(self) -> None:
        self.submitted += 1

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        self.finished.append((operation, state))


class FakeExecutor:
    """Behaviour chosen by the input path: `ok`, `fail`, `block` (until released), `slow`."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.release = asyncio.Event()

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        self.started.append(job.id)
        mode = job.spec.input.path if isinstance(job.spec.input, PathInput) else "ok"
        on_progress(ProgressEvent(job_id=job.id, percent=50.0, out_time_s=1.0))
        try:
            if mode == "block":
                await self.release.wait()
            elif mode == "slow":
                await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            self.cancelled.append(job.id)
            raise
        if mode == "fail":
            return FailedEvent(job_id=job.id, code=FailureCode.INVALID_MEDIA, message="bad input")
        return CompletedEvent(job_id=job.id, processing_time_s=0.01)


def job(mode: str = "ok", priority: int = 0) -> Job:
    return Job(spec=JobSpec(input=PathInput(path=mode), operation=ProbeOp()), priority=priority)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def state_of(backend: RabbitBackend, job_id: str, state: JobState) -> JobRecord | None:
    record = await backend.get(job_id)
    return record if record is not None and record.state is state else None


async def delete_topology(prefix: str) -> None:
    topo = Topology(**topology_env(prefix))
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        channel = await conn.channel()
        for queue in (topo.job_queue, topo.dlq_queue):
            await channel.queue_delete(queue, timeout=5)
        for exchange in (topo.job_exchange, topo.events_exchange, topo.control_exchange):
            await channel.exchange_delete(exchange, timeout=5)


@asynccontextmanager
async def prefix_for_test() -> AsyncIterator[str]:
    prefix = f"fftest.{uuid.uuid4().hex[:10]}"
    try:
        yield prefix
    finally:
        await delete_topology(prefix)


@asynccontextmanager
async def started(backend: RabbitBackend) -> AsyncIterator[RabbitBackend]:
    await backend.start()
    try:
        yield backend
    finally:
        async with asyncio.timeout(30):
            await backend.stop()


async def raw_channel(url: str = AMQP_URL) -> tuple[aio_pika.abc.AbstractConnection, Any]:
    conn = await aio_pika.connect(url, timeout=5)
    return conn, await conn.channel()
