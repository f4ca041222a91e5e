"""The pool's RabbitMQ topology: a pure plan from the spec, and `ensure`, which declares what is
missing through a BrokerAdmin and reports (never fails on) argument and type conflicts.

RabbitMQ cannot change a declared queue's arguments or type, so a queue whose arguments or type
differ from the spec is reported, not redeclared; the settings that *can* change live are also
put in a policy owned by the pool. Note: where both set a limit, RabbitMQ applies the lower of
the two (https://www.rabbitmq.com/docs/parameters#policies), so a policy lowers TTL/max-length
live.
"""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ffpool import names
from ffpool.topology import argument_differences
from ffpool_operator.broker import queue_rename
from ffpool_operator.decisions import policy_overrides, quorum_health
from ffpool_operator.decisions.broker_model import (
    Binding,
    BrokerAdmin,
    BrokerRejected,
    Policy,
    QueueInfo,
)
from ffpool_operator.decisions.broker_status import BrokerProblem
from ffpool_operator.decisions.policy_overrides import Override
from ffpool_operator.spec.pool import Condition, PoolRef, TopologySpec
from ffpool_operator.spec.topology_status import QueueHealth, TopologyStatus

# Queue argument → policy key, for the arguments a policy can also carry (a quorum queue on
# RabbitMQ 3.10 takes all of these; a classic queue has no delivery limit or strategy).
POLICY_KEYS = {
    "x-message-ttl": "message-ttl",
    "x-max-length": "max-length",
    "x-overflow": "overflow",
    "x-dead-letter-exchange": "dead-letter-exchange",
    "x-dead-letter-routing-key": "dead-letter-routing-key",
    "x-delivery-limit": "delivery-limit",
    "x-dead-letter-strategy": "dead-letter-strategy",
}


class TopologyPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    exchange: str
    exchange_kind: str = "direct"
    job_queue: str
    job_queues: tuple[str, ...]
    """Every priority band's queue, highest first (the job queue alone when classic)."""
    queues: dict[str, dict[str, Any]]
    queue_type: str = "classic"
    """The type every queue of the plan (bands and DLQ) must have."""
    bindings: tuple[Binding, ...]
    policy: Policy


class TopologyReport(BaseModel):
    conflicts: list[str] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)
    exchange_conflict: str | None = None
    """The job exchange exists with other settings (RabbitMQ refused to redeclare it)."""
    problem: BrokerProblem | None = None
    """Set when the broker could not be asked, or refused (auth, vhost): see broker_status."""
    overrides: list[Override] = Field(default_factory=list)
    """Another policy (a site's, an operator policy) changes a queue's limits: see
    policy_overrides."""
    stranded: list[str] = Field(default_factory=list)
    """Jobs left in a queue the spec renamed away from: see queue_rename."""
    type_changes: list[str] = Field(default_factory=list)
    """Queues that exist with another type than the spec's: never redeclared (see type_change)."""
    queues: list[QueueHealth] = Field(default_factory=list)
    """Each queue of the plan as the broker shows it (status.topology.queues)."""

    @property
    def ready(self) -> bool:
        return (
            not self.conflicts
            and not self.type_changes
            and self.exchange_conflict is None
            and self.problem is None
            and not self.overrides
            and not self.stranded
        )


def overrides_condition(
    conds: list[Condition], report: TopologyReport, generation: int | None
) -> list[Condition]:
    """Applied after reconcile.topology_condition: what the broker does unlike the spec (jobs
    left in a renamed queue, a policy override) is reported only over a topology otherwise
    declared (a broker problem or an argument conflict stays the reason)."""
    if report.problem or report.conflicts or report.type_changes or report.exchange_conflict:
        return conds
    if report.stranded:  # jobs that will not run come before limits that differ
        return queue_rename.condition(conds, report.stranded, generation)
    return policy_overrides.condition(conds, report.overrides, generation)


def read_queues(report: TopologyReport) -> list[QueueHealth] | None:
    """The queues as read, None when the broker could not be asked (status keeps its last)."""
    if report.problem is not None or report.exchange_conflict is not None:
        return None
    return report.queues


def health_condition(
    conds: list[Condition], report: TopologyReport, quorum: bool, generation: int | None
) -> list[Condition]:
    return quorum_health.with_condition(conds, read_queues(report), quorum, generation)


def status_of(report: TopologyReport) -> dict[str, Any]:
    """`status.topology` to write (nothing when the queues were not read)."""
    queues = read_queues(report)
    if queues is None:
        return {}
    out = TopologyStatus(queues=queues).model_dump(by_alias=True, exclude_none=True, mode="json")
    return {"topology": out}


def policy_name(pool: PoolRef) -> str:
    return f"ffpool.{pool.namespace}.{pool.name}"


