"""A ladder encoded in chunks on several workers (memory backend, real FFmpeg): the same
package as one pass — playlists and manifest parse, every segment decodes, durations add up,
keyframes align across rungs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.chunk_media import make_gop_clip
from tests.integration.service import conn, service
from tests.integration.test_chunked_jobs import submit
from tests.integration.test_ladder_package import (
    CLIP_SECONDS,
    SEGMENT_SECONDS,
    check_dash,
    check_hls,
    from_dir,
)

pytestmark = pytest.mark.ffmpeg


async def test_chunked_ladder_is_a_whole_package(
    media_root: Path, tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    make_gop_clip(
        ffmpeg_bin, media_root / "clips" / "wide.mp4", seconds=CLIP_SECONDS, size="640x360"
    )
    job = {
        "input": {"kind": "path", "path": "clips/wide.mp4"},
        "operation": {
            "op": "ladder",
            "formats": ["hls", "dash"],
            "segment_seconds": SEGMENT_SECONDS,
            "preset": "ultrafast",
            "chunking": {"chunk_seconds": 2.0},
        },
    }
    async with service(media_root, max_concurrent_jobs=3) as svc, conn(svc) as c:
        job_id = await submit(c, job)
        events = await c.until_terminal(job_id, timeout=180)
    completed = events[-1]
    assert completed.type == "completed", completed
    names = [o.name for o in completed.outputs]
    assert names[0] == "master.m3u8"
    assert "manifest.mpd" in names
    read = from_dir(media_root / "jobs" / job_id)
    check_hls(read, tmp_path, ffmpeg_bin, ffprobe_bin, rungs=2)
    check_dash(read, tmp_path, ffmpeg_bin, representations=3)
    assert not any(job_id in str(p) for p in (media_root / "chunks").rglob("*"))
