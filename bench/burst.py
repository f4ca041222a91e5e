"""The load side of the autoscaling benchmark: a generated clip, a burst of real transcode jobs
submitted through the RabbitMQ backend as a `ffpool server` would (confirmed, persistent), and a
ledger fed by the events exchange (bench/ledger.py)."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from bench.ledger import Ledger
from ffpool.backends.rabbitmq import build_server, connection
from ffpool.backends.rabbitmq.feed import parse_events
from ffpool.domain.jobs import Job, JobSpec, PathInput, Preset, TranscodeOp
from ffpool.metrics import Metrics
from ffpool.settings import Settings, env_variables
from ffpool.topology import Topology
from tests.conftest import make_clip

CLIP = "clips/sample.mp4"
LONG_CLIP = "clips/long.mp4"
LONG_FACTOR = 8  # a long job's clip is this many times longer
BENCH_CONNECTION = "ffpool-bench"


def make_media(root: Path, seconds: float, size: str, long: bool) -> None:
    """MEDIA_ROOT with the generated clips (FFmpeg test sources, no download)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg not found")
    (root / "clips").mkdir(parents=True, exist_ok=True)
    make_clip(ffmpeg, root / CLIP, seconds=seconds, size=size)
    if long:
        make_clip(ffmpeg, root / LONG_CLIP, seconds=seconds * LONG_FACTOR, size=size)


def transcode_jobs(count: int, long: int = 0) -> list[Job]:
    """`count` transcodes; the last `long` of them (published last, so running last, while the
    other workers go idle) on the long clip."""
    op = TranscodeOp(preset=Preset.VERYFAST)
    clips = [CLIP] * (count - long) + [LONG_CLIP] * long
    return [Job(spec=JobSpec(input=PathInput(path=c), operation=op)) for c in clips]


def settings_from_env(env: dict[str, str], media_root: Path, instance: str) -> Settings:
    """The service Settings a pod with this environment gets (its keys: lower-cased variables)."""
    fields: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.upper() in env_variables()}
    fields.update(media_root=str(media_root), instance_name=instance, host="127.0.0.1")
    return Settings.model_validate(fields)


class Submitter:
    """A server-side backend (no workers) that submits jobs, plus an events consumer."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topo = Topology.from_settings(settings)
        self.backend = build_server(settings, Metrics())
        self.ledger = Ledger(expected=set())
        self._conn: AbstractRobustConnection | None = None

    async def __aenter__(self) -> Submitter:
        await self.backend.start()
        url = self._settings.rabbitmq_url.get_secret_value()
        timeout = self._settings.broker_timeout_seconds
        self._conn = await connection.connect(url, BENCH_CONNECTION, timeout)
        channel = await self._conn.channel()
        exchange = await connection.events_exchange(channel, self._topo, timeout)
        queue = await channel.declare_queue(
            f"{self._topo.events_exchange}:bench:{uuid.uuid4().hex[:8]}",
            exclusive=True,
            auto_delete=True,
            timeout=timeout,
        )
        await queue.bind(exchange, routing_key="#", timeout=timeout)
        await queue.consume(self._on_event, no_ack=True, timeout=timeout)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await connection.close_quietly(self._conn, self._settings.broker_timeout_seconds)
        await self.backend.stop()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        for event in parse_events(message.body) or []:
            self.ledger.ingest(event, time.monotonic())

    async def burst(self, jobs: list[Job]) -> float:
        """Submit all jobs (each confirmed by the broker); returns when the burst began."""
        self.ledger.expected = {j.id for j in jobs}
        began = time.monotonic()
        for job in jobs:
            await self.backend.submit(job)
        return began


async def delete_exchanges(url: str, names: list[str], timeout: float) -> None:
    conn = await aio_pika.connect(url, timeout=timeout)
    async with conn:
        channel = await conn.channel()
        for name in names:
            await channel.exchange_delete(name, timeout=timeout)
