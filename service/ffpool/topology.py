"""The RabbitMQ topology, defined once: the service declares it with aio-pika, the operator
through the management API, and both read names and arguments from this model.

Dead letters go back through the job exchange with the DLQ's name as routing key, so one durable
exchange carries jobs and dead letters alike.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ffpool import names
from ffpool.settings import Settings

AmqpName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Topology(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_exchange: AmqpName = names.JOB_EXCHANGE
    job_queue: AmqpName = names.JOB_QUEUE
    routing_key: AmqpName = names.JOB_ROUTING_KEY
    dlq_queue: AmqpName = names.DLQ_QUEUE
    events_exchange: AmqpName = names.EVENTS_EXCHANGE
    control_exchange: AmqpName = names.CONTROL_EXCHANGE
    message_ttl_ms: Annotated[int, Field(ge=1000)] = 3_600_000
    max_length: Annotated[int, Field(ge=1)] = 10_000
    # A few levels only: each level costs the broker an internal queue.
    # https://www.rabbitmq.com/docs/priority#resource-usage
    max_priority: Annotated[int, Field(ge=1, le=9)] = 9
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3

    @classmethod
    def from_settings(cls, s: Settings) -> Topology:
        return cls(
            job_exchange=s.job_exchange,
            job_queue=s.job_queue,
            routing_key=s.job_routing_key,
            dlq_queue=s.dlq_queue,
            events_exchange=s.events_exchange,
            control_exchange=s.control_exchange,
            message_ttl_ms=s.queue_message_ttl_ms,
            max_length=s.queue_max_length,
            max_priority=s.queue_max_priority,
            max_attempts=s.max_attempts,
        )

    def queue_arguments(self) -> dict[str, Any]:
        """Arguments of the job queue. `reject-publish`: a full queue refuses new jobs (the
        publisher gets a nack and the client an error) instead of the default `drop-head`,
        which would silently evict the oldest accepted jobs."""
        return {
            "x-message-ttl": self.message_ttl_ms,
            "x-max-length": self.max_length,
            "x-overflow": "reject-publish",
            "x-max-priority": self.max_priority,
            "x-dead-letter-exchange": self.job_exchange,
            "x-dead-letter-routing-key": self.dlq_queue,
        }

    def dlq_arguments(self) -> dict[str, Any]:
        return {}

    def env(self) -> dict[str, str]:
        """The environment that makes a service process use this topology (see Settings)."""
        return {
            "JOB_EXCHANGE": self.job_exchange,
            "JOB_QUEUE": self.job_queue,
            "JOB_ROUTING_KEY": self.routing_key,
            "DLQ_QUEUE": self.dlq_queue,
            "EVENTS_EXCHANGE": self.events_exchange,
            "CONTROL_EXCHANGE": self.control_exchange,
            "QUEUE_MESSAGE_TTL_MS": str(self.message_ttl_ms),
            "QUEUE_MAX_LENGTH": str(self.max_length),
            "QUEUE_MAX_PRIORITY": str(self.max_priority),
            "MAX_ATTEMPTS": str(self.max_attempts),
        }


def argument_differences(wanted: dict[str, Any], existing: dict[str, Any]) -> list[str]:
    """Human-readable differences between a queue's wanted and actual arguments.

    RabbitMQ cannot change a declared queue's arguments (a redeclare fails with
    PRECONDITION_FAILED), so callers report these rather than retry.
    """
    out = []
    for key in sorted(set(wanted) | set(existing)):
        if wanted.get(key) != existing.get(key):
            out.append(f"{key}: queue has {existing.get(key)!r}, spec wants {wanted.get(key)!r}")
    return out
