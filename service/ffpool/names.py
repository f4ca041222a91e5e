"""One home for every name the service and the operator share.

Queue, exchange, header, label and annotation names live here and nowhere else, so the worker
that reads a header and the operator that writes a label can never disagree on a spelling.
"""

from typing import Final

# RabbitMQ topology defaults (the original service's names).
JOB_EXCHANGE: Final = "ffmpeg_jobs"
JOB_QUEUE: Final = "ffmpeg_job_queue"
JOB_ROUTING_KEY: Final = "ffmpeg_job"
DLQ_QUEUE: Final = "ffmpeg_job_dlq"
EVENTS_EXCHANGE: Final = "ffmpeg_job_events"
CONTROL_EXCHANGE: Final = "ffmpeg_job_control"
# QUEUE_TYPE values (docs/rabbitmq.md, "Quorum queues"): classic, one priority queue on one node;
# quorum, replicated queues, one per priority band, named "<JOB_QUEUE><BAND_SUFFIX><lowest>".
QUEUE_TYPE_CLASSIC: Final = "classic"
QUEUE_TYPE_QUORUM: Final = "quorum"
BAND_SUFFIX: Final = ".p"

# Webhook deliveries (webhooks/): one durable queue, a single active consumer at a time, and its
# dead-letter queue for deliveries that ran out of their retry window.
WEBHOOK_QUEUE: Final = "ffmpeg_webhook_queue"
WEBHOOK_DLQ: Final = "ffmpeg_webhook_dlq"
# Standard Webhooks' HTTP headers (docs/webhooks.md).
WEBHOOK_ID_HEADER: Final = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER: Final = "webhook-signature"

# Object storage layout under the pool's S3_BUCKET/S3_PREFIX (docs/storage.md).
S3_JOBS_PREFIX: Final = "jobs"
S3_UPLOADS_PREFIX: Final = "uploads"
S3_OUTPUTS_PREFIX: Final = "outputs"
S3_CHUNKS_PREFIX: Final = "chunks"

# AMQP message headers written by ffpool.
HEADER_ATTEMPT: Final = "x-ffpool-attempt"
HEADER_FAILURE_CODE: Final = "x-ffpool-failure-code"
HEADER_FAILURE_REASON: Final = "x-ffpool-failure-reason"
HEADER_ORIGIN: Final = "x-ffpool-origin"
# RabbitMQ's own: how often a quorum queue's message was returned to it (0 on a first delivery).
HEADER_DELIVERY_COUNT: Final = "x-delivery-count"
# "MAJOR.MINOR" of the message body's format, on every AMQP message (docs/rabbitmq.md,
# "Wire format and upgrades").
HEADER_WIRE: Final = "x-ffpool-wire"
# Routing key prefix of chunk jobs' events on the events exchange: one key per parent job,
# which servers do not bind (they bind one-word keys, `*`), its waiting worker does.
CHUNK_EVENTS_PREFIX: Final = "chunk."


def chunk_events_key(parent_id: str) -> str:
    """The routing key of the events of `parent_id`'s chunk jobs (docs/chunks.md)."""
    return CHUNK_EVENTS_PREFIX + parent_id


# Kubernetes API group and the labels/annotations the operator puts on what it owns.
API_GROUP: Final = "ffpool.dev"
API_VERSION: Final = "v1alpha1"
CRD_KIND: Final = "FFmpegPool"
CRD_PLURAL: Final = "ffmpegpools"
CRD_SINGULAR: Final = "ffmpegpool"
CRD_SHORT_NAME: Final = "ffp"

LABEL_POOL: Final = "ffpool.dev/pool"
LABEL_COMPONENT: Final = "ffpool.dev/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
COMPONENT_SERVER: Final = "server"
COMPONENT_WORKER: Final = "worker"
MANAGER: Final = "ffpool-operator"
# Server-side apply field managers (metadata.managedFields): the reconcile owns what it builds,
# the autoscaling daemon owns the worker Deployment's spec.replicas (docs/operator.md).
FIELD_MANAGER: Final = MANAGER
FIELD_MANAGER_AUTOSCALER: Final = "ffpool-autoscaler"

