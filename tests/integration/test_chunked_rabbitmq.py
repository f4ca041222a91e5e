"""Chunked transcodes across separate `ffpool worker` processes on the real broker: any
worker runs any chunk, and `kill -9` of a worker costs its chunk, not the job."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chunk_media import make_gop_clip, ssim, stream_duration, video_pts
from tests.integration.rabbit_harness import AMQP_URL, delete_topology, need_broker
from tests.integration.rabbit_procs import Proc, client, procs, service_env
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.ffmpeg]

FRAME_S = 1 / 25
SECONDS = 12
# Slow enough per chunk (one FFmpeg thread, `medium`) that a kill lands in the middle of one.
CHUNKED = {
    "input": {"kind": "path", "path": "clips/gop.mp4"},
    "operation": {
        "op": "transcode",
        "preset": "medium",
        "chunking": {"chunk_seconds": 3.0},
    },
}


@pytest.fixture
async def prefix() -> Any:
    need_broker()
    name = f"fftest.{uuid.uuid4().hex[:10]}"
    yield name
    await delete_topology(name)


@pytest.fixture
def gop_clip(ffmpeg_bin: str, media_root: Path) -> Path:
    return make_gop_clip(
        ffmpeg_bin, media_root / "clips" / "gop.mp4", seconds=SECONDS, size="960x540"
    )


def env(prefix: str, root: Path, name: str) -> dict[str, str]:
    return service_env(prefix, root, name, AMQP_URL, max_concurrent_jobs=1, ffmpeg_threads=1)


async def running_on(cl: Any, job_id: str) -> str:
    for msg in await cl.until(job_id, {"state"}, timeout=60):
        if msg.type == "state" and msg.state == "running":
            return str(msg.worker).split("/")[0]
    return await running_on(cl, job_id)


def started_chunk(proc: Proc, parent: str) -> bool:
    return any("chunk started" in line and parent in line for line in proc.lines)


def check_output(root: Path, job_id: str, source: Path, ffmpeg: str, ffprobe: str) -> None:
    out = root / "jobs" / job_id / "output.mp4"
    assert out.is_file()
    assert len(video_pts(ffprobe, out)) == SECONDS * 25
    assert video_pts(ffprobe, out) == video_pts(ffprobe, source)
    for kind in ("v", "a"):
        assert stream_duration(ffprobe, out, kind) == pytest.approx(
            stream_duration(ffprobe, source, kind), abs=FRAME_S
        )
    assert ssim(ffmpeg, source, out) > 0.95


@pytest.mark.parametrize("victim_role", ["chunk worker", "coordinator"])
async def test_kill_9_of_a_worker_costs_a_chunk_not_the_job(
    prefix: str,
    media_root: Path,
    gop_clip: Path,
    ffmpeg_bin: str,
    ffprobe_bin: str,
    victim_role: str,
) -> None:
    async with (
        procs(
            ("server", env(prefix, media_root, "server-a")),
            ("worker", env(prefix, media_root, "worker-a")),
            ("worker", env(prefix, media_root, "worker-b")),
        ) as (server, worker_a, worker_b),
        client(server) as cl,
    ):
        parent = await cl.submit(CHUNKED)
        coordinator_name = await running_on(cl, parent)
        coordinator, other = (
            (worker_a, worker_b) if coordinator_name == "worker-a" else (worker_b, worker_a)
        )
        victim = other if victim_role == "chunk worker" else coordinator
        await eventually(lambda: started_chunk(victim, parent), timeout=90, what="a chunk started")
        victim.signal(signal.SIGKILL)
        assert await victim.wait(10) == -signal.SIGKILL
        events = await cl.until(parent, {"completed", "failed", "cancelled"}, timeout=300)
    assert events[-1].type == "completed", events[-1]
    survivor = coordinator if victim is other else other
    # The killed chunk came back with its attempt counted, on its own.
    assert any("redelivered" in line for line in survivor.lines), survivor.lines[-40:]
    check_output(media_root, parent, gop_clip, ffmpeg_bin, ffprobe_bin)
    assert not any(parent in str(p) for p in (media_root / "chunks").rglob("*"))
