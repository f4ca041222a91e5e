"""Enum → FFmpeg encoder/muxer tables and the codec part of an argv: pure, no I/O."""

from __future__ import annotations

from typing import Final

from ffpool.domain.jobs import (
    AudioCodec,
    AudioFormat,
    Container,
    ImageFormat,
    Preset,
    TranscodeOp,
    VideoCodec,
)

MUXERS: Final = {
    Container.MP4: "mp4",
    Container.MOV: "mov",
    Container.MKV: "matroska",
    Container.WEBM: "webm",
}

IMAGE_ENCODERS: Final[dict[ImageFormat, tuple[str, ...]]] = {
    # -q:v 2: near-best JPEG quality; a thumbnail is small either way.
    ImageFormat.JPG: ("-c:v", "mjpeg", "-q:v", "2"),
    ImageFormat.PNG: ("-c:v", "png"),
    ImageFormat.WEBP: ("-c:v", "libwebp"),
}

# format -> (encoder, muxer, file extension, lossless: no bitrate option)
AUDIO_FORMATS: Final[dict[AudioFormat, tuple[str, str, str, bool]]] = {
    AudioFormat.MP3: ("libmp3lame", "mp3", "mp3", False),
    AudioFormat.AAC: ("aac", "adts", "aac", False),
    AudioFormat.OPUS: ("libopus", "opus", "opus", False),
    AudioFormat.FLAC: ("flac", "flac", "flac", True),
    AudioFormat.WAV: ("pcm_s16le", "wav", "wav", True),
}

VIDEO_ENCODERS: Final = {
    VideoCodec.H264: "libx264",
    VideoCodec.H265: "libx265",
    VideoCodec.VP9: "libvpx-vp9",
}
# Each encoder's own default quality, written out so outputs do not change with its version.
DEFAULT_CRF: Final = {VideoCodec.H264: 23, VideoCodec.H265: 28, VideoCodec.VP9: 32}

AUDIO_ENCODERS: Final = {
    AudioCodec.AAC: "aac",
    AudioCodec.OPUS: "libopus",
    AudioCodec.MP3: "libmp3lame",
}

# libvpx has no x264-style presets: speed is its deadline plus cpu-used (0 slowest). The three
# fastest presets use the realtime deadline, the rest "good" (cpu-used 0..5).
# https://trac.ffmpeg.org/wiki/Encode/VP9
VP9_SPEED: Final = {
    Preset.ULTRAFAST: ("realtime", 8),
    Preset.SUPERFAST: ("realtime", 7),
    Preset.VERYFAST: ("realtime", 6),
    Preset.FASTER: ("good", 5),
    Preset.FAST: ("good", 4),
    Preset.MEDIUM: ("good", 3),
    Preset.SLOW: ("good", 2),
    Preset.SLOWER: ("good", 1),
    Preset.VERYSLOW: ("good", 0),
}

_QUICKTIME = (Container.MP4, Container.MOV)
# The largest output sides (domain/jobs.py Width and Height, docs/protocol.md): a side the job
# does not give is bounded by these, whatever the input's aspect ratio.
MAX_WIDTH: Final = 7680
MAX_HEIGHT: Final = 4320


def num(value: float) -> str:
    """A validated number as FFmpeg reads it: fixed point, never an exponent."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def thumbnail_scale(width: int | None, height: int | None) -> str | None:
    """Scale filter for a thumbnail: it fits inside the box of the given sides, a missing side
    being the documented maximum, never following the input's aspect ratio past it (a 200x16
    clip at height 2000 would be 25000 wide)."""
    if not width and not height:
        return None
    return _fit(width or MAX_WIDTH, height or MAX_HEIGHT)


def _fit(width: int, height: int, extra: str = "") -> str:
    return f"scale=w={width}:h={height}:force_original_aspect_ratio=decrease{extra}"


def transcode_args(op: TranscodeOp) -> list[str]:
    """Stream maps, codecs, filters and container flags of a transcode (after the input)."""
    video = op.video_codec is not VideoCodec.NONE
    audio = op.audio_codec is not AudioCodec.NONE
    # Optional maps: the first video and audio stream if present (an audio-only input still
    # transcodes); other streams (subtitles, data) may not fit the target container.
    maps = [*(["-map", "0:v:0?"] if video else []), *(["-map", "0:a:0?"] if audio else [])]
    flags = ["-movflags", "+faststart"] if op.container in _QUICKTIME else []
    return [*maps, *_video_args(op), *_audio_args(op), *flags]


def _video_args(op: TranscodeOp) -> list[str]:
    codec = op.video_codec
    if codec is VideoCodec.NONE:
        return []
    if codec is VideoCodec.COPY:
        return ["-c:v", "copy"]
    args = ["-c:v", VIDEO_ENCODERS[codec], *_speed(op), *_rate_control(op)]
    # 4:2:0 8-bit: what every player decodes, whatever the input's pixel format.
    args += ["-pix_fmt", "yuv420p"]
    if codec is VideoCodec.H265:
        args += ["-x265-params", "log-level=error"]
        if op.container in _QUICKTIME:
            # Apple players only accept HEVC in MP4/MOV tagged hvc1.
            args += ["-tag:v", "hvc1"]
    filters = _video_filters(op)
    return [*args, *(["-vf", filters] if filters else [])]


def _speed(op: TranscodeOp) -> list[str]:
    if op.video_codec is VideoCodec.VP9:
        deadline, cpu_used = VP9_SPEED[op.preset]
        return ["-deadline", deadline, "-cpu-used", str(cpu_used), "-row-mt", "1"]
    return ["-preset", op.preset.value]


def _rate_control(op: TranscodeOp) -> list[str]:
    if op.video_bitrate_kbps is not None:
        return ["-b:v", f"{op.video_bitrate_kbps}k"]
    crf = op.crf if op.crf is not None else DEFAULT_CRF[op.video_codec]
    # libvpx-vp9 is in constant-quality mode only with a zero target bitrate.
    zero_bitrate = ["-b:v", "0"] if op.video_codec is VideoCodec.VP9 else []
    return ["-crf", str(crf), *zero_bitrate]


def _video_filters(op: TranscodeOp) -> str:
    filters = []
    if op.height is not None:
        # The width follows the aspect ratio up to the documented maximum (a thin input
        # would otherwise give a 12500-pixel-wide output); both sides even, because 4:2:0
        # needs even dimensions.
        filters.append(_fit(MAX_WIDTH, op.height - op.height % 2, ":force_divisible_by=2"))
    if op.fps is not None:
        filters.append(f"fps={num(op.fps)}")
    return ",".join(filters)


def _audio_args(op: TranscodeOp) -> list[str]:
    codec = op.audio_codec
    if codec is AudioCodec.NONE:
        return []
    if codec is AudioCodec.COPY:
        return ["-c:a", "copy"]
    return ["-c:a", AUDIO_ENCODERS[codec], "-b:a", f"{op.audio_bitrate_kbps}k"]
