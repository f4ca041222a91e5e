"""The in-memory ObjectStore keeps the protocol's promises (storage/memory_objects.py)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ffpool.storage.memory_objects import MemoryObjectStore, sha256_b64
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStore, ObjectStoreError

REF = ObjectRef("media", "a/b.bin")


def _kind(exc: pytest.ExceptionInfo[ObjectStoreError]) -> ObjectErrorKind:
    return exc.value.kind


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_it_is_an_object_store() -> None:
    store: ObjectStore = MemoryObjectStore("media")
    assert store is not None


def test_checksum_is_s3_base64_sha256() -> None:
    digest = hashlib.sha256(b"abc").digest()
    assert sha256_b64(b"abc") == base64.b64encode(digest).decode()


async def test_put_file_then_get_head_and_download(tmp_path: Path) -> None:
    store = MemoryObjectStore("media")
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 1000)
    stored = await store.put_file(REF, src, "video/mp4")
    assert (stored.size, stored.sha256) == (1000, sha256_b64(b"x" * 1000))
    assert store.objects("media")["a/b.bin"].content_type == "video/mp4"
    assert await store.get_bytes(REF, max_bytes=1000) == b"x" * 1000
    assert await store.head(REF) == stored
    dest = tmp_path / "out.bin"
    assert await store.download(REF, dest, max_bytes=1000) == 1000
    assert dest.read_bytes() == b"x" * 1000


async def test_missing_keys(tmp_path: Path) -> None:
    store = MemoryObjectStore("media")
    assert await store.get_bytes(REF, max_bytes=10) is None
    assert await store.head(REF) is None
    with pytest.raises(ObjectStoreError) as exc:
        await store.download(REF, tmp_path / "x", max_bytes=10)
    assert _kind(exc) is ObjectErrorKind.NOT_FOUND


async def test_unknown_bucket_is_not_found_until_made() -> None:
    store = MemoryObjectStore()
    with pytest.raises(ObjectStoreError) as exc:
        await store.put_bytes(REF, b"{}")
    assert _kind(exc) is ObjectErrorKind.NOT_FOUND
    assert "media" in exc.value.message
    store.make_bucket("media")
    assert await store.put_bytes(REF, b"{}")


async def test_if_absent_first_writer_wins() -> None:
    store = MemoryObjectStore("media")
    assert await store.put_bytes(REF, b"first", if_absent=True)
    assert not await store.put_bytes(REF, b"second", if_absent=True)
    assert await store.get_bytes(REF, max_bytes=100) == b"first"
    assert await store.put_bytes(REF, b"third")
    assert await store.get_bytes(REF, max_bytes=100) == b"third"


async def test_put_stream_over_max_bytes_leaves_nothing() -> None:
    store = MemoryObjectStore("media")
    with pytest.raises(ObjectStoreError) as exc:
        await store.put_stream(REF, _chunks(b"12345", b"678"), "video/mp4", max_bytes=7)
    assert _kind(exc) is ObjectErrorKind.TOO_LARGE
    assert store.objects("media") == {}
    stored = await store.put_stream(REF, _chunks(b"12345", b"67"), "video/mp4", max_bytes=7)
    assert (stored.size, stored.sha256) == (7, sha256_b64(b"1234567"))


async def test_size_limits_on_reads(tmp_path: Path) -> None:
    store = MemoryObjectStore("media")
    await store.put_bytes(REF, b"0123456789")
    for call in (store.get_bytes(REF, 9), store.download(REF, tmp_path / "d", 9)):
        with pytest.raises(ObjectStoreError) as exc:
            await call
        assert _kind(exc) is ObjectErrorKind.TOO_LARGE
    assert not (tmp_path / "d").exists()


async def test_outage_and_denied_buckets() -> None:
    store = MemoryObjectStore("media", "other")
    store.outage = True
    with pytest.raises(ObjectStoreError) as exc:
        await store.head(REF)
    assert _kind(exc) is ObjectErrorKind.UNAVAILABLE
    store.outage = False
    store.deny("media")
    with pytest.raises(ObjectStoreError) as exc:
        await store.get_bytes(REF, 10)
    assert _kind(exc) is ObjectErrorKind.DENIED
    assert await store.head(ObjectRef("other", "k")) is None


async def test_presign_names_object_expiry_and_filename() -> None:
    store = MemoryObjectStore("media")
    link = await store.presign_get(REF, expires_s=60, filename="out.mp4")
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("memory", "media", "/a/b.bin")
    query = parse_qs(parts.query)
    assert query["filename"] == ["out.mp4"]
    assert abs(int(query["expires"][0]) - (time.time() + 60)) < 5


async def test_delete_prefix_by_whole_segments() -> None:
    store = MemoryObjectStore("media")
    for key in ("jobs/1/a", "jobs/1/b", "jobs/10/a", "jobs/1"):
        await store.put_bytes(ObjectRef("media", key), b"")
    assert await store.delete_prefix(ObjectRef("media", "jobs/1")) == 3
    assert list(store.objects("media")) == ["jobs/10/a"]
    await store.close()
    assert store.closed
