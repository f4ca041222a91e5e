"""storage/s3.py against a real S3-compatible server (versitygw, tests/integration/s3_harness.py):
uploads with verified checksums, multipart, conditional writes, presigned links, and the
failures a pool meets (wrong credentials, missing bucket, permission denied, an outage)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import io
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ResponseStreamingError
from structlog.testing import capture_logs

import ffpool.storage.s3 as s3_module
from ffpool.settings import MiB
from ffpool.storage.objects import ObjectErrorKind, ObjectRef, ObjectStoreError
from ffpool.storage.s3 import S3ObjectStore
from ffpool.storage.s3_config import S3ClientConfig
from ffpool.storage.s3_transfer import Multipart
from tests.integration.s3_harness import S3Server, unique_bucket
from tests.polling import eventually

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = pytest.mark.s3

PART = 5 * MiB


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def config(server: S3Server, **changes: Any) -> S3ClientConfig:
    base = S3ClientConfig.from_settings(server.settings(s3_part_size_bytes=PART))
    return dataclasses.replace(base, **changes)


@pytest.fixture
async def store(s3_server: S3Server) -> AsyncIterator[S3ObjectStore]:
    opened = S3ObjectStore(config(s3_server))
    yield opened
    await opened.close()


async def failure(call: Awaitable[Any]) -> ObjectStoreError:
    with pytest.raises(ObjectStoreError) as info:
        await call
    return info.value


async def chunks(total: int, size: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"s" * min(size, total - start)


async def pending_uploads(server: S3Server, bucket: str) -> list[Any]:
    found = await asyncio.to_thread(server.client().list_multipart_uploads, Bucket=bucket)
    return list(found.get("Uploads", []))


async def test_put_get_head_with_checksum(
    store: S3ObjectStore, s3_bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(100_000)
    (tmp_path / "in.bin").write_bytes(data)
    ref = ObjectRef(s3_bucket, "in/one.bin")
    stored = await store.put_file(ref, tmp_path / "in.bin", "video/mp4")
    assert (stored.ref, stored.size, stored.sha256) == (ref, len(data), sha(data))
    assert await store.get_bytes(ref, max_bytes=len(data)) == data
    assert await store.head(ref) == stored
    assert await store.head(ObjectRef(s3_bucket, "in/none")) is None
    assert await store.get_bytes(ObjectRef(s3_bucket, "in/none"), max_bytes=10) is None


async def test_multipart_file_and_its_checksum(
    store: S3ObjectStore, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(PART * 5 // 2)
    (tmp_path / "big.bin").write_bytes(data)
    ref = ObjectRef(s3_bucket, "big.bin")
    stored = await store.put_file(ref, tmp_path / "big.bin", "application/octet-stream")
    assert (stored.size, stored.sha256) == (len(data), sha(data))
    found = await asyncio.to_thread(
        s3_server.client().head_object, Bucket=s3_bucket, Key="big.bin", ChecksumMode="ENABLED"
    )
    assert found["ChecksumSHA256"].endswith("-3")  # three parts, each verified by the server
    assert await store.download(ref, tmp_path / "back.bin", max_bytes=len(data)) == len(data)
    assert (tmp_path / "back.bin").read_bytes() == data
    assert await pending_uploads(s3_server, s3_bucket) == []


async def test_put_stream_small_and_multipart(store: S3ObjectStore, s3_bucket: str) -> None:
    small = await store.put_stream(ObjectRef(s3_bucket, "s"), chunks(1000, 300), "x/y", 1000)
    assert (small.size, small.sha256) == (1000, sha(b"s" * 1000))
    total = PART + 3 * MiB
    big = await store.put_stream(ObjectRef(s3_bucket, "b"), chunks(total), "x/y", total)
    assert (big.size, big.sha256) == (total, sha(b"s" * total))
    assert await store.get_bytes(ObjectRef(s3_bucket, "b"), total) == b"s" * total


async def test_put_stream_over_the_limit_leaves_nothing(
    store: S3ObjectStore, s3_server: S3Server, s3_bucket: str
) -> None:
    ref = ObjectRef(s3_bucket, "too/big")
    error = await failure(store.put_stream(ref, chunks(3 * PART), "x/y", 2 * PART + 1))
    assert error.kind is ObjectErrorKind.TOO_LARGE
    assert await store.head(ref) is None
    assert await pending_uploads(s3_server, s3_bucket) == []
    error = await failure(store.put_stream(ref, chunks(1000), "x/y", 999))
    assert error.kind is ObjectErrorKind.TOO_LARGE
    assert await store.head(ref) is None


async def test_conditional_put_first_writer_wins(store: S3ObjectStore, s3_bucket: str) -> None:
    ref = ObjectRef(s3_bucket, "jobs/j1/completed.json")
    assert await store.put_bytes(ref, b'{"n":1}', if_absent=True)
    assert not await store.put_bytes(ref, b'{"n":2}', if_absent=True)
    assert await store.get_bytes(ref, 100) == b'{"n":1}'
    assert await store.put_bytes(ref, b'{"n":3}')
    assert await store.get_bytes(ref, 100) == b'{"n":3}'


async def test_presigned_link_works_without_credentials_then_expires(
    store: S3ObjectStore, s3_bucket: str
) -> None:
    ref = ObjectRef(s3_bucket, "out/clip.mp4")
    await store.put_bytes(ref, b"video", content_type="video/mp4")
    link = await store.presign_get(ref, expires_s=60, filename="my clip é.mp4")
    short = await store.presign_get(ref, expires_s=1)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(link) as got:
            assert got.status == 200
            assert await got.read() == b"video"
            assert "my clip" in got.headers["Content-Disposition"]

        async def refused() -> bool:
            async with http.get(short) as answer:
                return answer.status == 403

        await eventually(refused, timeout=10, what="the 1 s link refused", interval=0.25)


async def test_links_name_the_public_endpoint_and_work_there(
    s3_server: S3Server, s3_bucket: str
) -> None:
    """S3_PUBLIC_ENDPOINT_URL: calls go to the in-cluster name, links to the one clients use
    (here `localhost` for the server's 127.0.0.1)."""
    public = s3_server.endpoint_url.replace("127.0.0.1", "localhost")
    opened = S3ObjectStore(config(s3_server, public_endpoint_url=public))
    try:
        ref = ObjectRef(s3_bucket, "out/public.txt")
        await opened.put_bytes(ref, b"public", content_type="text/plain")
        link = await opened.presign_get(ref, expires_s=60)
    finally:
        await opened.close()
    assert link.startswith(f"{public}/{s3_bucket}/out/public.txt?")
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(link) as got:
        assert got.status == 200
        assert await got.read() == b"public"


async def test_wrong_credentials_are_denied_and_never_shown(
    s3_server: S3Server, s3_bucket: str
) -> None:
    secret = "wrong-secret-that-must-not-leak"
    store = S3ObjectStore(config(s3_server, secret_access_key=secret))
    try:
        with capture_logs() as logs:
            error = await failure(store.put_bytes(ObjectRef(s3_bucket, "k"), b"x"))
    finally:
        await store.close()
    assert error.kind is ObjectErrorKind.DENIED
    assert s3_bucket in error.message
    shown = error.message + repr(logs)
    for hidden in (secret, s3_server.access_key, f":{s3_server.port}"):
        assert hidden not in shown
    assert secret not in repr(store.config)


async def test_missing_bucket_is_not_found(store: S3ObjectStore, tmp_path: Path) -> None:
    ref = ObjectRef(unique_bucket("missing"), "k")
    (tmp_path / "f").write_bytes(b"x")
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: store.put_bytes(ref, b"x"),
        lambda: store.put_file(ref, tmp_path / "f", "x/y"),
        lambda: store.get_bytes(ref, 10),
        lambda: store.download(ref, tmp_path / "d", 10),
    ]
    for call in calls:
        assert (await failure(call())).kind is ObjectErrorKind.NOT_FOUND
    assert not (tmp_path / "d").exists()


