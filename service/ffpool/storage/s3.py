"""The ObjectStore on S3 and S3-compatible servers, through aiobotocore (docs/storage.md).

One client per store, opened on first use and closed by `close()`. Every upload carries a
SHA-256 the storage verifies (per part for multipart uploads, storage/s3_transfer.py), reads
ask for the stored checksum so botocore verifies whole objects on the way back, and every
failure surfaces as an ObjectStoreError whose message is safe for clients (storage/s3_errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ffpool.settings import MiB, Settings
from ffpool.storage.objects import (
    ObjectErrorKind,
    ObjectRef,
    ObjectStore,
    ObjectStoreError,
    StoredObject,
    within,
)
from ffpool.storage.s3_config import S3ClientConfig, content_disposition, open_client
from ffpool.storage.s3_errors import PRECONDITION_CODES, error_code, translated
from ffpool.storage.s3_transfer import (
    Multipart,
    SourceFailed,
    parts_of,
    prepare,
    upload_file_parts,
    upload_stream_parts,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import GetObjectOutputTypeDef

WRITE_BUFFER = 4 * MiB
"""Downloads reach the disk in writes this large, each in a worker thread."""
DELETE_BATCH = 1000
"""S3's limit of keys per DeleteObjects call."""


def _checksum(head: dict[str, Any]) -> str | None:
    """A whole object's SHA-256 from a response; None for a multipart object's composite
    checksum (`<base64>-<parts>`) or none at all."""
    value = head.get("ChecksumSHA256")
    return None if not value or "-" in str(value) else str(value)


