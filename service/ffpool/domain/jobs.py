"""The job model: typed inputs and operations, shared by every backend and the protocol.

Every user-supplied value is an enum or a bounded number, or a string checked against a strict
pattern; nothing here is ever pasted into an FFmpeg argument or filtergraph as text.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, StringConstraints

from ffpool.domain.operations import (
    CONTAINER_AUDIO,
    CONTAINER_VIDEO,
    MAX_CHUNKS,
    MAX_MEDIA_SECONDS,
    MAX_RUNGS,
    MIN_TRIM_SECONDS,
    AudioCodec,
    AudioFormat,
    AudioKbps,
    Chunking,
    ChunkMode,
    ChunkSeconds,
    Container,
    ExtractAudioOp,
    H264Profile,
    Height,
    HlsSegmentType,
    ImageFormat,
    Kbps,
    LadderOp,
    Operation,
    PackageFormat,
    Preset,
    ProbeOp,
    Rendition,
    Seconds,
    Strict,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
    VideoCodec,
    Width,
)

# The operations are defined in operations.py and re-exported: the job model is imported from here.
__all__ = [
    "ANONYMOUS_TENANT",
    "CONTAINER_AUDIO",
    "CONTAINER_VIDEO",
    "MAX_CHUNKS",
    "MAX_MEDIA_SECONDS",
    "MAX_RUNGS",
    "MIN_TRIM_SECONDS",
    "AudioCodec",
    "AudioFormat",
    "AudioKbps",
    "CallbackUrl",
    "ChunkMode",
    "ChunkSeconds",
    "ChunkTask",
    "Chunking",
    "Container",
    "ExtractAudioOp",
    "H264Profile",
    "Height",
    "HlsSegmentType",
    "IdempotencyKey",
    "ImageFormat",
    "Job",
    "JobId",
    "JobInput",
    "JobSpec",
    "Kbps",
    "LadderOp",
    "MediaPath",
    "Operation",
    "PackageFormat",
    "PathInput",
    "Preset",
    "Priority",
    "ProbeOp",
    "Rendition",
    "S3Input",
    "S3Prefix",
    "S3Url",
    "Seconds",
    "Strict",
    "TenantName",
    "ThumbnailOp",
    "TranscodeOp",
    "TrimMode",
    "TrimOp",
    "UploadId",
    "UploadInput",
    "UrlInput",
    "VideoCodec",
    "Width",
    "chunk_job_id",
    "chunkable",
    "chunking_of",
    "new_job_id",
    "utcnow",
]

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


class JobSpec(Strict):
    """What a client asks for: one input, one operation."""

    input: JobInput
    operation: Operation
    output: S3Prefix | None = None
    """Upload the outputs under `<output>/<job id>/` (else the pool's default, OUTPUT_URL)."""
    callback: CallbackUrl | None = None
    """POST every state change here, signed (docs/webhooks.md); else the tenant's default."""


class ChunkTask(Strict):
    """What makes a job a chunk of another (docs/chunks.md): its spec is the parent's, and it
    encodes the parent's piece `index` (source time `start_s` for `duration_s`). Set only by
    the worker that splits the parent, never by a client (clients send a JobSpec)."""

    parent: JobId
    index: Annotated[int, Field(ge=0, lt=MAX_CHUNKS, strict=True)]
    count: Annotated[int, Field(ge=1, le=MAX_CHUNKS, strict=True)]
    start_s: Seconds
    duration_s: Seconds


_CHUNK_NAMESPACE = uuid.UUID("7d0f5b1e-4d0a-4f59-9b57-3c1f1e0c2a11")


def chunk_job_id(parent: str, index: int, split: str = "") -> str:
    """A chunk's id follows from its parent's, the split's (a fresh one each time a parent
    is cut: chunks/coordinator.py) and its index: a copy of a chunk job queued twice is
    recognised by its markers, and a later split never mistakes an earlier one's chunks for
    its own."""
    return uuid.uuid5(_CHUNK_NAMESPACE, f"{parent}/{split}/{index}").hex


def chunkable(op: Operation) -> bool:
    """Whether the operation could be split (docs/chunks.md): a ladder, or a transcode
    that re-encodes the video at the input's frame rate."""
    if isinstance(op, LadderOp):
        return True
    return (
        isinstance(op, TranscodeOp)
        and op.video_codec not in (VideoCodec.COPY, VideoCodec.NONE)
        and op.fps is None
    )


def chunking_of(op: Operation) -> Chunking | None:
    """The operation's chunking request, if it has one."""
    return op.chunking if isinstance(op, TranscodeOp | LadderOp) else None


class Job(Strict):
    """A job as it travels through a backend (the AMQP body in the RabbitMQ backend)."""

    id: JobId = Field(default_factory=new_job_id)
    spec: JobSpec
    priority: Priority = 0
    idempotency_key: IdempotencyKey | None = None
    created_at: datetime = Field(default_factory=utcnow)
    tenant: TenantName = ANONYMOUS_TENANT
    chunk: ChunkTask | None = None
    """Set on a chunk sub-job only (docs/chunks.md)."""
