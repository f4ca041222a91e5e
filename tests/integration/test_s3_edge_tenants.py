"""TENANTS_FILE at the edge of a real service with STORAGE=s3: each tenant reads only its own
prefixes and its outputs go to its own default location; another tenant's bucket output is
answered like a missing file, the redirect included. A tenants file that cannot be used stops
the start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ffpool.app import running
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, S3Input, ThumbnailOp
from ffpool.domain.protocol import ErrorCode
from tests.integration.auth_harness import bearer, http_status, write_tokens
from tests.integration.s3_harness import S3Server
from tests.integration.service import service, settings_for
from tests.integration.test_s3_edge import s3_fields

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]


def tenants_toml(bucket: str) -> str:
    return (
        "[tenants.acme]\n"
        f's3_read = ["s3://{bucket}/acme/"]\n'
        f'output = "s3://{bucket}/acme-out"\n'
        "[tenants.globex]\n"
    )


async def test_tenants_read_and_write_their_own_locations(
    media_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    clip = (media_root / "clips" / "sample.mp4").read_bytes()
    root = s3_server.client()
    await asyncio.to_thread(root.put_object, Bucket=s3_bucket, Key="acme/a.mp4", Body=clip)
    (tmp_path / "tenants.toml").write_text(tenants_toml(s3_bucket))
    tokens = write_tokens(tmp_path / "tokens")
    fields = s3_fields(s3_server, s3_bucket, s3_allow_read=(), s3_allow_write=())
    spec = JobSpec(input=S3Input(url=f"s3://{s3_bucket}/acme/a.mp4"), operation=ThumbnailOp())
    async with service(
        media_root,
        auth_tokens_file=tmp_path / "tokens",
        tenants_file=tmp_path / "tenants.toml",
        **fields,
    ) as svc:
        async with Client(svc.ws_url, svc.http_url, token=tokens["globex"]) as globex:
            with pytest.raises(ClientError) as info:
                await globex.submit(spec)
            assert info.value.error.code is ErrorCode.INVALID_JOB
            assert "is not allowed for this tenant" in info.value.error.message
        async with Client(svc.ws_url, svc.http_url, token=tokens["acme"]) as acme:
            job_id = (await acme.submit(spec)).job_id
            outcome = await acme.wait(job_id, timeout=60)
        assert isinstance(outcome, CompletedEvent), outcome
        (output,) = outcome.outputs
        assert output.location == f"s3://{s3_bucket}/acme-out/{job_id}/{output.name}"
        route = f"{svc.http_url}/jobs/{job_id}/outputs/{output.name}"
        status, _ = await http_status("GET", route, bearer(tokens["globex"]))
        assert status == 404
        status, body = await http_status("GET", route, bearer(tokens["acme"]))
        assert status == 200
        assert len(body) == output.size


async def test_unusable_tenants_file_stops_the_start(media_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "tenants.toml"
    bad.write_text("[tenants.acme]\ns3_read = ['not-a-bucket']\n")
    with pytest.raises(SystemExit) as info:
        async with running(settings_for(media_root, tenants_file=bad)):
            pass
    assert str(info.value.code) == "tenants file has invalid entries: tenants.acme.s3_read.0"