async def test_another_users_bucket_is_denied(s3_server: S3Server, s3_bucket: str) -> None:
    await asyncio.to_thread(s3_server.add_user, "ffpooluser", "ffpool-user-secret-1")
    root = S3ObjectStore(config(s3_server))
    other = S3ObjectStore(
        config(s3_server, access_key_id="ffpooluser", secret_access_key="ffpool-user-secret-1")
    )
    try:
        await root.put_bytes(ObjectRef(s3_bucket, "k"), b"root's")
        for call in (
            other.get_bytes(ObjectRef(s3_bucket, "k"), 100),
            other.put_bytes(ObjectRef(s3_bucket, "k2"), b"x"),
        ):
            assert (await failure(call)).kind is ObjectErrorKind.DENIED
    finally:
        await root.close()
        await other.close()


async def test_outage_mid_multipart_leaves_no_object(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(6 * PART))
    send = Multipart._send
    sent: list[int] = []

    async def send_then_fail(upload: Multipart, number: int, data: bytes, checksum: str) -> None:
        await send(upload, number, data, checksum)
        sent.append(number)
        if len(sent) == 1:
            await asyncio.to_thread(s3_server.stop)

    monkeypatch.setattr(Multipart, "_send", send_then_fail)
    store = S3ObjectStore(config(s3_server, concurrency=1, timeout_s=5))
    ref = ObjectRef(s3_bucket, "half.bin")
    try:
        error = await failure(store.put_file(ref, tmp_path / "big.bin", "x/y"))
        assert error.kind is ObjectErrorKind.UNAVAILABLE
        assert sent == [1]
        await asyncio.to_thread(s3_server.start)
        assert await store.head(ref) is None
    finally:
        s3_server.start()
        await store.close()