# Pausing a pool's autoscaling, as KEDA's autoscaling.keda.sh/paused and .../paused-replicas
# (docs/operator.md, "Pausing autoscaling"): set on the FFmpegPool by users, read by the daemon.
AUTOSCALING_ANNOTATION_PREFIX: Final = "autoscaling.ffpool.dev/"
ANNOTATION_PAUSED: Final = AUTOSCALING_ANNOTATION_PREFIX + "paused"
ANNOTATION_PAUSED_REPLICAS: Final = AUTOSCALING_ANNOTATION_PREFIX + "paused-replicas"

# Kubernetes' own annotation: on scale-down a ReplicaSet removes the lowest-cost pods first.
# https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost
ANNOTATION_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"

# The BACKEND setting the operator gives its pods (a value of ffpool.settings.BackendKind).
BACKEND_RABBITMQ: Final = "rabbitmq"

# Worker connection names as shown by the RabbitMQ management API: "<prefix><host>".
WORKER_CONNECTION_PREFIX: Final = "ffpool-worker:"
SERVER_CONNECTION_PREFIX: Final = "ffpool-server:"

# HTTP paths.
WS_PATH: Final = "/ws"
HEALTH_PATH: Final = "/health"
LIVE_PATH: Final = "/livez"
READY_PATH: Final = "/readyz"
METRICS_PATH: Final = "/metrics"
SCHEMA_PATH: Final = "/schema/protocol.json"
# aiohttp route templates; the output one is also the download URL put into `completed`.
JOB_PATH: Final = "/jobs/{job_id}"
# The caller's jobs, newest first (`?limit=N&state=queued,running`).
JOBS_PATH: Final = "/jobs"
OUTPUT_PATH: Final = "/jobs/{job_id}/outputs/{name}"
# Any output of a package (a ladder's HLS/DASH files), the link's signature in the path so a
# player's relative references keep it: `{token}` is `<expires>.<sig>` (auth/signed_links.py).
PACKAGE_PATH: Final = "/jobs/{job_id}/package/{token}/{name}"
UPLOADS_PATH: Final = "/uploads"
DEAD_LETTERS_PATH: Final = "/dead-letters"
AUTH_TICKET_PATH: Final = "/auth/ticket"
# The web page (docs/web.md): its HTML, its assets (one file name after the prefix) and the
# little it must know before anyone signs in.
PAGE_PATH: Final = "/"
STATIC_PREFIX: Final = "/static/"
STATIC_PATH: Final = STATIC_PREFIX + "{name}"
UI_CONFIG_PATH: Final = "/ui/config.json"
# Paths answered without a token (Kubernetes probes and load balancers cannot send one; a
# browser needs the page before it can ask for a token). Assets are public too: see
# server/http_auth.py, which matches them by route rather than by path.
PUBLIC_PATHS: Final = frozenset({HEALTH_PATH, LIVE_PATH, READY_PATH, PAGE_PATH, UI_CONFIG_PATH})

# Authentication (docs/security.md).
AUTH_HEADER: Final = "Authorization"
BEARER_PREFIX: Final = "Bearer "
# WebSocket subprotocols: the one the server selects, and the prefix a browser's ticket rides in.
WS_SUBPROTOCOL: Final = "ffpool.v1"
WS_TICKET_PREFIX: Final = "ffpool.ticket."
# Query parameters of a signed download link.
LINK_EXPIRES_PARAM: Final = "expires"
LINK_SIGNATURE_PARAM: Final = "sig"
# The client's token from the environment (`ffpool submit`).
TOKEN_ENV: Final = "FFPOOL_TOKEN"  # noqa: S105 - the variable's name, not a token
