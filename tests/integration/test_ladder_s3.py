"""A ladder with STORAGE=s3 against a real S3 server (versitygw), the whole service and real
FFmpeg: every file of the package is uploaded under the job's outputs and recorded; through
the package link a playlist is answered with its bytes (a player resolves its references
against that URL) and a segment with a redirect to a fresh presigned link. The job's record
in the bucket holds no presigned link per file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import m3u8
import pytest

from ffpool.domain.events import CompletedEvent
from ffpool.ffmpeg.bucket_commit import MAX_RECORD_BYTES
from ffpool.ffmpeg.ladder import MAX_PACKAGE_FILES
from tests.conftest import make_clip
from tests.integration.s3_harness import S3Server
from tests.integration.service import conn, service

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]

LADDER = {"op": "ladder", "segment_seconds": 2, "preset": "ultrafast"}


async def keys(server: S3Server, bucket: str, prefix: str) -> list[str]:
    reply = await asyncio.to_thread(server.client().list_objects_v2, Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in reply.get("Contents", []))


async def test_ladder_to_a_bucket_served_through_the_package_link(
    media_root: Path, tmp_path: Path, ffmpeg_bin: str, s3_server: S3Server, s3_bucket: str
) -> None:
    clip = make_clip(ffmpeg_bin, tmp_path / "wide.mp4", seconds=4, size="640x360")
    s3 = s3_server.client()
    await asyncio.to_thread(
        s3.put_object, Bucket=s3_bucket, Key="in/wide.mp4", Body=clip.read_bytes()
    )
    fields = s3_server.fields(s3_bucket=s3_bucket, s3_allow_read=(f"s3://{s3_bucket}/in",))
    async with service(media_root, **fields) as svc, conn(svc) as ws:
        job = {"input": {"kind": "s3", "url": f"s3://{s3_bucket}/in/wide.mp4"}, "operation": LADDER}
        await ws.send({"type": "submit", "job": job})
        accepted = await ws.expect("accepted")
        done = (await ws.until_terminal(accepted.job_id, timeout=90))[-1]
        assert done.type == "completed", done
        prefix = f"ffpool/outputs/anonymous/{done.job_id}/"
        assert await keys(s3_server, s3_bucket, prefix) == sorted(
            prefix + o.name for o in done.outputs
        )
        assert all(o.location == f"s3://{s3_bucket}/{prefix}{o.name}" for o in done.outputs)
        # The record keeps no presigned link per file (the package route makes them), so a
        # package of MAX_PACKAGE_FILES files stays far below the record's size limit.
        key = f"ffpool/jobs/{done.job_id}/completed.json"
        reply = await asyncio.to_thread(s3.get_object, Bucket=s3_bucket, Key=key)
        record = CompletedEvent.model_validate_json(await asyncio.to_thread(reply["Body"].read))
        assert all(o.url.startswith(f"/jobs/{done.job_id}/outputs/") for o in record.outputs)
        per_file = len(record.model_dump_json()) / len(record.outputs)
        assert per_file * MAX_PACKAGE_FILES < MAX_RECORD_BYTES / 2
        master_url = svc.http_url + done.outputs[0].url
        assert done.outputs[0].name == "master.m3u8"
        endpoint = str(svc.settings.s3_endpoint_url).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(master_url, allow_redirects=False) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "application/vnd.apple.mpegurl"
                master = m3u8.loads((await resp.read()).decode())
            variant_url = urljoin(master_url, master.playlists[0].uri)
            async with http.get(variant_url, allow_redirects=False) as resp:
                assert resp.status == 200
                variant = m3u8.loads((await resp.read()).decode())
            segment_url = urljoin(variant_url, variant.segments[0].uri)
            async with http.get(segment_url, allow_redirects=False) as resp:
                assert resp.status == 302
                link = resp.headers["Location"]
            assert link.startswith(endpoint)
            stored = await asyncio.to_thread(
                s3.get_object, Bucket=s3_bucket, Key=prefix + variant.segments[0].uri
            )
            body = await asyncio.to_thread(stored["Body"].read)
            async with http.get(link) as resp:
                assert resp.status == 200
                assert await resp.read() == body
            async with http.get(urljoin(master_url, "nothing.m4s")) as resp:
                assert resp.status == 404
