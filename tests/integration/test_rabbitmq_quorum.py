"""QUEUE_TYPE=quorum on the normal broker (a single node is enough for a quorum queue): every
band and the DLQ declared as quorum queues with the topology's arguments, jobs published to
their priority's band, a job whose worker is killed (SIGKILL) mid-run run again as attempt 2
(its started marker: an attempt is a run that started), a job killed MAX_ATTEMPTS times
dead-lettered by the worker's own check as too_many_attempts (the queue's delivery limit is a
backstop with slack, far above), also after a hand-back, a drain hand-back that does not
count, and a job past its TTL reported `expired`.
Each test has its own topology, deleted at the end (docs/rabbitmq.md, "Quorum queues")."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ffpool import names
from ffpool.backends.rabbitmq import build_server
from ffpool.backends.rabbitmq.server import RabbitServer
from ffpool.domain.events import FailureCode, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ThumbnailOp
from ffpool.topology import DELIVERY_LIMIT_SLACK, Topology
from tests.conftest import make_clip
from tests.fakes import FakeMetrics
from tests.integration.rabbit_harness import (
    AMQP_URL,
    QUORUM,
    job,
    make_settings,
    message_count,
    need_broker,
    prefix_for_test,
    queue_info,
    started,
    until_state,
)
from tests.integration.rabbit_procs import Proc, service_env
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(180)]


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def test_bands_and_dlq_are_quorum_queues_and_jobs_land_in_their_band(
    tmp_path: Path,
) -> None:
    async with prefix_for_test("q", **QUORUM) as prefix:
        settings = make_settings(prefix, tmp_path, "server1", **QUORUM, max_attempts=4)
        topo = Topology.from_settings(settings)
        async with started(build_server(settings, FakeMetrics())) as server:
            assert len(topo.job_queues()) == 3
            for queue in topo.job_queues():
                info = await queue_info(queue)
                assert info["type"] == "quorum", queue
                assert info["arguments"] == topo.queue_arguments(), queue
                assert info["arguments"]["x-delivery-limit"] == 3 + DELIVERY_LIMIT_SLACK
            dlq = await queue_info(topo.dlq_queue)
            assert dlq["type"] == "quorum"
            # No worker: each job waits in its band.
            for priority in (0, 2, 5, 9, 8):
                await server.submit(job("ok", priority=priority))
            high, mid, low = topo.job_queues()
            assert [await message_count(q) for q in (high, mid, low)] == [2, 1, 2]
            assert (await server.stats()).queued_jobs == 5


async def test_an_expired_job_is_reported_expired(tmp_path: Path) -> None:
    async with prefix_for_test("q", **QUORUM) as prefix:
        settings = make_settings(prefix, tmp_path, "server1", **QUORUM, queue_message_ttl_ms=1000)
        async with started(build_server(settings, FakeMetrics())) as server:
            j = job("ok", priority=9)  # the top band expires as the lowest does
            await server.submit(j)
            record = await until_state(server, j.id, JobState.FAILED, timeout=30)
            assert record.failure is not None
            assert record.failure.code is FailureCode.EXPIRED


# A fake FFmpeg that hangs while the flag file exists (a run to kill), else runs the real one.
SHIM = """#!/bin/bash
if [ -e "{flag}" ]; then
  echo started >> "{started}"
  exec sleep 120
fi
exec "{ffmpeg}" "$@"
"""


class Pool:
    """A quorum pool: this test's server in-process, `ffpool worker` processes (one slot)."""

    def __init__(self, prefix: str, root: Path, ffmpeg: str, ffprobe: str, **extra: Any) -> None:
        self.media = root / "media"
        (self.media / "clips").mkdir(parents=True)
        make_clip(ffmpeg, self.media / "clips/sample.mp4", seconds=1, size="160x120")
        self.flag, self.started = root / "hang", root / "started"
        shim = root / "ffmpeg-shim"
        shim.write_text(SHIM.format(flag=self.flag, started=self.started, ffmpeg=ffmpeg))
        shim.chmod(0o755)
        self.settings = make_settings(prefix, self.media, "server1", **QUORUM, **extra)
        self.env = service_env(
            prefix,
            self.media,
            "worker",
            AMQP_URL,
            ffmpeg_path=shim,
            ffprobe_path=ffprobe,
            max_concurrent_jobs=1,
            queue_type="quorum",
            **extra,
        )
        self.workers: list[Proc] = []

    def runs(self) -> int:
        return len(self.started.read_text().split()) if self.started.exists() else 0

    async def worker(self) -> Proc:
        proc = await Proc("worker", {**self.env, "INSTANCE_NAME": f"w{len(self.workers)}"}).start()
        self.workers.append(proc)
        return proc

    async def kill_mid_run(self, run: int) -> None:
        """Start a worker, wait until it hangs in the `run`-th FFmpeg run, SIGKILL it."""
        proc = await self.worker()
        await eventually(lambda: self.runs() >= run, timeout=60, what=f"run {run}")
        proc.signal(signal.SIGKILL)
        assert await proc.wait(10) == -signal.SIGKILL

    async def drain_mid_run(self, run: int) -> None:
        """Start a worker, wait until it is in the `run`-th FFmpeg run, drain it (SIGTERM,
        DRAIN_SECONDS=0: stopped and the job handed back at once)."""
        draining = await self.worker()
        await eventually(lambda: self.runs() >= run, timeout=60, what=f"run {run}")
        draining.signal(signal.SIGTERM)
        assert await draining.wait(30) == 0

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.workers), return_exceptions=True)


