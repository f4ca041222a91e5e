"""Broker failures classified (pure): each kind its own reason and TopologyReady status,
argument conflicts only from real conflicts, retries backing off."""

import pytest

from ffpool_operator.broker import topology
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import broker_status
from ffpool_operator.decisions.broker_model import (
    BrokerAuthFailed,
    BrokerBadAnswer,
    BrokerError,
    BrokerNotFound,
    BrokerRejected,
    BrokerUnavailable,
)
from ffpool_operator.flows import reconcile_io
from ffpool_operator.spec.credentials import MissingSecret
from tests.operator_harness.memory_broker import InMemoryBroker
from tests.operator_harness.samples import POOL, spec


@pytest.mark.parametrize(
    ("exc", "reason", "topology"),
    [
        (BrokerAuthFailed("HTTP 401"), "BrokerAuthFailed", False),
        (BrokerNotFound("HTTP 404"), "VhostNotFound", False),
        (BrokerBadAnswer("text/html"), "UnexpectedAnswer", None),
        (BrokerUnavailable("timeout"), "BrokerUnavailable", None),
        (BrokerRejected("HTTP 400"), "BrokerRejected", False),
        (MissingSecret("secret rmq not found"), "SecretInvalid", None),
    ],
)
def test_each_failure_has_its_own_reason(exc: Exception, reason: str, topology: bool) -> None:
    problem = broker_status.classify(exc)
    assert (problem.reason, problem.topology) == (reason, topology)
    assert str(exc) in problem.message
    cond = reconcile_io.topology_condition([], TopologyReport(problem=problem), 1)[0]
    assert (cond.reason, cond.message) == (reason, problem.message)
    assert "recreate" not in cond.message


def test_retries_back_off_to_a_cap() -> None:
    delays = [broker_status.retry_delay(n) for n in range(8)]
    assert delays[:4] == [10.0, 20.0, 40.0, 80.0]
    assert delays == sorted(delays)
    assert max(delays) == broker_status.RETRY_MAX_SECONDS
    assert broker_status.retry_delay(10_000) == broker_status.RETRY_MAX_SECONDS


@pytest.mark.parametrize("failure", [BrokerAuthFailed("401"), BrokerNotFound("404")])
async def test_auth_and_vhost_failures_are_not_argument_conflicts(failure: BrokerError) -> None:
    broker = InMemoryBroker()
    broker.failure = failure
    with pytest.raises(type(failure)):
        await topology.ensure(broker, "/", topology.plan(POOL, spec().topology))


async def test_an_exchange_of_another_type_is_an_exchange_conflict() -> None:
    broker = InMemoryBroker()
    plan = topology.plan(POOL, spec().topology)
    broker.exchanges["/", plan.exchange] = "topic"
    report = await topology.ensure(broker, "/", plan)
    assert not report.ready
    assert report.conflicts == []
    cond = reconcile_io.topology_condition([], report, 1)[0]
    assert (cond.status.value, cond.reason) == ("False", "ExchangeConflict")


def test_a_secret_without_the_pods_amqp_url_is_a_problem() -> None:
    assert broker_status.pods_secret_problem("rmq", "amqp-url", True) is None
    problem = broker_status.pods_secret_problem("rmq", "amqp-url", False)
    assert problem is not None
    assert problem.reason == "SecretIncomplete"
    assert "secret rmq has no key 'amqp-url'" in problem.message