class S3ObjectStore:
    """The ObjectStore protocol (storage/objects.py) on one aiobotocore S3 client."""

    def __init__(self, config: S3ClientConfig) -> None:
        self.config = config
        self._stack = contextlib.AsyncExitStack()
        self._s3: S3Client | None = None
        self._presigner: S3Client | None = None
        self._opening = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        return cls(S3ClientConfig.from_settings(settings))

    async def _client(self) -> S3Client:
        async with self._opening:
            if self._s3 is None:
                self._s3 = await open_client(self.config, self._stack)
            return self._s3

    async def _link_client(self) -> S3Client:
        """Presigning is computed here, no call made: with S3_PUBLIC_ENDPOINT_URL the links
        name the endpoint clients reach, signed for that host."""
        public = self.config.public_endpoint_url
        if public is None or public == self.config.endpoint_url:
            return await self._client()
        async with self._opening:
            if self._presigner is None:
                config = dataclasses.replace(self.config, endpoint_url=public)
                self._presigner = await open_client(config, self._stack)
            return self._presigner

    async def close(self) -> None:
        async with self._opening:
            self._s3 = self._presigner = None
            await self._stack.aclose()

    async def _put(self, ref: ObjectRef, data: bytes, content_type: str, **extra: Any) -> str:
        body, checksum = await asyncio.to_thread(prepare, data)
        client = await self._client()
        await client.put_object(
            Bucket=ref.bucket,
            Key=ref.key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=checksum,
            **extra,
        )
        return checksum

    async def put_file(self, ref: ObjectRef, path: Path, content_type: str) -> StoredObject:
        with translated("upload", ref):
            size = (await asyncio.to_thread(path.stat)).st_size
            if size <= self.config.part_size:
                data = await asyncio.to_thread(path.read_bytes)
                return StoredObject(ref, len(data), await self._put(ref, data, content_type))
            upload = await Multipart.begin(
                await self._client(), ref, content_type, self.config.concurrency
            )
            try:
                return await upload_file_parts(upload, path, size, self.config.part_size)
            except BaseException:
                await upload.abort()
                raise

    async def put_stream(
        self, ref: ObjectRef, chunks: AsyncIterator[bytes], content_type: str, max_bytes: int
    ) -> StoredObject:
        try:
            with translated("upload", ref):
                return await self._put_stream(ref, chunks, content_type, max_bytes)
        except SourceFailed as failed:
            # The caller's own error (its stream), not a storage failure: raised as it was.
            raise failed.__cause__ or failed from None

    async def _put_stream(
        self, ref: ObjectRef, chunks: AsyncIterator[bytes], content_type: str, max_bytes: int
    ) -> StoredObject:
        async with contextlib.aclosing(parts_of(chunks, self.config.part_size)) as parts:
            first = await anext(parts, b"")
            if len(first) > max_bytes:
                raise self._too_large("upload", ref, max_bytes)
            if len(first) < self.config.part_size:
                return StoredObject(ref, len(first), await self._put(ref, first, content_type))
            upload = await Multipart.begin(
                await self._client(), ref, content_type, self.config.concurrency
            )
            try:
                return await upload_stream_parts(upload, first, parts, max_bytes)
            except BaseException:
                await upload.abort()
                raise

    async def put_bytes(
        self,
        ref: ObjectRef,
        data: bytes,
        *,
        if_absent: bool = False,
        content_type: str = "application/json",
    ) -> bool:
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        with translated("write", ref):
            try:
                await self._put(ref, data, content_type, **extra)
            except ClientError as exc:
                if if_absent and error_code(exc)[0] in PRECONDITION_CODES:
                    return False
                raise
        return True

    async def _get(self, ref: ObjectRef) -> GetObjectOutputTypeDef | None:
        """The object's response (body unread), None if the bucket has no such key."""
        client = await self._client()
        try:
            return await client.get_object(Bucket=ref.bucket, Key=ref.key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc)[0] in ("NoSuchKey", "404"):
                return None
            raise

    def _too_large(self, action: str, ref: ObjectRef, max_bytes: int) -> ObjectStoreError:
        return ObjectStoreError(
            ObjectErrorKind.TOO_LARGE, f"{action} {ref.url}: larger than {max_bytes} bytes"
        )

    async def get_bytes(self, ref: ObjectRef, max_bytes: int) -> bytes | None:
        with translated("read", ref):
            got = await self._get(ref)
            if got is None:
                return None
            async with got["Body"] as body:
                if got["ContentLength"] > max_bytes:
                    raise self._too_large("read", ref, max_bytes)
                return await body.read()

    async def download(self, ref: ObjectRef, dest: Path, max_bytes: int) -> int:
        with translated("download", ref):
            got = await self._get(ref)
            if got is None:
                raise ObjectStoreError(ObjectErrorKind.NOT_FOUND, f"download {ref.url}: not found")
            async with got["Body"] as body:
                if got["ContentLength"] > max_bytes:
                    raise self._too_large("download", ref, max_bytes)
                out = await asyncio.to_thread(dest.open, "wb")
                try:
                    return await self._save(body, out, ref, max_bytes)
                except BaseException:
                    await asyncio.to_thread(dest.unlink, missing_ok=True)
                    raise
                finally:
                    await asyncio.to_thread(out.close)

    async def _save(self, body: Any, out: IO[bytes], ref: ObjectRef, max_bytes: int) -> int:
        size = 0
        pending = bytearray()
        async for chunk in body.iter_chunks(1 * MiB):
            size += len(chunk)
            if size > max_bytes:
                raise self._too_large("download", ref, max_bytes)
            pending += chunk
            if len(pending) >= WRITE_BUFFER:
                await asyncio.to_thread(out.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(out.write, bytes(pending))
        return size

    async def head(self, ref: ObjectRef) -> StoredObject | None:
        with translated("inspect", ref):
            client = await self._client()
            try:
                found = await client.head_object(
                    Bucket=ref.bucket, Key=ref.key, ChecksumMode="ENABLED"
                )
            except ClientError as exc:
                if error_code(exc)[1] == 404:
                    return None
                raise
            return StoredObject(ref, found["ContentLength"], _checksum(dict(found)))

    async def presign_get(
        self, ref: ObjectRef, expires_s: float, filename: str | None = None
    ) -> str:
        params: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        with translated("link", ref):
            client = await self._link_client()
            return await client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, math.ceil(expires_s))
            )

    async def delete_prefix(self, prefix: ObjectRef) -> int:
        removed = 0
        with translated("delete", prefix):
            client = await self._client()
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.key
            )
            async for page in pages:
                keys = [
                    o["Key"]
                    for o in page.get("Contents", [])
                    if within(ObjectRef(prefix.bucket, o["Key"]), prefix)
                ]
                for start in range(0, len(keys), DELETE_BATCH):
                    batch = keys[start : start + DELETE_BATCH]
                    await self._delete(client, prefix, batch)
                    removed += len(batch)
        return removed

    async def _delete(self, client: S3Client, prefix: ObjectRef, keys: list[str]) -> None:
        done = await client.delete_objects(
            Bucket=prefix.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        errors = done.get("Errors", [])
        if errors:
            first = errors[0]
            raise ClientError(
                {"Error": {"Code": first.get("Code", ""), "Message": ""}}, "DeleteObjects"
            )


if TYPE_CHECKING:

    def _conforms(store: S3ObjectStore) -> ObjectStore:
        """mypy checks here that S3ObjectStore is an ObjectStore."""
        return store
