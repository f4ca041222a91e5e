"""`POST /uploads` with STORAGE=s3: the body streamed into the pool's bucket, never to disk.

The object is S3_BUCKET/S3_PREFIX/uploads/<tenant>/<upload_id> (docs/storage.md, "Object
layout"), written as a multipart upload that appears whole or not at all: a body over
MAX_UPLOAD_BYTES, a client that stops sending or a storage error leaves no object behind.
Disk quotas do not apply to the bucket; the bucket's own lifecycle rules bound it (the
operator's guide in docs/storage.md says how).

Each upload in flight holds a few parts in memory, so `UploadStreams` bounds how many run at
once in this process, per tenant and in all (TENANT_MAX_UPLOAD_STREAMS, MAX_UPLOAD_STREAMS):
one more is refused at once (HTTP 429), never queued.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Final

from ffpool.ffmpeg.object_inputs import upload_ref
from ffpool.settings import Settings
from ffpool.storage.objects import ObjectStore

UPLOAD_CONTENT_TYPE: Final = "application/octet-stream"


class EmptyUpload(Exception):
    """A body without a single byte: refused before anything is written."""


class UploadStreams:
    """Bucket uploads in flight in this process: one event loop, so plain counters do."""

    def __init__(self, per_tenant: int, total: int) -> None:
        self.per_tenant = per_tenant
        self.total = total
        self.open: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadStreams:
        return cls(settings.tenant_max_upload_streams, settings.max_upload_streams)

    def acquire(self, tenant: str) -> str | None:
        """Count one more upload of `tenant`; else why not (the refusal's message)."""
        if self.open[tenant] >= self.per_tenant:
            return (
                f"this tenant already has {self.per_tenant} uploads in progress "
                "(TENANT_MAX_UPLOAD_STREAMS): retry when one has finished"
            )
        if self.open.total() >= self.total:
            return (
                f"this server already has {self.total} uploads in progress "
                "(MAX_UPLOAD_STREAMS): retry later"
            )
        self.open[tenant] += 1
        return None

    def release(self, tenant: str) -> None:
        self.open[tenant] -= 1
        if self.open[tenant] <= 0:
            del self.open[tenant]


async def _first_then_rest(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def save_to_bucket(
    objects: ObjectStore,
    settings: Settings,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
    *,
    tenant: str,
) -> tuple[str, int]:
    """Stream an upload into the bucket: (upload id, size). Raises EmptyUpload, or
    ObjectStoreError (TOO_LARGE: over `max_bytes`; else the storage failed)."""
    first = b""
    async for chunk in chunks:
        if chunk:
            first = chunk
            break
    if not first:
        raise EmptyUpload("empty upload")
    upload_id = uuid.uuid4().hex
    ref = upload_ref(settings, tenant, upload_id)
    stored = await objects.put_stream(
        ref, _first_then_rest(first, chunks), UPLOAD_CONTENT_TYPE, max_bytes
    )
    return upload_id, stored.size