async def assert_dead_lettered_by_worker(server: RabbitServer, dlq: str) -> None:
    """The DLQ's one message carries ffpool's failure headers (attempt 3), no `x-death`: the
    worker's own check dead-lettered it, not the broker's delivery limit."""
    ((_, headers),) = await server._publisher.peek(dlq, 5)
    assert headers[names.HEADER_FAILURE_CODE] == "too_many_attempts"
    assert headers[names.HEADER_ATTEMPT] == 3
    assert "x-death" not in headers


async def submit_hanging(p: Pool, server: RabbitServer) -> Job:
    """A thumbnail job submitted while every FFmpeg run hangs (until the flag is removed)."""
    p.flag.touch()
    spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=0.5))
    j = Job(spec=spec)
    await server.submit(j)
    return j


@asynccontextmanager
async def pool(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str, **extra: Any
) -> AsyncIterator[tuple[Pool, RabbitServer]]:
    async with prefix_for_test("q", **QUORUM) as prefix:
        p = Pool(prefix, tmp_path, ffmpeg_bin, ffprobe_bin, **extra)
        try:
            async with started(build_server(p.settings, FakeMetrics())) as server:
                yield p, server
        finally:
            await p.stop()


@pytest.mark.ffmpeg
async def test_a_job_whose_worker_is_killed_runs_again_as_attempt_2(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    async with pool(tmp_path, ffmpeg_bin, ffprobe_bin, max_attempts=3) as (p, server):
        j = await submit_hanging(p, server)
        await p.kill_mid_run(1)
        p.flag.unlink()  # the next run is a real FFmpeg's
        await p.worker()
        record = await until_state(server, j.id, JobState.COMPLETED, timeout=60)
        assert record.attempt == 2  # attempt 1 started (its marker) and was lost
        assert p.runs() == 1
        dlq = Topology.from_settings(p.settings).dlq_queue
        assert await message_count(dlq) == 0


@pytest.mark.ffmpeg
async def test_a_job_killed_max_attempts_times_is_dead_lettered_by_the_worker(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    """Killed in both its runs (MAX_ATTEMPTS 2): the next worker reads 2 runs started, so the
    delivery is attempt 3 and it dead-letters it with ffpool's headers; the broker's limit
    (1 + DELIVERY_LIMIT_SLACK returns) is nowhere near."""
    async with pool(tmp_path, ffmpeg_bin, ffprobe_bin, max_attempts=2) as (p, server):
        j = await submit_hanging(p, server)  # every run hangs: each is killed
        await p.kill_mid_run(1)
        await p.kill_mid_run(2)  # the second and last attempt
        await p.worker()
        record = await until_state(server, j.id, JobState.FAILED, timeout=30)
        assert record.failure is not None
        assert record.failure.code is FailureCode.TOO_MANY_ATTEMPTS
        assert p.runs() == 2  # never run a third time
        (dead,) = await server.dead_letters()
        assert dead.failure is not None
        assert dead.failure.code is FailureCode.TOO_MANY_ATTEMPTS
        await assert_dead_lettered_by_worker(server, p.settings.dlq_queue)


@pytest.mark.ffmpeg
async def test_a_drain_hands_the_job_back_without_counting_it(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    """Attempt 1 is killed, attempt 2 is handed back by a SIGTERM drain: with MAX_ATTEMPTS 2
    the job still completes, as attempt 2 (the hand-back lowered its started marker to 1)."""
    async with pool(tmp_path, ffmpeg_bin, ffprobe_bin, max_attempts=2) as (p, server):
        j = await submit_hanging(p, server)
        await p.kill_mid_run(1)
        await p.drain_mid_run(2)
        p.flag.unlink()
        await p.worker()
        record = await until_state(server, j.id, JobState.COMPLETED, timeout=60)
        assert record.attempt == 2
        assert await message_count(p.settings.dlq_queue) == 0


@pytest.mark.ffmpeg
async def test_past_max_attempts_after_a_hand_back_the_worker_dead_letters_it(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    """Killed at attempt 1, handed back at 2 (header 2, started marker lowered to 1), run
    again as 2 and killed (started 2): the next delivery is attempt 3 > MAX_ATTEMPTS 2, so the
    worker's own check fires: ffpool's failure headers, no `x-death`."""
    async with pool(tmp_path, ffmpeg_bin, ffprobe_bin, max_attempts=2) as (p, server):
        j = await submit_hanging(p, server)
        await p.kill_mid_run(1)
        await p.drain_mid_run(2)
        await p.kill_mid_run(3)
        await p.worker()
        record = await until_state(server, j.id, JobState.FAILED, timeout=60)
        assert record.failure is not None
        assert record.failure.code is FailureCode.TOO_MANY_ATTEMPTS
        assert p.runs() == 3  # never run a fourth time
        await assert_dead_lettered_by_worker(server, p.settings.dlq_queue)
