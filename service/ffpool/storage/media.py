"""Where media lives on disk, and the only code that turns user-given names into paths.

Layout under MEDIA_ROOT:

- `uploads/<tenant>/<upload_id>`: files uploaded over HTTP (`uploads/.<tenant>.<id>.part`
  while streaming); a tenant can only ever name its own uploads;
- `chunks/<job_id>/...`: a chunked job's cut and encoded pieces while it runs (chunk_dir);
- `jobs/<job_id>/...`: one directory per job: its outputs, a URL input's download (in a run's
  scratch directory, for as long as the run lasts), and
  `.ffpool-tenant` naming whose quota its files count against;
- anything else: media that path inputs may reference, relative to MEDIA_ROOT.

Path inputs may not reach into `jobs/`, `chunks/` or `uploads/` (not even through a
symlink): those are addressed only by their unguessable ids, so a client can read another
job's files only if it knows that job's id. Hidden names (a leading `.`) are temporary or
private files: never inputs, never downloadable. A symlink inside MEDIA_ROOT is followed
only if its target stays inside.

Disk quotas (quota.py) are kept here: every upload and every job's outputs are charged to
their tenant as they are written and refunded as they are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Final, Protocol

from ffpool.domain.content_types import CONTENT_TYPES as CONTENT_TYPES
from ffpool.domain.content_types import content_type as content_type
from ffpool.settings import Settings
from ffpool.storage import quota, uploads, usage
from ffpool.storage.files import FILE_MODE as FILE_MODE
from ffpool.storage.files import NEW_FILE_FLAGS, not_found, over_quota, rejected
from ffpool.storage.files import WRITE_BUFFER_BYTES as WRITE_BUFFER_BYTES
from ffpool.storage.files import StorageError as StorageError
from ffpool.storage.files import stream_to_file as stream_to_file

UPLOADS_DIR: Final = "uploads"
JOBS_DIR: Final = "jobs"
# A chunked job's pieces (chunks/store.py): internal, addressed by the parent job's id only.
CHUNKS_DIR: Final = "chunks"
RESERVED_DIRS: Final = frozenset({UPLOADS_DIR, JOBS_DIR, CHUNKS_DIR})
DIR_MODE: Final = 0o750
# Temporary names end like this (or start with "."): never served, never inputs.
TEMP_SUFFIXES: Final = (".part", ".tmp")
# The longest file name component Linux file systems take (NAME_MAX, <limits.h>).
NAME_MAX: Final = 255

_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
# domain/jobs.py TenantName: a DNS label, safe as a directory name.
_TENANT_RE: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_OUTPUT_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")


def media_path_problem(rel: str) -> str | None:
    """Why a user-given relative path is refused before touching the disk, or None."""
    if not rel or "\x00" in rel or "\\" in rel:
        return "path is empty or contains NUL or backslash characters"
    path = PurePosixPath(rel)
    if path.is_absolute():
        return "path must be relative to MEDIA_ROOT"
    parts = [p for p in path.parts if p != "."]
    if not parts:
        return "path names no file"
    if any(p == ".." for p in parts):
        return "path may not contain '..'"
    if any(p.startswith(("-", ".")) for p in parts):
        return "path components may not start with '-' or '.'"
    if any(len(p.encode()) > NAME_MAX for p in parts):
        return f"path components may not be longer than {NAME_MAX} bytes"
    if parts[0] in RESERVED_DIRS:
        return f"paths under {JOBS_DIR}/ and {UPLOADS_DIR}/ are not inputs; use an upload id"
    return None


def output_name_problem(name: str) -> str | None:
    if not _OUTPUT_NAME_RE.fullmatch(name) or name.endswith(TEMP_SUFFIXES):
        return "not a valid output name"
    return None


def chunk_dir(root: Path, parent: str) -> Path:
    """`root/chunks/<parent>`: where a chunked job's pieces are kept (not created here)."""
    if not _ID_RE.fullmatch(parent):
        raise rejected("not a valid job id")
    return root / CHUNKS_DIR / parent


def _regular_file(path: Path, *, follow: bool) -> bool:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False
    return stat.S_ISREG(st.st_mode)


class Storage(Protocol):
    root: Path

    def resolve_media_path(self, rel: str) -> Path: ...

    def upload_path(self, tenant: str, upload_id: str) -> Path: ...

    def job_dir(self, job_id: str, tenant: str | None = None) -> Path: ...

    def output_path(self, job_id: str, name: str) -> Path: ...

    def remove_job(self, job_id: str) -> None: ...

    def remove_stale_uploads(self, older_than_s: float, now: float) -> list[str]: ...

    def recount_usage(self) -> None: ...

    def check_quota(self, tenant: str) -> None: ...

    def charge_outputs(self, tenant: str, nbytes: int) -> None: ...

    async def save_upload(
        self,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
        *,
        tenant: str,
        declared_bytes: int | None = None,
    ) -> tuple[str, int]: ...


