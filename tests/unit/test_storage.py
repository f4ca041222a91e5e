"""Storage: path resolution under MEDIA_ROOT, uploads, job directories and output names."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ffpool.domain.events import FailureCode
from ffpool.storage.media import (
    LocalStorage,
    StorageError,
    content_type,
    media_path_problem,
    output_name_problem,
)

JOB_ID = "0123456789abcdef0123456789abcdef"
TENANT = "acme"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    root = tmp_path / "media"
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "a.mp4").write_bytes(b"media")
    (tmp_path / "outside.txt").write_text("secret")
    return LocalStorage(root)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def leftovers(storage: LocalStorage) -> list[str]:
    """Every file under uploads/, relative to it."""
    uploads = storage.root / "uploads"
    return sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("rel", "refused"),
    [
        ("clips/a.mp4", False),
        ("./clips/a.mp4", False),
        ("a b/c-d_e.1.mkv", False),
        ("", True),
        ("/etc/passwd", True),
        ("../outside.txt", True),
        ("clips/../../outside.txt", True),
        ("clips/../a.mp4", True),
        ("-i.mp4", True),
        ("clips/-y", True),
        (".env", True),
        ("clips/.hidden.mp4", True),
        ("clips/a.mp4\x00.txt", True),
        ("clips\\a.mp4", True),
        ("jobs/0123/out.mp4", True),
        ("uploads/0123", True),
        (".", True),
    ],
)
def test_media_path_problem(rel: str, refused: bool) -> None:
    assert (media_path_problem(rel) is not None) is refused


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("output.mp4", False),
        ("thumb-0001.jpg", False),
        ("../x", True),
        ("a/b.mp4", True),
        (".input", True),
        ("out.mp4.part", True),
        ("out.tmp", True),
        ("", True),
        ("-x.mp4", True),
        ("x" * 300, True),
    ],
)
def test_output_name_problem(name: str, refused: bool) -> None:
    assert (output_name_problem(name) is not None) is refused


def test_layout_created(storage: LocalStorage) -> None:
    assert (storage.root / "uploads").is_dir()
    assert (storage.root / "jobs").is_dir()
    assert storage.root.is_absolute()


def test_resolves_regular_file(storage: LocalStorage) -> None:
    assert storage.resolve_media_path("clips/a.mp4") == storage.root / "clips" / "a.mp4"


def expect(code: FailureCode, fn: object, *args: str) -> StorageError:
    assert callable(fn)
    with pytest.raises(StorageError) as info:
        fn(*args)
    assert info.value.code is code, info.value.message
    return info.value


def test_missing_file_is_not_found(storage: LocalStorage) -> None:
    expect(FailureCode.INPUT_NOT_FOUND, storage.resolve_media_path, "clips/nope.mp4")


def test_traversal_refused(storage: LocalStorage) -> None:
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "../outside.txt")


def test_symlink_escape_refused(storage: LocalStorage, tmp_path: Path) -> None:
    (storage.root / "clips" / "link.mp4").symlink_to(tmp_path / "outside.txt")
    (storage.root / "escape").symlink_to(tmp_path)
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "clips/link.mp4")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "escape/outside.txt")


def test_dangling_symlink_escape_refused(storage: LocalStorage, tmp_path: Path) -> None:
    (storage.root / "gone.mp4").symlink_to(tmp_path / "does-not-exist")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "gone.mp4")


def test_symlink_inside_root_followed(storage: LocalStorage) -> None:
    (storage.root / "alias.mp4").symlink_to(storage.root / "clips" / "a.mp4")
    assert storage.resolve_media_path("alias.mp4") == storage.root / "clips" / "a.mp4"


def test_symlink_into_reserved_dir_refused(storage: LocalStorage) -> None:
    job_dir = storage.job_dir(JOB_ID)
    (job_dir / "out.mp4").write_bytes(b"x")
    (storage.root / "peek.mp4").symlink_to(job_dir / "out.mp4")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "peek.mp4")


def test_directory_and_fifo_refused(storage: LocalStorage) -> None:
    os.mkfifo(storage.root / "pipe.mp4")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "clips")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "pipe.mp4")


def test_device_refused_through_symlink(storage: LocalStorage) -> None:
    (storage.root / "zero.mp4").symlink_to("/dev/zero")
    expect(FailureCode.INPUT_REJECTED, storage.resolve_media_path, "zero.mp4")


async def test_upload_roundtrip(storage: LocalStorage) -> None:
    upload_id, size = await storage.save_upload(
        chunks_of(b"abc", b"def"), max_bytes=6, tenant=TENANT
    )
    assert size == 6
    assert len(upload_id) == 32
    assert int(upload_id, 16) >= 0
    path = storage.upload_path(TENANT, upload_id)
    assert path == storage.root / "uploads" / TENANT / upload_id
    assert path.read_bytes() == b"abcdef"
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
    assert leftovers(storage) == [f"{TENANT}/{upload_id}"]


async def test_large_upload_spans_buffered_writes(storage: LocalStorage) -> None:
    block = os.urandom(300 * 1024)
    upload_id, size = await storage.save_upload(
        chunks_of(*[block] * 8), max_bytes=10**7, tenant=TENANT
    )
    assert size == len(block) * 8
    assert storage.upload_path(TENANT, upload_id).read_bytes() == block * 8


async def test_upload_over_limit_leaves_nothing(storage: LocalStorage) -> None:
    with pytest.raises(StorageError) as info:
        await storage.save_upload(chunks_of(b"abc", b"def"), max_bytes=5, tenant=TENANT)
    assert info.value.code is FailureCode.INPUT_TOO_LARGE
    assert leftovers(storage) == []


async def test_empty_upload_refused(storage: LocalStorage) -> None:
    with pytest.raises(StorageError) as info:
        await storage.save_upload(chunks_of(), max_bytes=5, tenant=TENANT)
    assert info.value.code is FailureCode.INPUT_REJECTED
    assert leftovers(storage) == []


async def test_cancelled_upload_leaves_nothing(storage: LocalStorage) -> None:
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"abc"
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(storage.save_upload(stalled(), max_bytes=100, tenant=TENANT))
    await asyncio.wait_for(started.wait(), 10)
    # The temporary file exists while streaming, outside the tenant's directory.
    assert [
        name.endswith(".part") and name.startswith(f".{TENANT}.") for name in leftovers(storage)
    ] == [True]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(storage) == []


def test_unknown_upload(storage: LocalStorage) -> None:
    expect(FailureCode.INPUT_NOT_FOUND, storage.upload_path, TENANT, "f" * 32)
    expect(FailureCode.INPUT_NOT_FOUND, storage.upload_path, TENANT, "../clips/a.mp4")
    for tenant in ("", "..", "Acme", "a/b", "-a", "a" * 64):
        expect(FailureCode.INPUT_REJECTED, storage.upload_path, tenant, "f" * 32)


async def test_an_upload_is_found_only_by_its_tenant(storage: LocalStorage) -> None:
    upload_id, _ = await storage.save_upload(chunks_of(b"abc"), max_bytes=6, tenant=TENANT)
    assert storage.upload_path(TENANT, upload_id).read_bytes() == b"abc"
    expect(FailureCode.INPUT_NOT_FOUND, storage.upload_path, "other", upload_id)
    expect(FailureCode.INPUT_NOT_FOUND, storage.upload_path, "anonymous", upload_id)


def test_job_dir_and_outputs(storage: LocalStorage) -> None:
    job_dir = storage.job_dir(JOB_ID)
    assert job_dir == storage.root / "jobs" / JOB_ID
    assert stat.S_IMODE(job_dir.stat().st_mode) & 0o007 == 0
    (job_dir / "out.mp4").write_bytes(b"video")
    (job_dir / ".input").write_bytes(b"download")
    (job_dir / "out.mp4.part").write_bytes(b"half")
    (job_dir / "link.mp4").symlink_to(storage.root / "clips" / "a.mp4")
    assert storage.output_path(JOB_ID, "out.mp4") == job_dir / "out.mp4"
    for name in (".input", "out.mp4.part", "../../clips/a.mp4"):
        expect(FailureCode.INPUT_REJECTED, storage.output_path, JOB_ID, name)
    for name in ("missing.mp4", "link.mp4"):
        expect(FailureCode.INPUT_NOT_FOUND, storage.output_path, JOB_ID, name)
    expect(FailureCode.INPUT_REJECTED, storage.output_path, "../x", "out.mp4")
    expect(FailureCode.INPUT_REJECTED, storage.job_dir, "../../etc")


def test_remove_job(storage: LocalStorage) -> None:
    (storage.job_dir(JOB_ID) / "out.mp4").write_bytes(b"video")
    storage.remove_job(JOB_ID)
    assert not (storage.root / "jobs" / JOB_ID).exists()
    storage.remove_job(JOB_ID)  # idempotent
    storage.remove_job("..")  # never escapes
    assert (storage.root / "clips" / "a.mp4").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("out.mp4", "video/mp4"),
        ("thumb.JPG", "image/jpeg"),
        ("a.mkv", "video/x-matroska"),
        ("a.opus", "audio/ogg"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_type(name: str, expected: str) -> None:
    assert content_type(name) == expected
