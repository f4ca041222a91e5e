"""The RabbitMQ topology, defined once: the service declares it with aio-pika, the operator
through the management API, and both read names and arguments from this model.

Each knob (name, type, bounds, default, description and environment variable) is written once,
in `TopologyKnobs`: `Settings` inherits it (read from the environment), `Topology` adds what
the knobs mean to RabbitMQ, and the operator's `TopologySpec` spells it in camelCase for the CRD.

Dead letters go back through the job exchange with the DLQ's name as routing key, so one durable
exchange carries jobs and dead letters alike.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from ffpool import names

AmqpName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _env(variable: str, default: Any) -> Any:
    """A knob's default and its environment variable. The alias is the variable lower-cased:
    the key `Settings` reads it by (from the environment, case-insensitively, or as a keyword).
    Priority 1 lets a subclass's alias generator replace it, so the operator's TopologySpec
    takes the same field as `routingKey`, never as `job_routing_key`."""
    return Field(default, validation_alias=variable.lower(), alias_priority=1)


class TopologyKnobs(BaseModel):
    """The knobs alone, without behaviour: the base both `Settings` and `Topology` share."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    job_exchange: AmqpName = _env("JOB_EXCHANGE", names.JOB_EXCHANGE)
    """Durable direct exchange that carries jobs, and dead letters routed by the DLQ's name."""
    job_queue: AmqpName = _env("JOB_QUEUE", names.JOB_QUEUE)
    """Durable queue the workers take jobs from."""
    routing_key: AmqpName = _env("JOB_ROUTING_KEY", names.JOB_ROUTING_KEY)
    """Routing key jobs are published and the job queue bound with (a pool may choose its own)."""
    dlq_queue: AmqpName = _env("DLQ_QUEUE", names.DLQ_QUEUE)
    """Dead-letter queue: every failed job with its reason, and jobs that expired in the queue."""
    events_exchange: AmqpName = _env("EVENTS_EXCHANGE", names.EVENTS_EXCHANGE)
    """Topic exchange job events (progress, outcomes) are published on; every server reads it."""
    control_exchange: AmqpName = _env("CONTROL_EXCHANGE", names.CONTROL_EXCHANGE)
    """Topic exchange for control messages between processes (cancel, lookup)."""
    message_ttl_ms: Annotated[int, Field(ge=1000)] = _env("QUEUE_MESSAGE_TTL_MS", 3_600_000)
    """How long a job may wait in the job queue, in milliseconds, before it is dead-lettered."""
    max_length: Annotated[int, Field(ge=1)] = _env("QUEUE_MAX_LENGTH", 10_000)
    """Jobs the job queue holds at most; past it a submit is refused, never an older job dropped."""
    # A few levels only: each level costs the broker an internal queue.
    # https://www.rabbitmq.com/docs/priority#resource-usage
    max_priority: Annotated[int, Field(ge=1, le=9)] = _env("QUEUE_MAX_PRIORITY", 9)
    """Top priority level of the job queue (x-max-priority); a job asking for more gets this."""
    max_attempts: Annotated[int, Field(ge=1, le=100)] = _env("MAX_ATTEMPTS", 3)
    """Runs a job may start (a crash counts, a drain does not) before it is dead-lettered."""


def env_variable(field: FieldInfo, name: str) -> str:
    """The environment variable a field is read from: its alias, else its name, upper-cased."""
    alias = field.validation_alias
    return (alias if isinstance(alias, str) else name).upper()


class Topology(TopologyKnobs):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    def from_settings(cls, s: TopologyKnobs) -> Topology:
        """The topology of a `Settings` (which is a TopologyKnobs) or of any other knobs."""
        return cls.model_validate({name: getattr(s, name) for name in TopologyKnobs.model_fields})

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
            env_variable(field, name): str(getattr(self, name))
            for name, field in TopologyKnobs.model_fields.items()
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