class LocalStorage:
    """Storage on a local (or shared, mounted) file system under one root."""

    def __init__(self, root: Path, limits: quota.DiskLimits | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        for sub in RESERVED_DIRS:
            (self.root / sub).mkdir(mode=DIR_MODE, exist_ok=True)
        self.disk = usage.DiskAccount(
            self.root / UPLOADS_DIR, self.root / JOBS_DIR, limits or quota.DiskLimits()
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        return cls(settings.media_root, quota.DiskLimits.from_settings(settings))

    def resolve_media_path(self, rel: str) -> Path:
        """The real absolute path of a user-given path: inside the root, a regular file."""
        problem = media_path_problem(rel)
        if problem:
            raise rejected(problem)
        real = Path(os.path.realpath(self.root / rel))
        if not real.is_relative_to(self.root) or real == self.root:
            raise rejected("path escapes MEDIA_ROOT")
        if real.relative_to(self.root).parts[0] in RESERVED_DIRS:
            raise rejected("path leads into a reserved directory")
        try:
            real.lstat()
        except FileNotFoundError:
            raise not_found(f"no such file: {rel}") from None
        except OSError:  # ENAMETOOLONG, ELOOP, ENOTDIR...: a bad path, not a server fault
            raise rejected(f"path cannot be resolved: {rel}") from None
        if not _regular_file(real, follow=False):
            raise rejected(f"not a regular file: {rel}")
        return real

    def _tenant_uploads(self, tenant: str) -> Path:
        if not _TENANT_RE.fullmatch(tenant):
            raise rejected("not a valid tenant name")
        return self.root / UPLOADS_DIR / tenant

    def upload_path(self, tenant: str, upload_id: str) -> Path:
        """The tenant's upload with this id: another tenant's id is simply not found."""
        path = self._tenant_uploads(tenant) / upload_id
        if not _ID_RE.fullmatch(upload_id) or not _regular_file(path, follow=False):
            raise not_found("no upload with this id")
        return path

    def job_dir(self, job_id: str, tenant: str | None = None) -> Path:
        """The job's directory; with `tenant`, its files are that tenant's (TENANT_FILE)."""
        if not _ID_RE.fullmatch(job_id):
            raise rejected("not a valid job id")
        path = self.root / JOBS_DIR / job_id
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        if tenant is not None and _TENANT_RE.fullmatch(tenant):
            with contextlib.suppress(FileExistsError):
                fd = os.open(path / usage.TENANT_FILE, NEW_FILE_FLAGS, FILE_MODE)
                with os.fdopen(fd, "w") as f:
                    f.write(tenant)
        return path

    def output_path(self, job_id: str, name: str) -> Path:
        if not _ID_RE.fullmatch(job_id) or output_name_problem(name):
            raise rejected("not a valid job id or output name")
        path = self.root / JOBS_DIR / job_id / name
        if not _regular_file(path, follow=False):
            raise not_found("no such output")
        return path

    def remove_job(self, job_id: str) -> None:
        """Blocking: delete a job's directory and refund its bytes to its tenant."""
        if _ID_RE.fullmatch(job_id):
            path = self.root / JOBS_DIR / job_id
            tenant, size = usage.job_tenant(path), usage.tree_bytes(path)
            shutil.rmtree(path, ignore_errors=True)
            self.disk.tally.add(tenant, -size)

    def remove_stale_uploads(self, older_than_s: float, now: float) -> list[str]:
        """Delete uploads (and abandoned `.part` files) last modified more than `older_than_s`
        before `now` (epoch seconds); returns `<tenant>/<name>` of each. Blocking: run it in
        a thread.

        A `.part` being streamed is rewritten at least every WRITE_BUFFER_BYTES, so only an
        upload stalled for the whole retention can be caught mid-way (and then fails cleanly).
        """
        return uploads.remove_stale(self.root / UPLOADS_DIR, now - older_than_s, self.disk.tally)

    def recount_usage(self) -> None:
        """Blocking: count every tenant's files again (the sweep's correction of the tally)."""
        self.disk.recount()

    def check_quota(self, tenant: str) -> None:
        """Raise OverQuota (quota.py) when a new job of `tenant` would find no room
        for its outputs: call it before submitting."""
        self.disk.check_submit(tenant)

    def charge_outputs(self, tenant: str, nbytes: int) -> None:
        """Blocking: charge a finished run's outputs, or raise StorageError(QUOTA_EXCEEDED)."""
        try:
            self.disk.charge_outputs(tenant, nbytes)
        except quota.OverQuota as exc:
            raise over_quota(f"the outputs ({nbytes} bytes) do not fit: {exc}") from None

    async def save_upload(
        self,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
        *,
        tenant: str,
        declared_bytes: int | None = None,
    ) -> tuple[str, int]:
        """Stream an upload into the tenant's directory. Over a quota it is refused before any
        byte is read when `declared_bytes` (Content-Length) says so, else stopped mid-way."""
        directory = self._tenant_uploads(tenant)
        problem = quota.upload_refusal(self.disk.limits, self.disk.view(tenant), declared_bytes)
        if problem is not None:
            raise over_quota(f"refused: {problem}")
        upload_id = uuid.uuid4().hex
        meter = uploads.Meter(self.disk.tally, self.disk.limits, tenant)
        # Streamed next to the tenant directories, so a failed upload leaves not even those.
        temp = self.root / UPLOADS_DIR / uploads.part_name(tenant, upload_id)
        try:
            size = await uploads.stream_upload(meter, chunks, temp, max_bytes)
            await asyncio.to_thread(_publish, temp, directory, upload_id)
        except BaseException:
            uploads.discard(temp)
            meter.refund()
            raise
        return upload_id, size


def _publish(temp: Path, directory: Path, upload_id: str) -> None:
    directory.mkdir(mode=DIR_MODE, exist_ok=True)
    try:
        os.replace(temp, directory / upload_id)
    except FileNotFoundError:  # swept as stale while it stalled (remove_stale_uploads)
        raise rejected("upload expired before it completed") from None
