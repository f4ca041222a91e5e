"""Disk quotas: the pure decisions, the usage tally, and LocalStorage enforcing them on
uploads (before and during the body), on job outputs and on submits."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ffpool.domain.events import FailureCode
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage, StorageError
from ffpool.storage.quota import (
    DiskLimits,
    OverQuota,
    TenantUsage,
    UsageTally,
    UsageView,
    bytes_refusal,
    room_bytes,
    submit_refusal,
    upload_refusal,
)

LIMITS = DiskLimits(disk_quota_bytes=1000, tenant_disk_quota_bytes=100, tenant_max_uploads=2)
ACME, OTHER = "acme", "other"


def view(tenant_bytes: int = 0, uploads: int = 0, total: int | None = None) -> UsageView:
    tenant = TenantUsage(bytes=tenant_bytes, uploads=uploads)
    return UsageView(tenant=tenant, total_bytes=tenant_bytes if total is None else total)


@pytest.mark.parametrize(
    ("usage", "room"),
    [(view(), 100), (view(60), 40), (view(100), 0), (view(150), 0), (view(10, total=950), 50)],
)
def test_room_is_the_smaller_of_tenant_and_global(usage: UsageView, room: int) -> None:
    assert room_bytes(LIMITS, usage) == room


def test_no_quota_means_no_limit() -> None:
    assert room_bytes(DiskLimits(), view(10**15)) is None
    assert upload_refusal(DiskLimits(), view(10**15, uploads=10**6), 10**12) is None


def test_refusals_say_whose_quota() -> None:
    assert bytes_refusal(LIMITS, view(60), 40) is None
    mine = bytes_refusal(LIMITS, view(60), 41)
    assert mine is not None
    assert "your disk quota of 100 bytes" in mine
    everyone = bytes_refusal(LIMITS, view(10, total=999), 2)
    assert everyone is not None
    assert "service's disk quota of 1000 bytes" in everyone


def test_upload_refusal_counts_uploads_and_checks_a_declared_size() -> None:
    assert upload_refusal(LIMITS, view(uploads=1), None) is None
    count = upload_refusal(LIMITS, view(uploads=2), 1)
    assert count is not None
    assert "the limit is 2" in count
    assert upload_refusal(LIMITS, view(50), 50) is None
    assert upload_refusal(LIMITS, view(50), 51) is not None
    assert upload_refusal(LIMITS, view(100), None) is not None  # not even one byte of room
    assert submit_refusal(LIMITS, view(99)) is None
    assert submit_refusal(LIMITS, view(100)) is not None


def test_tally_charges_only_what_fits() -> None:
    tally = UsageTally()
    assert tally.charge(LIMITS, ACME, 60) is None
    assert tally.charge(LIMITS, ACME, 41) is not None
    assert tally.charge(LIMITS, OTHER, 100) is None
    assert tally.view(ACME) == view(60, total=160)
    tally.add(ACME, -1000, -5)  # never below zero
    assert tally.view(ACME).tenant == TenantUsage()


def test_a_count_replaces_the_tally_but_keeps_changes_made_during_it() -> None:
    tally = UsageTally()
    tally.add(ACME, 10)
    tally.begin_count()
    tally.add(OTHER, 7, 1)  # written while the count walked the tree
    tally.finish_count({ACME: TenantUsage(bytes=3)})
    assert tally.snapshot() == {ACME: TenantUsage(bytes=3), OTHER: TenantUsage(bytes=7, uploads=1)}
    assert tally.view(ACME).total_bytes == 10


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", LIMITS)


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files(storage: LocalStorage, tenant: str) -> list[str]:
    directory = storage.root / "uploads" / tenant
    return sorted(os.listdir(directory)) if directory.exists() else []


async def test_declared_size_over_quota_is_refused_before_the_body_is_read(
    storage: LocalStorage,
) -> None:
    read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"x"

    with pytest.raises(StorageError) as caught:
        await storage.save_upload(body(), 10**6, tenant=ACME, declared_bytes=101)
    assert caught.value.code is FailureCode.QUOTA_EXCEEDED
    assert "your disk quota" in caught.value.message
    assert not read
    assert files(storage, ACME) == []


async def test_undeclared_upload_over_quota_stops_mid_body_and_leaves_nothing(
    storage: LocalStorage,
) -> None:
    await storage.save_upload(chunks_of(b"a" * 60), 10**6, tenant=ACME)
    with pytest.raises(StorageError) as caught:
        await storage.save_upload(chunks_of(b"b" * 30, b"c" * 30), 10**6, tenant=ACME)
    assert caught.value.code is FailureCode.QUOTA_EXCEEDED
    assert caught.value.message.startswith("stopped:")
    assert len(files(storage, ACME)) == 1  # the first upload only: no `.part` left
    assert storage.disk.view(ACME).tenant == TenantUsage(bytes=60, uploads=1)
    # Another tenant is unaffected by acme's full quota.
    upload_id, size = await storage.save_upload(chunks_of(b"d" * 100), 10**6, tenant=OTHER)
    assert size == 100
    assert storage.upload_path(OTHER, upload_id).exists()


async def test_upload_count_limit(storage: LocalStorage) -> None:
    for _ in range(2):
        await storage.save_upload(chunks_of(b"a"), 10, tenant=ACME)
    with pytest.raises(StorageError) as caught:
        await storage.save_upload(chunks_of(b"a"), 10, tenant=ACME)
    assert caught.value.code is FailureCode.QUOTA_EXCEEDED
    assert "the limit is 2" in caught.value.message
    await storage.save_upload(chunks_of(b"a"), 10, tenant=OTHER)


async def test_a_failed_upload_gives_its_place_back(storage: LocalStorage) -> None:
    with pytest.raises(StorageError):
        await storage.save_upload(chunks_of(b"abc"), 2, tenant=ACME)  # over MAX_UPLOAD_BYTES
    assert storage.disk.view(ACME).tenant == TenantUsage()


async def test_outputs_and_submits_against_the_quota(storage: LocalStorage) -> None:
    storage.job_dir("a" * 32, ACME)
    storage.charge_outputs(ACME, 90)  # first counts the disk: the job's `.ffpool-tenant`
    used = storage.disk.view(ACME).tenant.bytes
    assert used == 90 + len(ACME)
    storage.check_quota(ACME)  # some room left: a job may still start
    with pytest.raises(StorageError) as caught:
        storage.charge_outputs(ACME, 100 - used + 1)
    assert caught.value.code is FailureCode.QUOTA_EXCEEDED
    storage.charge_outputs(ACME, 100 - used)
    with pytest.raises(OverQuota):
        storage.check_quota(ACME)  # the WebSocket server answers `quota_exceeded` (ws.py)
    storage.check_quota(OTHER)


def test_job_dir_records_its_tenant_once(storage: LocalStorage) -> None:
    job_dir = storage.job_dir("a" * 32, ACME)
    storage.job_dir("a" * 32, OTHER)  # a later run never re-assigns the files
    storage.job_dir("a" * 32)
    assert (job_dir / ".ffpool-tenant").read_text() == ACME


def test_settings_carry_the_limits(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        media_root=tmp_path,
        tenant_disk_quota_bytes=5,
        disk_quota_bytes=None,
        tenant_max_uploads=3,
    )
    storage = LocalStorage.from_settings(settings)
    assert storage.disk.limits == DiskLimits(tenant_disk_quota_bytes=5, tenant_max_uploads=3)


def test_a_quota_is_switched_off_with_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISK_QUOTA_BYTES", "none")
    monkeypatch.setenv("TENANT_MAX_UPLOADS", "7")
    settings = Settings(_env_file=None)
    assert (settings.disk_quota_bytes, settings.tenant_max_uploads) == (None, 7)
    assert settings.tenant_disk_quota_bytes == 10 * 1024**3
