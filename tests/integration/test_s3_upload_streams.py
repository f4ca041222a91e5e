"""Bucket uploads in flight are bounded (TENANT_MAX_UPLOAD_STREAMS per tenant,
MAX_UPLOAD_STREAMS per server process): one more is refused at once with 429, other tenants
are not affected by one tenant's limit, and a finished upload frees its place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.integration.auth_harness import bearer, http_status, write_tokens
from tests.integration.s3_harness import S3Server
from tests.integration.service import service
from tests.integration.test_s3_edge import s3_fields
from tests.polling import eventually

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]

PART = 5 * 1024 * 1024  # S3's smallest part: the least a multipart upload in progress holds


class SlowUpload:
    """A raw `POST /uploads` that sent one part and a byte, and holds the rest back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def finish(self) -> bytes:
        """Send the rest; the response's status line."""
        self.writer.write(b"x" * (PART - 1))
        await self.writer.drain()
        return await asyncio.wait_for(self.reader.readline(), 30)


@asynccontextmanager
async def slow_upload(port: int, token: str) -> AsyncIterator[SlowUpload]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /uploads HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {2 * PART}\r\n\r\n"
    )
    try:
        writer.write(head.encode() + b"x" * (PART + 1))
        await writer.drain()
        yield SlowUpload(reader, writer)
    finally:
        writer.close()
        await writer.wait_closed()


async def in_progress(server: S3Server, bucket: str, count: int) -> bool:
    """`count` multipart uploads begun: each upload holding them has its place."""
    listed = await asyncio.to_thread(server.client().list_multipart_uploads, Bucket=bucket)
    return len(listed.get("Uploads", [])) == count


async def test_uploads_beyond_the_limits_get_429(
    media_root: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    tokens = write_tokens(tmp_path / "tokens", ("acme", "globex", "initech"))
    limits = {"tenant_max_upload_streams": 1, "max_upload_streams": 2, "s3_part_size_bytes": PART}
    fields = s3_fields(s3_server, s3_bucket, **limits)
    async with service(media_root, auth_tokens_file=tmp_path / "tokens", **fields) as svc:
        url = f"{svc.http_url}/uploads"

        async def post(tenant: str) -> tuple[int, object]:
            return await http_status("POST", url, bearer(tokens[tenant]), data=b"small")

        async with slow_upload(svc.http_port, tokens["acme"]) as acme:
            await eventually(
                lambda: in_progress(s3_server, s3_bucket, 1), timeout=30, what="acme's upload"
            )
            status, body = await post("acme")
            assert status == 429
            assert isinstance(body, dict)
            assert body["error"] == "rate_limited"
            assert "TENANT_MAX_UPLOAD_STREAMS" in body["message"]
            assert (await post("globex"))[0] == 201  # another tenant: not affected

            async with slow_upload(svc.http_port, tokens["globex"]) as globex:
                await eventually(
                    lambda: in_progress(s3_server, s3_bucket, 2), timeout=30, what="globex's"
                )
                status, body = await post("initech")  # within its own limit, not the server's
                assert status == 429
                assert isinstance(body, dict)
                assert "(MAX_UPLOAD_STREAMS)" in body["message"]
                assert (await globex.finish()).startswith(b"HTTP/1.1 201")
            assert (await acme.finish()).startswith(b"HTTP/1.1 201")
        assert (await post("acme"))[0] == 201  # its place is free again
        assert (await post("initech"))[0] == 201
