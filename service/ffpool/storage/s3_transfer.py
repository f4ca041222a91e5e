"""Multipart uploads for storage/s3.py: parts from a local file or from a stream of chunks,
each sent with its SHA-256 so the storage verifies every part, a few in flight at once, and the
upload aborted on any failure so no half object ever appears (docs/storage.md).

Files are read and hashed in worker threads, never on the event loop; the whole object's
SHA-256 is computed here as the parts go by, because S3's multipart checksum is a checksum of
the parts' checksums, not of the object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import os
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError, StoredObject

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef


def b64_sha256(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


@dataclass
class Multipart:
    """One multipart upload in progress: its parts' receipts and the whole object's hash."""

    client: S3Client
    ref: ObjectRef
    upload_id: str
    concurrency: int
    parts: dict[int, CompletedPartTypeDef] = field(default_factory=dict)
    whole: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    sent: int = 0
    """Parts handed to `add` so far: the last part's number."""
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)
    _hashing: asyncio.Future[None] | None = None

    @classmethod
    async def begin(
        cls, client: S3Client, ref: ObjectRef, content_type: str, concurrency: int
    ) -> Multipart:
        created = await client.create_multipart_upload(
            Bucket=ref.bucket, Key=ref.key, ContentType=content_type, ChecksumAlgorithm="SHA256"
        )
        return cls(client, ref, created["UploadId"], concurrency)

    async def _send(self, number: int, body: io.BytesIO, checksum: str) -> None:
        sent = await self.client.upload_part(
            Bucket=self.ref.bucket,
            Key=self.ref.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
        )
        self.parts[number] = {
            "PartNumber": number,
            "ETag": sent["ETag"],
            "ChecksumSHA256": checksum,
        }

    async def add(self, data: bytes) -> None:
        """Queue the next part; waits while `concurrency` parts are in flight, and raises the
        first part's failure. The whole object's hash takes the part in a worker thread
        while another prepares it; one part's whole-hashing at a time, in order, so memory
        stays bounded and `whole` sees the object front to back."""
        if self._hashing is not None:
            await self._hashing
        self._hashing = asyncio.ensure_future(asyncio.to_thread(self.whole.update, data))
        body, checksum = await asyncio.to_thread(prepare, data)
        self.size += len(data)
        while len(self._inflight) >= self.concurrency:
            done, _ = await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            self._collect(done)
        self.sent += 1
        self._inflight.add(asyncio.create_task(self._send(self.sent, body, checksum)))

    def _collect(self, done: set[asyncio.Task[None]]) -> None:
        """Raise the first failure among finished parts (every one retrieved: none is
        reported later as "never retrieved")."""
        self._inflight -= done
        failures = [e for task in done if (e := task.exception()) is not None]
        if failures:
            raise failures[0]

    async def complete(self) -> StoredObject:
        if self._hashing is not None:
            await self._hashing
        if self._inflight:
            done, _ = await asyncio.wait(self._inflight)
            self._collect(done)
        digest = base64.b64encode(self.whole.digest()).decode("ascii")
        await self.client.complete_multipart_upload(
            Bucket=self.ref.bucket,
            Key=self.ref.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [self.parts[n] for n in sorted(self.parts)]},
        )
        return StoredObject(self.ref, self.size, digest)

    async def abort(self) -> None:
        """Stop the parts in flight and drop the upload; best effort (the storage may be
        down: then its lifecycle rules collect the parts, and no object exists anyway)."""
        for task in self._inflight:
            task.cancel()
        if self._inflight:
            await asyncio.wait(self._inflight)
        for task in self._inflight:
            if not task.cancelled():
                task.exception()
        self._inflight.clear()
        if self._hashing is not None:
            await asyncio.wait([self._hashing])
        with contextlib.suppress(Exception):
            await self.client.abort_multipart_upload(
                Bucket=self.ref.bucket, Key=self.ref.key, UploadId=self.upload_id
            )


def prepare(data: bytes) -> tuple[io.BytesIO, str]:
    """A body to send and its SHA-256 (in a worker thread). The BytesIO owns its copy of
    `data`: given bytes, botocore makes a BytesIO that shares them, and aiohttp's first look
    at its buffer un-shares it with a copy on the event loop."""
    body = io.BytesIO()
    body.write(data)
    body.seek(0)
    return body, b64_sha256(data)


def read_part(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise ObjectStoreError(ObjectErrorKind.INVALID, "the file changed while uploading")
    return data


async def upload_file_parts(
    upload: Multipart, path: Path, size: int, part_size: int
) -> StoredObject:
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    try:
        for offset in range(0, size, part_size):
            length = min(part_size, size - offset)
            await upload.add(await asyncio.to_thread(read_part, fd, offset, length))
        return await upload.complete()
    finally:
        await asyncio.to_thread(os.close, fd)


class SourceFailed(Exception):
    """The stream being uploaded failed, not the storage (a client hung up mid-upload):
    its own exception is the cause, and put_stream raises that, unmapped."""


async def parts_of(chunks: AsyncIterator[bytes], part_size: int) -> AsyncGenerator[bytes, None]:
    """The stream regrouped into parts of exactly `part_size` bytes (the last one shorter)."""
    buffer = bytearray()
    while True:
        try:
            chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except Exception as exc:
            raise SourceFailed from exc
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
    if buffer:
        yield bytes(buffer)


async def upload_stream_parts(
    upload: Multipart, first: bytes, rest: AsyncIterator[bytes], max_bytes: int
) -> StoredObject:
    """`first` and the parts after it; over `max_bytes` raises TOO_LARGE (the caller aborts)."""
    part: bytes | None = first
    while part is not None:
        if upload.size + len(part) > max_bytes:
            raise ObjectStoreError(
                ObjectErrorKind.TOO_LARGE, f"upload {upload.ref.url}: larger than {max_bytes} bytes"
            )
        await upload.add(part)
        part = await anext(rest, None)
    return await upload.complete()
