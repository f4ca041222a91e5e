"""What happens to a job, as events, and the job record folded from them.

Backends publish these events (in-process, or on the RabbitMQ events exchange); the WebSocket
server forwards them to clients as they are. `apply` folds an event into a record, so any server
that sees the events can answer "what is the state of job X" without a database.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ffpool.domain.jobs import Job, JobId, Priority, TenantName, utcnow


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class FailureCode(enum.StrEnum):
    INPUT_NOT_FOUND = "input_not_found"
    INPUT_REJECTED = "input_rejected"
    INPUT_TOO_LARGE = "input_too_large"
    DOWNLOAD_FAILED = "download_failed"
    INVALID_MEDIA = "invalid_media"
    FFMPEG_ERROR = "ffmpeg_error"
    OUTPUT_TOO_LARGE = "output_too_large"
    TIMEOUT = "timeout"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    EXPIRED = "expired"
    QUOTA_EXCEEDED = "quota_exceeded"
    RESOURCE_LIMIT = "resource_limit"
    STORAGE_ERROR = "storage_error"
    INTERNAL_ERROR = "internal_error"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: JobId
    at: datetime = Field(default_factory=utcnow)


class StreamInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    codec_type: str | None = None
    codec_name: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration: float | None = None


class MediaInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_name: str | None = None
    duration: float | None = None
    size: int | None = None
    bit_rate: int | None = None
    streams: tuple[StreamInfo, ...] = ()
    streams_truncated: bool = False
    """More streams than these (bounds.py MAX_STREAMS) were found; the rest are left out."""


class OutputFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    size: int
    content_type: str
    url: str
    """Where to download it: the server's signed link, or (object storage) a presigned link."""
    location: str | None = None
    """`s3://bucket/key` when the output was uploaded to object storage (docs/storage.md)."""
    sha256: str | None = None
    """Base64 SHA-256 of the object, verified by the storage on upload (object storage)."""


class StateEvent(Event):
    """A state change; also the snapshot a `subscribe` gets first."""

    type: Literal["state"] = "state"
    state: JobState
    operation: str
    priority: Priority = 0
    attempt: int = 1
    worker: str | None = None
    tenant: TenantName | None = None
    """Whose job it is, so every server's cache can scope it (ffpool/backends/tenancy.py); a client
    only ever sees its own jobs' events, so this is never another tenant's name."""

    @classmethod
    def of(
        cls,
        job: Job,
        state: JobState,
        *,
        attempt: int = 1,
        worker: str | None = None,
        at: datetime | None = None,
    ) -> StateEvent:
        """`job` entering `state` (now, unless `at`), with what every server's record of it
        needs."""
        return cls(
            job_id=job.id,
            at=at or utcnow(),
            state=state,
            operation=job.spec.operation.op,
            priority=job.priority,
            attempt=attempt,
            worker=worker,
            tenant=job.tenant,
        )


class ProgressEvent(Event):
    type: Literal["progress"] = "progress"
    percent: float | None = None
    out_time_s: float = 0.0
    speed: float | None = None
    eta_s: float | None = None
    frame: int | None = None
    fps: float | None = None


class CompletedEvent(Event):
    type: Literal["completed"] = "completed"
    outputs: tuple[OutputFile, ...] = ()
    processing_time_s: float
    metadata: MediaInfo | None = None
    input_bytes: int | None = None
    """The input's size as the worker read it (the local file, once uploaded, found or
    downloaded); None from a run that did not read one (docs/monitoring.md)."""


class FailedEvent(Event):
    type: Literal["failed"] = "failed"
    code: FailureCode
    message: str
    stderr_tail: str = ""


class CancelledEvent(Event):
    type: Literal["cancelled"] = "cancelled"
    reason: str = "cancelled by client"


JobEvent = Annotated[
    StateEvent | ProgressEvent | CompletedEvent | FailedEvent | CancelledEvent,
    Field(discriminator="type"),
]


class JobRecord(BaseModel):
    """Everything known about a job: what `GET /jobs/{id}` returns."""

    model_config = ConfigDict(frozen=True)

    job_id: JobId
    state: JobState
    operation: str
    priority: Priority = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = 1
    worker: str | None = None
    progress: ProgressEvent | None = None
    result: CompletedEvent | None = None
    failure: FailedEvent | None = None
    cancel: CancelledEvent | None = None
    truncated: bool = False
    """Parts of this record were cut to fit MAX_RECORD_BYTES (bounds.py)."""
    tenant: TenantName | None = None
    """Whose job it is; None when not known (yet): such a record is shown to no tenant
    (a server that saw only a job's outcome learns the tenant from its files or a peer)."""

    @classmethod
    def queued(cls, job: Job) -> JobRecord:
        return cls(
            job_id=job.id,
            state=JobState.QUEUED,
            operation=job.spec.operation.op,
            priority=job.priority,
            created_at=job.created_at,
            tenant=job.tenant,
        )

    def snapshot(self) -> StateEvent:
        return StateEvent(
            job_id=self.job_id,
            state=self.state,
            operation=self.operation,
            priority=self.priority,
            attempt=self.attempt,
            worker=self.worker,
            tenant=self.tenant,
        )

    def terminal_event(self) -> CompletedEvent | FailedEvent | CancelledEvent | None:
        return self.result or self.failure or self.cancel


def apply(
    record: JobRecord,
    event: StateEvent | ProgressEvent | CompletedEvent | FailedEvent | CancelledEvent,
) -> JobRecord:
    """Fold one event into a record. A terminal record never changes again (late or duplicate
    events from an at-least-once backend are ignored)."""
    if record.state.terminal:
        return record
    match event:
        case StateEvent():
            started = event.at if event.state is JobState.RUNNING else record.started_at
            return record.model_copy(
                update={
                    "state": event.state,
                    "attempt": event.attempt,
                    "worker": event.worker,
                    "started_at": started,
                    "tenant": record.tenant or event.tenant,
                }
            )
        case ProgressEvent():
            return record.model_copy(update={"progress": event})
        case CompletedEvent():
            return record.model_copy(
                update={"state": JobState.COMPLETED, "result": event, "finished_at": event.at}
            )
        case FailedEvent():
            return record.model_copy(
                update={"state": JobState.FAILED, "failure": event, "finished_at": event.at}
            )
        case CancelledEvent():
            return record.model_copy(
                update={"state": JobState.CANCELLED, "cancel": event, "finished_at": event.at}
            )
