"""Where a video is cut into chunks: keyframes in, cut points out. Pure, no I/O.

A chunk starts on a keyframe of the input's first video stream, so a stream copy can cut it
there and its encode needs nothing from the chunk before (docs/chunks.md). Cut points are the
keyframes' packet indices (the segment muxer counts packets: chunks/argv.py `cut_argv`), and
chunks last about `chunk_seconds` each, never more than `max_chunks` of them.
"""

from __future__ import annotations

import bisect
import math
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# ffprobe's JSON for the packets of one video stream: about 45 bytes a packet (`-of json=c=1`),
# so this is some 1.5 million packets (over 16 hours at 25 fps). Anything larger is refused
# rather than parsed.
MAX_KEYFRAMES_JSON_BYTES: Final = 64 * 1024 * 1024
_IN_NAME: Final = "in-{:04d}.mkv"
_OUT_NAME: Final = "out-{:04d}.mkv"
_OUT_RUNG_NAME: Final = "out-{:04d}-r{}.mkv"


class Keyframe(BaseModel):
    model_config = ConfigDict(frozen=True)

    packet: int = Field(ge=0)
    """Index of the packet among the video stream's packets, in stream (decode) order."""
    time_s: float
    """Its presentation time in the input (seconds)."""


class _Packet(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pts_time: str | None = None
    flags: str = ""


class _Packets(BaseModel):
    model_config = ConfigDict(extra="ignore")

    packets: list[_Packet] = []


def parse_keyframes(ffprobe_json: str) -> list[Keyframe]:
    """`ffprobe -show_entries packet=pts_time,flags -of json` (chunks/argv.py
    `keyframes_argv`) → the keyframes; ValueError when too large or not that JSON. A packet
    without a time still counts in the indices (the segment muxer counts it too)."""
    if len(ffprobe_json) > MAX_KEYFRAMES_JSON_BYTES:
        raise ValueError("ffprobe's packet list is too large")
    try:
        parsed = _Packets.model_validate_json(ffprobe_json)
    except ValidationError as exc:
        raise ValueError(f"not ffprobe packet JSON: {exc.error_count()} errors") from None
    times = [seconds_of(packet.pts_time) for packet in parsed.packets]
    # The smallest time of the packets after each one (decode order): a keyframe followed
    # by a packet shown before it opens an open GOP, whose leading frames refer to the
    # keyframe before: no clean cut point for a stream copy (docs/chunks.md).
    later_min = [math.inf] * (len(times) + 1)
    for index in range(len(times) - 1, -1, -1):
        here = times[index]
        later_min[index] = min(later_min[index + 1], here if here is not None else math.inf)
    found = []
    for index, packet in enumerate(parsed.packets):
        time_s = times[index]
        if "K" in packet.flags and time_s is not None and later_min[index + 1] >= time_s:
            found.append(Keyframe(packet=index, time_s=time_s))
    return found


def seconds_of(text: str | None) -> float | None:
    """ffprobe's time text in seconds; None for "N/A" or anything not finite."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


class Cut(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int = Field(ge=0)
    start_s: float = Field(ge=0)
    """Start in the input's video timeline (0 = the first keyframe)."""
    duration_s: float = Field(ge=0)
    packet: int = Field(ge=0)
    """The chunk's first video packet (a keyframe's; 0 for the first chunk)."""


class ChunkPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    cuts: tuple[Cut, ...] = Field(min_length=1)
    duration_s: float = Field(ge=0)

    @property
    def count(self) -> int:
        return len(self.cuts)


def _usable(keyframes: list[Keyframe]) -> list[Keyframe]:
    """Sorted by packet, one per packet, times strictly increasing (a keyframe whose time
    goes back is no cut point: the chunks would overlap)."""
    by_packet = {k.packet: k for k in sorted(keyframes, key=lambda k: k.packet)}
    usable: list[Keyframe] = []
    for key in sorted(by_packet.values(), key=lambda k: k.packet):
        if not usable or key.time_s > usable[-1].time_s:
            usable.append(key)
    return usable


def _starts(
    offsets: list[tuple[int, float]], duration_s: float, step: float, most: int
) -> list[tuple[int, float]]:
    """Cut points (packet, offset from the first keyframe; `offsets` sorted by both): each
    the keyframe nearest to `step` after the previous one but more than half a step after."""
    times = [offset for _, offset in offsets]
    chosen = [(0, 0.0)]
    while len(chosen) < most:
        last = chosen[-1][1]
        first = bisect.bisect_right(times, last + step / 2)
        if first == len(times):
            break
        near = bisect.bisect_left(times, last + step, lo=first)
        candidates = [i for i in (near - 1, near) if first <= i < len(times)]
        best = min(candidates, key=lambda i: (abs(times[i] - (last + step)), times[i]))
        chosen.append(offsets[best])
    # No tiny last chunk: a tail shorter than half a step goes with the chunk before it.
    while len(chosen) > 1 and duration_s - chosen[-1][1] < step / 2:
        chosen.pop()
    return chosen


def plan_chunks(
    keyframes: list[Keyframe], duration_s: float, chunk_seconds: float, max_chunks: int
) -> ChunkPlan:
    """Chunks of about `chunk_seconds` (longer when `max_chunks` would not cover
    `duration_s`), cut on `keyframes`; one chunk when there is nothing to split."""
    if chunk_seconds <= 0 or max_chunks < 1:
        raise ValueError("chunk_seconds must be positive and max_chunks at least 1")
    duration_s = max(duration_s, 0.0) if math.isfinite(duration_s) else 0.0
    usable = _usable(keyframes)
    step = max(chunk_seconds, duration_s / max_chunks)
    starts = [(0, 0.0)]
    if usable and duration_s > chunk_seconds:
        origin = usable[0].time_s
        offsets = [(k.packet, k.time_s - origin) for k in usable[1:]]
        offsets = [o for o in offsets if o[1] < duration_s]
        starts = _starts(offsets, duration_s, step, max_chunks)
    ends = [start for _, start in starts[1:]] + [max(duration_s, starts[-1][1])]
    cuts = tuple(
        Cut(index=i, start_s=start, duration_s=end - start, packet=packet)
        for i, ((packet, start), end) in enumerate(zip(starts, ends, strict=True))
    )
    return ChunkPlan(cuts=cuts, duration_s=duration_s)


def input_name(index: int) -> str:
    """The cut video of chunk `index`, as stored (chunks/store.py)."""
    return _IN_NAME.format(_index(index))


def output_name(index: int, rung: int | None = None) -> str:
    """The encoded video of chunk `index` (of one ladder rung), as stored."""
    if rung is None:
        return _OUT_NAME.format(_index(index))
    if not 0 <= rung < 100:
        raise ValueError("not a rung index")
    return _OUT_RUNG_NAME.format(_index(index), rung)


def _index(index: int) -> int:
    if not 0 <= index < 10_000:
        raise ValueError("not a chunk index")
    return index
