"""The executor with object storage, no FFmpeg: the bucket commit (bucket_commit.py), the
input's access re-check and how storage errors map to failure codes (object_inputs.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from ffpool.auth.tenants import TenantSettings, TenantsFile
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode, OutputFile
from ffpool.domain.jobs import Job, JobSpec, ProbeOp, S3Input, ThumbnailOp, UploadInput
from ffpool.ffmpeg import sweep
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.bucket_commit import bucket_scope, job_records, scratch_root
from ffpool.ffmpeg.executor import Executor
from ffpool.ffmpeg.inputs import S3_NEEDS_OBJECT_STORAGE, InputError, materialize
from ffpool.ffmpeg.object_inputs import materialize_from_objects, upload_ref
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from ffpool.storage.memory_objects import MemoryObject, MemoryObjectStore, sha256_b64
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError, StoredObject

POOL = "pool-bucket"
MEDIA = "media-in"
ALLOWED = f"s3://{MEDIA}/allowed"


def s3_settings(tmp_path: Path, **extra: Any) -> Settings:
    fields: dict[str, Any] = {
        "media_root": tmp_path / "media",
        "storage": "s3",
        "s3_bucket": POOL,
        "s3_allow_read": ALLOWED,
        **extra,
    }
    return Settings(_env_file=None, **fields)


def thumbnail_job(url: str = f"{ALLOWED}/in.mp4") -> Job:
    return Job(spec=JobSpec(input=S3Input(url=url), operation=ThumbnailOp()))


def record_key(settings: Settings, job_id: str) -> str:
    return job_records(settings, job_id).child("completed.json").key


def executor(settings: Settings, store: MemoryObjectStore, **kw: Any) -> Executor:
    # Binaries that do not exist: these tests never get as far as running FFmpeg.
    binaries = Binaries(ffmpeg="/nonexistent/ffmpeg", ffprobe="/nonexistent/ffprobe")
    return Executor(settings, LocalStorage(settings.media_root), binaries, objects=store, **kw)


def completed(job_id: str, *names: str) -> CompletedEvent:
    outputs = tuple(
        OutputFile(name=n, size=1, content_type="image/jpeg", url="/placeholder") for n in names
    )
    return CompletedEvent(job_id=job_id, outputs=outputs, processing_time_s=1.0)


class FailingPuts(MemoryObjectStore):
    """A store whose file uploads fail as if the storage went down mid-commit."""

    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        raise ObjectStoreError(ObjectErrorKind.UNAVAILABLE, "connection refused")


def test_s3_storage_needs_an_object_store(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    with pytest.raises(ValueError, match="object store"):
        Executor(settings, LocalStorage(settings.media_root))


async def test_commit_uploads_outputs_then_the_record(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL)
    job = thumbnail_job()
    base = ObjectRef(POOL, "out")
    async with bucket_scope(store, settings, job.id, base) as scope:
        assert scope.done is None
        assert scope.scratch.is_dir()
        assert scope.scratch.is_relative_to(scratch_root(settings))
        (scope.scratch / "thumbnail.jpg").write_bytes(b"jpeg bytes")
        event = await scope.commit(completed(job.id, "thumbnail.jpg"))
    [out] = event.outputs
    assert out.location == f"s3://{POOL}/out/{job.id}/thumbnail.jpg"
    assert out.sha256 == sha256_b64(b"jpeg bytes")
    assert out.size == len(b"jpeg bytes")
    assert out.url.startswith(f"memory://{POOL}/out/{job.id}/thumbnail.jpg?")
    assert "filename=thumbnail.jpg" in out.url
    stored = store.objects(POOL)
    assert stored[f"out/{job.id}/thumbnail.jpg"].content_type == "image/jpeg"
    assert CompletedEvent.model_validate_json(stored[record_key(settings, job.id)].data) == event
    assert not (scratch_root(settings) / job.id).exists()  # scratch gone with the run


async def test_first_commit_wins(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL)
    job = thumbnail_job()
    base = ObjectRef(POOL, "out")
    async with (
        bucket_scope(store, settings, job.id, base) as first,
        bucket_scope(store, settings, job.id, base) as second,
    ):
        assert first.scratch != second.scratch
        for scope, data in ((first, b"one"), (second, b"two")):
            (scope.scratch / "a.jpg").write_bytes(data)
        won = await first.commit(completed(job.id, "a.jpg"))
        lost = await second.commit(completed(job.id, "a.jpg"))
    # The second run found the record before uploading: it reports the winner's outputs.
    assert lost.outputs[0].sha256 == won.outputs[0].sha256 == sha256_b64(b"one")
    assert store.objects(POOL)[f"out/{job.id}/a.jpg"].data == b"one"


async def test_a_failing_upload_writes_no_record(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = FailingPuts(POOL)
    job = thumbnail_job()
    async with bucket_scope(store, settings, job.id, ObjectRef(POOL, "out")) as scope:
        (scope.scratch / "a.jpg").write_bytes(b"x")
        with pytest.raises(ObjectStoreError):
            await scope.commit(completed(job.id, "a.jpg"))
    assert record_key(settings, job.id) not in store.objects(POOL)


async def test_a_second_run_reports_the_record_without_running(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL)
    job = thumbnail_job()
    done = completed(job.id, "thumbnail.jpg")
    location = f"s3://{POOL}/out/{job.id}/thumbnail.jpg"
    done = done.model_copy(
        update={"outputs": (done.outputs[0].model_copy(update={"location": location}),)}
    )
    await store.put_bytes(
        ObjectRef(POOL, record_key(settings, job.id)), done.model_dump_json().encode()
    )
    # The input does not exist: running the job would fail; the record says it is done.
    event = await executor(settings, store).execute(job, lambda _: None)
    assert isinstance(event, CompletedEvent)
    assert event.outputs[0].location == location
    assert event.outputs[0].url.startswith(f"memory://{POOL}/out/{job.id}/thumbnail.jpg?")


async def test_a_storage_outage_fails_the_job_as_storage_error(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL)
    store.outage = True
    event = await executor(settings, store).execute(thumbnail_job(), lambda _: None)
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.STORAGE_ERROR
    assert store.objects(POOL) == {}


async def test_an_output_location_the_tenant_may_not_write_is_rejected(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL, MEDIA)
    spec = JobSpec(input=S3Input(url=f"{ALLOWED}/in.mp4"), operation=ThumbnailOp())
    job = Job(spec=spec.model_copy(update={"output": "s3://elsewhere/x"}))
    event = await executor(settings, store).execute(job, lambda _: None)
    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.INPUT_REJECTED
    assert "s3://elsewhere/x" in event.message


async def materialized(tmp_path: Path, store: MemoryObjectStore, job: Job, **extra: Any) -> Path:
    settings = s3_settings(tmp_path, **extra)
    tenants = TenantsFile(tenants={"acme": TenantSettings(s3_read=(f"s3://{MEDIA}/acme",))})
    tenant = tenants.tenants.get(job.tenant, TenantSettings())
    into = tmp_path / "scratch"
    into.mkdir(exist_ok=True)
    storage = LocalStorage(settings.media_root)
    return await materialize_from_objects(job, storage, settings, store, tenant, into=into)


async def test_inputs_are_checked_again_against_the_read_allow_list(tmp_path: Path) -> None:
    store = MemoryObjectStore(MEDIA)
    store.objects(MEDIA)["secret/in.mp4"] = _object(b"data")
    with pytest.raises(InputError) as caught:
        await materialized(tmp_path, store, thumbnail_job(f"s3://{MEDIA}/secret/in.mp4"))
    assert caught.value.code is FailureCode.INPUT_REJECTED
    # A tenant's own s3_read adds to the pool's list.
    store.objects(MEDIA)["acme/in.mp4"] = _object(b"acme data")
    job = thumbnail_job(f"s3://{MEDIA}/acme/in.mp4").model_copy(update={"tenant": "acme"})
    path = await materialized(tmp_path, store, job)
    assert path.read_bytes() == b"acme data"


def _object(data: bytes) -> MemoryObject:
    return MemoryObject(data, "video/mp4")


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("missing", FailureCode.INPUT_NOT_FOUND),
        ("denied", FailureCode.INPUT_REJECTED),
        ("outage", FailureCode.STORAGE_ERROR),
        ("too_large", FailureCode.INPUT_TOO_LARGE),
        ("refused", FailureCode.INPUT_REJECTED),
    ],
)
async def test_input_errors_map_to_failure_codes(
    tmp_path: Path, setup: str, code: FailureCode
) -> None:
    store = MemoryObjectStore(MEDIA)
    if setup != "missing":
        store.objects(MEDIA)["allowed/in.mp4"] = _object(b"0123456789")
    if setup == "denied":
        store.deny(MEDIA)
    if setup == "refused":
        store.refuse(MEDIA, "read s3://media/acme/in.mp4: refused (InvalidObjectState)")
    store.outage = setup == "outage"
    with pytest.raises(InputError) as caught:
        await materialized(tmp_path, store, thumbnail_job(), url_max_bytes=5)
    assert caught.value.code is code
    if setup == "denied":
        assert "credentials may not read" in caught.value.message
    if setup == "refused":
        # Not a size problem: the store's own reason reaches the client.
        assert "InvalidObjectState" in caught.value.message


async def test_an_upload_input_is_read_from_the_pools_bucket(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = MemoryObjectStore(POOL)
    ref = upload_ref(settings, "acme", "a" * 32)
    assert ref.key == f"ffpool/uploads/acme/{'a' * 32}"
    store.objects(POOL)[ref.key] = _object(b"uploaded")
    job = Job(
        spec=JobSpec(input=UploadInput(upload_id="a" * 32), operation=ProbeOp()), tenant="acme"
    )
    assert (await materialized(tmp_path, store, job)).read_bytes() == b"uploaded"


def test_the_scratch_sweep_removes_only_old_runs(tmp_path: Path) -> None:
    old = tmp_path / ("a" * 32) / ".run-old"
    fresh = tmp_path / ("b" * 32) / ".run-new"
    other = tmp_path / "uploads" / ".run-not-a-job"  # not a job directory: left alone
    for path in (old, fresh, other):
        path.mkdir(parents=True)
        (path / "out.jpg").write_bytes(b"x")
    now = time.time()
    for path in (old, other):
        os.utime(path, (now - 100, now - 100))
    assert sweep.remove_stale_scratch(tmp_path, 50, now) == [f"{'a' * 32}/.run-old"]
    assert not (tmp_path / ("a" * 32)).exists()
    assert fresh.is_dir()
    assert other.is_dir()


async def test_a_pool_without_object_storage_rejects_s3_inputs(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_root=tmp_path / "media")
    storage = LocalStorage(settings.media_root)
    job = thumbnail_job()
    with pytest.raises(InputError) as caught:
        await materialize(job.spec.input, job.id, storage, settings, into=tmp_path)
    assert caught.value.code is FailureCode.INPUT_REJECTED
    assert caught.value.message == S3_NEEDS_OBJECT_STORAGE
