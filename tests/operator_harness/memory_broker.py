"""An in-memory BrokerAdmin for the operator's unit tests: the semantics the operator relies on
(arguments fixed at declaration, delete only when empty), with a switch to simulate an outage."""

from __future__ import annotations

from typing import Any

from ffpool_operator.decisions.broker_model import (
    Binding,
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    Policy,
    QueueInfo,
)
from ffpool_operator.decisions.victims import BrokerChannel, BrokerConnection


class InMemoryBroker:
    def __init__(self) -> None:
        self.down = False
        self.failure: BrokerError | None = None
        """Raised by every call while set (auth, vhost or answer failures)."""
        self.exchanges: dict[tuple[str, str], str] = {}
        self.queues: dict[tuple[str, str], QueueInfo] = {}
        self.bound: set[tuple[str, Binding]] = set()
        self.policies: dict[tuple[str, str], Policy] = {}
        self.worker_connections: list[BrokerConnection] = []
        self.worker_channels: list[BrokerChannel] = []
        self.node = "rabbit@memory"
        """The node quorum queues are placed on (their only member)."""
        self.cluster_nodes = 1
        """What `GET /api/nodes` would count."""

    def _check(self) -> None:
        if self.down:
            raise BrokerUnavailable("in-memory broker is down")
        if self.failure is not None:
            raise self.failure

    def set_depth(self, vhost: str, name: str, ready: int, unacked: int = 0) -> None:
        q = self.queues[vhost, name]
        self.queues[vhost, name] = q.model_copy(
            update={"messages_ready": ready, "messages_unacknowledged": unacked}
        )

    async def queue(self, vhost: str, name: str) -> QueueInfo | None:
        self._check()
        return self.queues.get((vhost, name))

    async def connections(self, vhost: str) -> list[BrokerConnection]:
        self._check()
        return list(self.worker_connections)

    async def channels(self, vhost: str) -> list[BrokerChannel]:
        self._check()
        return list(self.worker_channels)

    async def declare_exchange(self, vhost: str, name: str, kind: str) -> None:
        self._check()
        if self.exchanges.setdefault((vhost, name), kind) != kind:
            raise BrokerRejected(f"exchange {name} exists with another type")

    async def declare_queue(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        self._check()
        existing = self.queues.get((vhost, name))
        kind = str(arguments.get("x-queue-type", "classic"))
        if existing is None:
            nodes = [self.node] if kind == "quorum" else []
            self.queues[vhost, name] = QueueInfo(
                name=name,
                arguments=dict(arguments),
                type=kind,
                leader=nodes[0] if nodes else None,
                members=nodes,
                online=nodes,
            )
        elif existing.type != kind:
            raise BrokerRejected(f"PRECONDITION_FAILED: inequivalent arg 'x-queue-type' for {name}")
        elif existing.arguments != arguments:
            raise BrokerRejected(f"PRECONDITION_FAILED: inequivalent arguments for {name}")

    async def delete_queue(self, vhost: str, name: str, if_empty: bool = True) -> None:
        self._check()
        q = self.queues.get((vhost, name))
        if q is not None and if_empty and q.type == "quorum":  # as RabbitMQ answers (HTTP 400)
            raise BrokerRejected("deleting queues with the if-empty flag set are not supported")
        if (
            q is not None and if_empty and q.messages_ready > 0
        ):  # like RabbitMQ's if-empty: ready only
            raise BrokerRejected(f"queue {name} is not empty")
        self.queues.pop((vhost, name), None)

    async def bindings(self, vhost: str, exchange: str, queue: str) -> list[Binding]:
        self._check()
        return [
            b for v, b in self.bound if v == vhost and (b.exchange, b.queue) == (exchange, queue)
        ]

    async def bind(self, vhost: str, binding: Binding) -> None:
        self._check()
        self.bound.add((vhost, binding))

    async def unbind(self, vhost: str, binding: Binding) -> None:
        self._check()
        self.bound.discard((vhost, binding))

    async def nodes(self) -> int:
        self._check()
        return self.cluster_nodes

    async def put_policy(self, vhost: str, policy: Policy) -> None:
        self._check()
        self.policies[vhost, policy.name] = policy

    async def delete_policy(self, vhost: str, name: str) -> None:
        self._check()
        self.policies.pop((vhost, name), None)
