"""A RabbitMQ pool with no shared volume: a server-side backend and a worker with different
MEDIA_ROOTs, STORAGE=s3 on both, a real broker, a real S3 server (versitygw) and real FFmpeg.
Jobs with s3 inputs finish; the job records are in the bucket, readable from the server side
(bucket_markers.py); nothing is left under either MEDIA_ROOT."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ffpool.backends.rabbitmq import build_server, build_worker
from ffpool.backends.rabbitmq.bucket_markers import BucketMarkers
from ffpool.domain.events import FailureCode, JobState
from ffpool.domain.jobs import Job, JobSpec, S3Input, ThumbnailOp
from ffpool.ffmpeg.executor import Executor
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from ffpool.storage.s3 import S3ObjectStore
from tests.fakes import FakeMetrics
from tests.integration.rabbit_harness import (
    make_settings,
    need_broker,
    prefix_for_test,
    started,
    until_state,
)
from tests.integration.s3_harness import S3Server

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3, pytest.mark.rabbitmq]


def pool_settings(
    server: S3Server, bucket: str, prefix: str, media_root: Path, instance: str
) -> Settings:
    s3 = server.fields(s3_bucket=bucket, s3_allow_read=(f"s3://{bucket}/in",))
    return make_settings(prefix, media_root, instance, **s3)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if not p.is_dir()]


def s3_job(bucket: str, key: str) -> Job:
    spec = JobSpec(input=S3Input(url=f"s3://{bucket}/{key}"), operation=ThumbnailOp(time=1))
    return Job(spec=spec)


async def test_a_pool_without_a_shared_volume(
    tmp_path: Path,
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    need_broker()
    clip = (media_root / "clips" / "sample.mp4").read_bytes()
    s3 = s3_server.client()
    await asyncio.to_thread(s3.put_object, Bucket=s3_bucket, Key="in/a.mp4", Body=clip)
    server_root, worker_root = tmp_path / "server-media", tmp_path / "worker-media"
    async with prefix_for_test() as prefix:
        server = pool_settings(s3_server, s3_bucket, prefix, server_root, "server1")
        worker = pool_settings(s3_server, s3_bucket, prefix, worker_root, "worker1")
        server_store = S3ObjectStore.from_settings(server)
        worker_store = S3ObjectStore.from_settings(worker)
        executor = Executor(worker, LocalStorage(worker_root), objects=worker_store)
        try:
            async with (
                started(build_server(server, FakeMetrics(), server_store)) as front,
                started(build_worker(worker, FakeMetrics(), executor, worker_store)),
            ):
                done, missing = s3_job(s3_bucket, "in/a.mp4"), s3_job(s3_bucket, "in/none.mp4")
                await front.submit(done)
                await front.submit(missing)
                record = await until_state(front, done.id, JobState.COMPLETED, timeout=90)
                failed = await until_state(front, missing.id, JobState.FAILED, timeout=90)
            await _check_records(server, server_store, record.result, failed.failure)
        finally:
            await server_store.close()
            await worker_store.close()
    # Nothing went through either MEDIA_ROOT: no files at all, scratch included.
    assert files_under(server_root) == []
    assert files_under(worker_root) == []


async def _check_records(server: Settings, store: S3ObjectStore, result: Any, failure: Any) -> None:
    """What the worker recorded, read back from the server's side through the bucket."""
    assert result is not None
    assert failure is not None
    assert failure.code is FailureCode.INPUT_NOT_FOUND
    (output,) = result.outputs
    assert output.location is not None
    assert output.location.startswith(
        f"s3://{server.s3_bucket}/ffpool/outputs/anonymous/{result.job_id}/"
    )
    markers = BucketMarkers(store, server)
    record = await markers.record(result.job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.operation == "thumbnail"  # accepted.json, written by the server
    assert record.result is not None
    assert record.result.outputs[0].location == output.location
    dead = await markers.record(failure.job_id)
    assert dead is not None
    assert dead.state is JobState.FAILED
    assert await markers.outcomes([result.job_id, failure.job_id]) == [
        record.result,
        dead.failure,
    ]