def policy_pattern(queues: tuple[str, ...]) -> str:
    """Exactly the job queues: one name, or an alternation of every band's."""
    names = [re.escape(q) for q in queues]
    return f"^{names[0]}$" if len(names) == 1 else f"^({'|'.join(names)})$"


def plan(pool: PoolRef, spec: TopologySpec) -> TopologyPlan:
    topo = spec.topology()
    args = topo.queue_arguments()
    definition = {POLICY_KEYS[k]: v for k, v in args.items() if k in POLICY_KEYS}
    bands = topo.bands()
    queues = {b.queue: args for b in bands}
    queues[topo.dlq_queue] = topo.dlq_arguments()
    return TopologyPlan(
        exchange=topo.job_exchange,
        job_queue=topo.job_queue,
        job_queues=topo.job_queues(),
        queues=queues,
        queue_type=topo.queue_type.value,
        bindings=(
            *(
                Binding(exchange=topo.job_exchange, queue=b.queue, routing_key=b.routing_key)
                for b in bands
            ),
            # Dead letters come back through the job exchange keyed by the DLQ's name.
            Binding(exchange=topo.job_exchange, queue=topo.dlq_queue, routing_key=topo.dlq_queue),
        ),
        policy=Policy(
            name=policy_name(pool),
            pattern=policy_pattern(topo.job_queues()),
            definition=definition,
        ),
    )


def type_change(queue: str, have: str, want: str) -> str:
    """RabbitMQ refuses to redeclare a queue with another type (PRECONDITION_FAILED), and
    deleting it would drop its jobs: the user chooses new names (docs/operator.md)."""
    return f"queue {queue} is a {have} queue, the spec wants {want}"


def in_use(info: QueueInfo) -> str | None:
    """Why a queue must not be deleted (None: it may go). RabbitMQ's `if-empty` delete counts
    only ready messages, so in-flight jobs and consumers are checked here."""
    counts = {
        "ready": info.messages_ready,
        "in flight": info.messages_unacknowledged,
        "consumers": info.consumers,
    }
    busy = [f"{n} {what}" for what, n in counts.items() if n > 0]
    return ", ".join(busy) or None


async def _ensure_queues(
    admin: BrokerAdmin, vhost: str, p: TopologyPlan, r: TopologyReport
) -> None:
    # Read once per pass: every quorum queue is held to the cluster's size (quorum_health).
    nodes = await admin.nodes() if p.queue_type == names.QUEUE_TYPE_QUORUM else None
    for name, arguments in p.queues.items():
        info = await admin.queue(vhost, name)
        if info is None:
            await admin.declare_queue(vhost, name, arguments)
            r.created.append(f"queue {name}")
            # Read back for its leader and members (status.topology.queues).
            info = await admin.queue(vhost, name)
            r.queues.extend([quorum_health.health(info, nodes)] if info is not None else [])
            continue
        r.queues.append(quorum_health.health(info, nodes))
        if info.type != p.queue_type:
            r.type_changes.append(type_change(name, info.type, p.queue_type))
            continue
        r.conflicts.extend(f"{name} {d}" for d in argument_differences(arguments, info.arguments))
        if (override := policy_overrides.find(info, p.policy.name)) is not None:
            r.overrides.append(override)


async def _watch_retired(
    admin: BrokerAdmin, vhost: str, p: TopologyPlan, r: TopologyReport
) -> None:
    current = [(vhost, q) for q in p.job_queues]
    for old in queue_rename.WATCH.watching(p.policy.name, *current):
        info = await admin.queue(old.vhost, old.queue)
        if queue_rename.drained(old, info, time.monotonic()):
            queue_rename.WATCH.drop(p.policy.name, old)
        elif (message := queue_rename.stranded(old, info)) is not None:
            r.stranded.append(message)


async def ensure(admin: BrokerAdmin, vhost: str, p: TopologyPlan) -> TopologyReport:
    """Idempotent; raises BrokerError (the caller classifies it), reports conflicts in the
    result. Only a plain BrokerRejected is a conflict: auth and vhost failures are not."""
    report = TopologyReport()
    try:
        await admin.declare_exchange(vhost, p.exchange, p.exchange_kind)
    except BrokerRejected as exc:
        report.exchange_conflict = f"exchange {p.exchange}: {exc}"
        return report
    await _ensure_queues(admin, vhost, p, report)
    await _watch_retired(admin, vhost, p, report)
    for binding in p.bindings:
        keys = {b.routing_key for b in await admin.bindings(vhost, binding.exchange, binding.queue)}
        if binding.routing_key not in keys:
            await admin.bind(vhost, binding)
            report.created.append(f"binding {binding.exchange}→{binding.queue}")
    await admin.put_policy(vhost, p.policy)
    return report
