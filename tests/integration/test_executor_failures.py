"""The executor with real FFmpeg when things go wrong: timeout, cancel, limits, hostile input."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode, ProgressEvent
from ffpool.domain.jobs import (
    ExtractAudioOp,
    Operation,
    Preset,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
)
from ffpool.ffmpeg.argv import PROTOCOL_WHITELIST
from tests.conftest import make_clip
from tests.integration.test_executor import (
    execute,
    job_files,
    job_for,
    job_processes,
    make_executor,
)
from tests.polling import eventually

pytestmark = pytest.mark.ffmpeg
SLOW = TranscodeOp(preset=Preset.VERYSLOW)


@pytest.fixture(scope="session")
def long_clip(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that a veryslow transcode runs for many seconds on 2 cores."""
    return make_clip(ffmpeg_bin, tmp_path_factory.mktemp("long") / "long.mp4", 20, "640x360")


@pytest.fixture
def with_long_clip(media_root: Path, long_clip: Path) -> Path:
    shutil.copy(long_clip, media_root / "clips" / "long.mp4")
    return media_root


async def failed(media_root: Path, op: Operation, path: str, **settings: object) -> FailedEvent:
    job = job_for(op, path)
    result, _ = await execute(make_executor(media_root, **settings), job)
    assert isinstance(result, FailedEvent), result
    assert job_files(media_root, job.id) == []
    return result


async def test_timeout_kills_ffmpeg(with_long_clip: Path) -> None:
    executor = make_executor(with_long_clip, job_timeout_seconds=1.0)
    job = job_for(SLOW, "clips/long.mp4")
    started = time.monotonic()
    result, _ = await execute(executor, job)
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.TIMEOUT
    assert "1 s" in result.message
    assert time.monotonic() - started < 5
    assert job_processes(job.id) == []
    assert job_files(with_long_clip, job.id) == []


async def test_cancel_of_a_running_job(with_long_clip: Path) -> None:
    executor = make_executor(with_long_clip, cancel_grace_seconds=3.0)
    job = job_for(SLOW, "clips/long.mp4")
    events: list[ProgressEvent] = []
    task = asyncio.create_task(executor.execute(job, events.append))

    def writing() -> bool:
        assert not task.done(), task  # an early end fails at once, not at the deadline
        return bool(events) and bool(job_files(with_long_clip, job.id))

    await eventually(writing, timeout=30, what="FFmpeg writing", interval=0.05)
    assert job_processes(job.id), "FFmpeg should be running"
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 4
    assert job_processes(job.id) == []
    assert job_files(with_long_clip, job.id) == []


async def test_progress_at_least_once_a_second(with_long_clip: Path) -> None:
    executor = make_executor(with_long_clip, job_timeout_seconds=2.5)
    stamps: list[float] = []
    job = job_for(SLOW, "clips/long.mp4")
    result = await executor.execute(job, lambda _: stamps.append(time.monotonic()))
    assert isinstance(result, FailedEvent)  # the timeout ended it; progress came until then
    assert len(stamps) >= 3
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.0, gaps


async def test_output_limit(media_root: Path) -> None:
    op = TranscodeOp(preset=Preset.ULTRAFAST)
    result = await failed(media_root, op, "clips/sample.mp4", max_output_bytes=20_000)
    assert result.code is FailureCode.OUTPUT_TOO_LARGE


async def test_non_media_input(media_root: Path) -> None:
    (media_root / "clips" / "notes.mp4").write_text("these are not the frames you want\n" * 50)
    for op in (TranscodeOp(preset=Preset.ULTRAFAST), ThumbnailOp(), ProbeOp()):
        result = await failed(media_root, op, "clips/notes.mp4")
        assert result.code is FailureCode.INVALID_MEDIA, result
        assert "$MEDIA_ROOT/clips/notes.mp4" in result.stderr_tail
        assert str(media_root) not in result.stderr_tail


async def test_thumbnail_past_the_end(media_root: Path) -> None:
    result = await failed(media_root, ThumbnailOp(time=60), "clips/sample.mp4")
    assert result.code is FailureCode.FFMPEG_ERROR
    assert "past the end" in result.message


