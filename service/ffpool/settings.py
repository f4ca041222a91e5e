"""Service configuration from the environment and an optional `.env` file."""

from __future__ import annotations

import enum
import socket
from pathlib import Path
from typing import Annotated

from pydantic import AnyUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ffpool import names


class BackendKind(enum.StrEnum):
    MEMORY = "memory"
    RABBITMQ = "rabbitmq"


MiB = 1024 * 1024
GiB = 1024 * MiB


class Settings(BaseSettings):
    """Every knob of a server or worker process.

    Limits default to what a single 2-core machine can carry; the operator sets them per pool.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    backend: BackendKind = BackendKind.MEMORY
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@localhost/")
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=256)] = 4

    host: str = "0.0.0.0"  # noqa: S104 - a service; tests and the demo bind 127.0.0.1
    ws_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    public_http_url: AnyUrl | None = None
    """Base URL clients use for downloads; without it `completed` carries relative URLs."""

    media_root: Path = Path("./media")
    ffmpeg_path: str | None = None
    ffprobe_path: str | None = None
    ffmpeg_threads: Annotated[int, Field(ge=0, le=64)] = 0

    job_timeout_seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0
    cancel_grace_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    drain_seconds: Annotated[float, Field(ge=0, le=24 * 3600)] = 30.0
    max_upload_bytes: Annotated[int, Field(ge=1)] = 2 * GiB
    max_output_bytes: Annotated[int, Field(ge=1)] = 4 * GiB
    max_message_bytes: Annotated[int, Field(ge=256, le=16 * MiB)] = 64 * 1024
    max_queued_jobs: Annotated[int, Field(ge=1)] = 10_000
    job_retention_seconds: Annotated[float, Field(ge=0)] = 3600.0
    max_retained_jobs: Annotated[int, Field(ge=1)] = 10_000
    progress_interval_seconds: Annotated[float, Field(gt=0, le=1.0)] = 0.5

    url_fetch_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0
    url_max_bytes: Annotated[int, Field(ge=1)] = 2 * GiB
    url_max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    url_allow_private: bool = False
    """Allow URL inputs on loopback/private/link-local addresses (tests, trusted networks)."""

    # RabbitMQ topology: names and arguments, so each pool can have its own.
    job_exchange: str = names.JOB_EXCHANGE
    job_queue: str = names.JOB_QUEUE
    dlq_queue: str = names.DLQ_QUEUE
    events_exchange: str = names.EVENTS_EXCHANGE
    control_exchange: str = names.CONTROL_EXCHANGE
    queue_message_ttl_ms: Annotated[int, Field(ge=1000)] = 3_600_000
    queue_max_length: Annotated[int, Field(ge=1)] = 10_000
    queue_max_priority: Annotated[int, Field(ge=1, le=9)] = 9
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    broker_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    broker_startup_wait_seconds: Annotated[float, Field(ge=0)] | None = None
    """How long a starting process retries an unreachable broker (with back-off) before it
    gives up. Unset: a worker-only process waits indefinitely (it may start before the broker),
    a process serving clients gives up at once (a clear error beats a silent wait)."""

    instance_name: str = Field(default_factory=socket.gethostname)
    """Names this process's broker connections (the pod name on Kubernetes)."""

    log_level: str = "INFO"

    upload_retention_seconds: Annotated[float, Field(ge=1)] = 86400.0
    """Uploads older than this are deleted (unreferenced or not): disk space stays bounded."""
    max_upload_seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0
    """Wall-clock limit on receiving one upload's body, so a slow client cannot hold it open."""
    job_routing_key: str = names.JOB_ROUTING_KEY
    """Routing key jobs are published and the job queue bound with (a pool may choose its own)."""
