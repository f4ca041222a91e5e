"""The executor with real FFmpeg: every operation, progress, timeout, cancel, bad inputs."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ffpool.domain.events import CompletedEvent, ProgressEvent
from ffpool.domain.jobs import (
    AudioCodec,
    AudioFormat,
    Container,
    ExtractAudioOp,
    ImageFormat,
    Job,
    JobSpec,
    Operation,
    PathInput,
    Preset,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
    VideoCodec,
)
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.executor import Executor
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage

pytestmark = pytest.mark.ffmpeg


def make_executor(media_root: Path, **overrides: Any) -> Executor:
    settings = Settings(_env_file=None, media_root=media_root, **overrides)
    return Executor(settings, LocalStorage(media_root))


def job_for(op: Operation, path: str = "clips/sample.mp4") -> Job:
    return Job(spec=JobSpec(input=PathInput(path=path), operation=op))


def ffprobe(ffprobe_bin: str, path: Path) -> dict[str, Any]:
    """The reference: ffprobe run directly, not through the code under test."""
    out = subprocess.run(
        [ffprobe_bin, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def stream(info: dict[str, Any], kind: str) -> dict[str, Any]:
    matches = [s for s in info["streams"] if s["codec_type"] == kind]
    assert len(matches) == 1, info["streams"]
    found: dict[str, Any] = matches[0]
    return found


def job_processes(job_id: str) -> list[int]:
    """Live processes whose command line mentions the job (its output path does)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
            continue
        if job_id.encode() in cmdline and state != "Z":
            pids.append(int(proc.name))
    return pids


def job_files(media_root: Path, job_id: str) -> list[str]:
    """Files a run left in its job directory, in run scratch directories included; the run
    lock and the completed record (commit.py) are bookkeeping, not outputs."""
    job_dir = media_root / "jobs" / job_id
    files = job_dir.rglob("*") if job_dir.exists() else ()
    return sorted(
        str(p.relative_to(job_dir))
        for p in files
        if p.is_file() and not p.name.startswith(".ffpool-")
    )


