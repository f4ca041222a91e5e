"""Object storage as ffpool uses it: a small protocol, its in-memory implementation for unit
tests, and the parsing of `s3://bucket/key` locations (docs/storage.md).

The S3 implementation (storage/s3.py) runs on aiobotocore; everything above it (the executor's
commit, the job state records, uploads, downloads) sees only this protocol.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, *parts: str) -> ObjectRef:
        """This prefix joined with `parts` by single slashes."""
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return ObjectRef(self.bucket, key)


def parse_url(url: str) -> ObjectRef:
    """`s3://bucket/key` (already checked by domain/jobs.py's S3Url or S3Prefix pattern);
    raises ValueError on anything else, including ".." or empty path segments."""
    if not url.startswith("s3://"):
        raise ValueError("not an s3:// URL")
    bucket, _, key = url[len("s3://") :].partition("/")
    segments = key.rstrip("/").split("/") if key.rstrip("/") else []
    if not bucket or any(s in ("", ".", "..") for s in segments):
        raise ValueError("an s3:// URL needs a bucket and a key without empty, . or .. parts")
    return ObjectRef(bucket, "/".join(segments))


def within(ref: ObjectRef, allowed: ObjectRef) -> bool:
    """`ref` is `allowed` itself or below it, by whole path segments: s3://b/acme allows
    s3://b/acme/x but not s3://b/acme-other/x."""
    if ref.bucket != allowed.bucket:
        return False
    if not allowed.key:
        return True
    return ref.key == allowed.key or ref.key.startswith(allowed.key + "/")


class ObjectErrorKind(enum.StrEnum):
    NOT_FOUND = "not_found"
    """No such bucket or key."""
    DENIED = "denied"
    """Wrong credentials, or the credentials may not do this."""
    UNAVAILABLE = "unavailable"
    """The storage cannot be reached or answered 5xx: worth retrying later."""
    INVALID = "invalid"
    """The request itself is wrong (a checksum mismatch, too large)."""


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
        """Upload a stream of unknown length (multipart); raises ObjectStoreError(INVALID)
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
        ObjectStoreError(NOT_FOUND/DENIED/UNAVAILABLE), or (INVALID) over `max_bytes`."""
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
