from typing import Any

from ffpool import names
from ffpool_operator.decisions import victims
from ffpool_operator.decisions.victims import BrokerChannel, BrokerConnection, WorkerPod

P = names.WORKER_CONNECTION_PREFIX


def test_in_flight_is_mapped_to_pods_through_named_connections() -> None:
    conns = [
        BrokerConnection(name="10.0.0.1:1 -> 10.0.0.9:5672", user_provided_name=P + "w-a"),
        BrokerConnection(name="10.0.0.2:1 -> 10.0.0.9:5672", user_provided_name=P + "w-b"),
        BrokerConnection(name="10.0.0.3:1 -> 10.0.0.9:5672", user_provided_name="ffpool-server:s"),
        BrokerConnection(name="10.0.0.4:1 -> 10.0.0.9:5672"),
    ]
    chans = [
        BrokerChannel(connection_name="10.0.0.1:1 -> 10.0.0.9:5672", unacked=1),
        BrokerChannel(connection_name="10.0.0.1:1 -> 10.0.0.9:5672", unacked=1),
        BrokerChannel(connection_name="10.0.0.2:1 -> 10.0.0.9:5672", unacked=0),
        BrokerChannel(connection_name="10.0.0.3:1 -> 10.0.0.9:5672", unacked=7),
    ]
    assert victims.in_flight_by_pod(conns, chans) == {"w-a": 2, "w-b": 0}


def test_idle_pods_get_the_lowest_cost_and_busy_ones_a_high_cost() -> None:
    pods = [WorkerPod(name=n, in_flight=f) for n, f in [("a", 1), ("b", 0), ("c", 3), ("d", 0)]]
    costs = victims.deletion_costs(pods, remove=1)
    assert costs == {"a": 1000, "b": victims.VICTIM_COST, "c": 3000, "d": 0}
    assert victims.busy_count(pods) == 2
    # Asked to remove more than are idle: only idle pods are marked as victims.
    costs = victims.deletion_costs(pods, remove=4)
    assert sorted(n for n, c in costs.items() if c == victims.VICTIM_COST) == ["b", "d"]


def test_only_changed_annotations_are_patched() -> None:
    pods = [WorkerPod(name="a", deletion_cost=-1000), WorkerPod(name="b"), WorkerPod(name="c")]
    costs = {"a": -1000, "b": 0, "c": -1000}
    assert victims.cost_patches(pods, costs) == {"c": -1000}


def test_connections_are_grouped_by_pod() -> None:
    conns = [
        BrokerConnection(name="n1", user_provided_name=P + "w-a"),
        BrokerConnection(name="n2", user_provided_name=P + "w-a"),
        BrokerConnection(name="n3", user_provided_name="ffpool-server:s"),
    ]
    assert victims.connections_by_pod(conns) == {"w-a": frozenset({"n1", "n2"})}


LAG = 5.0


def _settle(
    pods: list[WorkerPod], conns: dict[str, frozenset[str]] | None, marks: Any, now: float
) -> tuple[dict[str, bool], Any]:
    out, marks = victims.settle(pods, conns, marks, now, LAG)
    return {p.name: p.busy for p in out}, marks


def test_idle_pods_count_as_busy_until_seen_idle_for_a_stats_interval() -> None:
    """The API's unacked counts lag (docs/design/rabbitmq.md): idle holds 2 polls and `lag` s."""
    conns = {"a": frozenset({"n1"}), "b": frozenset({"n2"})}
    pods = [WorkerPod(name="a"), WorkerPod(name="b", in_flight=1)]
    busy, marks = _settle(pods, conns, {}, now=100.0)
    assert busy == {"a": True, "b": True}  # first sight: unknown for how long it was idle
    busy, marks = _settle(pods, conns, marks, now=101.0)
    assert busy == {"a": True, "b": True}  # two polls, but only 1 s
    busy, marks = _settle(pods, conns, marks, now=105.0)
    assert busy == {"a": False, "b": True}
    assert "b" not in marks
    # b finishes its job: its idle clock starts now, not when it was first seen.
    pods = [WorkerPod(name="a"), WorkerPod(name="b")]
    busy, marks = _settle(pods, conns, marks, now=106.0)
    assert busy == {"a": False, "b": True}
    busy, marks = _settle(pods, conns, marks, now=111.0)
    assert busy == {"a": False, "b": False}


def test_a_reconnect_or_unknown_connections_restart_the_idle_clock() -> None:
    pods = [WorkerPod(name="a")]
    conns = {"a": frozenset({"n1"})}
    _, marks = _settle(pods, conns, {}, now=0.0)
    busy, marks = _settle(pods, conns, marks, now=10.0)
    assert busy == {"a": False}
    busy, marks = _settle(pods, {"a": frozenset({"n9"})}, marks, now=11.0)  # new connection
    assert busy == {"a": True}
    busy, marks = _settle(pods, None, marks, now=30.0)  # management API unreadable
    assert busy == {"a": True}
    assert marks == {}


def test_unsettled_idle_pods_are_not_victims_but_go_before_busy_ones() -> None:
    pods = [
        WorkerPod(name="a", in_flight=2),
        WorkerPod(name="b", settled=False),
        WorkerPod(name="c"),
    ]
    # A manual scale-down by 3 (the user's number wins): only c is a sure victim, b (cost 0)
    # goes before a (busy, cost 2000).
    assert victims.deletion_costs(pods, remove=3) == {"a": 2000, "b": 0, "c": victims.VICTIM_COST}
    assert victims.busy_count(pods) == 2
