"""What a worker does with a delivery: pure decisions over parsed AMQP messages, no I/O.

RabbitMQ 3.10 classic queues keep no delivery counter (only `redelivered`), so ffpool counts
attempts itself in the `x-ffpool-attempt` header: a delivery carrying attempt N that arrives
*redelivered* means attempt N was started and lost (the worker crashed, was killed, or lost its
connection). It is not run from that delivery: it is republished with N+1 and the original
acked, so the next crash is counted again. Past `max_attempts` it goes to the DLQ with
`too_many_attempts`. A voluntary hand-back (SIGTERM drain) republishes with the *same* N, so a
scale-down never counts against a job. See docs/rabbitmq.md.

A quorum queue counts every return of a message (`x-delivery-count`), also of deliveries that
never ran (a cancelled consumer's, the prefetched ones of a lost connection), so there an
attempt is a RUN THAT STARTED, recorded in the job's markers before FFmpeg starts
(`JobMarkers.mark_started`): a delivery that may have run before is attempt
max(header, started + 1) (`quorum_attempt`), run as it is with no republish; past
`max_attempts` the worker dead-letters it. The broker's `x-delivery-limit` is only a backstop
with slack (topology.py; docs/rabbitmq.md, "Quorum queues").
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from ffpool import names
from ffpool.backends.rabbitmq import wire
from ffpool.domain.events import FailedEvent, FailureCode, JobRecord, apply
from ffpool.domain.jobs import Job

MAX_REASON_CHARS = 500
REPUBLISHED = "republished"  # HEADER_ORIGIN value of a worker's retry or hand-back
# How long before the broker's consumer timeout a job is stopped: it fails with `timeout`
# instead of having its channel closed and being run a second time elsewhere.
CONSUMER_TIMEOUT_MARGIN_S = 60.0


class Action(enum.Enum):
    RUN = "run"
    RETRY = "retry"  # republish with attempt + 1, ack the redelivered original
    POISON = "poison"  # dead-letter with too_many_attempts
    SKIP_COMPLETED = "skip_completed"  # at-least-once duplicate of a finished job
    SKIP_CANCELLED = "skip_cancelled"


@dataclass(frozen=True)
class Decision:
    action: Action
    attempt: int


def header_attempt(headers: Mapping[str, Any] | None) -> int:
    """The attempt a message carries; anything unreadable counts as the first."""
    raw = (headers or {}).get(names.HEADER_ATTEMPT, 1)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return 1
    return max(1, value)


def delivery_count(headers: Mapping[str, Any] | None) -> int:
    """How often a quorum queue has had this message back (0 on its first delivery, and for
    a classic queue, which never sets the header)."""
    raw = (headers or {}).get(names.HEADER_DELIVERY_COUNT, 0)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return 0
    return max(0, value)


def current_attempt(headers: Mapping[str, Any] | None, quorum: bool) -> int:
    """The attempt a delivery's headers carry, in either mode: the header's. A quorum queue's
    `x-delivery-count` is NOT added: it also counts returns that never ran (`quorum_attempt`
    adds the runs that started); a delivery given back uncounted keeps this as its header."""
    return header_attempt(headers)


def may_have_run(redelivered: bool, headers: Mapping[str, Any] | None) -> bool:
    """Whether a delivery's job may have started a run before: a redelivery, a return the
    quorum queue counted, a worker's republish, a header past 1. A first delivery of a fresh
    job cannot have, and skips the marker reads on the hot path."""
    origin = (headers or {}).get(names.HEADER_ORIGIN)
    origin = origin.decode() if isinstance(origin, bytes) else origin
    returned = header_attempt(headers) > 1 or delivery_count(headers) > 0
    return redelivered or origin == REPUBLISHED or returned


def quorum_attempt(header: int, started: int | None) -> int:
    """A quorum delivery's attempt: the header's, or one past the highest run recorded as
    started (`started`, 0 if none; None when not read: a first delivery), whichever is more.
    A return that never ran leaves `started` as it was, so it costs nothing."""
    return header if started is None else max(header, started + 1)


def broker_counted(headers: Mapping[str, Any] | None, quorum: bool) -> bool:
    """Whether a delivery is counted the quorum way, by runs started (`quorum_attempt`,
    `decide(counted=...)`): a quorum topology whose delivery carries `x-delivery-count`, so
    the broker's limit backs it up. A classic queue in a quorum topology
    (one declared before the switch, used as it is: connection.declare_queue) sets none, and
    its redeliveries are counted the classic way, so a crashing job still ends as poison."""
    return quorum and names.HEADER_DELIVERY_COUNT in (headers or {})


def maybe_duplicate(redelivered: bool, headers: Mapping[str, Any] | None, keyed: bool) -> bool:
    """Whether a delivery can be a copy of a job that already ran, so the completed/cancelled
    markers must be read first: one that may have run (`may_have_run`), and jobs with an
    idempotency key (resubmitted through another server). A first delivery of a fresh job
    cannot be, and skips the file-system check on the hot path."""
    return keyed or may_have_run(redelivered, headers)


def decide(
    *,
    redelivered: bool,
    attempt: int,
    max_attempts: int,
    completed: bool,
    cancelled: bool,
    counted: bool = False,
) -> Decision:
    """`counted`: a quorum queue's delivery, whose `attempt` already counts the runs that
    started (`quorum_attempt`), so a redelivery is run as it is, never republished (no RETRY)."""
    if completed:
        return Decision(Action.SKIP_COMPLETED, attempt)
    if cancelled:
        return Decision(Action.SKIP_CANCELLED, attempt)
    if counted or not redelivered:
        if attempt > max_attempts:
            return Decision(Action.POISON, attempt)
        return Decision(Action.RUN, attempt)
    if attempt + 1 > max_attempts:
        return Decision(Action.POISON, attempt)
    return Decision(Action.RETRY, attempt + 1)


_job_adapter: TypeAdapter[Job] = TypeAdapter(Job)


def parse_job(body: bytes) -> Job | None:
    """A job body; fields a newer minor wire version added are ignored (wire.py)."""
    return wire.parse(_job_adapter, body)


def failure_headers(code: FailureCode, message: str, attempt: int) -> dict[str, Any]:
    return {
        names.HEADER_FAILURE_CODE: code.value,
        names.HEADER_FAILURE_REASON: message[:MAX_REASON_CHARS],
        names.HEADER_ATTEMPT: attempt,
    }


def poison_failure(job_id: str, attempt: int) -> FailedEvent:
    return FailedEvent(
        job_id=job_id,
        code=FailureCode.TOO_MANY_ATTEMPTS,
        message=f"the job was interrupted {attempt} times (worker crash, kill or lost "
        "connection); dead-lettered instead of running again",
    )


_DEATH_CODES = {
    "expired": (FailureCode.EXPIRED, "the job waited in the queue longer than its TTL"),
    "maxlen": (FailureCode.INTERNAL_ERROR, "the job was evicted from a full queue"),
    "rejected": (FailureCode.INTERNAL_ERROR, "the job was rejected by a worker"),
    "delivery_limit": (
        FailureCode.TOO_MANY_ATTEMPTS,
        "the job was interrupted too many times (worker crash, kill or lost connection): the "
        "quorum queue's delivery limit (x-delivery-limit, MAX_ATTEMPTS - 1 returns plus "
        "slack, the backstop) dead-lettered it instead of running it again",
    ),
}


def death_reason(headers: Mapping[str, Any] | None) -> str | None:
    """The reason of the most recent dead-lettering in an `x-death` header."""
    deaths = (headers or {}).get("x-death")
    if not isinstance(deaths, list | tuple) or not deaths:
        return None
    first = deaths[0]
    if not isinstance(first, Mapping):
        return None
    reason = first.get("reason")
    return reason.decode() if isinstance(reason, bytes) else str(reason) if reason else None


def dead_letter_failure(job_id: str, headers: Mapping[str, Any] | None) -> FailedEvent:
    """The failure a DLQ message stands for: ffpool's own headers when a worker put it there,
    else the broker's `x-death` reason (e.g. a TTL expiry, which no worker ever saw)."""
    hdrs = headers or {}
    code_raw = hdrs.get(names.HEADER_FAILURE_CODE)
    if isinstance(code_raw, bytes):
        code_raw = code_raw.decode()
    if isinstance(code_raw, str) and code_raw in FailureCode.__members__.values():
        reason = hdrs.get(names.HEADER_FAILURE_REASON, "")
        text = reason.decode() if isinstance(reason, bytes) else str(reason)
        return FailedEvent(job_id=job_id, code=FailureCode(code_raw), message=text)
    code, text = _DEATH_CODES.get(
        death_reason(hdrs) or "", (FailureCode.INTERNAL_ERROR, "dead-lettered by the broker")
    )
    return FailedEvent(job_id=job_id, code=code, message=text)


