"""Separate `ffpool server` and `ffpool worker` processes on the real broker, real FFmpeg.

Every fault test counts jobs in and out: each accepted job must end `completed`, none lost.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_clip
from tests.integration.rabbit_harness import AMQP_URL, delete_topology, need_broker
from tests.integration.rabbit_procs import (
    Proc,
    ThrowawayBroker,
    client,
    procs,
    service_env,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.ffmpeg]

PROBE = {"input": {"kind": "path", "path": "clips/sample.mp4"}, "operation": {"op": "probe"}}
THUMB = {"input": {"kind": "path", "path": "clips/sample.mp4"}, "operation": {"op": "thumbnail"}}
# Several seconds of x264 `slow` on two cores: long enough to interrupt in the middle.
LONG = {
    "input": {"kind": "path", "path": "clips/long.mp4"},
    "operation": {"op": "transcode", "preset": "slow", "audio_codec": "none"},
}


@pytest.fixture
async def prefix() -> Any:
    need_broker()
    name = f"fftest.{uuid.uuid4().hex[:10]}"
    yield name
    await delete_topology(name)


@pytest.fixture
def long_clip(ffmpeg_bin: str, media_root: Path) -> Path:
    return make_clip(ffmpeg_bin, media_root / "clips" / "long.mp4", seconds=12, size="640x480")


def env(prefix: str, root: Path, name: str, url: str = AMQP_URL, **extra: Any) -> dict[str, str]:
    return service_env(prefix, root, name, url, **extra)


async def running_on(cl: Any, job_id: str) -> str:
    """The worker (`instance/slot`) that started the job."""
    for msg in await cl.until(job_id, {"state"}, timeout=60):
        if msg.type == "state" and msg.state == "running":
            return str(msg.worker)
    return await running_on(cl, job_id)


async def test_two_servers_two_workers_and_a_kill_9(
    prefix: str, media_root: Path, long_clip: Path
) -> None:
    async with procs(
        ("server", env(prefix, media_root, "server-a")),
        ("server", env(prefix, media_root, "server-b")),
        ("worker", env(prefix, media_root, "worker-a")),
        ("worker", env(prefix, media_root, "worker-b")),
    ) as (server_a, server_b, worker_a, worker_b):
        async with client(server_a) as ca, client(server_b) as cb:
            long_id = await ca.submit(LONG)
            victim_name = (await running_on(ca, long_id)).split("/")[0]
            victim = worker_a if victim_name == "worker-a" else worker_b
            short = [
                await (ca if i % 2 else cb).submit(PROBE if i % 3 else THUMB) for i in range(8)
            ]
            victim.signal(signal.SIGKILL)
            assert await victim.wait(10) == -signal.SIGKILL
            outcomes = {}
            for job_id in short:
                cl = ca if short.index(job_id) % 2 else cb
                outcomes[job_id] = (await cl.until(job_id, {"completed", "failed"}))[-1]
            last = await ca.until(long_id, {"completed", "failed"}, timeout=120)
            outcomes[long_id] = last[-1]
            rerun = [m for m in last if m.type == "state" and m.state == "running"]
        assert {m.type for m in outcomes.values()} == {"completed"}, outcomes
        assert len(outcomes) == 9  # nine in, nine out
        assert rerun[-1].worker.split("/")[0] != victim_name
        assert rerun[-1].attempt == 2  # the kill counted as an attempt


async def test_sigterm_mid_job_hands_it_back(
    prefix: str, media_root: Path, long_clip: Path
) -> None:
    async with procs(
        ("server", env(prefix, media_root, "server-a")),
        ("worker", env(prefix, media_root, "worker-a", drain_seconds=0.5)),
    ) as (server, worker):
        async with client(server) as cl:
            job_id = await cl.submit(LONG)
            await running_on(cl, job_id)
            worker.signal(signal.SIGTERM)
            assert await worker.wait(30) == 0
            assert any("job handed back to the queue" in line for line in worker.lines)
            msgs = await cl.until(job_id, {"state"})
            assert (msgs[-1].state, msgs[-1].attempt) == ("queued", 1)
            async with procs(("worker", env(prefix, media_root, "worker-b"))):
                events = await cl.until(job_id, {"completed", "failed"}, timeout=120)
        assert events[-1].type == "completed"
        started = [m for m in events if m.type == "state" and m.state == "running"]
        assert (started[-1].worker.split("/")[0], started[-1].attempt) == ("worker-b", 1)


async def test_client_follows_its_job_on_another_server(
    prefix: str, media_root: Path, long_clip: Path
) -> None:
    async with procs(
        ("server", env(prefix, media_root, "server-a")),
        ("worker", env(prefix, media_root, "worker-a")),
    ) as (server_a, _):
        async with client(server_a) as ca:
            job_id = await ca.submit(LONG)
            await running_on(ca, job_id)
        # server-b starts after the job did: it learns the job from server-a on request.
        specs = [("server", env(prefix, media_root, "server-b"))]
        async with procs(*specs) as (server_b,), client(server_b) as cb:
            await cb.send({"type": "subscribe", "job_id": job_id})
            events = await cb.until(job_id, {"completed", "failed"}, timeout=120)
        assert events[0].type == "state"
        assert events[0].state == "running"
        assert events[-1].type == "completed"


async def test_cancel_reaches_the_worker_process(
    prefix: str, media_root: Path, long_clip: Path
) -> None:
    async with procs(
        ("server", env(prefix, media_root, "server-a")),
        ("worker", env(prefix, media_root, "worker-a")),
    ) as (server, worker):
        async with client(server) as cl:
            job_id = await cl.submit(LONG)
            await running_on(cl, job_id)
            await cl.send({"type": "cancel", "job_id": job_id})
            events = await cl.until(job_id, {"cancelled", "completed", "failed"}, timeout=30)
        assert events[-1].type == "cancelled"
        assert any("cancelling running job" in line for line in worker.lines)


async def test_broker_restart_loses_no_confirmed_job(
    media_root: Path, long_clip: Path, tmp_path: Path
) -> None:
    broker = ThrowawayBroker(tmp_path / "broker")
    broker.root.mkdir()
    await broker.start()
    try:
        name = f"fftest.{uuid.uuid4().hex[:8]}"
        specs = [
            ("serve", env(name, media_root, "serve-a", broker.url)),
            ("worker", env(name, media_root, "worker-b", broker.url)),
        ]
        async with procs(*specs) as (serve, _), client(serve) as cl:
            accepted = [await cl.submit(LONG)]
            accepted += [await cl.submit(PROBE if i % 2 else THUMB) for i in range(6)]
            await broker.stop()
            await broker.start()
            outcomes = await asyncio.gather(*(_final_state(serve, job_id) for job_id in accepted))
        assert outcomes == ["completed"] * len(accepted)
    finally:
        await broker.stop()


async def _final_state(server: Proc, job_id: str) -> str:
    """Subscribe on a fresh connection (the first may have missed events during the outage)
    and wait for the job's end."""
    async with client(server) as cl:
        await cl.send({"type": "subscribe", "job_id": job_id})
        events = await cl.until(job_id, {"completed", "failed", "cancelled"}, timeout=110)
        return str(events[-1].type)
