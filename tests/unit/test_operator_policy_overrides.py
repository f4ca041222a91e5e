"""Which policies override a pool's queue (policy_overrides.py: pure, no I/O)."""

from __future__ import annotations

from typing import Any

from ffpool_operator.broker import topology
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import conditions, policy_overrides
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.decisions.broker_status import BrokerProblem
from ffpool_operator.spec.pool import Condition

OURS = "ffpool.ns.pool"
ARGS = {
    "x-message-ttl": 3_600_000,
    "x-max-length": 10_000,
    "x-overflow": "reject-publish",
    "x-dead-letter-exchange": "ex",
}


def queue(policy: str | None, definition: dict[str, Any], operator: str | None = None) -> QueueInfo:
    return QueueInfo.model_validate(
        {
            "name": "jobs",
            "arguments": ARGS,
            "policy": policy,
            "operator_policy": operator,
            "effective_policy_definition": definition,
        }
    )


def test_the_pools_own_policy_is_no_override() -> None:
    assert policy_overrides.find(queue(OURS, {"max-length": 10_000}), OURS) is None
    assert policy_overrides.find(queue(None, {}), OURS) is None


def test_a_site_policy_with_a_lower_limit_overrides_and_is_named() -> None:
    found = policy_overrides.find(queue("site", {"max-length": 5, "message-ttl": 60_000}), OURS)
    assert found is not None
    assert found.fields == {"max-length": (10_000, 5), "message-ttl": (3_600_000, 60_000)}
    assert found.describe() == (
        "queue jobs: policy site sets max-length 10000 → 5, message-ttl 3600000 → 60000"
    )


def test_a_higher_limit_or_an_argument_that_wins_is_no_override() -> None:
    """RabbitMQ keeps the lower limit and the queue's own overflow/dead-letter arguments."""
    higher = {"max-length": 50_000, "overflow": "drop-head", "dead-letter-exchange": "other"}
    assert policy_overrides.find(queue("site", higher), OURS) is None


def test_a_limit_the_pool_does_not_set_overrides() -> None:
    found = policy_overrides.find(queue("site", {"expires": 1000, "ha-mode": "all"}), OURS)
    assert found is not None
    assert found.fields == {"expires": (None, 1000)}
    assert "expires unset → 1000" in found.describe()


def test_an_operator_policy_is_named_beside_the_pools_own() -> None:
    found = policy_overrides.find(queue(OURS, {"max-length": 100}, operator="limits"), OURS)
    assert found is not None
    assert found.policies == ("limits",)


def test_an_unreadable_effective_definition_is_read_as_none() -> None:
    assert queue("site", []).effective_policy_definition == {}  # type: ignore[arg-type]


def _topology(report: TopologyReport) -> Condition:
    conds = conditions.set_condition([], conditions.TOPOLOGY_READY, True, "Declared")
    conds = topology.overrides_condition(conds, report, 3)
    return next(c for c in conds if c.type == conditions.TOPOLOGY_READY)


def test_an_override_makes_topology_not_ready_unless_another_reason_comes_first() -> None:
    override = policy_overrides.find(queue("site", {"max-length": 5}), OURS)
    assert override is not None
    cond = _topology(TopologyReport(overrides=[override]))
    assert (cond.status.value, cond.reason) == ("False", "PolicyOverrides")
    assert cond.message.startswith("queue jobs: policy site sets max-length 10000 → 5. ")
    assert cond.observed_generation == 3
    assert _topology(TopologyReport()).reason == "Declared"
    problem = BrokerProblem(reason="BrokerUnavailable", message="x", topology=None)
    assert _topology(TopologyReport(overrides=[override], problem=problem)).reason == "Declared"
    assert _topology(TopologyReport(overrides=[override], conflicts=["c"])).reason == "Declared"
