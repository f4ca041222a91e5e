from ffpool import names
from ffpool_operator import victims
from ffpool_operator.victims import BrokerChannel, BrokerConnection, WorkerPod

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
