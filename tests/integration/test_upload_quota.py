"""Disk quotas over the real HTTP side (127.0.0.1, ephemeral port), two tenants with tokens:
507 `quota_exceeded` before the body (Content-Length) or mid-body (chunked), nothing left
behind, the other tenant unaffected; the per-tenant upload count; and a job (real FFmpeg)
whose outputs do not fit."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ffpool.auth.gate import Authenticator
from ffpool.auth.tokens import file_line
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import Job, JobSpec, PathInput, ThumbnailOp
from ffpool.ffmpeg.executor import Executor
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage
from ffpool.storage.quota import DiskLimits
from tests.integration.http_harness import Client, FakeBackend, Ready, app_for

QUOTA = 50_000
TOKENS = {"acme": "acme-token-" + "a" * 32, "other": "other-token-" + "b" * 32}


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    limits = DiskLimits(tenant_disk_quota_bytes=QUOTA, tenant_max_uploads=3)
    return LocalStorage(tmp_path / "media", limits)


@pytest.fixture
async def client(tmp_path: Path, storage: LocalStorage) -> AsyncIterator[Client]:
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(file_line(t, token) + "\n" for t, token in TOKENS.items()))
    auth = Authenticator(Settings(_env_file=None, auth_tokens_file=tokens), b"k" * 32)
    await auth.start()
    app = app_for(FakeBackend(), storage, Ready(), auth=auth)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def as_(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[tenant]}"}


def leftovers(storage: LocalStorage, tenant: str) -> list[str]:
    directory = storage.root / "uploads" / tenant
    return sorted(os.listdir(directory)) if directory.exists() else []


async def chunked(data: bytes, step: int = 7000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def upload(client: Client, tenant: str, data: bytes, *, stream: bool) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = chunked(data) if stream else data
    response = await client.post("/uploads", data=body, headers=as_(tenant))
    return response.status, await response.json()


async def test_declared_size_over_quota_is_507_and_other_tenants_go_on(
    client: Client, storage: LocalStorage
) -> None:
    status, reply = await upload(client, "acme", os.urandom(QUOTA + 1), stream=False)
    assert (status, reply["error"]) == (507, "quota_exceeded")
    assert "your disk quota" in reply["message"]
    assert leftovers(storage, "acme") == []

    status, reply = await upload(client, "other", os.urandom(QUOTA), stream=False)
    assert status == 201
    assert storage.upload_path("other", reply["upload_id"]).stat().st_size == QUOTA


async def test_chunked_upload_over_quota_stops_mid_body_leaving_nothing(
    client: Client, storage: LocalStorage
) -> None:
    status, first = await upload(client, "acme", os.urandom(QUOTA // 2), stream=True)
    assert status == 201
    status, reply = await upload(client, "acme", os.urandom(QUOTA), stream=True)
    assert (status, reply["error"]) == (507, "quota_exceeded")
    assert reply["message"].startswith("upload stopped: your disk quota")
    assert leftovers(storage, "acme") == [first["upload_id"]]  # the partial file is gone
    assert storage.disk.view("acme").tenant.bytes == QUOTA // 2

    status, _ = await upload(client, "other", os.urandom(QUOTA), stream=True)
    assert status == 201


async def test_upload_count_limit_is_per_tenant(client: Client, storage: LocalStorage) -> None:
    for _ in range(3):
        status, _ = await upload(client, "acme", b"media", stream=False)
        assert status == 201
    status, reply = await upload(client, "acme", b"media", stream=False)
    assert (status, reply["error"]) == (507, "quota_exceeded")
    assert "the limit is 3" in reply["message"]
    status, _ = await upload(client, "other", b"media", stream=False)
    assert status == 201


async def test_an_upload_id_is_not_usable_by_another_tenant(
    client: Client, storage: LocalStorage
) -> None:
    status, reply = await upload(client, "acme", b"media", stream=False)
    assert status == 201
    assert storage.upload_path("acme", reply["upload_id"]).read_bytes() == b"media"
    assert not (storage.root / "uploads" / "other" / reply["upload_id"]).exists()


@pytest.mark.ffmpeg
async def test_a_job_whose_outputs_do_not_fit_fails_and_keeps_nothing(media_root: Path) -> None:
    storage = LocalStorage(media_root, DiskLimits(tenant_disk_quota_bytes=QUOTA))
    storage.recount_usage()
    storage.disk.tally.add("acme", QUOTA - 100)  # acme has 100 bytes of room left
    settings = Settings(_env_file=None, media_root=media_root)
    job = Job(
        spec=JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp(time=1.0)),
        tenant="acme",
    )

    event = await Executor(settings, storage).execute(job, lambda _: None)

    assert isinstance(event, FailedEvent)
    assert event.code is FailureCode.QUOTA_EXCEEDED
    assert f"your disk quota of {QUOTA} bytes" in event.message
    files = [p.name for p in (media_root / "jobs" / job.id).rglob("*") if p.is_file()]
    assert [name for name in files if not name.startswith(".")] == []  # markers only
    # Another tenant's job still runs.
    other = job.model_copy(update={"id": "f" * 32, "tenant": "other"})
    assert isinstance(
        await Executor(settings, storage).execute(other, lambda _: None), CompletedEvent
    )
