"""Uploads on disk, one directory per tenant, charged to the tenant's quota as they stream.

MEDIA_ROOT/uploads/<tenant>/<upload_id>, streamed as MEDIA_ROOT/uploads/.<tenant>.<id>.part
(a tenant name has no dots). Other files directly under uploads/ predate tenant directories:
they count as the anonymous tenant's and expire like any other.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from ffpool.domain.jobs import ANONYMOUS_TENANT
from ffpool.storage.files import discard as discard
from ffpool.storage.files import over_quota, rejected, stream_to_file
from ffpool.storage.quota import DiskLimits, OverQuota, UsageTally

PART_SUFFIX = ".part"


def part_name(tenant: str, upload_id: str) -> str:
    return f".{tenant}.{upload_id}{PART_SUFFIX}"


def part_tenant(name: str) -> str | None:
    """The tenant a streaming upload's file name says, or None if it is not one."""
    if not (name.startswith(".") and name.endswith(PART_SUFFIX)):
        return None
    tenant, dot, _ = name[1:].partition(".")
    return tenant if dot and tenant else None


class Meter:
    """Charges an upload's bytes to its tenant chunk by chunk, before they are written, and
    refunds them (and its place among the tenant's uploads) if the upload fails."""

    def __init__(self, tally: UsageTally, limits: DiskLimits, tenant: str) -> None:
        self.tally = tally
        self.limits = limits
        self.tenant = tenant
        self.charged = 0
        tally.add(tenant, uploads=1)  # holds its place among the tenant's uploads at once

    async def metered(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            problem = self.tally.charge(self.limits, self.tenant, len(chunk))
            if problem is not None:
                raise OverQuota(problem)
            self.charged += len(chunk)
            yield chunk

    def refund(self) -> None:
        self.tally.add(self.tenant, -self.charged, -1)
        self.charged = 0


def _stale_size(entry: os.DirEntry[str], cutoff: float) -> int | None:
    """The size of a non-directory entry last modified before `cutoff`, else None (vanished
    entries are not stale)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode) or st.st_mtime >= cutoff:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _remove_stale_in(directory: Path, tenant: str, cutoff: float, tally: UsageTally) -> list[str]:
    removed = []
    with os.scandir(directory) as entries:
        for entry in entries:
            size = _stale_size(entry, cutoff)
            if size is None:
                continue
            discard(Path(entry.path))
            removed.append(entry.name)
            # A `.part` is refunded by its own failing upload (Meter.refund), not here.
            if not entry.name.startswith("."):
                tally.add(tenant, -size, -1)
    return removed


def remove_stale(uploads_dir: Path, cutoff: float, tally: UsageTally) -> list[str]:
    """Delete uploads last modified before `cutoff` (epoch seconds) in every tenant's
    directory; returns `<tenant>/<name>` of each (a bare name for a pre-tenant upload).
    Blocking: run it in a thread."""
    removed: list[str] = []
    with os.scandir(uploads_dir) as entries:
        tenants = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    for tenant in tenants:
        names = _remove_stale_in(uploads_dir / tenant, tenant, cutoff, tally)
        removed += [f"{tenant}/{name}" for name in names]
    removed += _remove_stale_in(uploads_dir, ANONYMOUS_TENANT, cutoff, tally)
    return sorted(removed)


async def stream_upload(
    meter: Meter, chunks: AsyncIterator[bytes], temp: Path, max_bytes: int
) -> int:
    """Stream a body into `temp`, charged as it comes; its size. StorageError on failure."""
    try:
        size = await stream_to_file(meter.metered(chunks), temp, max_bytes)
    except OverQuota as exc:
        raise over_quota(f"stopped: {exc}") from None
    if size == 0:
        raise rejected("empty upload")
    return size
