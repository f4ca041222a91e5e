"""A pool with no shared volume, wired as `ffpool server` + `ffpool worker` (app.py) over
RabbitMQ and a real S3 server: each process has its own MEDIA_ROOT, so the upload, the job's
records and its outputs can only have travelled through the bucket and the broker."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from ffpool.app import Role, running
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, ThumbnailOp, UploadInput
from tests.integration.rabbit_harness import make_settings, need_broker, prefix_for_test
from tests.integration.s3_harness import S3Server
from tests.integration.test_s3_edge import files_under, keys, s3_fields

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]


async def test_server_and_worker_share_only_the_bucket(
    tmp_path: Path,
    sample_clip: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    need_broker()
    fields = s3_fields(s3_server, s3_bucket, host="127.0.0.1", ws_port=0, http_port=0)
    async with prefix_for_test() as prefix:
        server = make_settings(prefix, tmp_path / "server", "edge-server", **fields)
        worker = make_settings(prefix, tmp_path / "worker", "edge-worker", **fields)
        async with (
            running(server, Role.SERVER) as svc,
            running(worker, Role.WORKER),
            Client(svc.ws_url, svc.http_url) as client,
        ):
            upload_id = await client.upload(sample_clip)
            spec = JobSpec(input=UploadInput(upload_id=upload_id), operation=ThumbnailOp(time=1))
            accepted = await client.submit(spec)
            outcome = await client.wait(accepted.job_id, timeout=90)
            assert isinstance(outcome, CompletedEvent), outcome
            (output,) = outcome.outputs
            assert output.location is not None
            route = f"{svc.http_url}/jobs/{accepted.job_id}/outputs/{output.name}"
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                http.get(route) as resp,
            ):
                assert resp.status == 200
                assert len(await resp.read()) == output.size
                assert resp.history[0].status == 302
    assert await keys(s3_server, s3_bucket, f"ffpool/jobs/{accepted.job_id}/completed.json")
    assert files_under(tmp_path / "server" / "uploads") == []
    assert not (tmp_path / "server" / "jobs" / accepted.job_id).exists()
