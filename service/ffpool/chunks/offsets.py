"""How much later than the audio an input's video starts: pure, plus the ffprobe argv.

A single run keeps that gap (FFmpeg subtracts the file's start time from every stream, so a
video starting 0.5 s after the audio still starts 0.5 s into the output). The chunks of a
split start at zero, so the join puts the gap back (chunks/joining.py); without it a phone
recording or an MPEG-TS capture whose video starts late would play out of sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from ffpool.chunks.plan import seconds_of
from ffpool.ffmpeg.argv_base import file_url, whitelists
from ffpool.ffmpeg.binaries import Binaries

# A gap larger than this is not a start offset but a broken file: left alone.
MAX_OFFSET_S: Final = 60.0


def start_times_argv(binaries: Binaries, src: Path) -> tuple[str, ...]:
    """ffprobe of the container's and each stream's start time (headers only)."""
    return (
        *binaries.prefix,
        binaries.ffprobe,
        *["-v", "error", "-hide_banner"],
        *whitelists(),
        *["-show_entries", "format=start_time:stream=codec_type,start_time", "-of", "json"],
        file_url(src),
    )


class _Stream(BaseModel):
    model_config = ConfigDict(extra="ignore")

    codec_type: str | None = None
    start_time: str | None = None


class _Format(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start_time: str | None = None


class _Probe(BaseModel):
    model_config = ConfigDict(extra="ignore")

    streams: list[_Stream] = []
    format: _Format = _Format()


def video_offset(ffprobe_json: str) -> float:
    """The first video stream's start minus the file's, in seconds; 0 when unknown."""
    try:
        probed = _Probe.model_validate_json(ffprobe_json)
    except ValidationError:
        return 0.0
    video = next((s for s in probed.streams if s.codec_type == "video"), None)
    start = seconds_of(video.start_time) if video is not None else None
    first = seconds_of(probed.format.start_time)
    if start is None or first is None:
        return 0.0
    gap = round(start - first, 6)
    return gap if 0 < gap <= MAX_OFFSET_S else 0.0