async def test_download_size_limit_and_delete_prefix(
    store: S3ObjectStore, s3_bucket: str, tmp_path: Path
) -> None:
    ref = ObjectRef(s3_bucket, "jobs/1/out.bin")
    await store.put_bytes(ref, b"0123456789")
    dest = tmp_path / "out.bin"
    assert (await failure(store.download(ref, dest, 9))).kind is ObjectErrorKind.TOO_LARGE
    assert (await failure(store.get_bytes(ref, 9))).kind is ObjectErrorKind.TOO_LARGE
    assert not dest.exists()
    assert await store.download(ref, dest, 10) == 10
    await store.put_bytes(ObjectRef(s3_bucket, "jobs/1/a"), b"")
    await store.put_bytes(ObjectRef(s3_bucket, "jobs/10/a"), b"")
    assert await store.delete_prefix(ObjectRef(s3_bucket, "jobs/1")) == 2
    assert await store.head(ObjectRef(s3_bucket, "jobs/10/a")) is not None


async def test_uploads_rest_on_their_checksum_and_a_corrupt_body_is_refused(
    store: S3ObjectStore, s3_bucket: str, tmp_path: Path
) -> None:
    client = await store._client()
    signed: dict[str, bytes] = {}

    def record(request: AWSRequest, event_name: str, **_: Any) -> None:
        signed[event_name.rpartition(".")[2]] = request.headers["X-Amz-Content-SHA256"]

    client.meta.events.register("before-send.s3.*", record)
    (tmp_path / "big.bin").write_bytes(os.urandom(PART + 1))
    await store.put_file(ObjectRef(s3_bucket, "big"), tmp_path / "big.bin", "x/y")
    assert signed["UploadPart"] == b"UNSIGNED-PAYLOAD"
    assert len(signed["CompleteMultipartUpload"]) == 64  # other bodies stay signed

    def corrupt(request: AWSRequest, **_: Any) -> None:
        body = request.body
        data = body.getvalue() if isinstance(body, io.BytesIO) else bytes(body)
        request.body = io.BytesIO(b"X" + data[1:])

    client.meta.events.register("before-send.s3.PutObject", corrupt)
    error = await failure(store.put_bytes(ObjectRef(s3_bucket, "bad"), b"original"))
    assert error.kind is ObjectErrorKind.INVALID
    client.meta.events.unregister("before-send.s3.PutObject", corrupt)
    assert await store.head(ObjectRef(s3_bucket, "bad")) is None


async def test_a_failing_source_stream_is_its_own_error(
    store: S3ObjectStore, s3_server: S3Server, s3_bucket: str
) -> None:
    async def hangs_up() -> AsyncIterator[bytes]:
        yield b"x" * PART
        yield b"y" * MiB
        raise ConnectionResetError("the client went away")

    ref = ObjectRef(s3_bucket, "partial")
    with pytest.raises(ConnectionResetError, match="went away"):
        await store.put_stream(ref, hangs_up(), "x/y", 10 * PART)
    assert await store.head(ref) is None
    assert await pending_uploads(s3_server, s3_bucket) == []


async def test_a_download_cut_short_leaves_no_file(
    store: S3ObjectStore, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = ObjectRef(s3_bucket, "long.bin")
    await store.put_bytes(ref, b"d" * 3 * MiB)
    monkeypatch.setattr(s3_module, "WRITE_BUFFER", 1)  # every chunk reaches the file
    save = S3ObjectStore._save

    async def cut_short(self: S3ObjectStore, body: Any, *args: Any) -> int:
        chunks = body.iter_chunks

        async def first_then_reset(size: int) -> AsyncIterator[bytes]:
            async for chunk in chunks(size):
                yield chunk
                raise ResponseStreamingError(error="connection reset")

        body.iter_chunks = first_then_reset
        return await save(self, body, *args)

    monkeypatch.setattr(S3ObjectStore, "_save", cut_short)
    dest = tmp_path / "long.bin"
    error = await failure(store.download(ref, dest, 10 * MiB))
    assert error.kind is ObjectErrorKind.UNAVAILABLE
    assert not dest.exists()
