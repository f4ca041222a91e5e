"""The executor with STORAGE=s3 against a real S3 server (versitygw) and real FFmpeg: inputs
read from a bucket, outputs uploaded with their checksums and presigned links, the job's
completed record in the pool's bucket; permission denied, a missing object, and a bucket
outage mid-job (the job fails as storage_error and nothing is recorded as done)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import Job, JobSpec, Operation, S3Input, ThumbnailOp, TranscodeOp
from ffpool.ffmpeg.executor import Executor
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from ffpool.storage.objects import ObjectRef, StoredObject
from ffpool.storage.s3 import S3ObjectStore
from tests.integration.s3_harness import S3Server, unique_bucket

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]

RECORD = "ffpool/jobs/{}/completed.json"


def s3_settings(server: S3Server, bucket: str, media_root: Path, **extra: Any) -> Settings:
    return server.settings(
        media_root=media_root,
        s3_bucket=bucket,
        s3_allow_read=(f"s3://{bucket}/in",),
        job_timeout_seconds=120,
        **extra,
    )


@asynccontextmanager
async def executor_for(
    settings: Settings, store: S3ObjectStore | None = None
) -> AsyncIterator[Executor]:
    objects = store or S3ObjectStore.from_settings(settings)
    try:
        yield Executor(settings, LocalStorage(settings.media_root), objects=objects)
    finally:
        await objects.close()


async def put_input(server: S3Server, bucket: str, key: str, path: Path) -> None:
    s3 = server.client()
    await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=path.read_bytes())


async def get_object(server: S3Server, bucket: str, key: str) -> bytes | None:
    s3 = server.client()
    try:
        reply = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    return bytes(await asyncio.to_thread(reply["Body"].read))


def job_on(bucket: str, operation: Operation, key: str = "in/sample.mp4") -> Job:
    return Job(spec=JobSpec(input=S3Input(url=f"s3://{bucket}/{key}"), operation=operation))


def no_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def check_output(
    server: S3Server, bucket: str, event: CompletedEvent, job_id: str, name: str
) -> bytes:
    """The output object exists where the event says, with its checksum, and its presigned
    link downloads it without credentials."""
    (output,) = event.outputs
    key = f"ffpool/outputs/anonymous/{job_id}/{name}"
    assert output.location == f"s3://{bucket}/{key}"
    data = await get_object(server, bucket, key)
    assert data is not None
    assert output.size == len(data)
    assert output.sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(output.url) as resp,
    ):
        assert resp.status == 200
        assert await resp.read() == data
    record = await get_object(server, bucket, RECORD.format(job_id))
    assert record is not None
    assert CompletedEvent.model_validate_json(record).outputs[0].location == output.location
    return data


async def test_thumbnail_and_transcode_from_a_bucket_to_a_bucket(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    await put_input(s3_server, s3_bucket, "in/sample.mp4", media_root / "clips" / "sample.mp4")
    settings = s3_settings(s3_server, s3_bucket, media_root)
    async with executor_for(settings) as executor:
        thumb = job_on(s3_bucket, ThumbnailOp(time=1, width=64))
        event = await executor.execute(thumb, lambda _: None)
        assert isinstance(event, CompletedEvent), event
        jpeg = await check_output(s3_server, s3_bucket, event, thumb.id, "thumbnail.jpg")
        assert jpeg[:2] == b"\xff\xd8"

        short = job_on(s3_bucket, TranscodeOp(height=120, video_bitrate_kbps=200))
        event = await executor.execute(short, lambda _: None)
        assert isinstance(event, CompletedEvent), event
        await check_output(s3_server, s3_bucket, event, short.id, event.outputs[0].name)
        assert event.metadata is not None

        # A second run of a finished job reports the record, and runs nothing.
        again = await executor.execute(thumb, lambda _: None)
        assert isinstance(again, CompletedEvent)
        assert (
            again.outputs[0].location
            == f"s3://{s3_bucket}/ffpool/outputs/anonymous/{thumb.id}/thumbnail.jpg"
        )
    # Only empty scratch directories were ever made locally.
    assert no_files(media_root / ".scratch") == []


async def test_permission_denied_and_missing_input(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    await put_input(s3_server, s3_bucket, "in/sample.mp4", media_root / "clips" / "sample.mp4")
    settings = s3_settings(s3_server, s3_bucket, media_root)
    async with executor_for(settings) as executor:
        missing = job_on(s3_bucket, ThumbnailOp(), key="in/nothing-here.mp4")
        event = await executor.execute(missing, lambda _: None)
        assert isinstance(event, FailedEvent)
        assert event.code is FailureCode.INPUT_NOT_FOUND
        refused = job_on(s3_bucket, ThumbnailOp(), key="private/sample.mp4")
        event = await executor.execute(refused, lambda _: None)
        assert isinstance(event, FailedEvent)
        assert event.code is FailureCode.INPUT_REJECTED  # not in S3_ALLOW_READ: never read

    # A pool whose credentials may not read the input's bucket: a user with its own pool
    # bucket, which root's bucket is not.
    key, secret = f"user{uuid.uuid4().hex[:8]}", "limited-secret-0123456789"
    await asyncio.to_thread(s3_server.add_user, key, secret)
    own = await asyncio.to_thread(s3_server.make_bucket, unique_bucket("own"))
    await asyncio.to_thread(give_bucket, s3_server, own, key)
    limited = s3_settings(
        s3_server, own, media_root, s3_access_key_id=key, s3_secret_access_key=secret
    ).model_copy(update={"s3_allow_read": (f"s3://{s3_bucket}/in",)})
    async with executor_for(limited) as executor:
        event = await executor.execute(job_on(s3_bucket, ThumbnailOp()), lambda _: None)
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INPUT_REJECTED
    assert "credentials may not read" in event.message


def give_bucket(server: S3Server, bucket: str, owner: str) -> None:
    """Blocking: make `owner` the owner of `bucket` (versitygw's admin API)."""
    admin = [str(server.binary), "admin", "--access", server.access_key]
    admin += ["--secret", server.secret_key, "--endpoint-url", server.endpoint_url]
    command = ["change-bucket-owner", "--bucket", bucket, "--owner", owner]
    subprocess.run([*admin, *command], check=True, capture_output=True, timeout=30)


class StopsBeforeUpload(S3ObjectStore):
    """The bucket goes down after FFmpeg finished, as the outputs' upload starts."""

    server: S3Server

    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        await asyncio.to_thread(self.server.stop)
        return await super().put_file(ref, path, content_type)


async def test_a_bucket_outage_mid_job_records_nothing_and_a_rerun_completes(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    await put_input(s3_server, s3_bucket, "in/sample.mp4", media_root / "clips" / "sample.mp4")
    settings = s3_settings(s3_server, s3_bucket, media_root, s3_timeout_seconds=5)
    job = job_on(s3_bucket, ThumbnailOp(time=1))
    failing = StopsBeforeUpload.from_settings(settings)
    assert isinstance(failing, StopsBeforeUpload)
    failing.server = s3_server
    try:
        async with executor_for(settings, failing) as executor:
            event = await executor.execute(job, lambda _: None)
    finally:
        s3_server.start()
    assert isinstance(event, FailedEvent), event
    assert event.code is FailureCode.STORAGE_ERROR
    assert await get_object(s3_server, s3_bucket, RECORD.format(job.id)) is None
    assert no_files(media_root / ".scratch") == []

    async with executor_for(settings) as executor:
        event = await executor.execute(job, lambda _: None)
    assert isinstance(event, CompletedEvent), event
    await check_output(s3_server, s3_bucket, event, job.id, "thumbnail.jpg")
