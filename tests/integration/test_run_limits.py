"""What one FFmpeg run may cost, with real FFmpeg: a decompression bomb is refused before it is
decoded, memory and CPU limits end a run cleanly, output sides stay inside the documented box,
a fetched URL input does not outlive its run, and an impossible path is a bad input."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import (
    Job,
    JobSpec,
    Operation,
    Preset,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
    UrlInput,
)
from tests.conftest import make_clip
from tests.integration.test_executor import execute, job_files, job_for, make_executor

pytestmark = pytest.mark.ffmpeg
MiB = 1024 * 1024


@pytest.fixture(scope="session")
def bomb(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A decompression bomb: a 16000x16000 PNG of one color, under a megabyte."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    subprocess.run(
        [
            ffmpeg_bin,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=size=16000x16000",
            "-frames:v",
            "1",
            str(path),
        ],
        check=True,
        timeout=300,
    )
    return path


@pytest.fixture
def with_bomb(media_root: Path, bomb: Path) -> Path:
    shutil.copy(bomb, media_root / "clips" / "bomb.png")
    return media_root


async def run_job(media_root: Path, job: Job, **settings: object) -> CompletedEvent | FailedEvent:
    result, _ = await execute(make_executor(media_root, **settings), job)
    assert isinstance(result, CompletedEvent | FailedEvent)
    return result


@pytest.mark.parametrize("op", [ThumbnailOp(width=64), ProbeOp()])
async def test_decompression_bomb_refused_before_decoding(
    with_bomb: Path, bomb: Path, op: Operation
) -> None:
    assert bomb.stat().st_size < MiB  # small on disk, 1 GB decoded
    started = time.monotonic()
    # With a memory limit the bomb's decode would not fit in (it needs ~1.2 GB: see
    # docs/security.md), the refusal must come from the probe, not from the limit.
    result = await run_job(
        with_bomb, job_for(op, "clips/bomb.png"), ffmpeg_max_memory_bytes=512 * MiB
    )
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.INPUT_REJECTED, result
    assert "50000000 pixels" in result.message
    assert time.monotonic() - started < 10
    assert job_files(with_bomb, result.job_id) == []


async def test_memory_limit_ends_a_run_cleanly(with_bomb: Path) -> None:
    """The pixel check off (a limit above the bomb), the memory limit is what stops it."""
    job = job_for(ThumbnailOp(width=64), "clips/bomb.png")
    result = await run_job(
        with_bomb, job, max_input_pixels=2**30, ffmpeg_max_memory_bytes=512 * MiB
    )
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.RESOURCE_LIMIT, result
    assert "FFMPEG_MAX_MEMORY_BYTES" in result.message
    assert job_files(with_bomb, job.id) == []


async def test_cpu_limit_ends_a_run_cleanly(media_root: Path, ffmpeg_bin: str) -> None:
    make_clip(ffmpeg_bin, media_root / "clips" / "busy.mp4", 10, "1280x720")
    job = job_for(TranscodeOp(preset=Preset.SLOW), "clips/busy.mp4")
    result = await run_job(media_root, job, ffmpeg_max_cpu_seconds=1)
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.RESOURCE_LIMIT, result
    assert "FFMPEG_MAX_CPU_SECONDS" in result.message
    assert job_files(media_root, job.id) == []


async def test_default_limits_let_a_normal_transcode_through(media_root: Path) -> None:
    result = await run_job(media_root, job_for(TranscodeOp(height=120)))
    assert isinstance(result, CompletedEvent), result


@pytest.fixture
def thin_clip(media_root: Path, ffmpeg_bin: str) -> Path:
    make_clip(ffmpeg_bin, media_root / "clips" / "thin.mp4", 1, "200x16")
    return media_root


@pytest.mark.parametrize(
    ("op", "size"),
    [
        # Before the clamp these gave 25000x2000 and 12500x1000; now inside 7680x4320.
        (ThumbnailOp(height=2000, format="png"), (7680, 614)),
        (TranscodeOp(height=1000, preset=Preset.ULTRAFAST, audio_codec="none"), (7680, 614)),
        (ThumbnailOp(width=100, format="png"), (100, 8)),
    ],
)
async def test_output_sides_stay_inside_the_box(
    thin_clip: Path, op: Operation, size: tuple[int, int]
) -> None:
    result = await run_job(thin_clip, job_for(op, "clips/thin.mp4"))
    assert isinstance(result, CompletedEvent), result
    assert result.metadata is not None
    video = next(s for s in result.metadata.streams if s.codec_type == "video")
    assert (video.width, video.height) == size


async def test_overlong_path_component_is_a_bad_input(media_root: Path) -> None:
    job = job_for(ThumbnailOp(), "clips/" + "a" * 300 + ".mp4")
    with capture_logs() as logs:
        result = await run_job(media_root, job)
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.INPUT_REJECTED
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []


@pytest.fixture
async def clip_server(sample_clip: Path) -> AsyncIterator[str]:
    async def clip(_: web.Request) -> web.Response:
        return web.Response(body=sample_clip.read_bytes(), content_type="video/mp4")

    async def junk(_: web.Request) -> web.Response:
        return web.Response(body=b"not media\n" * 1000)

    app = web.Application()
    app.router.add_get("/clip.mp4", clip)
    app.router.add_get("/junk.mp4", junk)
    async with TestServer(app, host="127.0.0.1") as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(("path", "outcome"), [("/clip.mp4", "completed"), ("/junk.mp4", "failed")])
async def test_fetched_input_does_not_outlive_its_run(
    media_root: Path, clip_server: str, path: str, outcome: str
) -> None:
    url = UrlInput.model_validate({"url": clip_server + path})
    job = Job(spec=JobSpec(input=url, operation=ThumbnailOp(width=64)))
    result = await run_job(media_root, job, url_allow_private=True)
    assert result.type == outcome, result
    job_dir = media_root / "jobs" / job.id
    assert [p.name for p in job_dir.rglob("*") if p.name.startswith(".input")] == []
    assert job_files(media_root, job.id) == (["thumbnail.jpg"] if outcome == "completed" else [])
