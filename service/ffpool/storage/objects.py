"""Object storage as ffpool uses it: a small protocol, its in-memory implementation for unit
tests; `s3://bucket/key` locations are parsed in locations.py (docs/storage.md).

The S3 implementation (storage/s3.py) runs on aiobotocore; everything above it (the executor's
commit, the job state records, uploads, downloads) sees only this protocol.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ffpool.locations import ObjectRef, parse_url, within

__all__ = [
    "ObjectErrorKind",
    "ObjectRef",
    "ObjectStore",
    "ObjectStoreError",
    "StoredObject",
    "parse_url",
    "within",
]


class ObjectErrorKind(enum.StrEnum):
    NOT_FOUND = "not_found"
    """No such bucket or key."""
    DENIED = "denied"
    """Wrong credentials, or the credentials may not do this."""
    UNAVAILABLE = "unavailable"
    """The storage cannot be reached or answered 5xx: worth retrying later."""
    INVALID = "invalid"
    """The request itself is wrong or refused (a checksum mismatch, an archived object, a KMS
    error)."""
    TOO_LARGE = "too_large"
    """The object is over the caller's `max_bytes`: a size limit, not a storage problem."""


class ObjectStoreError(Exception):
    """A failed storage call; `message` is safe to show a client (no credentials, no
    endpoint internals)."""

    def __init__(self, kind: ObjectErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class StoredObject:
    ref: ObjectRef
    size: int
    sha256: str | None = None
    """Base64 SHA-256, as S3's ChecksumSHA256 (whole object: not for a multipart upload's
    composite checksum, which ends in -<parts>)."""


class ObjectStore(Protocol):
    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        """Upload a local file (multipart above S3_PART_SIZE_BYTES), checksums verified by
        the storage; the object appears whole or not at all."""
        ...

    async def put_stream(
        self, ref: ObjectRef, chunks: AsyncIterator[bytes], content_type: str, max_bytes: int
    ) -> StoredObject:
        """Upload a stream of unknown length (multipart); raises ObjectStoreError(TOO_LARGE)
        past `max_bytes` and leaves no object (the multipart upload is aborted)."""
        ...

    async def put_bytes(
        self,
        ref: ObjectRef,
        data: bytes,
        *,
        if_absent: bool = False,
        content_type: str = "application/json",
    ) -> bool:
        """A small object; with `if_absent`, only if no object has the key (False if one
        has: the first writer wins)."""
        ...

    async def get_bytes(self, ref: ObjectRef, max_bytes: int) -> bytes | None:
        """A small object's content; None if there is no such key."""
        ...

    async def download(self, ref: ObjectRef, dest: Path, max_bytes: int) -> int:
        """Blocking-free copy of an object into a local file; its size. Raises
        ObjectStoreError(NOT_FOUND/DENIED/UNAVAILABLE), or (TOO_LARGE) over `max_bytes`."""
        ...

    async def head(self, ref: ObjectRef) -> StoredObject | None: ...

    async def presign_get(
        self, ref: ObjectRef, expires_s: float, filename: str | None = None
    ) -> str:
        """A GET link that works without credentials until it expires; with `filename`,
        downloads are saved under that name."""
        ...

    async def delete_prefix(self, prefix: ObjectRef) -> int:
        """Remove every object under `prefix` (whole segments); how many were removed."""
        ...

    async def close(self) -> None: ...
