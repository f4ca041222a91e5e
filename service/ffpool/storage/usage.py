"""Counting what each tenant keeps under MEDIA_ROOT: blocking directory walks, run in a thread
by the periodic sweep (never per request; quota.py keeps the running tally in between).

A job's files are its tenant's as named in the job directory's TENANT_FILE (written when the
job first runs); a job directory without one, and uploads left from before per-tenant upload
directories, count as the anonymous tenant's.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Final

from ffpool.domain.jobs import ANONYMOUS_TENANT
from ffpool.storage import quota, uploads
from ffpool.storage.quota import TenantUsage

TENANT_FILE: Final = ".ffpool-tenant"
# A process that writes without sweeping (a worker) counts the disk again when its tally is
# older than this before it charges a job's outputs: the sweep's own longest period
# (housekeeping.MAX_PERIOD_SECONDS).
RECOUNT_SECONDS: Final = 300.0
# A tenant name is at most 63 characters (domain/jobs.py TenantName); more is not one.
MAX_TENANT_FILE_BYTES: Final = 64


def tree_bytes(path: Path) -> int:
    """Bytes of all regular files under `path` (symlinks not followed; vanished files skipped)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def job_tenant(job_dir: Path) -> str:
    """The tenant a job directory belongs to (anonymous when it does not say)."""
    try:
        with (job_dir / TENANT_FILE).open("rb") as f:
            text = f.read(MAX_TENANT_FILE_BYTES).decode("ascii", "replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return ANONYMOUS_TENANT
    return text or ANONYMOUS_TENANT


def _add(usage: dict[str, TenantUsage], tenant: str, nbytes: int, uploads: int) -> None:
    old = usage.get(tenant, TenantUsage())
    usage[tenant] = TenantUsage(bytes=old.bytes + nbytes, uploads=old.uploads + uploads)


def _file_size(entry: os.DirEntry[str]) -> int | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def count_uploads(uploads_dir: Path, usage: dict[str, TenantUsage]) -> None:
    """Each tenant's upload files (a `.part` being streamed counts: it holds its place)."""
    with os.scandir(uploads_dir) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as files:
                    for upload in files:
                        if (size := _file_size(upload)) is not None:
                            _add(usage, entry.name, size, 1)
            elif (size := _file_size(entry)) is not None:
                _add(usage, uploads.part_tenant(entry.name) or ANONYMOUS_TENANT, size, 1)


def count_jobs(jobs_dir: Path, usage: dict[str, TenantUsage]) -> None:
    """Each tenant's job directories: outputs, fetched inputs and scratch files."""
    with os.scandir(jobs_dir) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                _add(usage, job_tenant(path), tree_bytes(path), 0)


def scan(uploads_dir: Path, jobs_dir: Path) -> dict[str, TenantUsage]:
    usage: dict[str, TenantUsage] = {}
    count_uploads(uploads_dir, usage)
    count_jobs(jobs_dir, usage)
    return usage


class DiskAccount:
    """The quota side of a LocalStorage: its limits, its tally and the counts correcting it."""

    def __init__(self, uploads_dir: Path, jobs_dir: Path, limits: quota.DiskLimits) -> None:
        self.uploads_dir = uploads_dir
        self.jobs_dir = jobs_dir
        self.limits = limits
        self.tally = quota.UsageTally()
        self._counted_at: float | None = None
        self._counting = threading.Lock()

    def view(self, tenant: str) -> quota.UsageView:
        return self.tally.view(tenant)

    def recount(self) -> None:
        """Blocking: count every tenant's files again; skipped while another thread counts."""
        if not self._counting.acquire(blocking=False):
            return
        try:
            self.tally.begin_count()
            self.tally.finish_count(scan(self.uploads_dir, self.jobs_dir))
            self._counted_at = time.monotonic()
        finally:
            self._counting.release()

    def check_submit(self, tenant: str) -> None:
        problem = quota.submit_refusal(self.limits, self.tally.view(tenant))
        if problem is not None:
            raise quota.OverQuota(problem)

    def charge_outputs(self, tenant: str, nbytes: int) -> None:
        """Blocking (it counts the disk first where no sweep has lately): raises OverQuota."""
        if self._counted_at is None or time.monotonic() - self._counted_at > RECOUNT_SECONDS:
            self.recount()
        problem = self.tally.charge(self.limits, tenant, nbytes)
        if problem is not None:
            raise quota.OverQuota(problem)
