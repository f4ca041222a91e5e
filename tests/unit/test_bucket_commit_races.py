"""The bucket commit's edges (ffmpeg/bucket_commit.py): a twin run committing between two of
this run's uploads, and a record create whose answer is lost or refused by a storage blip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ffpool.domain.events import CompletedEvent
from ffpool.ffmpeg import bucket_commit
from ffpool.ffmpeg.bucket_commit import bucket_scope
from ffpool.storage.memory_objects import MemoryObjectStore, sha256_b64
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError, StoredObject
from tests.unit.test_bucket_commit import POOL, completed, record_key, s3_settings, thumbnail_job

BASE = ObjectRef(POOL, "out")


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bucket_commit, "RECORD_REREAD_DELAYS_S", (0.0, 0.0, 0.0))


class LostAnswer(MemoryObjectStore):
    """The record's create lands, but its answer never comes back."""

    async def put_bytes(self, ref: ObjectRef, data: bytes, **kw: Any) -> bool:
        await super().put_bytes(ref, data, **kw)
        raise ObjectStoreError(ObjectErrorKind.UNAVAILABLE, "connection reset")


class RefusedCreate(MemoryObjectStore):
    """The record's create fails and nothing lands."""

    async def put_bytes(self, ref: ObjectRef, data: bytes, **kw: Any) -> bool:
        raise ObjectStoreError(ObjectErrorKind.UNAVAILABLE, "connection refused")


class TwinCommitsMidway(MemoryObjectStore):
    """A twin run commits its own record right after this run's first upload."""

    record: ObjectRef | None = None
    twin: bytes = b""

    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        stored = await super().put_file(ref, path, content_type)
        if self.record is not None:
            await super().put_bytes(self.record, self.twin, if_absent=True)
        return stored


async def test_a_lost_answer_to_the_record_create_is_read_back(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = LostAnswer(POOL)
    job = thumbnail_job()
    async with bucket_scope(store, settings, job.id, BASE) as scope:
        (scope.scratch / "a.jpg").write_bytes(b"jpeg")
        event = await scope.commit(completed(job.id, "a.jpg"))
    assert event.outputs[0].sha256 == sha256_b64(b"jpeg")
    assert record_key(settings, job.id) in store.objects(POOL)


async def test_a_refused_record_create_fails_the_commit(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = RefusedCreate(POOL)
    job = thumbnail_job()
    async with bucket_scope(store, settings, job.id, BASE) as scope:
        (scope.scratch / "a.jpg").write_bytes(b"jpeg")
        with pytest.raises(ObjectStoreError):
            await scope.commit(completed(job.id, "a.jpg"))
    assert record_key(settings, job.id) not in store.objects(POOL)


async def test_a_twin_committing_midway_keeps_its_objects(tmp_path: Path) -> None:
    settings = s3_settings(tmp_path)
    store = TwinCommitsMidway(POOL)
    job = thumbnail_job()
    async with bucket_scope(store, settings, job.id, BASE) as scope:
        for name in ("a.jpg", "b.jpg"):
            (scope.scratch / name).write_bytes(b"mine")
        twin = completed(job.id, "a.jpg", "b.jpg")
        store.twin = twin.model_dump_json().encode()
        store.record = scope.record
        event = await scope.commit(completed(job.id, "a.jpg", "b.jpg"))
    # The twin's record holds; this run stopped uploading once it saw it.
    assert CompletedEvent.model_validate_json(store.twin).outputs[0].size == 1
    assert [out.size for out in event.outputs] == [1, 1]
    assert f"out/{job.id}/b.jpg" not in store.objects(POOL)
