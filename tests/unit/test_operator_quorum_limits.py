"""The operator's quorum mode at its edges: cluster size against a queue's members, a type
change in place, an unreachable broker, DeleteIfEmpty on a quorum queue, and the delivery limit
a site policy lowers."""

from __future__ import annotations

from typing import Any

from ffpool_operator.broker import topology
from ffpool_operator.decisions import policy_overrides, quorum_health
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec.pool import Condition
from tests.operator_harness.memory_broker import InMemoryBroker
from tests.operator_harness.samples import POOL, spec

VH = "/"
ONE_OF_THREE = {
    "name": "q",
    "type": "quorum",
    "leader": "rabbit@rabbitmq-0",
    "members": ["rabbit@rabbitmq-0"],
    "online": ["rabbit@rabbitmq-0"],
}


def test_a_one_member_queue_on_a_three_node_cluster_is_under_replicated() -> None:
    h = quorum_health.health(QueueInfo.model_validate(ONE_OF_THREE), nodes=3)
    assert (h.members_online, h.members, h.members_expected) == (1, 1, 3)
    status, reason, message = quorum_health.verdict([h])
    assert (status, reason) == (True, "UnderReplicated")
    assert "q: 1/3 members online (1 replicas)" in message


def test_without_the_node_count_a_queue_is_held_to_its_members() -> None:
    h = quorum_health.health(QueueInfo.model_validate(ONE_OF_THREE))
    assert quorum_health.verdict([h])[1] == "AllMembersOnline"


def test_missing_fields_read_as_no_majority() -> None:
    info = QueueInfo.model_validate({"name": "q", "type": "quorum"})
    assert quorum_health.verdict([quorum_health.health(info, 3)])[1] == "MajorityUnavailable"


async def test_ensure_holds_quorum_queues_to_the_clusters_nodes() -> None:
    broker = InMemoryBroker()
    broker.cluster_nodes = 3
    q = spec(topology={"queueType": "quorum"})
    report = await topology.ensure(broker, VH, topology.plan(POOL, q.topology))
    assert {h.members_expected for h in report.queues} == {3}
    conds = topology.health_condition([], report, True, None)
    assert (conds[0].status, conds[0].reason) == ("True", "UnderReplicated")


async def test_a_type_change_in_place_is_not_quorum_healthy() -> None:
    broker = InMemoryBroker()
    await broker.declare_queue(VH, "ffmpeg_job_queue", {"x-max-priority": 9})
    await broker.declare_queue(VH, "ffmpeg_job_dlq", {})
    q = spec(topology={"queueType": "quorum"})
    report = await topology.ensure(broker, VH, topology.plan(POOL, q.topology))
    assert len(report.type_changes) == 2
    status, reason, message = quorum_health.verdict(report.queues)
    assert (status, reason) == (False, "NotQuorum")
    assert "ffmpeg_job_queue (classic)" in message
    assert "ffmpeg_job_dlq (classic)" in message


def test_an_unreachable_broker_makes_quorum_health_unknown() -> None:
    before = [
        Condition(
            type="QuorumHealthy",
            status="True",
            reason="AllMembersOnline",
            message="",
            last_transition_time="2026-01-01T00:00:00Z",
        )
    ]
    conds = quorum_health.with_condition(before, None, True, None)
    assert (conds[0].status, conds[0].reason) == ("Unknown", "BrokerUnavailable")


def test_a_policy_lowering_the_delivery_limit_is_reported() -> None:
    args: dict[str, Any] = {"x-queue-type": "quorum", "x-delivery-limit": 2}
    info = QueueInfo(
        name="q",
        arguments=args,
        type="quorum",
        policy="site",
        effective_policy_definition={"delivery-limit": 0, "dead-letter-strategy": "at-most-once"},
    )
    found = policy_overrides.find(info, "ffpool.ns.pool")
    assert found is not None
    assert found.fields == {
        "delivery-limit": (2, 0),
        "dead-letter-strategy": (None, "at-most-once"),
    }
    # the queue's own strategy wins over the policy's
    with_strategy = info.model_copy(
        update={"arguments": {**args, "x-dead-letter-strategy": "at-least-once"}}
    )
    found = policy_overrides.find(with_strategy, "ffpool.ns.pool")
    assert found is not None
    assert set(found.fields) == {"delivery-limit"}
