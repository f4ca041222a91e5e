"""What every argv test builds from: fixed binaries, paths and settings, and the argv parts
every FFmpeg plan shares."""

from __future__ import annotations

from pathlib import Path

from ffpool.domain.jobs import Operation
from ffpool.ffmpeg.argv import FORMAT_WHITELIST, FFmpegPlan, build_plan
from ffpool.ffmpeg.binaries import Binaries
from ffpool.settings import Settings

BIN = Binaries(ffmpeg="/opt/ff/ffmpeg", ffprobe="/opt/ff/ffprobe")
SRC = Path("/media/clips/in.mp4")
JOB_DIR = Path("/media/jobs/0123456789abcdef0123456789abcdef")
SETTINGS = Settings(_env_file=None, max_output_bytes=1_000_000, progress_interval_seconds=0.5)
HEAD = [
    "/opt/ff/ffmpeg",
    "-hide_banner",
    "-nostdin",
    "-y",
    "-nostats",
    "-progress",
    "pipe:1",
    "-stats_period",
    "0.5",
]
# Decoders refuse frames over twice MAX_INPUT_PIXELS (padded sizes: ffmpeg/limits.py).
MAX_PIXELS = ["-max_pixels", str(2 * SETTINGS.max_input_pixels)]
INPUT = [
    *MAX_PIXELS,
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    FORMAT_WHITELIST,
    "-i",
    f"file:{SRC}",
]


def tail(muxer: str, name: str) -> list[str]:
    return [
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-fs",
        "1000000",
        "-f",
        muxer,
        f"file:{JOB_DIR}/.{name}.part",
    ]


def plan(op: Operation, src: Path = SRC, s: Settings = SETTINGS) -> FFmpegPlan:
    return build_plan(op, src, JOB_DIR, BIN, s)
