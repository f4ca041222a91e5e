"""The HTTP side on a real socket (127.0.0.1, ephemeral port) with a small fake backend."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ffpool.backends.base import (
    BackendStats,
    BackendUnavailable,
    Health,
    Submission,
    Subscription,
    UnknownJob,
)
from ffpool.jobs.events import FailedEvent, FailureCode, JobRecord, JobState, apply
from ffpool.jobs.models import Job, JobSpec, PathInput, ProbeOp
from ffpool.metrics import Metrics
from ffpool.server.http import make_http_app
from ffpool.settings import Settings
from ffpool.storage import LocalStorage
from yarl import URL

VERSION = "9.8.7"
SCHEMA = {"title": "ffpool protocol", "oneOf": [{"type": "object"}]}
UPLOAD_LIMIT = 100_000


class FakeBackend:
    name = "memory"

    def __init__(self) -> None:
        self.records: dict[str, JobRecord] = {}
        self.dead: list[JobRecord] = []
        self.healthy: Health | Exception = Health.HEALTHY
        self.stats_value = BackendStats(
            total_jobs=0, active_jobs=0, queued_jobs=0, max_concurrent=4, backend="memory"
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, job: Job) -> Submission:
        record = JobRecord.queued(job)
        self.records[job.id] = record
        return Submission(record=record)

    async def cancel(self, job_id: str) -> JobRecord:
        raise UnknownJob(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        return self.records.get(job_id)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        raise NotImplementedError

    async def stats(self) -> BackendStats:
        return self.stats_value

    async def dead_letters(self, limit: int = 100) -> list[JobRecord]:
        return self.dead[:limit]

    async def health(self) -> Health:
        if isinstance(self.healthy, Exception):
            raise self.healthy
        return self.healthy


class Ready:
    def __init__(self) -> None:
        self.value = True

    async def __call__(self) -> bool:
        return self.value


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def ready() -> Ready:
    return Ready()


def app_for(
    backend: FakeBackend | None, storage: LocalStorage, metrics: Metrics, ready: Ready
) -> web.Application:
    settings = Settings(media_root=storage.root, max_upload_bytes=UPLOAD_LIMIT)
    return make_http_app(
        settings=settings,
        backend=backend,
        storage=storage,
        metrics=metrics,
        version=VERSION,
        schema=SCHEMA,
        ready=ready,
    )


@pytest.fixture
async def client(
    backend: FakeBackend, storage: LocalStorage, metrics: Metrics, ready: Ready
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = app_for(backend, storage, metrics, ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


Client = TestClient[web.Request, web.Application]


async def get_json(client: Client, path: str, status: int) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def test_health_shape_exact(client: Client) -> None:
    body = await get_json(client, "/health", 200)
    assert body == {
        "status": "healthy",
        "version": VERSION,
        "stats": {
            "total_jobs": 0,
            "active_jobs": 0,
            "queued_jobs": 0,
            "max_concurrent": 4,
            "backend": "memory",
        },
    }


@pytest.mark.parametrize("failure", [Health.UNHEALTHY, BackendUnavailable("broker down")])
async def test_unhealthy_backend_is_503(
    client: Client, backend: FakeBackend, failure: Health | Exception
) -> None:
    backend.healthy = failure
    body = await get_json(client, "/health", 503)
    assert body["status"] == "unhealthy"
    assert set(body["stats"]) == {
        "total_jobs",
        "active_jobs",
        "queued_jobs",
        "max_concurrent",
        "backend",
    }
    await get_json(client, "/readyz", 503)
    await get_json(client, "/livez", 200)


async def test_readiness_follows_ready_callback(client: Client, ready: Ready) -> None:
    assert (await get_json(client, "/readyz", 200)) == {"status": "ready"}
    ready.value = False
    assert (await get_json(client, "/readyz", 503)) == {"status": "not ready"}
    assert (await get_json(client, "/livez", 200)) == {"status": "alive"}


async def test_job_status(client: Client, backend: FakeBackend) -> None:
    job = Job(spec=JobSpec(input=PathInput(path="clips/a.mp4"), operation=ProbeOp()))
    await backend.submit(job)
    body = await get_json(client, f"/jobs/{job.id}", 200)
    assert body["job_id"] == job.id
    assert body["state"] == "queued"
    assert body["operation"] == "probe"


@pytest.mark.parametrize("job_id", ["f" * 32, "not-a-job", "F" * 32, "f" * 31 + "g"])
async def test_unknown_job_404(client: Client, job_id: str) -> None:
    body = await get_json(client, f"/jobs/{job_id}", 404)
    assert body["error"] == "unknown_job"


async def test_dead_letters(client: Client, backend: FakeBackend) -> None:
    job = Job(spec=JobSpec(input=PathInput(path="clips/a.mp4"), operation=ProbeOp()))
    failed = FailedEvent(job_id=job.id, code=FailureCode.INVALID_MEDIA, message="not media")
    backend.dead.append(apply(JobRecord.queued(job), failed))
    body = await get_json(client, "/dead-letters?limit=5", 200)
    [record] = body["dead_letters"]
    assert record["state"] == JobState.FAILED
    assert record["failure"]["code"] == "invalid_media"
    assert record["failure"]["message"] == "not media"
    await get_json(client, "/dead-letters?limit=lots", 400)


async def test_schema_served(client: Client) -> None:
    assert (await get_json(client, "/schema/protocol.json", 200)) == SCHEMA


async def test_metrics_text(client: Client, backend: FakeBackend, metrics: Metrics) -> None:
    backend.stats_value = backend.stats_value.model_copy(
        update={"queued_jobs": 7, "active_jobs": 3}
    )
    metrics.observe_submitted()
    metrics.observe_finished("transcode", JobState.COMPLETED, 2.0)
    metrics.observe_error("invalid_json")
    metrics.ws_connected(2)
    metrics.ws_connected(-1)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    for line in (
        "jobs_submitted_total 1.0",
        'jobs_finished_total{operation="transcode",state="completed"} 1.0',
        'job_duration_seconds_bucket{le="2.5",operation="transcode"} 1.0',
        'job_duration_seconds_count{operation="transcode"} 1.0',
        "queue_depth 7.0",
        "active_jobs 3.0",
        "websocket_connections 1.0",
        'errors_total{code="invalid_json"} 1.0',
    ):
        assert line in text.splitlines(), line


async def test_upload_streamed(client: Client, storage: LocalStorage) -> None:
    data = os.urandom(UPLOAD_LIMIT)

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(data), 7000):
            yield data[i : i + 7000]

    response = await client.post("/uploads", data=body())
    assert response.status == 201, await response.text()
    reply = await response.json()
    assert reply["size"] == UPLOAD_LIMIT
    assert storage.upload_path(reply["upload_id"]).read_bytes() == data


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


@pytest.fixture
def output(storage: LocalStorage, backend: FakeBackend) -> tuple[str, bytes]:
    job = Job(spec=JobSpec(input=PathInput(path="clips/a.mp4"), operation=ProbeOp()))
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


async def test_worker_only_process(storage: LocalStorage, metrics: Metrics, ready: Ready) -> None:
    app = app_for(None, storage, metrics, ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        body = await get_json(client, "/health", 200)
        assert body["stats"]["max_concurrent"] == 4
        await get_json(client, "/livez", 200)
        await get_json(client, "/readyz", 200)
        assert (await client.get("/metrics")).status == 200
        assert (await client.get(f"/jobs/{'f' * 32}")).status == 404
        assert (await client.post("/uploads", data=b"x")).status in (404, 405)
        assert os.listdir(storage.root / "uploads") == []


async def test_abandoned_upload_leaves_nothing(client: Client, storage: LocalStorage) -> None:
    """A client that disconnects mid-body leaves no temporary file behind."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = f"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD_LIMIT}\r\n\r\n"
    writer.write(head.encode() + b"x" * 5000)
    await writer.drain()
    uploads = storage.root / "uploads"
    deadline = asyncio.get_running_loop().time() + 10
    while not os.listdir(uploads):  # the server has started streaming to a temporary file
        assert asyncio.get_running_loop().time() < deadline, "upload never started"
        await asyncio.sleep(0.01)
    writer.close()
    await writer.wait_closed()
    while os.listdir(uploads):
        assert asyncio.get_running_loop().time() < deadline, os.listdir(uploads)
        await asyncio.sleep(0.01)
    del reader
