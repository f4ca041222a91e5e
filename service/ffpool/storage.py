"""Where media lives on disk, and the only code that turns user-given names into paths.

Layout under MEDIA_ROOT:

- `uploads/<upload_id>`: files uploaded over HTTP (`uploads/.<id>.part` while streaming);
- `jobs/<job_id>/...`: one directory per job: its outputs, and a URL input's download;
- anything else: media that path inputs may reference, relative to MEDIA_ROOT.

Path inputs may not reach into `jobs/` or `uploads/` (not even through a symlink): those are
addressed only by their unguessable ids, so a client can read another job's files only if it
knows that job's id. Hidden names (a leading `.`) are temporary or private files: never inputs,
never downloadable. A symlink inside MEDIA_ROOT is followed only if its target stays inside.
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

from ffpool.jobs.events import FailureCode

UPLOADS_DIR: Final = "uploads"
JOBS_DIR: Final = "jobs"
RESERVED_DIRS: Final = frozenset({UPLOADS_DIR, JOBS_DIR})
DIR_MODE: Final = 0o750
FILE_MODE: Final = 0o640
# Bytes gathered before one write in a worker thread: large enough that the thread hop is
# negligible, small enough to keep memory per transfer bounded.
WRITE_BUFFER_BYTES: Final = 1024 * 1024
# Temporary names end like this (or start with "."): never served, never inputs.
TEMP_SUFFIXES: Final = (".part", ".tmp")

_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
_OUTPUT_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")

CONTENT_TYPES: Final = {
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "mov": "video/quicktime",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "json": "application/json",
}


def content_type(name: str) -> str:
    """The Content-Type of an output by its extension (outputs only ever have ours)."""
    return CONTENT_TYPES.get(name.rpartition(".")[2].lower(), "application/octet-stream")


class StorageError(Exception):
    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rejected(message: str) -> StorageError:
    return StorageError(FailureCode.INPUT_REJECTED, message)


def not_found(message: str) -> StorageError:
    return StorageError(FailureCode.INPUT_NOT_FOUND, message)


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
    if parts[0] in RESERVED_DIRS:
        return f"paths under {JOBS_DIR}/ and {UPLOADS_DIR}/ are not inputs; use an upload id"
    return None


def output_name_problem(name: str) -> str | None:
    if not _OUTPUT_NAME_RE.fullmatch(name) or name.endswith(TEMP_SUFFIXES):
        return "not a valid output name"
    return None


def _regular_file(path: Path, *, follow: bool) -> bool:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False
    return stat.S_ISREG(st.st_mode)


def _stale_file(entry: os.DirEntry[str], cutoff: float) -> bool:
    """A non-directory entry last modified before `cutoff` (vanished entries are not stale)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return False
    return not stat.S_ISDIR(st.st_mode) and st.st_mtime < cutoff


def _discard(path: Path) -> None:
    # A metadata-only call, done synchronously so cleanup also runs inside a cancelled task.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _write_all(fd: int, chunks: AsyncIterator[bytes], max_bytes: int) -> int:
    size = 0
    buffer = bytearray()
    with os.fdopen(fd, "wb") as f:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise StorageError(
                    FailureCode.INPUT_TOO_LARGE, f"larger than the limit of {max_bytes} bytes"
                )
            buffer += chunk
            if len(buffer) >= WRITE_BUFFER_BYTES:
                await asyncio.to_thread(f.write, bytes(buffer))
                buffer.clear()
        await asyncio.to_thread(f.write, bytes(buffer))
    return size


async def stream_to_file(chunks: AsyncIterator[bytes], dest: Path, max_bytes: int) -> int:
    """Write a stream to a new file `dest`; returns its size. More than `max_bytes` raises
    StorageError(INPUT_TOO_LARGE). On any failure (or cancellation) `dest` is removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = await asyncio.to_thread(os.open, dest, flags, FILE_MODE)
    try:
        return await _write_all(fd, chunks, max_bytes)
    except BaseException:
        _discard(dest)
        raise


class Storage(Protocol):
    root: Path

    def resolve_media_path(self, rel: str) -> Path: ...

    def upload_path(self, upload_id: str) -> Path: ...

    def job_dir(self, job_id: str) -> Path: ...

    def output_path(self, job_id: str, name: str) -> Path: ...

    def remove_job(self, job_id: str) -> None: ...

    def remove_stale_uploads(self, older_than_s: float, now: float) -> list[str]: ...

    async def save_upload(
        self, chunks: AsyncIterator[bytes], max_bytes: int
    ) -> tuple[str, int]: ...


class LocalStorage:
    """Storage on a local (or shared, mounted) file system under one root."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve(strict=True)
        for sub in RESERVED_DIRS:
            (self.root / sub).mkdir(mode=DIR_MODE, exist_ok=True)

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
        if not real.exists():
            raise not_found(f"no such file: {rel}")
        if not _regular_file(real, follow=False):
            raise rejected(f"not a regular file: {rel}")
        return real

    def upload_path(self, upload_id: str) -> Path:
        path = self.root / UPLOADS_DIR / upload_id
        if not _ID_RE.fullmatch(upload_id) or not _regular_file(path, follow=False):
            raise not_found("no upload with this id")
        return path

    def job_dir(self, job_id: str) -> Path:
        if not _ID_RE.fullmatch(job_id):
            raise rejected("not a valid job id")
        path = self.root / JOBS_DIR / job_id
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        return path

    def output_path(self, job_id: str, name: str) -> Path:
        if not _ID_RE.fullmatch(job_id) or output_name_problem(name):
            raise rejected("not a valid job id or output name")
        path = self.root / JOBS_DIR / job_id / name
        if not _regular_file(path, follow=False):
            raise not_found("no such output")
        return path

    def remove_job(self, job_id: str) -> None:
        if _ID_RE.fullmatch(job_id):
            shutil.rmtree(self.root / JOBS_DIR / job_id, ignore_errors=True)

    def remove_stale_uploads(self, older_than_s: float, now: float) -> list[str]:
        """Delete uploads (and abandoned `.part` files) last modified more than `older_than_s`
        before `now` (epoch seconds); returns the names removed. Blocking: run it in a thread.

        A `.part` being streamed is rewritten at least every WRITE_BUFFER_BYTES, so only an
        upload stalled for the whole retention can be caught mid-way (and then fails cleanly).
        """
        removed = []
        with os.scandir(self.root / UPLOADS_DIR) as entries:
            for entry in entries:
                if _stale_file(entry, now - older_than_s):
                    _discard(Path(entry.path))
                    removed.append(entry.name)
        return sorted(removed)

    async def save_upload(self, chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[str, int]:
        upload_id = uuid.uuid4().hex
        final = self.root / UPLOADS_DIR / upload_id
        temp = final.with_name(f".{upload_id}.part")
        size = await stream_to_file(chunks, temp, max_bytes)
        if size == 0:
            _discard(temp)
            raise rejected("empty upload")
        try:
            os.replace(temp, final)
        except FileNotFoundError:  # swept as stale while it stalled (remove_stale_uploads)
            raise rejected("upload expired before it completed") from None
        return upload_id, size
