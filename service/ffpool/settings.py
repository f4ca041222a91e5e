"""Service configuration from the environment and an optional `.env` file."""

from __future__ import annotations

import enum
import socket
from pathlib import Path
from typing import Annotated

from pydantic import AnyUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ffpool.broker_addresses import BrokerAddress, parse_addresses
from ffpool.locations import checked_location
from ffpool.topology import TopologyKnobs, env_variable


class BackendKind(enum.StrEnum):
    MEMORY = "memory"
    RABBITMQ = "rabbitmq"


class StorageKind(enum.StrEnum):
    """Where uploads, outputs and the per-job state records live (docs/storage.md)."""

    FILESYSTEM = "filesystem"
    """MEDIA_ROOT: one machine, or a ReadWriteMany volume shared by a pool's pods."""
    S3 = "s3"
    """S3_BUCKET: no shared volume; each process keeps only a local scratch directory."""


MiB = 1024 * 1024
GiB = 1024 * MiB


class Settings(BaseSettings, TopologyKnobs):
    """Every knob of a server or worker process.

    Limits default to what a single 2-core machine can carry; the operator sets them per pool.
    The RabbitMQ topology's knobs (names and queue arguments, so each pool can have its own)
    come from `TopologyKnobs`, read from the variables named there (JOB_QUEUE,
    QUEUE_MAX_PRIORITY, ...): `Topology.from_settings` turns them into the topology.
    """

    # An error names the field and the reason, never the value: a password put in the wrong
    # variable (RABBITMQ_ADDRESSES) must not reach a log.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    backend: BackendKind = BackendKind.MEMORY
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@localhost/")
    rabbitmq_addresses: Annotated[tuple[BrokerAddress, ...], NoDecode] = ()
    """More nodes of the broker's cluster, comma-separated `host:port`, tried after
    RABBITMQ_URL's host (which keeps the credentials, vhost and TLS) on every (re)connect
    (docs/rabbitmq.md, "Broker clusters")."""
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
    chunk_auto_seconds: Annotated[float, Field(ge=2, le=3600)] | None = None
    """Split transcodes and ladders that do not say (chunking unset) in `auto` mode with
    chunks of this length (docs/chunks.md); unset: only jobs that ask are split."""

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

    # Tenancy: what one tenant may have in flight (ffpool/backends/tenancy.py, docs/protocol.md,
    # "Tenancy").
    tenant_max_active_jobs: Annotated[int, Field(ge=1)] = 1000
    """Queued + running jobs of one tenant, across all server replicas: a tenth of the default
    queue (MAX_QUEUED_JOBS, QUEUE_MAX_LENGTH: 10,000), so one client cannot fill it alone."""
    tenant_submits_per_second: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    """Submits per second of one tenant, per server replica (a token bucket holding two
    seconds' worth): about a ninth of what a 2-core pool dispatches (docs/rabbitmq.md,
    "Dispatch benchmark": ~450 jobs/s), so one tenant's burst leaves the others room."""

    # Records, disk and uploads: what one job's record and one tenant may keep (docs/security.md,
    # "Limits: records, disk and uploads"). A quota set to `none` is no limit of ffpool's own.
    max_record_bytes: Annotated[int, Field(ge=4096, le=16 * MiB)] = 64 * 1024
    """A retained job record's serialized size; stream lists and strings are cut to fit."""
    max_retained_bytes: Annotated[int, Field(ge=64 * 1024)] = 16 * MiB
    """All retained records together (serialized bytes); least recently used go first."""
    disk_quota_bytes: Annotated[int, Field(ge=1)] | None = 50 * GiB
    """Uploads and job files under MEDIA_ROOT, all tenants together."""
    tenant_disk_quota_bytes: Annotated[int, Field(ge=1)] | None = 10 * GiB
    """One tenant's uploads and its jobs' files."""
    tenant_max_uploads: Annotated[int, Field(ge=1)] | None = 100
    """How many uploads one tenant may keep at once (until they expire)."""

    @field_validator(
        "disk_quota_bytes", "tenant_disk_quota_bytes", "tenant_max_uploads", mode="before"
    )
    @classmethod
    def _unlimited(cls, value: object) -> object:
        """`none` (or an empty value) in the environment switches a quota off."""
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    # Authentication at the edge (docs/security.md): who may call, from where, on which port.
    auth_tokens_file: Path | None = None
    """Hashed API tokens, one `<tenant> sha256:<hex>` a line; reloaded when it changes."""
    allow_anonymous: bool = False
    """Serve callers without a token as the anonymous tenant (required off loopback when no
    AUTH_TOKENS_FILE is given: the secure default refuses to start otherwise)."""
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Browser origins allowed on the WebSocket upgrade (comma-separated), e.g.
    `https://app.example.com`; a request without an Origin header is not a browser's."""
    signing_key_file: Path | None = None
    """HMAC key for download links, browser tickets and keyed job ids; the same on every
    replica of a pool (without it, `MEDIA_ROOT/.ffpool-signing-key`, made on first use)."""
    download_link_ttl_seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 3600.0
    """How long a signed download link works after it is sent (docs/security.md)."""
    ops_port: Annotated[int, Field(ge=0, le=65535)] = 8082
    """/metrics and the all-tenant /dead-letters: for the scraper, never routed by the Ingress."""
    tenant_max_connections: Annotated[int, Field(ge=1)] = 64
    """Open WebSocket connections per tenant and server process (docs/security.md)."""

    # What one FFmpeg/ffprobe run may cost (docs/security.md, "Limits: what one FFmpeg run
    # may cost", where the defaults are measured).
    max_input_pixels: Annotated[int, Field(ge=16 * 16, le=2**30)] = 50_000_000
    """Largest decoded video frame or image (width x height) an input may have: 8K video and
    48 MP photos pass, a decompression bomb is refused before it is decoded."""
    ffmpeg_max_memory_bytes: Annotated[int, Field(ge=0)] = 8 * GiB
    """Address space (RLIMIT_AS) of each FFmpeg/ffprobe process; 0: no limit."""
    ffmpeg_max_cpu_seconds: Annotated[int, Field(ge=0)] = 7200
    """CPU time (RLIMIT_CPU, all threads together) of each FFmpeg/ffprobe process; 0: no
    limit. The default is the default job timeout on two busy cores."""

    # Object storage (docs/storage.md): STORAGE=s3 keeps uploads, outputs and job state in a
    # bucket, so servers and workers share no filesystem.
    storage: StorageKind = StorageKind.FILESYSTEM
    s3_endpoint_url: AnyUrl | None = None
    """An S3-compatible server's URL (https://minio.example:9000); unset: AWS S3."""
    s3_public_endpoint_url: AnyUrl | None = None
    """The endpoint as clients reach it, for presigned links, when it differs from
    S3_ENDPOINT_URL (an in-cluster Service name clients outside cannot resolve)."""
    s3_region: str = "us-east-1"
    s3_path_style: bool = False
    """Path-style addressing (endpoint/bucket/key), which most S3-compatible servers need."""
    s3_verify_tls: bool = True
    s3_ca_bundle: Path | None = None
    """A PEM bundle to verify the endpoint's certificate with (a private CA)."""
    s3_access_key_id: SecretStr | None = None
    """With S3_SECRET_ACCESS_KEY; unset: the AWS default chain (AWS_* variables, web identity,
    instance roles)."""
    s3_secret_access_key: SecretStr | None = None
    s3_bucket: str | None = None
    """The pool's own bucket: uploads, job state records and (by default) outputs."""
    s3_prefix: str = "ffpool"
    """Key prefix of everything ffpool writes in S3_BUCKET."""
    output_url: str | None = None
    """Default output location, `s3://bucket/prefix`; unset:
    S3_BUCKET/S3_PREFIX/outputs/<tenant>."""
    s3_allow_read: Annotated[tuple[str, ...], NoDecode] = ()
    """`s3://bucket/prefix` locations every tenant may read inputs from (comma-separated);
    TENANTS_FILE adds per-tenant ones."""
    s3_allow_write: Annotated[tuple[str, ...], NoDecode] = ()
    """`s3://bucket/prefix` locations every tenant may name as a job's output."""
    s3_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Connect/read timeout of each S3 request (a part of an upload is one request)."""
    s3_part_size_bytes: Annotated[int, Field(ge=5 * MiB, le=5 * GiB)] = 16 * MiB
    """Multipart part size; files up to one part go in one PUT. S3's minimum part is 5 MiB."""
    tenant_max_upload_streams: Annotated[int, Field(ge=1)] = 4
    """`POST /uploads` streaming into the bucket at once, per tenant and server process; more
    answer 429. Each holds about six parts in memory (four in flight, one being hashed, one
    being filled: ~96 MiB at the default part size), so this bounds one tenant's share."""
    max_upload_streams: Annotated[int, Field(ge=1)] = 16
    """Bucket uploads at once in one server process, all tenants together (~1.5 GiB at the
    default part size); more answer 429, so parallel uploads cannot exhaust its memory."""
    scratch_root: Path | None = None
    """Local scratch directory for runs and uploads in transit (STORAGE=s3); unset:
    MEDIA_ROOT/.scratch."""

    # Tenants (docs/storage.md, docs/webhooks.md): per-tenant buckets, webhook secrets and
    # default callback URLs, one TOML table a tenant.
    tenants_file: Path | None = None

    # Webhooks (docs/webhooks.md).
    webhook_url: str | None = None
    """Default callback URL for jobs of tenants without their own."""
    webhook_secret_file: Path | None = None
    """Default signing secret (`whsec_<base64>`), for tenants without their own."""
    webhook_retry_seconds: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 1500.0
    """How long one delivery is retried (exponential back-off) before it is dead-lettered.
    With RabbitMQ a delivery stays unacked while it is retried: keep this below the broker's
    consumer_timeout (30 min by default), which otherwise closes the sending channel and sends
    every held delivery again (docs/webhooks.md, "Retries and the window")."""
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    """One POST's whole time limit: connect, send, and the receiver's answer."""
    webhook_concurrency: Annotated[int, Field(ge=1, le=1024)] = 32
    """Deliveries in flight per process (different jobs; one job's are sent in order)."""
    webhook_allow_private: bool = False
    """Allow callback URLs on loopback/private addresses (tests, in-cluster receivers)."""

    @field_validator("s3_allow_read", "s3_allow_write", mode="before")
    @classmethod
    def _split_locations(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("s3_allow_read", "s3_allow_write")
    @classmethod
    def _check_locations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """A bad location fails at start, not as an internal error on every submit."""
        return tuple(checked_location(url) for url in value)

    @field_validator("output_url")
    @classmethod
    def _check_output_url(cls, value: str | None) -> str | None:
        return None if value is None else checked_location(value)

    @field_validator("rabbitmq_addresses", mode="before")
    @classmethod
    def _split_addresses(cls, value: object) -> object:
        return parse_addresses(value) if isinstance(value, str) else value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
        return value


def env_variables() -> frozenset[str]:
    """Every environment variable Settings reads: a field's alias, else its name, upper-cased
    (the topology's knobs have aliases: JOB_ROUTING_KEY sets `routing_key`)."""
    return frozenset(env_variable(field, name) for name, field in Settings.model_fields.items())
