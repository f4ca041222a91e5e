"""The HTTP side on a real socket (127.0.0.1, ephemeral port) with a small fake backend:
health, probes, job status, dead letters, schema; metrics and every tenant's dead letters on
the ops app. Default settings, no tokens file: every caller is anonymous."""

from __future__ import annotations

import os

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ffpool.auth.policy import ANONYMOUS_WARNING
from ffpool.backends.base import BackendUnavailable, Health
from ffpool.domain.events import FailedEvent, FailureCode, JobRecord, JobState, apply
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.metrics import Metrics
from ffpool.storage.media import LocalStorage
from tests.integration.http_harness import (
    SCHEMA,
    VERSION,
    Client,
    FakeBackend,
    Ready,
    app_for,
    get_json,
)

pytest_plugins = ["tests.integration.http_fixtures"]


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
        "anonymous": True,
        "warning": ANONYMOUS_WARNING,
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
    other = Job(spec=job.spec, tenant="other")
    other_failed = failed.model_copy(update={"job_id": other.id})
    backend.dead.append(apply(JobRecord.queued(other), other_failed))
    body = await get_json(client, "/dead-letters?limit=5", 200)
    [record] = body["dead_letters"]  # the caller's (anonymous) only
    assert record["job_id"] == job.id
    assert record["state"] == JobState.FAILED
    assert record["failure"]["code"] == "invalid_media"
    assert record["failure"]["message"] == "not media"
    await get_json(client, "/dead-letters?limit=lots", 400)


async def test_schema_served(client: Client) -> None:
    assert (await get_json(client, "/schema/protocol.json", 200)) == SCHEMA


async def test_every_tenants_dead_letters_on_the_ops_app(
    ops_client: Client, backend: FakeBackend
) -> None:
    for tenant in ("acme", "globex"):
        job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), tenant=tenant)
        failed = FailedEvent(job_id=job.id, code=FailureCode.INVALID_MEDIA, message="no")
        backend.dead.append(apply(JobRecord.queued(job), failed))
    body = await get_json(ops_client, "/dead-letters", 200)
    assert len(body["dead_letters"]) == 2
    await get_json(ops_client, "/dead-letters?limit=lots", 400)


async def test_metrics_only_on_the_ops_app(client: Client, ops_client: Client) -> None:
    assert (await client.get("/metrics")).status == 404
    assert (await ops_client.get("/metrics")).status == 200


async def test_metrics_text(ops_client: Client, backend: FakeBackend, metrics: Metrics) -> None:
    backend.stats_value = backend.stats_value.model_copy(
        update={"queued_jobs": 7, "active_jobs": 3}
    )
    metrics.observe_submitted()
    metrics.observe_finished("transcode", JobState.COMPLETED, 2.0)
    metrics.observe_error("invalid_json")
    metrics.ws_connected(2)
    metrics.ws_connected(-1)
    response = await ops_client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    for line in (
        "ffpool_jobs_submitted_total 1.0",
        'ffpool_jobs_finished_total{operation="transcode",state="completed"} 1.0',
        'ffpool_job_duration_seconds_bucket{le="2.5",operation="transcode"} 1.0',
        'ffpool_job_duration_seconds_count{operation="transcode"} 1.0',
        "ffpool_queue_depth 7.0",
        "ffpool_active_jobs 3.0",
        "ffpool_websocket_connections 1.0",
        'ffpool_errors_total{code="invalid_json"} 1.0',
    ):
        assert line in text.splitlines(), line


async def test_every_metric_is_namespaced(ops_client: Client) -> None:
    text = await (await ops_client.get("/metrics")).text()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert names, text
    assert all(name.startswith("ffpool_") for name in names), sorted(names)


async def test_worker_only_process(storage: LocalStorage, ready: Ready) -> None:
    app = app_for(None, storage, ready)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        body = await get_json(client, "/health", 200)
        assert body["stats"]["max_concurrent"] == 4
        await get_json(client, "/livez", 200)
        await get_json(client, "/readyz", 200)
        assert (await client.get("/metrics")).status == 404
        assert (await client.get(f"/jobs/{'f' * 32}")).status == 404
        assert (await client.post("/uploads", data=b"x")).status in (404, 405)
        assert os.listdir(storage.root / "uploads") == []