async def execute(executor: Executor, job: Job) -> tuple[Any, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    result = await executor.execute(job, events.append)
    return result, events


# --- every operation, checked by ffprobe ----------------------------------------------------

# (operation, output name, checks on ffprobe's view of the output)
CASES: list[tuple[Operation, str, dict[str, Any]]] = [
    (
        TranscodeOp(height=120, preset=Preset.ULTRAFAST),
        "output.mp4",
        {"video": ("h264", 160, 120), "audio": "aac", "duration": 3.0},
    ),
    (
        TranscodeOp(
            container=Container.WEBM,
            video_codec=VideoCodec.VP9,
            audio_codec=AudioCodec.OPUS,
            preset=Preset.ULTRAFAST,
            fps=10,
        ),
        "output.webm",
        {"video": ("vp9", 320, 240), "audio": "opus", "duration": 3.0, "fps": 10},
    ),
    (
        TranscodeOp(
            container=Container.MKV,
            video_codec=VideoCodec.H265,
            crf=35,
            preset=Preset.ULTRAFAST,
            audio_codec=AudioCodec.NONE,
        ),
        "output.mkv",
        {"video": ("hevc", 320, 240), "audio": None, "duration": 3.0},
    ),
    (
        TranscodeOp(
            container=Container.MOV,
            video_codec=VideoCodec.COPY,
            audio_codec=AudioCodec.MP3,
            audio_bitrate_kbps=64,
        ),
        "output.mov",
        {"video": ("h264", 320, 240), "audio": "mp3", "duration": 3.0},
    ),
    (ThumbnailOp(time=1.0), "thumbnail.jpg", {"video": ("mjpeg", 320, 240)}),
    (
        ThumbnailOp(time=2.0, width=100, height=100, format=ImageFormat.PNG),
        "thumbnail.png",
        {"video": ("png", 100, 75)},
    ),
    (
        ThumbnailOp(height=60, format=ImageFormat.WEBP),
        "thumbnail.webp",
        {"video": ("webp", 80, 60)},
    ),
    (ExtractAudioOp(), "audio.mp3", {"video": None, "audio": "mp3", "duration": 3.0}),
    (
        ExtractAudioOp(format=AudioFormat.AAC, bitrate_kbps=64),
        "audio.aac",
        {"video": None, "audio": "aac", "duration": 3.0},
    ),
    (
        ExtractAudioOp(format=AudioFormat.OPUS),
        "audio.opus",
        {"video": None, "audio": "opus", "duration": 3.0},
    ),
    (
        ExtractAudioOp(format=AudioFormat.FLAC),
        "audio.flac",
        {"video": None, "audio": "flac", "duration": 3.0},
    ),
    (
        ExtractAudioOp(format=AudioFormat.WAV),
        "audio.wav",
        {"video": None, "audio": "pcm_s16le", "duration": 3.0},
    ),
    (
        TrimOp(start=1.0, duration=1.0),
        "trim.mp4",
        {"video": ("h264", 320, 240), "audio": "aac", "duration": 1.0},
    ),
    (
        TrimOp(start=0.5, duration=2.0, mode=TrimMode.REENCODE),
        "trim.mp4",
        {"video": ("h264", 320, 240), "audio": "aac", "duration": 2.0},
    ),
]


def check_streams(info: dict[str, Any], result: CompletedEvent, expect: dict[str, Any]) -> None:
    """ffprobe's view of the output (and our metadata) against one case's expectations."""
    kinds = [s["codec_type"] for s in info["streams"]]
    if expect.get("video"):
        video = stream(info, "video")
        assert (video["codec_name"], video["width"], video["height"]) == expect["video"]
        assert result.metadata is not None
        first = result.metadata.streams[0]
        assert (first.width, first.height) == expect["video"][1:]
    elif "video" in expect:
        assert "video" not in kinds
    if expect.get("audio"):
        assert stream(info, "audio")["codec_name"] == expect["audio"]
    elif "audio" in expect:
        assert "audio" not in kinds
    if "duration" in expect:
        assert float(info["format"]["duration"]) == pytest.approx(expect["duration"], abs=0.1)
        assert result.metadata is not None
        assert result.metadata.duration == pytest.approx(expect["duration"], abs=0.1)
    if "fps" in expect:
        assert stream(info, "video")["r_frame_rate"] == f"{expect['fps']}/1"


def check_progress(events: list[ProgressEvent], thumbnail: bool) -> None:
    """At least one event, ending at 100 %, monotonic; percent known throughout except for a
    thumbnail (one frame: nothing to measure until it is done)."""
    percents = [e.percent for e in events]
    assert percents, "no progress event"
    assert percents[-1] == 100.0
    assert thumbnail or all(p is not None for p in percents[1:])
    known = [p for p in percents if p is not None]
    assert known == sorted(known)


@pytest.mark.parametrize(("op", "name", "expect"), CASES, ids=lambda v: getattr(v, "op", None))
async def test_operation_output_checked_by_ffprobe(
    media_root: Path, ffprobe_bin: str, op: Operation, name: str, expect: dict[str, Any]
) -> None:
    job = job_for(op)
    result, events = await execute(make_executor(media_root), job)
    assert isinstance(result, CompletedEvent), result
    (output,) = result.outputs
    path = media_root / "jobs" / job.id / name
    assert (output.name, output.url) == (name, f"/jobs/{job.id}/outputs/{name}")
    assert output.size == path.stat().st_size > 0
    assert job_files(media_root, job.id) == [name]  # the temporary name is gone
    assert result.processing_time_s > 0
    check_streams(ffprobe(ffprobe_bin, path), result, expect)
    check_progress(events, thumbnail=name.startswith("thumbnail"))


async def test_probe_operation_returns_metadata_only(media_root: Path) -> None:
    job = job_for(ProbeOp())
    result, _ = await execute(make_executor(media_root), job)
    assert isinstance(result, CompletedEvent), result
    assert result.outputs == ()
    assert result.metadata is not None
    assert result.metadata.duration == pytest.approx(3.0, abs=0.1)
    assert [s.codec_type for s in result.metadata.streams] == ["video", "audio"]
    assert result.metadata.streams[0].fps == 25.0
    assert job_files(media_root, job.id) == []


async def test_public_url_prefix(media_root: Path) -> None:
    executor = make_executor(media_root, public_http_url="https://media.example.com/ffpool/")
    job = job_for(ThumbnailOp())
    result, _ = await execute(executor, job)
    assert isinstance(result, CompletedEvent), result
    expected = f"https://media.example.com/ffpool/jobs/{job.id}/outputs/thumbnail.jpg"
    assert result.outputs[0].url == expected


# Stands in for an FFmpeg whose encoder holds its main loop: one progress block, then silence.
QUIET_FFMPEG = """
import sys, time
def block(us, state):
    sys.stdout.write(f"frame=1\\nout_time_us={us}\\nspeed=1x\\nprogress={state}\\n")
    sys.stdout.flush()
sys.stderr.write("Input #0, mov, from 'x':\\n  Duration: 00:00:03.00, start: 0.000000\\n")
sys.stderr.flush()
block(1500000, "continue")
time.sleep(2.5)
block(3000000, "end")
open(sys.argv[-1].removeprefix("file:"), "wb").write(b"not really a video")
"""


async def test_progress_keeps_coming_while_ffmpeg_is_quiet(
    media_root: Path, ffprobe_bin: str, tmp_path: Path
) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!{sys.executable}\n{QUIET_FFMPEG}")
    fake.chmod(0o755)
    settings = Settings(_env_file=None, media_root=media_root)
    executor = Executor(settings, LocalStorage(media_root), Binaries(str(fake), ffprobe_bin))
    stamps: list[tuple[float, ProgressEvent]] = []
    job = job_for(TranscodeOp())
    result = await executor.execute(job, lambda e: stamps.append((time.monotonic(), e)))
    assert isinstance(result, CompletedEvent), result
    assert result.metadata is None  # ffprobe cannot read the fake output: still completed
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.0, gaps
    percents = [e.percent for _, e in stamps if e.percent is not None]
    assert len(percents) == len(stamps)
    assert percents.count(50.0) >= 4  # the one real block, repeated through the silence
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
