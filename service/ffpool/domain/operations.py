"""The operations a job can ask for: typed, every value an enum, a bounded number or a model.

Nothing here is ever pasted into an FFmpeg argument or filtergraph as text (ffmpeg/argv.py
compiles them). `jobs.py` re-exports these names: the job model is imported from there.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_MEDIA_SECONDS = 7 * 24 * 3600.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- operations -----------------------------------------------------------------------------


class ImageFormat(enum.StrEnum):
    JPG = "jpg"
    PNG = "png"
    WEBP = "webp"


class Container(enum.StrEnum):
    MP4 = "mp4"
    WEBM = "webm"
    MKV = "mkv"
    MOV = "mov"


class VideoCodec(enum.StrEnum):
    H264 = "h264"
    H265 = "h265"
    VP9 = "vp9"
    COPY = "copy"
    NONE = "none"


class AudioCodec(enum.StrEnum):
    AAC = "aac"
    OPUS = "opus"
    MP3 = "mp3"
    COPY = "copy"
    NONE = "none"


class AudioFormat(enum.StrEnum):
    MP3 = "mp3"
    AAC = "aac"
    OPUS = "opus"
    FLAC = "flac"
    WAV = "wav"


class Preset(enum.StrEnum):
    ULTRAFAST = "ultrafast"
    SUPERFAST = "superfast"
    VERYFAST = "veryfast"
    FASTER = "faster"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    SLOWER = "slower"
    VERYSLOW = "veryslow"


class TrimMode(enum.StrEnum):
    COPY = "copy"
    REENCODE = "reencode"


Seconds = Annotated[float, Field(ge=0, le=MAX_MEDIA_SECONDS, allow_inf_nan=False, strict=True)]
Width = Annotated[int, Field(ge=16, le=7680, strict=True)]
Height = Annotated[int, Field(ge=16, le=4320, strict=True)]
Kbps = Annotated[int, Field(ge=8, le=100_000, strict=True)]
AudioKbps = Annotated[int, Field(ge=8, le=512, strict=True)]
# One frame at 10 fps: anything shorter is an empty output.
MIN_TRIM_SECONDS = 0.1


class ProbeOp(Strict):
    op: Literal["probe"] = "probe"


class ThumbnailOp(Strict):
    op: Literal["thumbnail"] = "thumbnail"
    time: Seconds = 0.0
    width: Width | None = None
    height: Height | None = None
    format: ImageFormat = ImageFormat.JPG


# Which codecs each container can carry (FFmpeg muxer support, kept to the common cases).
CONTAINER_VIDEO: dict[Container, frozenset[VideoCodec]] = {
    Container.MP4: frozenset({VideoCodec.H264, VideoCodec.H265, VideoCodec.VP9}),
    Container.MOV: frozenset({VideoCodec.H264, VideoCodec.H265}),
    Container.MKV: frozenset({VideoCodec.H264, VideoCodec.H265, VideoCodec.VP9}),
    Container.WEBM: frozenset({VideoCodec.VP9}),
}
CONTAINER_AUDIO: dict[Container, frozenset[AudioCodec]] = {
    Container.MP4: frozenset({AudioCodec.AAC, AudioCodec.MP3, AudioCodec.OPUS}),
    Container.MOV: frozenset({AudioCodec.AAC, AudioCodec.MP3}),
    Container.MKV: frozenset({AudioCodec.AAC, AudioCodec.MP3, AudioCodec.OPUS}),
    Container.WEBM: frozenset({AudioCodec.OPUS}),
}


class ChunkMode(enum.StrEnum):
    ALWAYS = "always"
    """Split whenever the input lasts longer than one chunk."""
    AUTO = "auto"
    """Split only when it pays: the input lasts at least two chunks and more than one job slot
    consumes the queue (docs/chunks.md)."""


ChunkSeconds = Annotated[float, Field(ge=2, le=3600, allow_inf_nan=False, strict=True)]
# A chunk count bound: cut points, sub-jobs and the join's list stay small (docs/chunks.md).
MAX_CHUNKS = 256


class Chunking(Strict):
    """Encode the video in chunks cut at keyframes, each a sub-job any worker may run, joined
    without re-encoding; the audio is encoded once, whole (docs/chunks.md)."""

    mode: ChunkMode = ChunkMode.ALWAYS
    chunk_seconds: ChunkSeconds = 30.0


class TranscodeOp(Strict):
    op: Literal["transcode"] = "transcode"
    container: Container = Container.MP4
    video_codec: VideoCodec = VideoCodec.H264
    audio_codec: AudioCodec = AudioCodec.AAC
    crf: Annotated[int, Field(ge=0, le=63, strict=True)] | None = None
    video_bitrate_kbps: Kbps | None = None
    audio_bitrate_kbps: AudioKbps = 128
    height: Height | None = None
    fps: Annotated[float, Field(ge=1, le=120, allow_inf_nan=False, strict=True)] | None = None
    preset: Preset = Preset.VERYFAST
    chunking: Chunking | None = None
    """Split the video encode across workers (docs/chunks.md)."""

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        if self.chunking is not None:
            _check_chunkable(self)
        if self.crf is not None and self.video_bitrate_kbps is not None:
            raise ValueError("give crf or video_bitrate_kbps, not both")
        if self.video_codec is VideoCodec.NONE and self.audio_codec is AudioCodec.NONE:
            raise ValueError("an output needs at least one of video or audio")
        re_encoding = self.video_codec not in (VideoCodec.COPY, VideoCodec.NONE)
        if not re_encoding and (self.height or self.fps or self.crf or self.video_bitrate_kbps):
            raise ValueError("height, fps, crf and video_bitrate_kbps need a re-encoded video")
        if self.video_codec in (VideoCodec.H264, VideoCodec.H265) and (self.crf or 0) > 51:
            raise ValueError("crf for h264/h265 is 0..51")
        if re_encoding and self.video_codec not in CONTAINER_VIDEO[self.container]:
            raise ValueError(f"{self.container} cannot carry {self.video_codec} video")
        copy_or_none = (AudioCodec.COPY, AudioCodec.NONE)
        if self.audio_codec not in copy_or_none and (
            self.audio_codec not in CONTAINER_AUDIO[self.container]
        ):
            raise ValueError(f"{self.container} cannot carry {self.audio_codec} audio")
        return self


def _check_chunkable(op: TranscodeOp) -> None:
    if op.video_codec in (VideoCodec.COPY, VideoCodec.NONE):
        raise ValueError("chunking needs a re-encoded video (video_codec other than copy/none)")
    if op.fps is not None:
        # A frame-rate change decides frame by frame across the whole timeline: chunk by
        # chunk it could drop or repeat a frame at a boundary.
        raise ValueError("chunking keeps the input's frame rate: leave fps unset")


class H264Profile(enum.StrEnum):
    BASELINE = "baseline"
    MAIN = "main"
    HIGH = "high"


class PackageFormat(enum.StrEnum):
    HLS = "hls"
    DASH = "dash"


class HlsSegmentType(enum.StrEnum):
    FMP4 = "fmp4"
    TS = "ts"


# At most this many video renditions in one ladder (docs/ladders.md).
MAX_RUNGS = 6


class Rendition(Strict):
    """One rung of a ladder: H.264 video at this height (the width follows the input's aspect
    ratio) and bitrate."""

    height: Height
    video_bitrate_kbps: Kbps
    profile: H264Profile | None = None


Rungs = Annotated[tuple[Rendition, ...], Field(min_length=1, max_length=MAX_RUNGS)]


class LadderOp(Strict):
    """An adaptive-bitrate package (HLS and/or DASH) of H.264 renditions and AAC audio, with
    keyframes aligned across renditions (docs/ladders.md)."""

    op: Literal["ladder"] = "ladder"
    renditions: (
        Annotated[tuple[Rendition, ...], Field(min_length=1, max_length=MAX_RUNGS)] | None
    ) = None
    """None: the default ladder, cut to the input's height (never upscaled)."""
    audio_bitrates_kbps: Annotated[tuple[AudioKbps, ...], Field(max_length=3)] = (128,)
    """One AAC rendition per bitrate; empty: no audio."""
    segment_seconds: Annotated[float, Field(ge=1, le=30, allow_inf_nan=False, strict=True)] = 4.0
    formats: Annotated[tuple[PackageFormat, ...], Field(min_length=1, max_length=2)] = (
        PackageFormat.HLS,
    )
    hls_segment_type: HlsSegmentType = HlsSegmentType.FMP4
    preset: Preset = Preset.VERYFAST
    chunking: Chunking | None = None
    """Split the renditions' encode across workers (docs/chunks.md)."""

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        if len(set(self.formats)) != len(self.formats):
            raise ValueError("formats must not repeat")
        if self.renditions is not None:
            heights = [r.height for r in self.renditions]
            if len(set(heights)) != len(heights):
                raise ValueError("renditions must have different heights")
        if len(set(self.audio_bitrates_kbps)) != len(self.audio_bitrates_kbps):
            raise ValueError("audio_bitrates_kbps must not repeat")
        if PackageFormat.DASH in self.formats and self.hls_segment_type is HlsSegmentType.TS:
            raise ValueError("DASH needs fmp4 segments: hls_segment_type ts is HLS only")
        return self


class ExtractAudioOp(Strict):
    op: Literal["extract_audio"] = "extract_audio"
    format: AudioFormat = AudioFormat.MP3
    bitrate_kbps: AudioKbps = 192


class TrimOp(Strict):
    op: Literal["trim"] = "trim"
    start: Seconds = 0.0
    duration: Annotated[
        float, Field(ge=MIN_TRIM_SECONDS, le=MAX_MEDIA_SECONDS, allow_inf_nan=False, strict=True)
    ]
    mode: TrimMode = TrimMode.COPY


Operation = Annotated[
    ProbeOp | ThumbnailOp | TranscodeOp | ExtractAudioOp | TrimOp | LadderOp,
    Field(discriminator="op"),
]