def dead_letter_record(job: Job, headers: Mapping[str, Any] | None) -> JobRecord:
    record = JobRecord.queued(job).model_copy(update={"attempt": header_attempt(headers)})
    return apply(record, dead_letter_failure(job.id, headers))


def dead_letter_records(
    found: list[tuple[bytes, dict[str, Any]]], tenant: str | None
) -> list[JobRecord]:
    """Records of peeked DLQ messages (body, headers), of one tenant if given: the job body
    names its tenant. One of a newer wire major is left out: not read, never guessed at; so is
    a chunk job from a tenant's list (its parent's failure is what the tenant sees)."""
    records = []
    for body, headers in found:
        job = parse_job(body) if wire.readable(headers) else None
        if job is not None and tenant is not None and job.chunk is not None:
            continue  # a chunk job is no tenant's: its parent's failure is what they see
        if job is not None and tenant in (None, job.tenant):
            records.append(dead_letter_record(job, headers))
    return records


def run_limit(job_timeout_s: float, consumer_timeout_ms: int | None) -> float:
    """Wall-clock limit for one run: the job timeout, capped below the broker's consumer
    timeout (past it the broker closes the channel and the job runs twice)."""
    if consumer_timeout_ms is None:
        return job_timeout_s
    cap = consumer_timeout_ms / 1000 - CONSUMER_TIMEOUT_MARGIN_S
    return max(1.0, min(job_timeout_s, cap)) if math.isfinite(cap) else job_timeout_s
