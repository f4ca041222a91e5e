"""Upload retention: which uploads are stale, the sweep period, and the periodic sweeper."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ffpool.domain.events import FailureCode
from ffpool.settings import Settings
from ffpool.storage.housekeeping import sweep_period, sweep_uploads_forever, sweep_uploads_once
from ffpool.storage.media import LocalStorage, StorageError
from ffpool.storage.quota import TenantUsage
from tests.polling import eventually

NOW = 1_700_000_000.0
TENANT = "acme"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def upload_file(
    storage: LocalStorage, name: str, age_s: float, now: float = NOW, tenant: str | None = TENANT
) -> Path:
    """An upload file of `tenant` (None: directly under uploads/, as before tenants)."""
    directory = storage.root / "uploads" / (tenant or "")
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_bytes(b"media")
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_remove_stale_uploads_by_age(storage: LocalStorage) -> None:
    old, fresh = "a" * 32, "b" * 32
    upload_file(storage, old, age_s=101)
    upload_file(storage, fresh, age_s=99)
    upload_file(storage, f".{TENANT}.{'c' * 32}.part", age_s=500, tenant=None)  # a crashed server's
    upload_file(storage, "e" * 32, age_s=500, tenant=None)  # from before tenant directories
    (storage.root / "uploads" / TENANT / "somedir").mkdir()
    os.utime(storage.root / "uploads" / TENANT / "somedir", (NOW - 500, NOW - 500))

    removed = storage.remove_stale_uploads(older_than_s=100, now=NOW)

    assert removed == [f".{TENANT}.{'c' * 32}.part", f"{TENANT}/{old}", "e" * 32]
    assert sorted(os.listdir(storage.root / "uploads" / TENANT)) == [fresh, "somedir"]
    with pytest.raises(StorageError):
        storage.upload_path(TENANT, old)
    assert storage.upload_path(TENANT, fresh).read_bytes() == b"media"


def test_remove_stale_uploads_removes_a_symlink_not_its_target(storage: LocalStorage) -> None:
    target = storage.root / "keep.mp4"
    target.write_bytes(b"media")
    (storage.root / "uploads" / TENANT).mkdir()
    link = storage.root / "uploads" / TENANT / ("d" * 32)
    link.symlink_to(target)
    os.utime(link, (NOW - 500, NOW - 500), follow_symlinks=False)
    assert storage.remove_stale_uploads(older_than_s=100, now=NOW) == [f"{TENANT}/{'d' * 32}"]
    assert target.read_bytes() == b"media"


@pytest.mark.parametrize(
    ("retention", "period"), [(1, 1.0), (3.9, 1.0), (40, 10.0), (1200, 300.0), (86400, 300.0)]
)
def test_sweep_period_is_a_quarter_of_retention_clamped(retention: float, period: float) -> None:
    assert sweep_period(retention) == period


async def test_upload_swept_mid_stream_fails_cleanly(storage: LocalStorage) -> None:
    async def stalled_then_swept() -> AsyncIterator[bytes]:
        yield b"first part"
        storage.remove_stale_uploads(older_than_s=1, now=time.time() + 10)
        yield b"the rest"

    with pytest.raises(StorageError) as caught:
        await storage.save_upload(stalled_then_swept(), max_bytes=1000, tenant=TENANT)
    assert caught.value.code is FailureCode.INPUT_REJECTED
    assert [p for p in (storage.root / "uploads").rglob("*") if p.is_file()] == []
    assert storage.disk.tally.snapshot()[TENANT] == TenantUsage()  # refunded exactly once


async def test_sweep_once_survives_a_failing_scan(storage: LocalStorage) -> None:
    settings = Settings(_env_file=None, media_root=storage.root)
    (storage.root / "uploads").rmdir()  # the scan raises FileNotFoundError (an OSError)
    assert await sweep_uploads_once(storage, settings) == []


async def test_sweeper_removes_expired_uploads_again_and_again(storage: LocalStorage) -> None:
    settings = Settings(_env_file=None, media_root=storage.root, upload_retention_seconds=1)
    now = time.time()
    fresh = upload_file(storage, "f" * 32, age_s=-3600, now=now)  # stays fresh all test long
    first = upload_file(storage, "e" * 32, age_s=5, now=now)
    sweeper = asyncio.create_task(sweep_uploads_forever(storage, settings))
    try:
        await eventually(lambda: not first.exists(), timeout=10, what="the first upload swept")
        second = upload_file(storage, "d" * 32, age_s=5, now=time.time())
        # A later sweep (period: 1 s for a 1 s retention).
        await eventually(lambda: not second.exists(), timeout=10, what="the second upload swept")
        assert fresh.exists()
        assert not sweeper.done()
    finally:
        sweeper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeper


async def test_sweep_recounts_usage_and_expiry_refunds_it(storage: LocalStorage) -> None:
    settings = Settings(_env_file=None, media_root=storage.root, upload_retention_seconds=100)
    now = time.time()
    upload_file(storage, "a" * 32, age_s=0, now=now)
    upload_file(storage, "b" * 32, age_s=500, now=now, tenant="other")
    job_dir = storage.job_dir("c" * 32, "other")
    (job_dir / "out.mp4").write_bytes(b"0123456789")
    assert storage.disk.tally.snapshot() == {}  # written behind the tally's back

    assert await sweep_uploads_once(storage, settings) == [f"other/{'b' * 32}"]

    assert storage.disk.tally.snapshot() == {
        TENANT: TenantUsage(bytes=5, uploads=1),
        "other": TenantUsage(bytes=10 + len("other"), uploads=0),  # outputs + .ffpool-tenant
    }
    storage.remove_job("c" * 32)
    assert storage.disk.tally.snapshot()["other"] == TenantUsage()
