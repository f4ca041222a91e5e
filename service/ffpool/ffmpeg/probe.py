"""Media metadata: ffprobe's JSON parsed at the boundary, and image headers read directly.

An image output's dimensions come from its first bytes, so a thumbnail's metadata costs no
ffprobe process (the overhead goal in the README: no extra spawns on the hot path).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from ffpool.domain.events import FailureCode, MediaInfo, StreamInfo
from ffpool.ffmpeg import argv, limits, probe_image
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.process import run

MAX_PROBE_OUTPUT: Final = 4 * 1024 * 1024
PROBE_GRACE_S: Final = 1.0

# ffprobe writes most numbers as strings ("3.000000", "N/A") and omits unknown ones.
_Loose = str | int | float | None


class ProbeError(Exception):
    def __init__(self, code: FailureCode, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stderr_tail = stderr_tail


class _Stream(BaseModel):
    model_config = ConfigDict(extra="ignore")

    index: int = 0
    codec_type: str | None = None
    codec_name: str | None = None
    width: _Loose = None
    height: _Loose = None
    r_frame_rate: str | None = None
    avg_frame_rate: str | None = None
    sample_rate: _Loose = None
    channels: _Loose = None
    duration: _Loose = None


class _Format(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format_name: str | None = None
    duration: _Loose = None
    size: _Loose = None
    bit_rate: _Loose = None


class _FFprobeOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    streams: list[_Stream] = []
    format: _Format | None = None


def _float(value: _Loose) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def _int(value: _Loose) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def parse_rate(text: str | None) -> float | None:
    """`25/1` → 25.0, `30000/1001` → 29.97; `0/0`, `N/A` → None."""
    if not text:
        return None
    numerator, _, denominator = text.partition("/")
    num, den = _float(numerator), _float(denominator or "1")
    if num is None or not den:
        return None
    return round(num / den, 3) or None


def _stream(raw: _Stream) -> StreamInfo:
    video = raw.codec_type == "video"
    return StreamInfo(
        index=raw.index,
        codec_type=raw.codec_type,
        codec_name=raw.codec_name,
        width=_int(raw.width),
        height=_int(raw.height),
        fps=(parse_rate(raw.r_frame_rate) or parse_rate(raw.avg_frame_rate)) if video else None,
        sample_rate=_int(raw.sample_rate),
        channels=_int(raw.channels),
        duration=_float(raw.duration),
    )


def parse_ffprobe_json(data: bytes) -> MediaInfo:
    """`ffprobe -show_format -show_streams -of json` output → MediaInfo; ValueError if invalid."""
    try:
        raw = _FFprobeOutput.model_validate_json(data)
    except ValidationError as exc:
        raise ValueError(f"not ffprobe JSON: {exc.error_count()} errors") from exc
    fmt = raw.format or _Format()
    return MediaInfo(
        format_name=fmt.format_name,
        duration=_float(fmt.duration),
        size=_int(fmt.size),
        bit_rate=_int(fmt.bit_rate),
        streams=tuple(_stream(s) for s in raw.streams),
    )


async def probe(
    binaries: Binaries,
    path: Path,
    timeout_s: float,
    *,
    grace_s: float = PROBE_GRACE_S,
    max_pixels: int | None = None,
) -> MediaInfo:
    """Run ffprobe on a local file; ProbeError(INVALID_MEDIA | TIMEOUT | RESOURCE_LIMIT) if it
    cannot. With `max_pixels` (an input's probe), a larger video frame is refused
    (INPUT_REJECTED) without ever being decoded."""
    collected = bytearray()

    def collect(chunk: bytes) -> None:
        if len(collected) + len(chunk) > MAX_PROBE_OUTPUT:
            raise ProbeError(FailureCode.INVALID_MEDIA, "ffprobe output is too large")
        collected.extend(chunk)

    result = await run(
        argv.probe_argv(binaries, path, max_pixels),
        timeout_s=timeout_s,
        grace_s=grace_s,
        on_stdout=collect,
    )
    if result.timed_out:
        raise ProbeError(FailureCode.TIMEOUT, f"ffprobe took longer than {timeout_s:g} s")
    if result.exit_code != 0:
        raise _failure(result.exit_code, result.stderr_tail, max_pixels)
    try:
        info = parse_ffprobe_json(bytes(collected))
    except ValueError as exc:
        raise ProbeError(FailureCode.INVALID_MEDIA, str(exc)) from exc
    if max_pixels is not None and (
        problem := limits.pixel_problem(info, result.stderr_tail, max_pixels)
    ):
        raise ProbeError(FailureCode.INPUT_REJECTED, problem)
    return info


def _failure(exit_code: int, stderr: str, max_pixels: int | None) -> ProbeError:
    if max_pixels is not None and (
        problem := limits.pixel_problem(MediaInfo(), stderr, max_pixels)
    ):
        return ProbeError(FailureCode.INPUT_REJECTED, problem)
    if (limit := limits.limit_failure(exit_code, stderr)) is not None:
        return ProbeError(FailureCode.RESOURCE_LIMIT, limit, stderr)
    return ProbeError(FailureCode.INVALID_MEDIA, "not a readable media file", stderr)


def read_image_info(path: Path) -> MediaInfo | None:
    """Blocking (run it in a thread): the dimensions of a PNG/JPEG/WebP file from its header."""
    with path.open("rb") as f:
        header = f.read(probe_image.MAX_HEADER_BYTES)
        size = f.seek(0, 2)
    dims = probe_image.dimensions(header)
    if dims is None:
        return None
    codec, width, height = dims
    stream = StreamInfo(index=0, codec_type="video", codec_name=codec, width=width, height=height)
    return MediaInfo(format_name="image2", size=size, streams=(stream,))
