"""Chunked transcodes through the whole service (memory backend, real FFmpeg): the output is
the single run's twin, progress aggregates the chunks, cancel stops every chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.chunk_media import (
    make_gop_clip,
    ssim,
    stream_duration,
    stream_start,
    video_pts,
)
from tests.integration.service import Conn, conn, service
from tests.polling import eventually

pytestmark = pytest.mark.ffmpeg

FRAME_S = 1 / 25


def transcode(path: str, **op: Any) -> dict[str, Any]:
    return {"input": {"kind": "path", "path": path}, "operation": {"op": "transcode", **op}}


@pytest.fixture
def gop_clip(ffmpeg_bin: str, media_root: Path) -> Path:
    return make_gop_clip(ffmpeg_bin, media_root / "clips" / "gop.mp4", seconds=12)


async def submit(c: Conn, job: dict[str, Any]) -> str:
    await c.send({"type": "submit", "job": job})
    accepted = await c.expect("accepted")
    return str(accepted.job_id)


def output_of(media_root: Path, job_id: str, name: str = "output.mp4") -> Path:
    path = media_root / "jobs" / job_id / name
    assert path.is_file(), f"no {name} for {job_id}"
    return path


def leftovers(media_root: Path, job_id: str) -> list[Path]:
    """Files of a job outside its own directory (its chunks, their work directories)."""
    own = media_root / "jobs" / job_id
    return [
        p for p in media_root.rglob("*") if job_id in str(p) and own not in p.parents and p != own
    ]


async def test_chunked_transcode_is_the_single_runs_twin(
    media_root: Path, gop_clip: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    async with service(media_root, max_concurrent_jobs=3) as svc, conn(svc) as c:
        single_id = await submit(c, transcode("clips/gop.mp4"))
        single_events = await c.until_terminal(single_id, timeout=120)
        chunked_id = await submit(c, transcode("clips/gop.mp4", chunking={"chunk_seconds": 2.0}))
        events = await c.until_terminal(chunked_id, timeout=180)
    assert single_events[-1].type == "completed", single_events[-1]
    assert events[-1].type == "completed", events[-1]
    assert [o.name for o in events[-1].outputs] == ["output.mp4"]
    single, chunked = output_of(media_root, single_id), output_of(media_root, chunked_id)
    # The same frames at the same times: the audio, encoded whole, stays in sync at every
    # chunk boundary exactly as in the single run.
    assert video_pts(ffprobe_bin, chunked) == video_pts(ffprobe_bin, single)
    for kind in ("v", "a"):
        assert stream_duration(ffprobe_bin, chunked, kind) == pytest.approx(
            stream_duration(ffprobe_bin, single, kind), abs=FRAME_S
        )
    source = gop_clip
    assert ssim(ffmpeg_bin, source, chunked) >= ssim(ffmpeg_bin, source, single) - 0.01
    percents = [e.percent for e in events if e.type == "progress" and e.percent is not None]
    assert len(percents) >= 2, percents
    assert percents == sorted(percents), percents
    assert any(0 < p < 100 for p in percents), percents
    assert leftovers(media_root, chunked_id) == []


async def test_auto_mode_with_one_slot_runs_in_one_pass(
    media_root: Path, gop_clip: Path, ffprobe_bin: str
) -> None:
    async with service(media_root, max_concurrent_jobs=1) as svc, conn(svc) as c:
        job_id = await submit(
            c, transcode("clips/gop.mp4", chunking={"mode": "auto", "chunk_seconds": 2.0})
        )
        events = await c.until_terminal(job_id, timeout=120)
    assert events[-1].type == "completed", events[-1]
    assert len(video_pts(ffprobe_bin, output_of(media_root, job_id))) == 12 * 25
    assert not (media_root / "chunks").exists() or leftovers(media_root, job_id) == []


async def test_cancel_stops_every_chunk(media_root: Path, ffmpeg_bin: str) -> None:
    make_gop_clip(ffmpeg_bin, media_root / "clips" / "long.mp4", seconds=40, size="640x360")
    slow = transcode("clips/long.mp4", preset="slow", chunking={"chunk_seconds": 2.0})
    async with service(media_root, max_concurrent_jobs=2) as svc, conn(svc) as c:
        job_id = await submit(c, slow)
        while True:
            msg = await c.recv(60)
            if msg.type == "progress" and (msg.percent or 0) > 0:
                break
        await c.send({"type": "cancel", "job_id": job_id})
        events = await c.until_terminal(job_id, timeout=30)
        assert events[-1].type == "cancelled", events[-1]
        backend: Any = svc.backend

        async def idle() -> bool:
            return backend.busy_jobs() == 0 and leftovers(media_root, job_id) == []

        await eventually(idle, timeout=30, what="every chunk stopped and removed")


async def test_a_video_that_starts_after_its_audio_stays_in_sync(
    media_root: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    # MPEG-TS keeps the streams' own start times (an MP4's edit list would hide the gap).
    make_gop_clip(ffmpeg_bin, media_root / "clips" / "late.ts", seconds=8, video_delay=0.5)
    async with service(media_root, max_concurrent_jobs=3) as svc, conn(svc) as c:
        # Matroska keeps each stream's start (MP4 here starts both at zero, either way).
        single_id = await submit(c, transcode("clips/late.ts", container="mkv"))
        assert (await c.until_terminal(single_id, timeout=120))[-1].type == "completed"
        chunked_id = await submit(
            c, transcode("clips/late.ts", container="mkv", chunking={"chunk_seconds": 2.0})
        )
        assert (await c.until_terminal(chunked_id, timeout=120))[-1].type == "completed"
    single = output_of(media_root, single_id, "output.mkv")
    chunked = output_of(media_root, chunked_id, "output.mkv")
    assert stream_start(ffprobe_bin, single, "v") - stream_start(ffprobe_bin, single, "a") > 0.4
    # Within one frame of the single run (which itself moves the gap by the encoders'
    # delays: the audio's priming, the video's B-frame delay), every frame in place.
    for kind in ("v", "a"):
        assert stream_start(ffprobe_bin, chunked, kind) == pytest.approx(
            stream_start(ffprobe_bin, single, kind), abs=FRAME_S
        )
    ours, theirs = video_pts(ffprobe_bin, chunked), video_pts(ffprobe_bin, single)
    assert len(ours) == len(theirs) == 8 * 25
    shift = ours[0] - theirs[0]
    assert all(abs(a - b - shift) < 0.002 for a, b in zip(ours, theirs, strict=True))


async def test_more_chunked_jobs_than_slots_all_finish(
    media_root: Path, gop_clip: Path, ffprobe_bin: str
) -> None:
    """Each waiting parent lends its slot and its chunks go first: no parent waits for a
    slot held by another waiting parent (a time limit would end such a wait as a failure)."""
    async with (
        service(media_root, max_concurrent_jobs=1, job_timeout_seconds=90) as svc,
        conn(svc) as c,
    ):
        ids = [
            await submit(c, transcode("clips/gop.mp4", chunking={"chunk_seconds": 2.0}))
            for _ in range(3)
        ]
        ends = {job_id: (await c.until_terminal(job_id, timeout=120))[-1] for job_id in ids}
    assert all(end.type == "completed" for end in ends.values()), ends
    for job_id in ids:
        assert len(video_pts(ffprobe_bin, output_of(media_root, job_id))) == 12 * 25


async def test_the_server_splits_long_jobs_by_itself_when_configured(
    media_root: Path, gop_clip: Path, ffprobe_bin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with (
        service(media_root, max_concurrent_jobs=3, chunk_auto_seconds=3.0) as svc,
        conn(svc) as c,
    ):
        split_id = await submit(c, transcode("clips/gop.mp4"))
        assert (await c.until_terminal(split_id, timeout=120))[-1].type == "completed"
        whole_id = await submit(c, transcode("clips/gop.mp4", video_codec="copy"))
        assert (await c.until_terminal(whole_id, timeout=120))[-1].type == "completed"
    splits = [line for line in capsys.readouterr().out.splitlines() if "chunked job split" in line]
    assert [split_id in line for line in splits] == [True]  # a copy cannot be split
    assert len(video_pts(ffprobe_bin, output_of(media_root, split_id))) == 12 * 25


async def test_a_scrape_shows_the_wait_the_speed_and_the_bytes_of_jobs_not_their_chunks(
    media_root: Path, gop_clip: Path
) -> None:
    async with service(media_root, max_concurrent_jobs=3) as svc, conn(svc) as c:
        job_id = await submit(c, transcode("clips/gop.mp4", chunking={"chunk_seconds": 2.0}))
        assert (await c.until_terminal(job_id, timeout=120))[-1].type == "completed"
        async with aiohttp.ClientSession() as http:
            scrape = f"http://127.0.0.1:{svc.ops_port}/metrics"
            async with http.get(scrape, timeout=aiohttp.ClientTimeout(total=10)) as reply:
                text = await reply.text()
    samples = {
        (s.name, s.labels.get("operation")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # One job, not one per chunk.
    assert samples[("ffpool_queue_wait_seconds_count", "transcode")] == 1
    assert samples[("ffpool_jobs_finished_total", "transcode")] == 1
    assert samples[("ffpool_realtime_factor_count", "transcode")] == 1
    assert samples[("ffpool_realtime_factor_sum", "transcode")] > 0
    size = (media_root / "jobs" / job_id / "output.mp4").stat().st_size
    assert samples[("ffpool_output_bytes_total", "transcode")] == size
    # The input once, as the worker read it, not once per chunk.
    assert samples[("ffpool_input_bytes_total", "transcode")] == gop_clip.stat().st_size
    assert samples[("ffpool_dead_letters", None)] == 0
