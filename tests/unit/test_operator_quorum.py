"""The operator in quorum mode (pure parts and the in-memory broker): the band queues in the
plan and policy, refusing a queue type switch in place, quorum health from queue info, depth
over the bands, renamed bands, and the broker addresses the pods get."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ffpool import names
from ffpool.broker_addresses import parse_addresses
from ffpool.topology import DELIVERY_LIMIT_SLACK, Topology
from ffpool_operator.broker import queue_rename, topology
from ffpool_operator.decisions import quorum_health
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.decisions.scaling import QueueStats
from ffpool_operator.flows import autoscale_io, reconcile_io
from ffpool_operator.manifests import network_policies, objects
from ffpool_operator.spec.pool import PoolSpec
from ffpool_operator.spec.topology_status import QueueHealth
from tests import podsecurity
from tests.operator_harness.memory_broker import InMemoryBroker
from tests.operator_harness.samples import POOL, spec

VH = "/"
QUORUM = {"queueType": "quorum"}
BANDS = ("ffmpeg_job_queue.p7", "ffmpeg_job_queue.p4", "ffmpeg_job_queue")


def quorum_spec(**topo: Any) -> PoolSpec:
    return spec(topology={**QUORUM, **topo})


def test_classic_plan_is_one_queue_without_a_type() -> None:
    p = topology.plan(POOL, spec().topology)
    assert p.job_queues == ("ffmpeg_job_queue",)
    assert p.queue_type == "classic"
    assert "x-queue-type" not in p.queues["ffmpeg_job_queue"]
    assert p.policy.pattern == "^ffmpeg_job_queue$"
    assert "delivery-limit" not in p.policy.definition


def test_quorum_plan_declares_every_band_the_dlq_and_one_binding_each() -> None:
    p = topology.plan(POOL, quorum_spec().topology)
    assert p.job_queues == BANDS
    assert list(p.queues) == [*BANDS, "ffmpeg_job_dlq"]
    for band in BANDS:
        assert p.queues[band]["x-queue-type"] == "quorum"
        assert "x-max-priority" not in p.queues[band]
    assert p.queues["ffmpeg_job_dlq"] == {"x-queue-type": "quorum"}
    keys = {(b.queue, b.routing_key) for b in p.bindings}
    assert keys == {
        ("ffmpeg_job_queue.p7", "ffmpeg_job.p7"),
        ("ffmpeg_job_queue.p4", "ffmpeg_job.p4"),
        ("ffmpeg_job_queue", "ffmpeg_job"),
        ("ffmpeg_job_dlq", "ffmpeg_job_dlq"),
    }


def test_quorum_policy_covers_every_band_and_nothing_else() -> None:
    p = topology.plan(POOL, quorum_spec(maxAttempts=4).topology)
    pattern = re.compile(p.policy.pattern)
    assert all(pattern.search(q) for q in BANDS)
    for other in ("ffmpeg_job_dlq", "ffmpeg_job_queue.p", "xffmpeg_job_queue", "ffmpeg_job_queueX"):
        assert not pattern.search(other), other
    assert p.policy.definition == {
        "message-ttl": 3_600_000,
        "max-length": 10_000,
        "overflow": "reject-publish",
        "dead-letter-exchange": names.JOB_EXCHANGE,
        "dead-letter-routing-key": "ffmpeg_job_dlq",
        "delivery-limit": 3 + DELIVERY_LIMIT_SLACK,  # MAX_ATTEMPTS - 1 + slack (topology.py)
        "dead-letter-strategy": "at-least-once",
    }


async def test_ensure_declares_quorum_queues_and_reports_their_members() -> None:
    broker = InMemoryBroker()
    report = await topology.ensure(broker, VH, topology.plan(POOL, quorum_spec().topology))
    assert report.ready
    assert {q.name for q in report.queues} == {*BANDS, "ffmpeg_job_dlq"}
    assert all(broker.queues[VH, q].type == "quorum" for q in BANDS)
    assert report.queues[0] == QueueHealth(
        name="ffmpeg_job_queue.p7",
        type="quorum",
        leader="rabbit@memory",
        members_online=1,
        members=1,
        members_expected=1,
    )
    status = topology.status_of(report)["topology"]["queues"][0]
    assert status == {
        "name": "ffmpeg_job_queue.p7",
        "type": "quorum",
        "leader": "rabbit@memory",
        "membersOnline": 1,
        "members": 1,
        "membersExpected": 1,
    }
    conds = topology.health_condition([], report, True, 3)
    assert (conds[0].type, conds[0].status, conds[0].reason) == (
        "QuorumHealthy",
        "True",
        "AllMembersOnline",
    )
    assert topology.health_condition(conds, report, False, 3) == []  # classic: no condition


async def test_a_classic_queue_is_not_switched_to_quorum_in_place() -> None:
    broker = InMemoryBroker()
    await topology.ensure(broker, VH, topology.plan(POOL, spec().topology))
    classic = broker.queues[VH, "ffmpeg_job_queue"]
    report = await topology.ensure(broker, VH, topology.plan(POOL, quorum_spec().topology))
    assert not report.ready
    assert report.type_changes == [
        "queue ffmpeg_job_queue is a classic queue, the spec wants quorum",
        "queue ffmpeg_job_dlq is a classic queue, the spec wants quorum",
    ]
    assert report.conflicts == []  # the type is the problem, not each argument
    assert broker.queues[VH, "ffmpeg_job_queue"] == classic
    assert broker.queues[VH, "ffmpeg_job_queue.p7"].type == "quorum"  # new names: declared
    cond = reconcile_io.topology_condition([], report, 2)[0]
    assert (cond.type, cond.status, cond.reason) == ("TopologyReady", "False", "QueueTypeChange")
    assert "ffmpeg_job_queue is a classic queue, the spec wants quorum" in cond.message
    assert "topology.jobQueue" in cond.message
    assert "OldQueueNotEmpty" in cond.message
    # Not hidden by a later check that would otherwise say something else.
    assert topology.overrides_condition([cond], report, 2) == [cond]


async def test_a_quorum_dlq_is_not_switched_back_to_classic() -> None:
    broker = InMemoryBroker()
    await topology.ensure(broker, VH, topology.plan(POOL, quorum_spec().topology))
    report = await topology.ensure(broker, VH, topology.plan(POOL, spec().topology))
    assert report.type_changes == [
        "queue ffmpeg_job_queue is a quorum queue, the spec wants classic",
        "queue ffmpeg_job_dlq is a quorum queue, the spec wants classic",
    ]


MGMT_QUORUM = {
    "arguments": {"x-queue-type": "quorum"},
    "leader": "rabbit@b",
    "members": ["rabbit@a", "rabbit@b", "rabbit@c"],
    "name": "jobs",
    "online": ["rabbit@b", "rabbit@c"],
    "type": "quorum",
}


def test_health_from_the_management_apis_queue_info() -> None:
    h = quorum_health.health(QueueInfo.model_validate(MGMT_QUORUM))
    assert (h.leader, h.members_online, h.members_expected) == ("rabbit@b", 2, 3)
    classic = QueueInfo.model_validate({"arguments": {}, "name": "c", "type": "classic"})
    assert quorum_health.health(classic) == QueueHealth(name="c", type="classic")
    # Absent or odd fields from other versions: no leader, no members.
    odd = QueueInfo.model_validate({"name": "q", "type": "quorum", "leader": "", "members": {}})
    assert (odd.leader, odd.members) == (None, [])


def q(
    online: int, expected: int = 3, leader: str | None = "rabbit@a", nodes: int | None = None
) -> QueueHealth:
    return QueueHealth(
        name="jobs",
        type="quorum",
        leader=leader,
        members_online=online,
        members=expected,
        members_expected=expected if nodes is None else nodes,
    )


@pytest.mark.parametrize(
    ("queues", "status", "reason"),
    [
        ([q(3)], True, "AllMembersOnline"),
        ([q(3), q(2)], True, "MembersOffline"),
        ([q(2), q(1)], False, "MajorityUnavailable"),
        ([q(2, expected=4)], False, "MajorityUnavailable"),
        ([q(3, leader=None)], False, "MajorityUnavailable"),
        ([q(1, expected=1)], True, "AllMembersOnline"),
        ([q(1, expected=1, nodes=3)], True, "UnderReplicated"),
        ([q(2, expected=2, nodes=3)], True, "UnderReplicated"),
        ([q(2, nodes=3)], True, "MembersOffline"),
        ([q(3), QueueHealth(name="c", type="classic")], False, "NotQuorum"),
    ],
)
def test_quorum_verdict(queues: list[QueueHealth], status: bool, reason: str) -> None:
    got_status, got_reason, message = quorum_health.verdict(queues)
    assert (got_status, got_reason) == (status, reason)
    if reason == "MembersOffline":
        assert "jobs: 2/3 members online (3 replicas), leader rabbit@a" in message
    if reason == "NotQuorum":
        assert "c (classic)" in message


async def test_depth_is_every_bands_jobs() -> None:
    broker = InMemoryBroker()
    s = quorum_spec()
    await topology.ensure(broker, VH, topology.plan(POOL, s.topology))
    broker.set_depth(VH, "ffmpeg_job_queue.p7", ready=2, unacked=1)
    broker.set_depth(VH, "ffmpeg_job_queue", ready=5, unacked=3)
    broker.set_depth(VH, "ffmpeg_job_dlq", ready=100)  # dead letters are no backlog
    stats = await autoscale_io.read_stats(broker, s)
    assert stats == QueueStats(ready=7, unacked=4, consumers=0)
    assert stats.backlog == 11
    assert await autoscale_io.read_stats(InMemoryBroker(), s) is None  # no queue yet


def test_renamed_bands_are_all_retired() -> None:
    old = quorum_spec()
    gone = queue_rename.retired_all(old, quorum_spec(jobQueue="jobs_q"), 0.0)
    assert [(g.queue, g.successor, g.takes_new_jobs) for g in gone] == [
        ("ffmpeg_job_queue.p7", "jobs_q.p7", True),
        ("ffmpeg_job_queue.p4", "jobs_q.p4", True),
        ("ffmpeg_job_queue", "jobs_q", True),
    ]
    fewer = queue_rename.retired_all(old, quorum_spec(priorityBands=2), 0.0)
    assert [(g.queue, g.successor, g.takes_new_jobs) for g in fewer] == [
        ("ffmpeg_job_queue.p7", "ffmpeg_job_queue.p5", True),
        ("ffmpeg_job_queue.p4", "ffmpeg_job_queue", True),
    ]
    # The migration the type-switch refusal suggests: a new name, the old classic queue
    # unbound (its routing key is band 0's).
    (moved,) = queue_rename.retired_all(spec(), quorum_spec(jobQueue="jobs_q"), 0.0)
    assert (moved.queue, moved.successor, moved.takes_new_jobs) == (
        "ffmpeg_job_queue",
        "jobs_q",
        True,
    )
    assert queue_rename.retired_all(spec(), quorum_spec(), 0.0) == []  # refused, not retired


def test_every_band_is_current_for_the_watch() -> None:
    watch = queue_rename.Watch()
    (gone,) = queue_rename.retired_all(spec(), quorum_spec(jobQueue="jobs_q"), 0.0)
    watch.add("pool", gone)
    assert watch.watching("pool", (VH, "jobs_q.p7"), (VH, "jobs_q")) == [gone]
    assert watch.watching("pool", (VH, "jobs_q.p7"), (VH, "ffmpeg_job_queue")) == []


def test_broker_addresses_reach_the_pods() -> None:
    s = spec(rabbitmq={"secretName": "rmq", "addresses": ["rmq-1.rmq:5672", "[fd00::2]:5672"]})
    assert objects.service_env(s)["RABBITMQ_ADDRESSES"] == "rmq-1.rmq:5672,[fd00::2]:5672"
    assert "RABBITMQ_ADDRESSES" not in objects.service_env(spec())
    env = objects.service_env(s)["RABBITMQ_ADDRESSES"]
    assert [str(a) for a in parse_addresses(env)] == s.rabbitmq.addresses  # as the pods read it
    for bad in ("rmq-1", "rmq:port", "a b:5672", "amqp://rmq:5672", "rmq_1:5672"):
        with pytest.raises(ValidationError):
            spec(rabbitmq={"secretName": "rmq", "addresses": [bad]})


def test_the_plan_is_the_services_topology() -> None:
    s = quorum_spec(priorityBands=4)
    topo = Topology.from_settings(s.topology)
    assert topology.plan(POOL, s.topology).job_queues == topo.job_queues()


def test_the_cluster_example_is_a_quorum_pool_on_three_hardened_nodes() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = [d for d in yaml.safe_load_all((root / "examples/rabbitmq-cluster.yaml").read_text())]
    [nodes] = [d for d in docs if d["kind"] == "StatefulSet"]
    assert nodes["spec"]["replicas"] == 3
    assert podsecurity.violations(nodes) == []
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert "rabbit_peer_discovery_k8s" in config["20-ffpool.conf"]
    assert "continuous_membership_reconciliation.enabled = true" in config["20-ffpool.conf"]
    [budget] = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == nodes["spec"]["selector"]
    [body] = [d for d in docs if d["kind"] == names.CRD_KIND]
    pool_spec = PoolSpec.model_validate(body["spec"])
    assert pool_spec.topology.quorum
    assert len(pool_spec.rabbitmq.addresses) == 3
    assert "examples/rabbitmq-cluster.yaml" in (root / "examples/rabbitmq.yaml").read_text()


def _egress_ports(s: PoolSpec) -> list[list[int]]:
    policy = network_policies.worker_policy(POOL, s, 5672)
    return [[p["port"] for p in rule.get("ports", [])] for rule in policy["spec"]["egress"]]


def test_the_network_policy_lets_pods_reach_every_broker_address() -> None:
    rmq = {"secretName": "rmq", "addresses": ["rmq-1:5672", "rmq-2:5701", "rmq-3:5701"]}
    assert [5672, 5701] in _egress_ports(spec(rabbitmq=rmq, networkPolicy={"enabled": True}))
    assert [5672] in _egress_ports(spec(networkPolicy={"enabled": True}))
