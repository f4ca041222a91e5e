"""The edge's object storage pieces over the in-memory store: uploads streamed into the bucket
and the links a client gets for outputs in object storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from ffpool.auth.gate import Authenticator
from ffpool.domain.events import CompletedEvent, JobRecord, JobState, OutputFile
from ffpool.server.bucket_uploads import EmptyUpload, save_to_bucket
from ffpool.server.output_links import OutputLinks
from ffpool.settings import Settings, StorageKind
from ffpool.storage.memory_objects import MemoryObjectStore
from ffpool.storage.objects import ObjectErrorKind, ObjectStoreError

SETTINGS = Settings(storage=StorageKind.S3, s3_bucket="pool", download_link_ttl_seconds=600)
JOB = "a" * 32


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_upload_lands_under_the_tenants_prefix() -> None:
    store = MemoryObjectStore("pool")
    upload_id, size = await save_to_bucket(
        store, SETTINGS, chunks(b"", b"abc", b"def"), 100, tenant="acme"
    )
    assert size == 6
    stored = store.objects("pool")[f"ffpool/uploads/acme/{upload_id}"]
    assert stored.data == b"abcdef"


async def test_empty_or_oversized_uploads_leave_nothing() -> None:
    store = MemoryObjectStore("pool")
    with pytest.raises(EmptyUpload):
        await save_to_bucket(store, SETTINGS, chunks(b"", b""), 100, tenant="acme")
    with pytest.raises(ObjectStoreError) as info:
        await save_to_bucket(store, SETTINGS, chunks(b"x" * 60, b"y" * 60), 100, tenant="acme")
    assert info.value.kind is ObjectErrorKind.TOO_LARGE
    assert store.objects("pool") == {}


def completed() -> CompletedEvent:
    outputs = (
        OutputFile(
            name="thumb.jpg",
            size=3,
            content_type="image/jpeg",
            url="memory://stale",
            location="s3://out/x/thumb.jpg",
        ),
        OutputFile(
            name="local.jpg", size=3, content_type="image/jpeg", url=f"/jobs/{JOB}/outputs/l"
        ),
    )
    return CompletedEvent(job_id=JOB, outputs=outputs, processing_time_s=1.0)


async def test_outputs_in_a_bucket_get_fresh_presigned_links() -> None:
    store = MemoryObjectStore("out")
    links = OutputLinks(Authenticator(SETTINGS, b"k" * 32), store)
    bucket_out, disk_out = (await links.completed(completed())).outputs
    assert bucket_out.url.startswith("memory://out/x/thumb.jpg?expires=")
    assert "filename=thumb.jpg" in bucket_out.url
    assert disk_out.url.startswith(f"/jobs/{JOB}/outputs/l?expires=")  # signed as before
    record = JobRecord(
        job_id=JOB,
        state=JobState.COMPLETED,
        operation="thumbnail",
        created_at=datetime.now(UTC),
        result=completed(),
    )
    assert (await links.redirect(record, "thumb.jpg") or "").startswith("memory://out/")
    assert await links.redirect(record, "local.jpg") is None
    assert await links.redirect(record, "other.jpg") is None
    signed = await links.record(record)
    assert signed.result is not None
    assert signed.result.outputs[0].url.startswith("memory://out/")


async def test_without_a_link_the_signed_server_link_stays() -> None:
    store = MemoryObjectStore("out")
    store.outage = True
    links = OutputLinks(Authenticator(SETTINGS, b"k" * 32), store)
    bucket_out, _ = (await links.completed(completed())).outputs
    # The server's own signed route instead, which redirects once the storage is back.
    assert bucket_out.url.startswith(f"/jobs/{JOB}/outputs/thumb.jpg?expires=")
    no_store = OutputLinks(Authenticator(SETTINGS, b"k" * 32))
    routed = (await no_store.completed(completed())).outputs[0].url
    assert routed.startswith(f"/jobs/{JOB}/outputs/thumb.jpg?expires=")
