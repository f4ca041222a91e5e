"""Uploads and downloads over the HTTP side (127.0.0.1, ephemeral port): streaming, limits,
Range requests, and names that must never reach a file."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from ffpool.domain.events import JobRecord
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.storage.media import LocalStorage
from tests.integration.http_harness import (
    UPLOAD_LIMIT,
    Client,
    FakeBackend,
    Ready,
    app_for,
    get_json,
)
from tests.polling import eventually

pytest_plugins = ["tests.integration.http_fixtures"]


async def test_upload_streamed(client: Client, storage: LocalStorage) -> None:
    data = os.urandom(UPLOAD_LIMIT)

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    response = await client.post("/uploads", data=body())
    assert response.status == 201, await response.text()
    reply = await response.json()
    assert reply["size"] == UPLOAD_LIMIT
    assert storage.upload_path("anonymous", reply["upload_id"]).read_bytes() == data


@pytest.mark.parametrize("chunked", [False, True])
async def test_upload_over_limit_413(client: Client, storage: LocalStorage, chunked: bool) -> None:
    data = os.urandom(UPLOAD_LIMIT + 1)

    async def body() -> AsyncIterator[bytes]:
        yield data

    response = await client.post("/uploads", data=body() if chunked else data)
    assert response.status == 413
    assert (await response.json())["error"] == "input_too_large"
    assert os.listdir(storage.root / "uploads") == []


async def test_empty_upload_400(client: Client, storage: LocalStorage) -> None:
    response = await client.post("/uploads", data=b"")
    assert response.status == 400
    assert os.listdir(storage.root / "uploads") == []


async def test_abandoned_upload_leaves_nothing(client: Client, storage: LocalStorage) -> None:
    """A client that disconnects mid-body leaves no temporary file behind."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = f"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD_LIMIT}\r\n\r\n"
    writer.write(head.encode() + b"x" * 5000)
    await writer.drain()
    uploads = storage.root / "uploads"
    # The server streams to a temporary file.
    await eventually(lambda: os.listdir(uploads), timeout=10, what="the upload started")
    writer.close()
    await writer.wait_closed()
    await eventually(lambda: not os.listdir(uploads), timeout=10, what="the temporary file gone")
    del reader


async def test_slow_upload_times_out_408(
    backend: FakeBackend, storage: LocalStorage, ready: Ready
) -> None:
    """A client that trickles its body is cut off at MAX_UPLOAD_SECONDS, leaving nothing."""
    app = app_for(backend, storage, ready, max_upload_seconds=0.5)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        head = f"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD_LIMIT}\r\n\r\n"
        writer.write(head.encode() + b"x" * 5000)  # and then nothing more
        await writer.drain()
        uploads = storage.root / "uploads"  # the server streams to a temporary file
        await eventually(lambda: os.listdir(uploads), timeout=10, what="the upload started")
        head_lines = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).split(b"\r\n")
        length = next(
            int(h.split(b":")[1]) for h in head_lines if h.lower().startswith(b"content-length:")
        )
        body = json.loads(await asyncio.wait_for(reader.readexactly(length), 10))
        writer.close()
        await writer.wait_closed()
    assert head_lines[0].startswith(b"HTTP/1.1 408"), head_lines[0]
    assert body["error"] == "timeout"
    assert os.listdir(storage.root / "uploads") == []


@pytest.fixture
def output(storage: LocalStorage, backend: FakeBackend) -> tuple[str, bytes]:
    job = Job(spec=JobSpec(input=PathInput(path="clips/a.mp4"), operation=ProbeOp()))
    backend.records[job.id] = JobRecord.queued(job)  # the caller's (anonymous) job
    data = os.urandom(10_000)
    job_dir = storage.job_dir(job.id)
    (job_dir / "out.mp4").write_bytes(data)
    (job_dir / ".input").write_bytes(b"private download")
    (job_dir / "half.mp4.part").write_bytes(b"unfinished")
    (storage.root / "secret.txt").write_text("secret")
    (storage.root / "clips").mkdir()
    (job_dir / "link.mp4").symlink_to(storage.root / "secret.txt")
    return job.id, data


async def test_download_whole_and_range(client: Client, output: tuple[str, bytes]) -> None:
    job_id, data = output
    response = await client.get(f"/jobs/{job_id}/outputs/out.mp4")
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert await response.read() == data
    response = await client.get(
        f"/jobs/{job_id}/outputs/out.mp4", headers={"Range": "bytes=100-199"}
    )
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert await response.read() == data[100:200]


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fsecret.txt",
        "..%2f..%2fsecret.txt",
        "%2E%2E%2F%2E%2E%2Fsecret.txt",
        "%2E%2E",
        "..%252F..%252Fsecret.txt",
        ".input",
        "half.mp4.part",
        "link.mp4",
        "missing.mp4",
        "out.mp4%00.txt",
    ],
)
async def test_unsafe_download_names_404(
    client: Client, output: tuple[str, bytes], name: str
) -> None:
    job_id, _ = output
    url = URL(f"http://127.0.0.1:{client.port}/jobs/{job_id}/outputs/{name}", encoded=True)
    response = await client.session.get(url)
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"  # refused by our handler


async def test_download_of_unknown_job_404(client: Client) -> None:
    await get_json(client, f"/jobs/{'e' * 32}/outputs/out.mp4", 404)
