"""The in-memory ObjectStore: the S3 store's stand-in for unit tests (docs/storage.md).

It keeps the protocol's promises the way storage/s3.py does against a real server: unknown
buckets are NOT_FOUND (buckets exist only once `make_bucket` made them), `if_absent` lets the
first writer win, `max_bytes` refuses oversized streams and leaves no object, and the whole
object's SHA-256 comes back in S3's base64 form. Flags make it fail like a bucket that is down
(`outage`), that the credentials may not touch (`deny`) or that refuses a request (`refuse`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from ffpool.storage.objects import (
    ObjectErrorKind,
    ObjectRef,
    ObjectStore,
    ObjectStoreError,
    StoredObject,
    within,
)


def sha256_b64(data: bytes) -> str:
    """S3's ChecksumSHA256 form: the base64 of the raw digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


@dataclass(frozen=True)
class MemoryObject:
    data: bytes
    content_type: str


class MemoryObjectStore:
    """An ObjectStore over dicts of bytes; `buckets` are made up front (or by `make_bucket`)."""

    def __init__(self, *buckets: str) -> None:
        self.buckets: dict[str, dict[str, MemoryObject]] = {b: {} for b in buckets}
        self.outage = False
        """True: every call raises UNAVAILABLE, as if the storage were down."""
        self.denied: set[str] = set()
        """Buckets every call on raises DENIED."""
        self.refused: dict[str, str] = {}
        """Buckets every call on raises INVALID with this message (an archived object, a KMS
        key the pool may not use)."""
        self.closed = False

    def make_bucket(self, name: str) -> None:
        self.buckets.setdefault(name, {})

    def deny(self, bucket: str) -> None:
        self.denied.add(bucket)

    def refuse(self, bucket: str, message: str) -> None:
        self.refused[bucket] = message

    def objects(self, bucket: str) -> dict[str, MemoryObject]:
        """The bucket's objects by key (for assertions; no checks, no failures)."""
        return self.buckets[bucket]

    def _bucket(self, ref: ObjectRef) -> dict[str, MemoryObject]:
        if self.outage:
            raise ObjectStoreError(
                ObjectErrorKind.UNAVAILABLE, f"storage unavailable for s3://{ref.bucket}"
            )
        if ref.bucket in self.denied:
            raise ObjectStoreError(ObjectErrorKind.DENIED, f"access denied to {ref.url}")
        if ref.bucket in self.refused:
            raise ObjectStoreError(ObjectErrorKind.INVALID, self.refused[ref.bucket])
        try:
            return self.buckets[ref.bucket]
        except KeyError:
            raise ObjectStoreError(
                ObjectErrorKind.NOT_FOUND, f"no such bucket: {ref.bucket}"
            ) from None

    def _store(self, ref: ObjectRef, data: bytes, content_type: str) -> StoredObject:
        self._bucket(ref)[ref.key] = MemoryObject(data, content_type)
        return StoredObject(ref, len(data), sha256_b64(data))

    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        self._bucket(ref)
        data = await asyncio.to_thread(path.read_bytes)
        return self._store(ref, data, content_type)

    async def put_stream(
        self, ref: ObjectRef, chunks: AsyncIterator[bytes], content_type: str, max_bytes: int
    ) -> StoredObject:
        self._bucket(ref)
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise ObjectStoreError(
                    ObjectErrorKind.TOO_LARGE, f"{ref.url}: larger than {max_bytes} bytes"
                )
            parts.append(chunk)
        return self._store(ref, b"".join(parts), content_type)

    async def put_bytes(
        self,
        ref: ObjectRef,
        data: bytes,
        *,
        if_absent: bool = False,
        content_type: str = "application/json",
    ) -> bool:
        if if_absent and ref.key in self._bucket(ref):
            return False
        self._store(ref, data, content_type)
        return True

    async def get_bytes(self, ref: ObjectRef, max_bytes: int) -> bytes | None:
        found = self._bucket(ref).get(ref.key)
        if found is None:
            return None
        if len(found.data) > max_bytes:
            raise ObjectStoreError(
                ObjectErrorKind.TOO_LARGE, f"{ref.url}: larger than {max_bytes} bytes"
            )
        return found.data

    async def download(self, ref: ObjectRef, dest: Path, max_bytes: int) -> int:
        found = self._bucket(ref).get(ref.key)
        if found is None:
            raise ObjectStoreError(ObjectErrorKind.NOT_FOUND, f"no such object: {ref.url}")
        if len(found.data) > max_bytes:
            raise ObjectStoreError(
                ObjectErrorKind.TOO_LARGE, f"{ref.url}: larger than {max_bytes} bytes"
            )
        await asyncio.to_thread(dest.write_bytes, found.data)
        return len(found.data)

    async def head(self, ref: ObjectRef) -> StoredObject | None:
        found = self._bucket(ref).get(ref.key)
        if found is None:
            return None
        return StoredObject(ref, len(found.data), sha256_b64(found.data))

    async def presign_get(
        self, ref: ObjectRef, expires_s: float, filename: str | None = None
    ) -> str:
        """`memory://bucket/key?expires=<unix time>[&filename=...]`: fake, but it names the
        object and when the link would stop working."""
        self._bucket(ref)
        query = {"expires": str(int(time.time() + expires_s))}
        if filename is not None:
            query["filename"] = filename
        return f"memory://{ref.bucket}/{quote(ref.key)}?{urlencode(query)}"

    async def delete_prefix(self, prefix: ObjectRef) -> int:
        bucket = self._bucket(prefix)
        doomed = [k for k in bucket if within(ObjectRef(prefix.bucket, k), prefix)]
        for key in doomed:
            del bucket[key]
        return len(doomed)

    async def close(self) -> None:
        self.closed = True


if TYPE_CHECKING:

    def _conforms(store: MemoryObjectStore) -> ObjectStore:
        """mypy checks here that MemoryObjectStore is an ObjectStore."""
        return store
