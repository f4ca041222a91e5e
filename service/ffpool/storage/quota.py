"""Disk quotas under MEDIA_ROOT: a running tally of each tenant's bytes and uploads, and the
pure decisions of whether one more write fits (docs/security.md, "Limits: records, disk and
uploads").

The tally is updated on every write and delete (no disk walk per request) and replaced by a
full count from the periodic sweep (disk_usage.scan, in a thread). Changes made while a
count runs are applied again on top of it: a file the count saw as well is counted twice
until the next sweep, which errs on the side of refusing, never of filling the disk.
"""

from __future__ import annotations

import threading
from typing import Final

from pydantic import BaseModel, ConfigDict

from ffpool.settings import Settings

QUOTA_HINT: Final = "delete outputs or uploads you no longer need, or wait for them to expire"


class OverQuota(Exception):
    """A write that would pass a disk quota; the message says which."""


class DiskLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    disk_quota_bytes: int | None = None
    tenant_disk_quota_bytes: int | None = None
    tenant_max_uploads: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DiskLimits:
        return cls(
            disk_quota_bytes=settings.disk_quota_bytes,
            tenant_disk_quota_bytes=settings.tenant_disk_quota_bytes,
            tenant_max_uploads=settings.tenant_max_uploads,
        )


class TenantUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    bytes: int = 0
    uploads: int = 0


class UsageView(BaseModel):
    """What a decision about one tenant needs: its usage and everyone's bytes."""

    model_config = ConfigDict(frozen=True)

    tenant: TenantUsage = TenantUsage()
    total_bytes: int = 0


def room_bytes(limits: DiskLimits, usage: UsageView) -> int | None:
    """Bytes the tenant may still write (the smaller of its own and the global room); None:
    no quota applies."""
    rooms = []
    if limits.tenant_disk_quota_bytes is not None:
        rooms.append(limits.tenant_disk_quota_bytes - usage.tenant.bytes)
    if limits.disk_quota_bytes is not None:
        rooms.append(limits.disk_quota_bytes - usage.total_bytes)
    return max(0, min(rooms)) if rooms else None


def bytes_refusal(limits: DiskLimits, usage: UsageView, adding: int) -> str | None:
    """Why writing `adding` more bytes is refused, or None."""
    room = room_bytes(limits, usage)
    if room is None or adding <= room:
        return None
    tenant_quota = limits.tenant_disk_quota_bytes
    if tenant_quota is not None and usage.tenant.bytes + adding > tenant_quota:
        return f"your disk quota of {tenant_quota} bytes is used up ({QUOTA_HINT})"
    return f"the service's disk quota of {limits.disk_quota_bytes} bytes is used up"


def upload_refusal(limits: DiskLimits, usage: UsageView, declared_bytes: int | None) -> str | None:
    """Why a new upload is refused before its body is read, or None. An unknown size must at
    least find one byte of room; it is held to the room while it streams."""
    most = limits.tenant_max_uploads
    if most is not None and usage.tenant.uploads >= most:
        return f"you keep {usage.tenant.uploads} uploads, the limit is {most} ({QUOTA_HINT})"
    return bytes_refusal(limits, usage, max(declared_bytes or 0, 1))


def submit_refusal(limits: DiskLimits, usage: UsageView) -> str | None:
    """Why a new job is refused: its outputs would find no room at all."""
    return bytes_refusal(limits, usage, 1)


class UsageTally:
    """Bytes and uploads per tenant, updated by writers on any thread (under a lock held
    only for the arithmetic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, TenantUsage] = {}
        self._total = 0
        self._during_count: list[tuple[str, int, int]] | None = None

    def view(self, tenant: str) -> UsageView:
        with self._lock:
            return self._view(tenant)

    def add(self, tenant: str, nbytes: int = 0, uploads: int = 0) -> None:
        with self._lock:
            self._record(tenant, nbytes, uploads)

    def charge(self, limits: DiskLimits, tenant: str, nbytes: int) -> str | None:
        """Add `nbytes` to the tenant if they fit (None), else why not (nothing added)."""
        with self._lock:
            problem = bytes_refusal(limits, self._view(tenant), nbytes)
            if problem is None:
                self._record(tenant, nbytes, 0)
            return problem

    def _view(self, tenant: str) -> UsageView:
        return UsageView(tenant=self._tenants.get(tenant, TenantUsage()), total_bytes=self._total)

    def _record(self, tenant: str, nbytes: int, uploads: int) -> None:
        self._add(tenant, nbytes, uploads)
        if self._during_count is not None:
            self._during_count.append((tenant, nbytes, uploads))

    def _add(self, tenant: str, nbytes: int, uploads: int) -> None:
        old = self._tenants.get(tenant, TenantUsage())
        new = TenantUsage(bytes=max(0, old.bytes + nbytes), uploads=max(0, old.uploads + uploads))
        self._tenants[tenant] = new
        self._total += new.bytes - old.bytes

    def begin_count(self) -> None:
        with self._lock:
            self._during_count = []

    def finish_count(self, counted: dict[str, TenantUsage]) -> None:
        """Replace the tally by a full count, keeping the changes made while it ran."""
        with self._lock:
            during, self._during_count = self._during_count or [], None
            self._tenants = dict(counted)
            self._total = sum(u.bytes for u in counted.values())
            for tenant, nbytes, uploads in during:
                self._add(tenant, nbytes, uploads)

    def snapshot(self) -> dict[str, TenantUsage]:
        with self._lock:
            return dict(self._tenants)
