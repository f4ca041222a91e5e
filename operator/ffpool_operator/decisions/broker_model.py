"""The operator's model of RabbitMQ (pure): queues, bindings and policies as the management API
shows them, the failures it can answer with, and the protocols the I/O side implements: the
management API client (broker/management.py) and the tests' in-memory broker
(tests/operator_harness/memory_broker.py). It lives with the decisions, which reason about
these, so that nothing pure imports from broker/."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ffpool_operator.decisions.scaling import QueueStats
from ffpool_operator.decisions.victims import BrokerChannel, BrokerConnection


class BrokerError(Exception):
    """The broker (or its management API) failed; retry later."""


class BrokerUnavailable(BrokerError):
    """Unreachable, timed out or 5xx."""


class BrokerBadAnswer(BrokerUnavailable):
    """An answer that is not the management API's JSON of the expected shape (a login proxy's
    HTML page, a truncated body): nothing can be concluded from it, so it counts as unavailable."""


class BrokerAuthFailed(BrokerError):
    """401/403: the Secret's credentials are wrong or lack permissions on the vhost; may recover
    when the Secret or the broker's users are fixed."""


class BrokerNotFound(BrokerError):
    """404 on a write: the vhost does not exist (a missing queue or policy is a 404 on a read
    or delete, which callers handle as absent)."""


class BrokerRejected(BrokerError):
    """A 4xx answer: the request itself is wrong for this broker (e.g. an exchange exists with
    another type); retrying the same request will not help."""


class QueueInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    durable: bool = True
    arguments: dict[str, Any] = Field(default_factory=dict)
    messages_ready: int = 0
    messages_unacknowledged: int = 0
    consumers: int = 0
    policy: str | None = None
    """The user policy applied to the queue (RabbitMQ applies one: the highest priority)."""
    operator_policy: str | None = None
    effective_policy_definition: dict[str, Any] = Field(default_factory=dict)
    """The keys the policies in force set (user and operator policy merged)."""
    type: str = "classic"
    """`classic` or `quorum` (fixed when the queue is declared)."""
    leader: str | None = None
    """Quorum only: the node leading the queue (absent while it has none)."""
    members: list[str] = Field(default_factory=list)
    """Quorum only: the nodes holding a replica."""
    online: list[str] = Field(default_factory=list)
    """Quorum only: the members that are up."""

    @field_validator("effective_policy_definition", mode="before")
    @classmethod
    def _no_policy(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}  # `[]` on some versions, absent on others

    @field_validator("leader", mode="before")
    @classmethod
    def _no_leader(cls, value: Any) -> Any:
        return value if isinstance(value, str) and value else None

    @field_validator("members", "online", mode="before")
    @classmethod
    def _no_nodes(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []

    def stats(self) -> QueueStats:
        return QueueStats(
            ready=self.messages_ready,
            unacked=self.messages_unacknowledged,
            consumers=self.consumers,
        )


class Binding(BaseModel):
    model_config = ConfigDict(frozen=True)

    exchange: str
    queue: str
    routing_key: str


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    pattern: str
    definition: dict[str, Any]
    apply_to: str = "queues"
    priority: int = 0


class QueueStatsSource(Protocol):
    async def queue(self, vhost: str, name: str) -> QueueInfo | None:
        """The queue with its counts; None when it does not exist. Raises BrokerError."""

    async def connections(self, vhost: str) -> list[BrokerConnection]: ...

    async def channels(self, vhost: str) -> list[BrokerChannel]: ...


class BrokerAdmin(QueueStatsSource, Protocol):
    async def declare_exchange(self, vhost: str, name: str, kind: str) -> None: ...

    async def declare_queue(self, vhost: str, name: str, arguments: dict[str, Any]) -> None: ...

    async def delete_queue(self, vhost: str, name: str, if_empty: bool = True) -> None:
        """`if_empty`: deletes only a queue without ready messages, raises BrokerRejected
        otherwise (RabbitMQ refuses the flag itself on a quorum queue: the caller checks the
        counts and deletes without it)."""

    async def nodes(self) -> int:
        """The cluster's node count: every node listed, running or not."""

    async def unbind(self, vhost: str, binding: Binding) -> None: ...

    async def bindings(self, vhost: str, exchange: str, queue: str) -> list[Binding]: ...

    async def bind(self, vhost: str, binding: Binding) -> None: ...

    async def put_policy(self, vhost: str, policy: Policy) -> None: ...

    async def delete_policy(self, vhost: str, name: str) -> None: ...
