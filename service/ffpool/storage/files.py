"""Writing a streamed body to a new file safely, and the errors storage raises: shared by
media.py, uploads.py and URL inputs (ffmpeg/inputs.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from ffpool.domain.events import FailureCode

FILE_MODE: Final = 0o640
NEW_FILE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
# Bytes gathered before one write in a worker thread: large enough that the thread hop is
# negligible, small enough to keep memory per transfer bounded.
WRITE_BUFFER_BYTES: Final = 1024 * 1024


class StorageError(Exception):
    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rejected(message: str) -> StorageError:
    return StorageError(FailureCode.INPUT_REJECTED, message)


def not_found(message: str) -> StorageError:
    return StorageError(FailureCode.INPUT_NOT_FOUND, message)


def over_quota(message: str) -> StorageError:
    return StorageError(FailureCode.QUOTA_EXCEEDED, message)


def discard(path: Path) -> None:
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
    fd = await asyncio.to_thread(os.open, dest, NEW_FILE_FLAGS, FILE_MODE)
    try:
        return await _write_all(fd, chunks, max_bytes)
    except BaseException:
        discard(dest)
        raise
