"""Process-wide and per-pool runtime state held in kopf's memo: the Kubernetes client, cached
management API clients and AMQP probes, and each pool's scaling history."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from ffpool_operator.broker.amqp_depth import AmqpReadyProbe, FreshStats
from ffpool_operator.broker.management import ManagementClient
from ffpool_operator.decisions.scaling import History
from ffpool_operator.decisions.victims import IdleMark
from ffpool_operator.kube.client import Kube
from ffpool_operator.spec.credentials import BrokerCredentials, from_secret
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec, PoolStatus


@dataclass(frozen=True)
class BrokerClients:
    """One read of a pool's broker Secret: the clients it gives and what the pods get from it."""

    admin: ManagementClient
    stats: FreshStats
    """Queue statistics: exact counts over AMQP when the Secret has its URL, else the API's."""
    has_amqp_url: bool
    """Whether the Secret holds the AMQP URL the pods get by secretKeyRef."""
    broker_port: int | None
    """The AMQP URL's port (the NetworkPolicy's egress to the broker)."""
    amqp_url: SecretStr | None = None
    """The Secret's AMQP URL, for moving a retired band's jobs (flows/band_moves.py)."""


@dataclass
class PoolState:
    history: History | None = None
    idle: dict[str, IdleMark] = field(default_factory=dict)
    """Per worker pod, since when it has been seen idle (victims.settle)."""
    failed_polls: int = 0
    """Consecutive autoscaling polls without queue metrics (scaling.failures_after)."""
    paused: bool | None = None
    """Whether the last poll found the pool paused by annotation (None: not polled yet)."""
    next_drift_check: float = 0.0
    broker: BrokerClients | None = None
    """As the last reconcile or drift check read the Secret: the autoscaling poll and the repair
    pass use these instead of reading it themselves."""
    deleted: bool = False
    """Set when the pool is deleted: a poll still in flight then drops the series it set."""
    conditions: list[Condition] | None = None
    """The authoritative conditions: reconcile and daemon both write the whole list (a merge
    patch replaces lists), so they share it here instead of each re-reading a stale body."""

    @property
    def has_amqp_url(self) -> bool:
        return self.broker is None or self.broker.has_amqp_url  # unread: no problem to report

    @property
    def broker_port(self) -> int | None:
        return None if self.broker is None else self.broker.broker_port


@dataclass
class Runtime:
    kube: Kube
    admins: dict[tuple[str, str, str], ManagementClient] = field(default_factory=dict)
    pools: dict[tuple[str, str], PoolState] = field(default_factory=dict)
    probes: dict[str, AmqpReadyProbe] = field(default_factory=dict)

    def state(self, pool: PoolRef) -> PoolState:
        """The pool's state, created empty on its first use."""
        return self.pools.setdefault((pool.namespace, pool.name), PoolState())

    def adopt_conditions(self, pool: PoolRef, status: PoolStatus) -> list[Condition]:
        """The pool's shared conditions; until the flows write any, they start as `status`'s
        (kept from then on: a getter's name would hide that write)."""
        state = self.state(pool)
        if state.conditions is None:
            state.conditions = list(status.conditions)
        return state.conditions

    def forget(self, pool: PoolRef) -> None:
        state = self.pools.pop((pool.namespace, pool.name), None)
        if state is not None:
            state.deleted = True

    async def credentials(self, pool: PoolRef, spec: PoolSpec) -> BrokerCredentials:
        secret = await self.kube.get("Secret", pool.namespace, spec.rabbitmq.secret_name)
        return from_secret(secret, spec.rabbitmq)

    async def broker_clients(self, pool: PoolRef, spec: PoolSpec) -> BrokerClients:
        """Reads the pool's Secret (every call: it may have changed); one management client per
        credentials and one AMQP probe per URL serve every pool that shares them.
        Raises MissingSecret or KubeError."""
        creds = await self.credentials(pool, spec)
        key = creds.cache_key()
        if key not in self.admins:
            self.admins[key] = ManagementClient(
                creds.management_url, creds.username, creds.password, spec.rabbitmq.timeout_seconds
            )
        admin = self.admins[key]
        return BrokerClients(
            admin=admin,
            stats=FreshStats(admin, self._probe(creds, spec)),
            has_amqp_url=creds.amqp_url is not None,
            broker_port=creds.amqp_port,
            amqp_url=creds.amqp_url,
        )

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
