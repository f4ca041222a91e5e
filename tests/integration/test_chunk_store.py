"""chunks/store.py: both chunk stores, the one on MEDIA_ROOT and the one in the pool's bucket
(the real S3 server, tests/integration/s3_harness.py), through the same tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ffpool.chunks.store import ChunkStore, FileChunkStore, ObjectChunkStore, chunk_store
from ffpool.domain.jobs import new_job_id
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage, StorageError
from ffpool.storage.s3 import S3ObjectStore
from tests.integration.s3_harness import S3Server

pytest_plugins = ["tests.integration.s3_fixtures"]


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChunkStore]:
    storage = LocalStorage(tmp_path / "media")
    if request.param == "file":
        yield chunk_store(Settings(media_root=tmp_path / "media"), storage, None)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    settings = server.settings(
        s3_bucket=bucket, media_root=tmp_path / "media", scratch_root=tmp_path / "scratch"
    )
    objects = S3ObjectStore.from_settings(settings)
    try:
        yield chunk_store(settings, storage, objects)
    finally:
        await objects.close()


def local_file(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


async def test_put_fetch_has(store: ChunkStore, tmp_path: Path) -> None:
    parent = new_job_id()
    data = os.urandom(300_000)
    assert not await store.has(parent, "in-0000.mkv")
    await store.put(parent, "in-0000.mkv", local_file(tmp_path / "src", "piece", data))
    assert await store.has(parent, "in-0000.mkv")
    assert not await store.has(parent, "in-0001.mkv")
    assert not await store.has(new_job_id(), "in-0000.mkv")  # another parent's
    async with store.workspace(parent) as workspace:
        dest = workspace / "in-0000.mkv"
        assert await store.fetch(parent, "in-0000.mkv", dest)
        assert dest.read_bytes() == data
        # a second fetch over the first (a retried run) is fine
        assert await store.fetch(parent, "in-0000.mkv", dest)
        assert dest.read_bytes() == data


async def test_fetch_missing_is_false(store: ChunkStore) -> None:
    parent = new_job_id()
    async with store.workspace(parent) as workspace:
        dest = workspace / "out-0003.mkv"
        assert await store.fetch(parent, "out-0003.mkv", dest) is False
        assert not dest.exists()


async def test_put_replaces_and_readers_see_whole_files(store: ChunkStore, tmp_path: Path) -> None:
    parent = new_job_id()
    sizes = {1_000_000, 3_000_000}
    seen: set[int] = set()
    stop = asyncio.Event()

    async def reader() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            dest = tmp_path / f"read-{n}"
            if await store.fetch(parent, "out-0000.mkv", dest):
                seen.add(dest.stat().st_size)
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    for i, size in enumerate(sorted(sizes) * 2):
        await store.put(parent, "out-0000.mkv", local_file(tmp_path / f"w{i}", "x", b"v" * size))
    stop.set()
    await task
    assert seen <= sizes
    assert await store.has(parent, "out-0000.mkv")


async def test_remove_everything_idempotent(store: ChunkStore, tmp_path: Path) -> None:
    parent, other = new_job_id(), new_job_id()
    for name in ("in-0000.mkv", "in-0001.mkv", "plan.json"):
        await store.put(parent, name, local_file(tmp_path / name, "f", b"data"))
    await store.put(other, "in-0000.mkv", local_file(tmp_path / "o", "f", b"other"))
    await store.remove(parent)
    for name in ("in-0000.mkv", "in-0001.mkv", "plan.json"):
        assert not await store.has(parent, name)
    assert await store.has(other, "in-0000.mkv")
    await store.remove(parent)  # again: nothing there, no error
    await store.remove(new_job_id())  # never used


async def test_workspace_is_fresh_and_removed_whatever_happens(store: ChunkStore) -> None:
    parent = new_job_id()
    async with store.workspace(parent) as one, store.workspace(parent) as two:
        assert one != two
        assert one.is_dir()
        assert not any(one.iterdir())
        (one / "x").write_bytes(b"1")
    assert not one.exists()
    assert not two.exists()
    kept: list[Path] = []

    async def failing() -> None:
        async with store.workspace(parent) as path:
            kept.append(path)
            (path / "x").write_bytes(b"1")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failing()
    assert not kept[0].exists()

    entered = asyncio.Event()
    paths: list[Path] = []

    async def run() -> None:
        async with store.workspace(parent) as path:
            paths.append(path)
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(run())
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not paths[0].exists()


async def test_bad_names_are_refused(store: ChunkStore, tmp_path: Path) -> None:
    src = local_file(tmp_path, "f", b"x")
    for parent, name in (
        ("../x", "in-0000.mkv"),
        (new_job_id(), "../in.mkv"),
        (new_job_id(), ".h"),
    ):
        with pytest.raises(ValueError, match="not a"):
            await store.put(parent, name, src)


async def test_file_store_moves_and_links(tmp_path: Path) -> None:
    """On MEDIA_ROOT a put is a rename and a fetch a hard link: no bytes copied."""
    storage = LocalStorage(tmp_path / "media")
    store = FileChunkStore(storage.root)
    parent = new_job_id()
    async with store.workspace(parent) as workspace:
        src = local_file(workspace, "out-0000.mkv", b"encoded")
        inode = src.stat().st_ino
        await store.put(parent, "out-0000.mkv", src)
        assert not src.exists()
        stored = storage.root / "chunks" / parent / "out-0000.mkv"
        assert stored.stat().st_ino == inode
        dest = workspace / "fetched.mkv"
        assert await store.fetch(parent, "out-0000.mkv", dest)
        assert dest.stat().st_ino == inode
    # path inputs can never name a chunk
    with pytest.raises(StorageError):
        storage.resolve_media_path(f"chunks/{parent}/out-0000.mkv")


async def test_file_store_sweep_removes_stale_parents(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    store = FileChunkStore(storage.root)
    stale, fresh = new_job_id(), new_job_id()
    for parent in (stale, fresh):
        await store.put(parent, "in-0000.mkv", local_file(tmp_path / parent, "f", b"x"))
    old = time.time() - 7200
    os.utime(storage.root / "chunks" / stale, (old, old))
    assert await store.sweep(3600) == [stale]
    assert not await store.has(stale, "in-0000.mkv")
    assert await store.has(fresh, "in-0000.mkv")


@pytest.mark.s3
async def test_object_store_layout(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    settings = s3_server.settings(
        s3_bucket=s3_bucket, s3_prefix="pool", media_root=tmp_path, scratch_root=tmp_path / "s"
    )
    objects = S3ObjectStore.from_settings(settings)
    try:
        store = chunk_store(settings, LocalStorage(tmp_path / "media"), objects)
        assert isinstance(store, ObjectChunkStore)
        parent = new_job_id()
        await store.put(parent, "in-0000.mkv", local_file(tmp_path / "w", "f", b"x"))
        keys = await asyncio.to_thread(s3_server.client().list_objects_v2, Bucket=s3_bucket)
        assert [o["Key"] for o in keys["Contents"]] == [f"pool/chunks/{parent}/in-0000.mkv"]
        async with store.workspace(parent) as workspace:
            assert workspace.parent == tmp_path / "s" / parent
            assert workspace.name.startswith(".run-")
        assert not (tmp_path / "s" / parent).exists()
    finally:
        await objects.close()