async def test_extract_audio_without_audio(media_root: Path, ffmpeg_bin: str) -> None:
    silent = media_root / "clips" / "silent.mp4"
    subprocess.run(
        [
            ffmpeg_bin,
            "-v",
            "error",
            "-i",
            str(media_root / "clips" / "sample.mp4"),
            "-an",
            "-c",
            "copy",
            str(silent),
        ],
        check=True,
        timeout=30,
    )
    result = await failed(media_root, ExtractAudioOp(), "clips/silent.mp4")
    assert result.code is FailureCode.INVALID_MEDIA
    assert "no stream" in result.message


async def test_missing_input(media_root: Path) -> None:
    result = await failed(media_root, ThumbnailOp(), "clips/nothing-here.mp4")
    assert result.code is FailureCode.INPUT_NOT_FOUND


async def test_failing_progress_callback_is_an_internal_error(with_long_clip: Path) -> None:
    job = job_for(SLOW, "clips/long.mp4")

    def explode(_: ProgressEvent) -> None:
        raise RuntimeError("subscriber bug")

    result = await make_executor(with_long_clip).execute(job, explode)
    assert isinstance(result, FailedEvent), result
    assert result.code is FailureCode.INTERNAL_ERROR
    assert job_processes(job.id) == []
    assert job_files(with_long_clip, job.id) == []


# --- inputs that try to make FFmpeg read other files ----------------------------------------


def hls_playlist(target: Path) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:3,\n{target}\n#EXT-X-ENDLIST\n"


PLAYLISTS = {
    "hls-as-mp4": ("evil.mp4", hls_playlist),
    "hls-as-avi": ("evil.avi", hls_playlist),
    "ffconcat-as-mp4": ("evil.mp4", lambda target: f"ffconcat version 1.0\nfile {target.name}\n"),
}


@pytest.mark.parametrize("kind", PLAYLISTS)
async def test_embedded_references_are_not_followed(media_root: Path, kind: str) -> None:
    # The referenced file is a FIFO: opening it for reading would block until the job's
    # timeout, so a quick invalid_media shows FFmpeg never opened it.
    name, content = PLAYLISTS[kind]
    secret = media_root / "clips" / "secret.ts"
    os.mkfifo(secret)
    (media_root / "clips" / name).write_text(content(secret))
    started = time.monotonic()
    for op in (TranscodeOp(preset=Preset.ULTRAFAST), ProbeOp()):
        result = await failed(media_root, op, f"clips/{name}", job_timeout_seconds=20)
        assert result.code is FailureCode.INVALID_MEDIA, result
        assert "not on whitelist" in result.stderr_tail
    assert time.monotonic() - started < 10


async def test_without_the_format_whitelist_ffmpeg_would_follow_them(
    media_root: Path, ffmpeg_bin: str
) -> None:
    """The control for the test above: the protocol whitelist alone does not stop it."""
    secret = media_root / "clips" / "secret.ts"
    subprocess.run(
        [
            ffmpeg_bin,
            "-v",
            "error",
            "-i",
            str(media_root / "clips" / "sample.mp4"),
            "-c",
            "copy",
            "-f",
            "mpegts",
            str(secret),
        ],
        check=True,
        timeout=30,
    )
    playlist = media_root / "clips" / "evil.mp4"
    playlist.write_text(hls_playlist(secret))
    out = subprocess.run(
        [
            ffmpeg_bin,
            "-hide_banner",
            "-nostdin",
            "-protocol_whitelist",
            PROTOCOL_WHITELIST,
            "-i",
            f"file:{playlist}",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert f"Opening 'file:{secret}' for reading" in out.stderr
    assert out.returncode == 0  # it read the other file as the input


async def test_a_playlist_does_not_break_the_next_job(media_root: Path) -> None:
    (media_root / "clips" / "evil.mp4").write_text(hls_playlist(Path("/etc/passwd")))
    await failed(media_root, ProbeOp(), "clips/evil.mp4")
    result, _ = await execute(make_executor(media_root), job_for(ThumbnailOp()))
    assert isinstance(result, CompletedEvent)


async def test_missing_ffmpeg_fails_jobs_not_the_service(media_root: Path) -> None:
    make_executor(media_root, ffmpeg_path="/nope/ffmpeg")  # constructing it does not raise
    result = await failed(media_root, ThumbnailOp(), "clips/sample.mp4", ffmpeg_path="/nope/ffmpeg")
    assert result.code is FailureCode.INTERNAL_ERROR
    assert "FFMPEG_PATH=/nope/ffmpeg" in result.message
