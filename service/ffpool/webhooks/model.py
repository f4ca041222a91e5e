"""What one webhook delivery is: the message a state change becomes (docs/webhooks.md).

A delivery is made once, where the state change happens, and travels unchanged (the RabbitMQ
backend's durable webhook queue, or the in-process one): its id is what a receiver
de-duplicates on. The secret is not in it: the dispatcher looks it up by tenant when it sends.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, JobState, StateEvent
from ffpool.domain.jobs import Job, JobId, TenantName, utcnow

Notice = Annotated[
    StateEvent | CompletedEvent | FailedEvent | CancelledEvent, Field(discriminator="type")
]
"""A state change as the clients see it: a state event, or the full terminal event."""
MessageId = Annotated[str, StringConstraints(pattern=r"^msg_[0-9a-f]{32}$")]
EVENT_TYPE_PREFIX: Final = "job."
# The terminal event's place: after every attempt's queued and running.
TERMINAL_SEQ: Final = 1 << 20
_RANKS: Final = {JobState.QUEUED: 0, JobState.RUNNING: 1}


def state_of(event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent) -> JobState:
    return event.state if isinstance(event, StateEvent) else JobState(event.type)


def sequence(event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent) -> int:
    """Where a state change stands in its job's life: queued < running of one attempt, a
    later attempt after an earlier one, the terminal event last."""
    if not isinstance(event, StateEvent) or event.state.terminal:
        return TERMINAL_SEQ
    return 2 * event.attempt + _RANKS[event.state]


def message_id(
    job_id: str, event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent
) -> str:
    """A new id per state change; but a job has one terminal event, whose deliveries share
    one id however often it is recorded (a redelivered job settled again, a cancel seen by a
    server and by a worker, a dead letter seen by the worker and the accepting server)."""
    if sequence(event) == TERMINAL_SEQ:
        digest = hashlib.sha256(f"{job_id}.terminal".encode()).hexdigest()
        return f"msg_{digest[:32]}"
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: MessageId
    job_id: JobId
    tenant: TenantName
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event: Notice
    created_at: datetime
    seq: int = Field(ge=0)
    """`sequence(event)`: the dispatcher sends one job's deliveries in this order."""

    @classmethod
    def of(
        cls,
        job: Job,
        event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent,
        url: str,
    ) -> WebhookDelivery:
        return cls(
            id=message_id(job.id, event),
            job_id=job.id,
            tenant=job.tenant,
            url=url,
            event=event,
            created_at=utcnow(),
            seq=sequence(event),
        )

    @property
    def event_type(self) -> str:
        return EVENT_TYPE_PREFIX + state_of(self.event).value

    def body(self) -> bytes:
        """The POST body: Standard Webhooks' `type`, `timestamp` and `data` (the event)."""
        data = json.loads(self.event.model_dump_json())
        envelope = {
            "type": self.event_type,
            "timestamp": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": data,
        }
        return json.dumps(envelope, separators=(",", ":")).encode()
