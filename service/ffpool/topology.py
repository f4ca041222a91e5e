"""The RabbitMQ topology, defined once: the service declares it with aio-pika, the operator
through the management API, and both read names and arguments from this model.

Each knob (name, type, bounds, default, description and environment variable) is written once,
in `TopologyKnobs`: `Settings` inherits it (read from the environment), `Topology` adds what
the knobs mean to RabbitMQ, and the operator's `TopologySpec` spells it in camelCase for the CRD.

Dead letters go back through the job exchange with the DLQ's name as routing key, so one durable
exchange carries jobs and dead letters alike.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.fields import FieldInfo

from ffpool import names

# The quorum queues' x-delivery-limit is MAX_ATTEMPTS - 1 plus this. ffpool counts an attempt
# when a run STARTS (recorded in the job's markers; attempts.py); RabbitMQ 3.10 counts every
# return, also of deliveries that never ran: the in-flight delivery of a consumer a waiting band
# slot cancels, the prefetched deliveries of a lost connection, a "slot busy" nack. The limit is
# then only a backstop for a job whose deliveries keep dying before any start is recorded;
# measured (docs/rabbitmq.md, "Quorum queues"): at most a few such returns per job.
DELIVERY_LIMIT_SLACK = 20

AmqpName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.:-]+$")]


# Said alike by the service (QUEUE_*) and the API server (the CRD's CEL rule on the pool's
# topology), so it names both spellings; no regular-expression characters, as tests match it.
BANDS_OVER_LEVELS = (
    "in quorum mode priorityBands, or QUEUE_PRIORITY_BANDS, must not exceed the priority "
    "levels: maxPriority, or QUEUE_MAX_PRIORITY, plus one"
)


class QueueType(enum.StrEnum):
    """How the job queue is kept (docs/rabbitmq.md, "Quorum queues")."""

    CLASSIC = names.QUEUE_TYPE_CLASSIC
    QUORUM = names.QUEUE_TYPE_QUORUM


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
    queue_type: QueueType = _env("QUEUE_TYPE", QueueType.CLASSIC)
    """classic: one queue on one broker node, with priorities; quorum: the job queue and the DLQ
    replicated over the cluster's nodes (survives a node), priorities kept as bands."""
    priority_bands: Annotated[int, Field(ge=1, le=10)] = _env("QUEUE_PRIORITY_BANDS", 3)
    """Quorum only: how many queues the priorities 0..QUEUE_MAX_PRIORITY are split into; a
    worker always takes from the highest band that holds a job."""


def env_variable(field: FieldInfo, name: str) -> str:
    """The environment variable a field is read from: its alias, else its name, upper-cased."""
    alias = field.validation_alias
    return (alias if isinstance(alias, str) else name).upper()


class Band(BaseModel):
    """One priority band: the queue holding jobs of priority `lowest`..`highest`, and the
    routing key they are published with. A classic topology has one band: the job queue."""

    model_config = ConfigDict(frozen=True)

    queue: str
    routing_key: str
    lowest: int
    highest: int


class Topology(TopologyKnobs):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _bands_fit(self) -> Self:
        if self.queue_type is QueueType.QUORUM:
            if self.priority_bands > self.max_priority + 1:
                raise ValueError(
                    f"{BANDS_OVER_LEVELS}: {self.priority_bands} bands, "
                    f"{self.max_priority + 1} levels"
                )
            longest = max(len(b.queue) for b in self.bands())
            if longest > 255 or max(len(b.routing_key) for b in self.bands()) > 255:
                raise ValueError("a band's queue name or routing key is over 255 characters")
        return self

    @property
    def quorum(self) -> bool:
        return self.queue_type is QueueType.QUORUM

    def bands(self) -> tuple[Band, ...]:
        """Highest first: the order a free worker slot asks them in. Band 0, the lowest, is
        JOB_QUEUE under JOB_ROUTING_KEY itself (where priority-0 jobs go, the default); band
        k starts at ceil(k * levels / bands) and is named after it, e.g. `ffmpeg_job_queue.p7`
        for priorities 7 to 9 of three bands."""
        if not self.quorum:
            return (
                Band(
                    queue=self.job_queue,
                    routing_key=self.routing_key,
                    lowest=0,
                    highest=self.max_priority,
                ),
            )
        levels, count = self.max_priority + 1, self.priority_bands
        starts = [math.ceil(k * levels / count) for k in range(count)]
        out = []
        for k, lowest in enumerate(starts):
            highest = (starts[k + 1] - 1) if k + 1 < count else self.max_priority
            suffix = "" if k == 0 else f"{names.BAND_SUFFIX}{lowest}"
            out.append(
                Band(
                    queue=self.job_queue + suffix,
                    routing_key=self.routing_key + suffix,
                    lowest=lowest,
                    highest=highest,
                )
            )
        return tuple(reversed(out))

    def band_for(self, priority: int) -> Band:
        """The band a job of `priority` goes to (above QUEUE_MAX_PRIORITY: the top one)."""
        for band in self.bands():
            if priority >= band.lowest:
                return band
        return self.bands()[-1]

    def job_queues(self) -> tuple[str, ...]:
        """Every queue jobs wait in, highest band first (one for a classic topology)."""
        return tuple(b.queue for b in self.bands())

    @classmethod
    def from_settings(cls, s: TopologyKnobs) -> Topology:
        """The topology of a `Settings` (which is a TopologyKnobs) or of any other knobs."""
        return cls.model_validate({name: getattr(s, name) for name in TopologyKnobs.model_fields})

    def queue_arguments(self) -> dict[str, Any]:
        """Arguments of the job queue (each band's, in quorum mode). `reject-publish`: a full
        queue refuses new jobs (the publisher gets a nack and the client an error) instead of
        the default `drop-head`, which would silently evict the oldest accepted jobs.

        Quorum queues refuse `x-max-priority` (bands replace it). Their own delivery counter
        dead-letters a job returned MAX_ATTEMPTS - 1 + DELIVERY_LIMIT_SLACK times
        (`x-delivery-limit`, reason `delivery_limit`; a limit of N lets a message be delivered
        N + 1 times): a backstop, since it also counts returns that never ran. At-least-once
        dead-lettering (it needs `reject-publish`) keeps a dead letter until the DLQ has it."""
        common = {
            "x-message-ttl": self.message_ttl_ms,
            "x-max-length": self.max_length,
            "x-overflow": "reject-publish",
            "x-dead-letter-exchange": self.job_exchange,
            "x-dead-letter-routing-key": self.dlq_queue,
        }
        if not self.quorum:
            return {**common, "x-max-priority": self.max_priority}
        return {
            **common,
            "x-queue-type": names.QUEUE_TYPE_QUORUM,
            "x-delivery-limit": self.max_attempts - 1 + DELIVERY_LIMIT_SLACK,
            "x-dead-letter-strategy": "at-least-once",
        }

    def refused(self) -> str:
        """What a publish the job queue nacked means, in words (AMQP gives no reason): a classic
        queue refuses only when full (`reject-publish`); a quorum queue also while it elects a
        new leader after a node loss (docs/rabbitmq.md, "Broker clusters")."""
        if self.quorum:
            return (
                "the job queue refused the job: it is full, or electing a new leader after a "
                "broker node was lost; try again shortly"
            )
        return "the job queue is full: try again later"

    def dlq_arguments(self) -> dict[str, Any]:
        return {"x-queue-type": names.QUEUE_TYPE_QUORUM} if self.quorum else {}

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
