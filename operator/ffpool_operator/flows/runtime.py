"""Process-wide and per-pool runtime state held in kopf's memo: the Kubernetes client, cached
management API clients, and each pool's scaling history."""

from __future__ import annotations

from dataclasses import dataclass, field

from ffpool_operator.broker.amqp_depth import AmqpReadyProbe, FreshStats
from ffpool_operator.broker.management import ManagementClient
from ffpool_operator.decisions.scaling import History
from ffpool_operator.decisions.victims import IdleMark
from ffpool_operator.kube.client import Kube
from ffpool_operator.spec.credentials import BrokerCredentials, from_secret
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec, PoolStatus


@dataclass
class PoolState:
    history: History | None = None
    idle: dict[str, IdleMark] = field(default_factory=dict)
    """Per worker pod, since when it has been seen idle (victims.settle)."""
    next_drift_check: float = 0.0
    admin: ManagementClient | None = None
    """Refreshed (Secret re-read) at each reconcile and drift check."""
    stats: FreshStats | None = None
    has_amqp_url: bool = True
    """Whether the Secret, as last read, holds the AMQP URL the pods get by secretKeyRef."""
    broker_port: int | None = None
    """The AMQP URL's port, as last read (the NetworkPolicy's egress to the broker)."""
    conditions: list[Condition] | None = None
    """The authoritative conditions: reconcile and daemon both write the whole list (a merge
    patch replaces lists), so they share it here instead of each re-reading a stale body."""


@dataclass
class Runtime:
    kube: Kube
    admins: dict[tuple[str, str, str], ManagementClient] = field(default_factory=dict)
    pools: dict[tuple[str, str], PoolState] = field(default_factory=dict)
    probes: dict[str, AmqpReadyProbe] = field(default_factory=dict)

    def state(self, pool: PoolRef) -> PoolState:
        return self.pools.setdefault((pool.namespace, pool.name), PoolState())

    def conditions(self, pool: PoolRef, status: PoolStatus) -> list[Condition]:
        state = self.state(pool)
        if state.conditions is None:
            state.conditions = list(status.conditions)
        return state.conditions

    def forget(self, pool: PoolRef) -> None:
        self.pools.pop((pool.namespace, pool.name), None)

    async def credentials(self, pool: PoolRef, spec: PoolSpec) -> BrokerCredentials:
        secret = await self.kube.get("Secret", pool.namespace, spec.rabbitmq.secret_name)
        return from_secret(secret, spec.rabbitmq)

    async def admin(self, pool: PoolRef, spec: PoolSpec) -> ManagementClient:
        """Raises MissingSecret or KubeError."""
        creds = await self.credentials(pool, spec)
        key = creds.cache_key()
        if key not in self.admins:
            self.admins[key] = ManagementClient(
                creds.management_url, creds.username, creds.password, spec.rabbitmq.timeout_seconds
            )
        state = self.state(pool)
        state.has_amqp_url = creds.amqp_url is not None
        state.broker_port = creds.amqp_port
        state.admin = self.admins[key]
        state.stats = FreshStats(state.admin, self._probe(creds, spec))
        return self.admins[key]

    def _probe(self, creds: BrokerCredentials, spec: PoolSpec) -> AmqpReadyProbe | None:
        if creds.amqp_url is None:
            return None
        url = creds.amqp_url.get_secret_value()
        if url not in self.probes:
            self.probes[url] = AmqpReadyProbe(creds.amqp_url, spec.rabbitmq.timeout_seconds)
        return self.probes[url]

    async def close(self) -> None:
        for admin in self.admins.values():
            await admin.close()
        for probe in self.probes.values():
            await probe.close()
        await self.kube.close()
