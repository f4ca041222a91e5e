"""A ladder's renditions decided from the input's probe, and its limits: pure
(docs/ladders.md). ffmpeg/ladder.py re-exports these names.
"""

from __future__ import annotations

import math
from typing import Final

from pydantic import BaseModel, ConfigDict

from ffpool.domain.events import FailureCode, MediaInfo, StreamInfo
from ffpool.domain.jobs import H264Profile, LadderOp, Rendition
from ffpool.domain.operations import MAX_RUNGS
from ffpool.ffmpeg.outcome import JobFailure

# The default ladder: the 360p-1080p rungs and bitrates of Peer5's production HLS guide, plus
# a 240p rung at half the 360p rate (docs/ladders.md cites both).
DEFAULT_LADDER: Final = (
    Rendition(height=1080, video_bitrate_kbps=5000),
    Rendition(height=720, video_bitrate_kbps=2800),
    Rendition(height=480, video_bitrate_kbps=1400),
    Rendition(height=360, video_bitrate_kbps=800),
    Rendition(height=240, video_bitrate_kbps=400),
)
# All rungs together may not have more pixels per frame than this: the encode's cost grows
# with it. Two 4K frames' worth (docs/ladders.md).
LADDER_MAX_PIXELS: Final = 2 * 3840 * 2160
# The files of one package (segments, init segments, playlists) become one job's outputs,
# each listed in its `completed` event: bounded (docs/ladders.md).
MAX_PACKAGE_FILES: Final = 1000
# A one-rung ladder for an input below the smallest default rung: its bitrate at the
# smallest rung's bits per pixel, never below this.
MIN_SMALL_KBPS: Final = 100


class Rung(BaseModel):
    """One resolved rendition: its exact frame size (both even) and bitrate."""

    model_config = ConfigDict(frozen=True)

    width: int
    height: int
    video_bitrate_kbps: int
    profile: H264Profile | None = None


def _rejected(message: str) -> JobFailure:
    return JobFailure(FailureCode.INPUT_REJECTED, message)


def _video_stream(info: MediaInfo) -> StreamInfo:
    for stream in info.streams:
        if stream.codec_type == "video" and (stream.width or 0) > 0 and (stream.height or 0) > 0:
            return stream
    raise _rejected("a ladder needs a video stream, and the input has none")


def has_audio(info: MediaInfo) -> bool:
    return any(s.codec_type == "audio" for s in info.streams)


def _even(value: float) -> int:
    """H.264 in 4:2:0 needs even sizes: rounded down to even, at least 2."""
    return max(2, int(value) // 2 * 2)


def _rung(rendition: Rendition, src_w: int, src_h: int) -> Rung:
    height = _even(rendition.height)
    width = _even(round(height * src_w / src_h))
    return Rung(
        width=width,
        height=height,
        video_bitrate_kbps=rendition.video_bitrate_kbps,
        profile=rendition.profile,
    )


def _default_renditions(src_h: int) -> tuple[Rendition, ...]:
    kept = tuple(r for r in DEFAULT_LADDER if r.height <= src_h)
    if kept:
        return kept
    # Smaller than the smallest rung: one rung at the input's own height.
    smallest = DEFAULT_LADDER[-1]
    kbps = round(smallest.video_bitrate_kbps * (src_h / smallest.height) ** 2)
    return (Rendition(height=max(16, src_h), video_bitrate_kbps=max(MIN_SMALL_KBPS, kbps)),)


def resolve_rungs(op: LadderOp, info: MediaInfo) -> tuple[Rung, ...]:
    """The renditions to encode, highest first. Raises JobFailure (input_rejected)."""
    video = _video_stream(info)
    src_w, src_h = video.width or 0, video.height or 0
    if op.renditions is None:
        chosen = _default_renditions(src_h)
    else:
        too_tall = sorted(r.height for r in op.renditions if r.height > src_h)
        if too_tall:
            raise _rejected(
                f"renditions may not be taller than the input ({src_h} lines): "
                f"{', '.join(map(str, too_tall))} would be upscaled"
            )
        chosen = op.renditions
    rungs = tuple(sorted((_rung(r, src_w, src_h) for r in chosen), key=lambda r: -r.height))
    if len(rungs) > MAX_RUNGS:
        raise _rejected(f"a ladder has at most {MAX_RUNGS} renditions")
    if len({r.height for r in rungs}) != len(rungs):
        raise _rejected("two renditions have the same height once rounded to even sizes")
    pixels = sum(r.width * r.height for r in rungs)
    if pixels > LADDER_MAX_PIXELS:
        raise _rejected(
            f"the renditions have {pixels} pixels per frame together, over the limit of "
            f"{LADDER_MAX_PIXELS}: use fewer or smaller renditions"
        )
    return rungs


def audio_count(op: LadderOp, info: MediaInfo) -> int:
    """The number of audio renditions: none when the input has no audio."""
    return len(op.audio_bitrates_kbps) if has_audio(info) else 0


def package_file_estimate(op: LadderOp, rungs: int, audios: int, duration_s: float) -> int:
    """An upper estimate of the files a package holds: per rendition and format its segments
    (one more for a short last one and one for audio priming), an init segment and a
    playlist; plus the master playlist and the manifest."""
    renditions = rungs + audios
    segments = math.ceil(max(duration_s, 0.0) / op.segment_seconds) + 2
    return renditions * (segments + 2) + 2


def check_package_size(op: LadderOp, rungs: int, audios: int, info: MediaInfo) -> None:
    """Refuse before encoding a package that would have more than MAX_PACKAGE_FILES files."""
    files = package_file_estimate(op, rungs, audios, info.duration or 0.0)
    if files > MAX_PACKAGE_FILES:
        raise _rejected(
            f"the package would have about {files} files, over the limit of "
            f"{MAX_PACKAGE_FILES}: use a longer segment_seconds or fewer renditions"
        )
