"""The job model: typed inputs and operations, shared by every backend and the protocol.

Every user-supplied value is an enum or a bounded number, or a string checked against a strict
pattern; nothing here is ever pasted into an FFmpeg argument or filtergraph as text.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

MAX_MEDIA_SECONDS = 7 * 24 * 3600.0

JobId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
UploadId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
# A relative path under MEDIA_ROOT: no NUL, no leading "-" or "/", no backslashes. Traversal and
# symlink escapes are refused again when the path is resolved against the real filesystem.
MediaPath = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./ -]*$"),
]
# Who a job belongs to (auth/tokens.py maps API tokens to tenants); a DNS-label-like name, so it
# is safe in paths, metric labels and log fields. Without authentication every job is the
# anonymous tenant's.
TenantName = Annotated[
    str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
]
ANONYMOUS_TENANT = "anonymous"
# Numbers are strict: `true` or "5" is not a priority or a size.
Priority = Annotated[int, Field(ge=0, le=9, strict=True)]


def new_job_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- inputs ---------------------------------------------------------------------------------


class PathInput(Strict):
    kind: Literal["path"] = "path"
    path: MediaPath


class UploadInput(Strict):
    kind: Literal["upload"] = "upload"
    upload_id: UploadId


class UrlInput(Strict):
    kind: Literal["url"] = "url"
    url: Annotated[HttpUrl, Field(max_length=2048)]


# An object in S3-compatible storage: `s3://bucket/key`. Bucket names follow S3's rules
# (3-63 lowercase letters, digits, dots, hyphens); keys are printable, without "..", "//",
# backslashes or a leading "/" (storage/objects.py parses and checks them again).
S3Url = Annotated[
    str,
    StringConstraints(
        min_length=8,
        max_length=1100,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9_.][A-Za-z0-9_./=+-]*$",
    ),
]
# Where outputs go: `s3://bucket/prefix/` (a trailing "/" optional; the bucket alone is allowed).
S3Prefix = Annotated[
    str,
    StringConstraints(
        min_length=8,
        max_length=1000,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/([A-Za-z0-9_.][A-Za-z0-9_./=+-]*)?)?$",
    ),
]
# Where a job's state changes are POSTed (webhooks/): http(s) only, checked by the same SSRF
# guard as URL inputs when the job is submitted and again on every delivery.
CallbackUrl = Annotated[HttpUrl, Field(max_length=2048)]


class S3Input(Strict):
    """An object read with the pool's credentials, never the client's; only from the
    buckets/prefixes the tenant is allowed to read (docs/storage.md)."""

    kind: Literal["s3"] = "s3"
    url: S3Url


JobInput = Annotated[PathInput | UploadInput | UrlInput | S3Input, Field(discriminator="kind")]


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

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
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
    ProbeOp | ThumbnailOp | TranscodeOp | ExtractAudioOp | TrimOp, Field(discriminator="op")
]


class JobSpec(Strict):
    """What a client asks for: one input, one operation."""

    input: JobInput
    operation: Operation
    output: S3Prefix | None = None
    """Upload the outputs under `<output>/<job id>/` (else the pool's default, OUTPUT_URL)."""
    callback: CallbackUrl | None = None
    """POST every state change here, signed (docs/webhooks.md); else the tenant's default."""


class Job(Strict):
    """A job as it travels through a backend (the AMQP body in the RabbitMQ backend)."""

    id: JobId = Field(default_factory=new_job_id)
    spec: JobSpec
    priority: Priority = 0
    idempotency_key: IdempotencyKey | None = None
    created_at: datetime = Field(default_factory=utcnow)
    tenant: TenantName = ANONYMOUS_TENANT
