"""Any server answers for any accepted job, queued included, also after the server that
accepted it is gone; an idempotency key holds across servers; twin copies of a job (published
by two servers at once) run once and leave one valid output."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.backends.tenancy import keyed_job_id
from ffpool.domain.events import FailureCode, JobState
from ffpool.domain.jobs import ANONYMOUS_TENANT, Job, JobSpec, PathInput, Preset, TranscodeOp
from ffpool.ffmpeg.executor import Executor
from ffpool.storage.media import LocalStorage
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    make_settings,
    need_broker,
    prefix_for_test,
    started,
    until_state,
)
from tests.polling import eventually

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


def keyed(key: str, path: str = "ok") -> Job:
    spec = JobSpec(input=PathInput(path=path), operation=TranscodeOp(preset=Preset.ULTRAFAST))
    job_id = keyed_job_id(key, spec, ANONYMOUS_TENANT, b"replicas-test-secret")
    return Job(id=job_id, spec=spec, idempotency_key=key)


async def test_another_server_answers_for_a_queued_job_after_its_server_died(
    tmp_path: Path,
) -> None:
    async with prefix_for_test() as prefix:
        first = make_settings(prefix, tmp_path, "server1")
        second = make_settings(prefix, tmp_path, "server2")
        worker = make_settings(prefix, tmp_path, "worker1", max_concurrent_jobs=1)
        j = keyed("replicas-1")
        async with started(build_server(first, FakeMetrics())) as accepting:
            assert not (await accepting.submit(j)).duplicate
        # The accepting server is gone; no worker has seen the job. A server started now:
        async with started(build_server(second, FakeMetrics())) as other:
            record = await other.get(j.id)
            assert record is not None
            assert record.state is JobState.QUEUED
            again = await other.submit(keyed("replicas-1"))  # the same key, another server
            assert again.duplicate
            assert again.record.job_id == j.id
            assert (await other.cancel(j.id)).state is JobState.CANCELLED
            executor = FakeExecutor()
            async with started(build_worker(worker, FakeMetrics(), executor)):
                later = keyed("replicas-2")
                await other.submit(later)
                await until_state(other, later.id, JobState.COMPLETED)
            assert executor.started == [later.id]  # the cancelled one was skipped


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


@pytest.mark.ffmpeg
async def test_twin_publishes_run_once_and_keep_one_valid_output(media_root: Path) -> None:
    async with prefix_for_test() as prefix:
        servers = [make_settings(prefix, media_root, f"s{i}") for i in (1, 2)]
        workers = [
            make_settings(prefix, media_root, f"w{i}", max_concurrent_jobs=1) for i in (1, 2)
        ]
        storage = LocalStorage(media_root)
        async with (
            started(build_server(servers[0], FakeMetrics())) as one,
            started(build_server(servers[1], FakeMetrics())) as two,
            started(build_worker(workers[0], FakeMetrics(), Executor(workers[0], storage))),
            started(build_worker(workers[1], FakeMetrics(), Executor(workers[1], storage))),
        ):
            jobs = [keyed(f"twin-{n}", "clips/sample.mp4") for n in range(4)]
            # Each key to both servers at once: both may publish it (neither sees the other's
            # accepted record yet), and two workers may get the twins together.
            await asyncio.gather(*(s.submit(j) for j in jobs for s in (one, two)))
            for j in jobs:
                record = await until_state(one, j.id, JobState.COMPLETED)
                assert record.result is not None
                (output,) = record.result.outputs
                path = media_root / "jobs" / j.id / output.name
                assert path.stat().st_size == output.size
                assert ffprobe_duration(path) > 0

            def no_scratch_left(job_dir: Path) -> bool:
                return not [p for p in job_dir.iterdir() if p.name.startswith(".run-")]

            # A twin that lost the race ends on its own time: its scratch goes with it.
            for j in jobs:
                job_dir = media_root / "jobs" / j.id
                await eventually(
                    lambda d=job_dir: no_scratch_left(d), timeout=30, what="twin scratch removed"
                )


async def test_a_server_started_later_knows_a_job_expired_in_the_queue(tmp_path: Path) -> None:
    async with prefix_for_test() as prefix:
        first = make_settings(prefix, tmp_path, "server1", queue_message_ttl_ms=1000)
        second = make_settings(prefix, tmp_path, "server2", queue_message_ttl_ms=1000)
        j = keyed("replicas-expired")
        async with started(build_server(first, FakeMetrics())) as accepting:
            await accepting.submit(j)
            await until_state(accepting, j.id, JobState.FAILED)
        async with started(build_server(second, FakeMetrics())) as later:
            record = await later.get(j.id)
            assert record is not None
            assert record.state is JobState.FAILED
            assert record.failure is not None
            assert record.failure.code is FailureCode.EXPIRED
