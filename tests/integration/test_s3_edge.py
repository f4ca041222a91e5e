"""The service's edge with STORAGE=s3 against a real S3 server (versitygw), the memory backend
and real FFmpeg: uploads land in the bucket (not MEDIA_ROOT), outputs go to a bucket and are
reached through presigned links (in the events and as the output route's redirect), and jobs
naming buckets their tenant may not use are refused at submit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ffpool.app import Running, running
from ffpool.cli import build_parser
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CompletedEvent, OutputFile
from ffpool.domain.jobs import JobSpec, S3Input, ThumbnailOp, UploadInput
from ffpool.domain.protocol import ErrorCode
from ffpool.server.job_checks import NO_OBJECT_STORAGE
from tests.integration.s3_harness import S3Server
from tests.integration.service import service, settings_for

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]

THUMB = ThumbnailOp(time=1, width=64)


def s3_fields(server: S3Server, bucket: str, **overrides: Any) -> dict[str, Any]:
    allowed = {
        "s3_allow_read": (f"s3://{bucket}/in",),
        "s3_allow_write": (f"s3://{bucket}/results",),
    }
    return server.fields(**({"s3_bucket": bucket} | allowed | overrides))


@asynccontextmanager
async def s3_service(
    media_root: Path, server: S3Server, bucket: str, **overrides: Any
) -> AsyncIterator[Running]:
    async with service(media_root, **s3_fields(server, bucket, **overrides)) as svc:
        yield svc


async def keys(server: S3Server, bucket: str, prefix: str) -> list[str]:
    reply = await asyncio.to_thread(server.client().list_objects_v2, Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for obj in reply.get("Contents", [])]


async def get_object(server: S3Server, bucket: str, key: str) -> bytes:
    reply = await asyncio.to_thread(server.client().get_object, Bucket=bucket, Key=key)
    return await asyncio.to_thread(reply["Body"].read)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


async def test_upload_thumbnail_to_bucket_and_redirect(
    media_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    clip = media_root / "clips" / "sample.mp4"
    async with (
        s3_service(media_root, s3_server, s3_bucket) as svc,
        Client(svc.ws_url, svc.http_url) as client,
    ):
        upload_id = await client.upload(clip)
        assert await keys(s3_server, s3_bucket, "ffpool/uploads/") == [
            f"ffpool/uploads/anonymous/{upload_id}"
        ]
        assert files_under(media_root / "uploads") == []
        stored = await get_object(s3_server, s3_bucket, f"ffpool/uploads/anonymous/{upload_id}")
        assert stored == clip.read_bytes()

        spec = JobSpec(input=UploadInput(upload_id=upload_id), operation=THUMB)
        accepted = await client.submit(spec, output=f"s3://{s3_bucket}/results/run1")
        outcome = await client.wait(accepted.job_id, timeout=60)
        assert isinstance(outcome, CompletedEvent), outcome
        (output,) = outcome.outputs
        key = f"results/run1/{accepted.job_id}/{output.name}"
        assert output.location == f"s3://{s3_bucket}/{key}"
        assert output.url.startswith(s3_server.endpoint_url)  # presigned: straight to the bucket
        jpeg = await get_object(s3_server, s3_bucket, key)
        assert jpeg[:2] == b"\xff\xd8"
        assert len(jpeg) == output.size

        saved = await client.download(output, tmp_path / "out")
        assert saved.read_bytes() == jpeg
        await _check_http_side(svc, accepted.job_id, output, jpeg)


async def _check_http_side(svc: Running, job_id: str, output: OutputFile, body: bytes) -> None:
    """The output route redirects to a fresh presigned link; the record carries one too."""
    route = f"{svc.http_url}/jobs/{job_id}/outputs/{output.name}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.get(route, allow_redirects=False) as resp:
            assert resp.status == 302
            link = resp.headers["Location"]
        endpoint = str(svc.settings.s3_endpoint_url).rstrip("/")
        assert link.startswith(endpoint)
        async with http.get(link) as resp:
            assert resp.status == 200
            assert await resp.read() == body
        async with http.get(route) as resp:  # followed by a plain client
            assert await resp.read() == body
        async with http.get(f"{svc.http_url}/jobs/{job_id}") as resp:
            record = await resp.json()
        assert record["result"]["outputs"][0]["location"] == output.location
        assert record["result"]["outputs"][0]["url"].startswith(endpoint)
        async with http.get(f"{svc.http_url}/jobs/{job_id}/outputs/nothing.jpg") as resp:
            assert resp.status == 404


async def test_s3_input_allowed_runs_and_others_are_refused_at_submit(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    clip = (media_root / "clips" / "sample.mp4").read_bytes()
    client_s3 = s3_server.client()
    await asyncio.to_thread(client_s3.put_object, Bucket=s3_bucket, Key="in/a.mp4", Body=clip)
    async with (
        s3_service(media_root, s3_server, s3_bucket) as svc,
        Client(svc.ws_url, svc.http_url) as client,
    ):
        refused = JobSpec(input=S3Input(url=f"s3://{s3_bucket}/secret/a.mp4"), operation=THUMB)
        with pytest.raises(ClientError) as info:
            await client.submit(refused)
        assert info.value.error.code is ErrorCode.INVALID_JOB
        assert info.value.error.message == (
            f"reading s3://{s3_bucket}/secret/a.mp4 is not allowed for this tenant"
        )
        elsewhere = JobSpec(input=S3Input(url=f"s3://{s3_bucket}/in/a.mp4"), operation=THUMB)
        with pytest.raises(ClientError) as info:
            await client.submit(elsewhere, output=f"s3://{s3_bucket}/other")
        assert "is not allowed for this tenant" in info.value.error.message

        # Allowed: read with the pool's credentials, written to the pool's default location.
        outcome = await client.wait((await client.submit(elsewhere)).job_id, timeout=60)
        assert isinstance(outcome, CompletedEvent), outcome
        assert outcome.outputs[0].location is not None
        assert outcome.outputs[0].location.startswith(f"s3://{s3_bucket}/ffpool/outputs/anonymous/")


async def test_filesystem_server_refuses_object_storage_jobs(media_root: Path) -> None:
    async with service(media_root) as svc, Client(svc.ws_url, svc.http_url) as client:
        for spec, output in (
            (JobSpec(input=S3Input(url="s3://media-in/a.mp4"), operation=THUMB), None),
            (JobSpec(input=UploadInput(upload_id="a" * 32), operation=THUMB), "s3://out/x"),
        ):
            with pytest.raises(ClientError) as info:
                await client.submit(spec, output=output)
            assert info.value.error.code is ErrorCode.INVALID_JOB
            assert info.value.error.message.startswith(NO_OBJECT_STORAGE)


async def test_upload_limits_and_outage(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    async def body(size: int) -> AsyncIterator[bytes]:
        for _ in range(size // 4096):  # streamed: no Content-Length to refuse it up front
            yield b"x" * 4096

    async with (
        s3_service(media_root, s3_server, s3_bucket, max_upload_bytes=64 * 1024) as svc,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
    ):
        url = f"{svc.http_url}/uploads"
        async with http.post(url, data=body(128 * 1024)) as resp:
            assert resp.status == 413, await resp.text()
        async with http.post(url, data=b"") as resp:
            assert resp.status == 400
        assert await keys(s3_server, s3_bucket, "ffpool/uploads/") == []
        async with http.post(url, data=b"small") as resp:
            assert resp.status == 201
        s3_server.stop()
        try:
            async with http.post(url, data=b"during the outage") as resp:
                assert resp.status == 503
                reply = await resp.json()
        finally:
            s3_server.start()
        assert reply["error"] == "storage_error"
    assert files_under(media_root / "uploads") == []


async def test_start_refused_without_a_usable_bucket(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    cases = [
        (s3_fields(s3_server, s3_bucket, s3_bucket=None), "STORAGE=s3 needs S3_BUCKET"),
        (s3_fields(s3_server, "no-such-bucket-here"), "S3_BUCKET no-such-bucket-here"),
        (s3_fields(s3_server, s3_bucket, s3_secret_access_key="wrong"), "denied"),
    ]
    for fields, expected in cases:
        with pytest.raises(SystemExit) as info:
            async with running(settings_for(media_root, **fields)):
                pass
        assert expected in str(info.value.code)


async def test_cli_prints_bucket_outputs_and_downloads_on_request(
    media_root: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with s3_service(media_root, s3_server, s3_bucket) as svc:
        argv = [
            "submit",
            "thumbnail",
            "--file",
            str(media_root / "clips" / "sample.mp4"),
            "--server",
            svc.ws_url,
            "--http",
            svc.http_url,
            "--output",
            f"s3://{s3_bucket}/results/cli",
            "--json",
            "--time",
            "1",
        ]
        args = build_parser().parse_args([*argv, "--output-dir", str(tmp_path / "none")])
        assert await args.run(args) == 0
        out = "\n" + capsys.readouterr().out  # the service's log lines share stdout here
        shown = json.loads(out[out.index("\n{\n") + 1 :])
        assert shown["outputs"][0]["location"].startswith(f"s3://{s3_bucket}/results/cli/")
        assert not (tmp_path / "none").exists()  # shown, not downloaded

        args = build_parser().parse_args(
            [*argv, "--output-dir", str(tmp_path / "got"), "--download"]
        )
        assert await args.run(args) == 0
        (saved,) = (tmp_path / "got").iterdir()
        assert saved.read_bytes()[:2] == b"\xff\xd8"


async def test_slow_upload_times_out_and_leaves_no_object(
    media_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    """Cut off at MAX_UPLOAD_SECONDS after a whole part went up: the multipart is aborted."""
    part = 5 * 1024 * 1024
    limits = {"max_upload_seconds": 2.0, "s3_part_size_bytes": part}
    async with s3_service(media_root, s3_server, s3_bucket, **limits) as svc:
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.http_port)
        head = f"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: {3 * part}\r\n\r\n"
        writer.write(head.encode() + b"x" * (part + 4096))  # and then nothing more
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        await writer.wait_closed()
    assert status.startswith(b"HTTP/1.1 408"), status
    assert await keys(s3_server, s3_bucket, "ffpool/") == []
    pending = await asyncio.to_thread(s3_server.client().list_multipart_uploads, Bucket=s3_bucket)
    assert pending.get("Uploads", []) == []
