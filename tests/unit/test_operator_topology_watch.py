"""When the drift daemon checks the topology (topology_watch.schedule: pure)."""

from ffpool_operator.flows.topology_watch import schedule


def test_the_first_check_waits_a_full_interval_after_the_reconcile() -> None:
    assert schedule(0.0, 100.0, 30.0) == (False, 130.0)


def test_not_due_keeps_the_time_the_reconcile_set() -> None:
    assert schedule(120.0, 100.0, 30.0) == (False, 120.0)


def test_due_checks_and_schedules_the_next_from_now() -> None:
    assert schedule(120.0, 120.0, 30.0) == (True, 150.0)
    assert schedule(120.0, 500.0, 30.0) == (True, 530.0)  # one check, not one per missed slot
