"""What every FFmpeg argv list and plan is made of: the plan model, the head and input
arguments, and the whitelists. Shared by argv.py (one process per operation) and ladder.py
(the renditions of an adaptive-bitrate package), so neither imports the other both ways.
"""

from __future__ import annotations

import enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ffpool.ffmpeg import limits
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.codecs import num
from ffpool.settings import Settings

# Demuxers FFmpeg may use on an input. `-protocol_whitelist file` alone does not stop an HLS
# playlist or an ffconcat script (auto-detected by content, whatever the file is called) from
# opening other local files through the `file` protocol (CVE-2016-1897/1898 family), and the
# `imf`/`dash` manifests do the same; so only demuxers that read their one file are allowed.
FORMAT_WHITELIST = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,m4v,h264,hevc,ivf,obu,"
    "asf,mxf,nut,ogg,dv,yuv4mpegpipe,mp3,aac,ac3,eac3,flac,wav,w64,aiff,caf,amr,wv,gif,image2,"
    "png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe"
)
# Only the local file protocol, for the input and anything a demuxer opens from it.
PROTOCOL_WHITELIST = "file"


class Tool(enum.StrEnum):
    FFMPEG = "ffmpeg"
    FFPROBE = "ffprobe"


class PlannedOutput(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    temp_path: Path
    final_path: Path
    content_type: str


class FFmpegPlan(BaseModel):
    """One process to run for a job, and what it will leave behind."""

    model_config = ConfigDict(frozen=True)

    tool: Tool
    argv: tuple[str, ...]
    outputs: tuple[PlannedOutput, ...] = ()
    output_dir: Path | None = None
    """A package (ladder): FFmpeg writes an unknown number of files here, a directory of its
    own inside the run's scratch directory; they become the outputs after the run
    (ffmpeg/output_dir.py)."""
    expected_duration_s: float | None = None
    """Output duration known before the run (trim); else the input's, from FFmpeg's stderr."""
    input_seek_s: float = 0.0
    """Input time skipped before the output starts (the input duration counts from here)."""
    probe_output: bool = False
    """Whether the outputs' metadata needs an ffprobe run (not for images: header read)."""
    track_percent: bool = True
    """Whether a percentage means anything (not for a one-frame thumbnail)."""


def file_url(path: Path) -> str:
    """`file:` keeps FFmpeg from reading a protocol or option out of the path itself."""
    if not path.is_absolute():
        raise ValueError(f"not an absolute path: {path}")
    return f"file:{path}"


def whitelists(formats: str = FORMAT_WHITELIST) -> list[str]:
    return ["-protocol_whitelist", PROTOCOL_WHITELIST, "-format_whitelist", formats]


def pixel_limit(max_pixels: int | None) -> list[str]:
    if max_pixels is None:
        return []
    return ["-max_pixels", str(limits.decoder_max_pixels(max_pixels))]


def head(binaries: Binaries, settings: Settings) -> list[str]:
    return [
        *binaries.prefix,
        binaries.ffmpeg,
        *["-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1"],
        *("-stats_period", num(settings.progress_interval_seconds)),
        *filter_threads(settings),
    ]


def filter_threads(settings: Settings) -> list[str]:
    """FFMPEG_THREADS bounds the filters' threads too (global options), not only the
    encoder's: a run meant to use N cores uses N."""
    if not settings.ffmpeg_threads:
        return []
    n = str(settings.ffmpeg_threads)
    return ["-filter_threads", n, "-filter_complex_threads", n]


def input_args(src: Path, settings: Settings, seek_s: float = 0.0) -> list[str]:
    # -ss before -i: a fast keyframe seek in the demuxer instead of decoding up to the time.
    seek = ["-ss", num(seek_s)] if seek_s > 0 else []
    return [
        *seek,
        *pixel_limit(settings.max_input_pixels),
        *threads(settings),  # before -i: the decoder's threads
        *whitelists(),
        "-i",
        file_url(src),
    ]


def threads(settings: Settings) -> list[str]:
    return ["-threads", str(settings.ffmpeg_threads)] if settings.ffmpeg_threads else []
