"""A chunked transcode with STORAGE=s3 (no shared filesystem): the input read from a bucket,
the chunks kept in the pool's bucket, the output uploaded, the chunks gone afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.chunk_media import make_gop_clip, stream_duration, video_pts
from tests.integration.s3_harness import S3Server
from tests.integration.service import conn, service
from tests.integration.test_chunked_jobs import submit

pytest_plugins = ["tests.integration.s3_fixtures"]
pytestmark = [pytest.mark.ffmpeg, pytest.mark.s3]


def keys(server: S3Server, bucket: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket)
    return [str(item["Key"]) for item in listed.get("Contents", [])]


async def test_chunked_transcode_through_a_bucket(
    s3_server: S3Server,
    s3_bucket: str,
    media_root: Path,
    tmp_path: Path,
    ffmpeg_bin: str,
    ffprobe_bin: str,
) -> None:
    clip = make_gop_clip(ffmpeg_bin, tmp_path / "gop.mp4", seconds=8)
    s3 = s3_server.client()
    await asyncio.to_thread(
        s3.put_object, Bucket=s3_bucket, Key="in/gop.mp4", Body=clip.read_bytes()
    )
    overrides = s3_server.fields(
        s3_bucket=s3_bucket,
        s3_allow_read=(f"s3://{s3_bucket}/in",),
        scratch_root=tmp_path / "scratch",
        max_concurrent_jobs=3,
    )
    job = {
        "input": {"kind": "s3", "url": f"s3://{s3_bucket}/in/gop.mp4"},
        "operation": {"op": "transcode", "chunking": {"chunk_seconds": 2.0}},
    }
    async with service(media_root, **overrides) as svc, conn(svc) as c:
        job_id = await submit(c, job)
        events = await c.until_terminal(job_id, timeout=180)
    completed = events[-1]
    assert completed.type == "completed", completed
    (output,) = completed.outputs
    assert output.location is not None
    key = output.location.removeprefix(f"s3://{s3_bucket}/")
    body = await asyncio.to_thread(s3.get_object, Bucket=s3_bucket, Key=key)
    local = tmp_path / "output.mp4"
    local.write_bytes(body["Body"].read())
    assert video_pts(ffprobe_bin, local) == video_pts(ffprobe_bin, clip)
    assert stream_duration(ffprobe_bin, local, "a") == pytest.approx(
        stream_duration(ffprobe_bin, clip, "a"), abs=0.04
    )
    assert [k for k in keys(s3_server, s3_bucket) if "/chunks/" in k] == []
    assert not (media_root / "chunks").exists() or not any((media_root / "chunks").iterdir())
