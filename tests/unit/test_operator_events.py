"""Which condition changes become Events, and how often (events.py: pure, no I/O)."""

from __future__ import annotations

from ffpool_operator.decisions import conditions
from ffpool_operator.kube import events
from ffpool_operator.kube.events import (
    BURST,
    REFILL_SECONDS,
    REPEAT_SECONDS,
    EventType,
    Limiter,
    PoolEvent,
)
from ffpool_operator.spec.pool import Condition

T0 = "2026-01-01T00:00:00Z"


def conds(*items: tuple[str, bool | None, str, str]) -> list[Condition]:
    out: list[Condition] = []
    for type_, status, reason, message in items:
        out = conditions.set_condition(out, type_, status, reason, message, now=T0)
    return out


def test_a_failure_is_one_warning_naming_every_condition_it_sets() -> None:
    old = conds(("Ready", True, "Reconciled", ""), ("TopologyReady", True, "Declared", ""))
    new = conds(
        ("Ready", False, "BrokerAuthFailed", "HTTP 401"),
        ("TopologyReady", False, "BrokerAuthFailed", "HTTP 401"),
    )
    assert events.changes(old, new) == [
        PoolEvent(
            type=EventType.WARNING,
            reason="BrokerAuthFailed",
            message="Ready=False, TopologyReady=False: HTTP 401",
        )
    ]


def test_a_persisting_failure_posts_nothing_even_when_its_message_changes() -> None:
    old = conds(("Ready", False, "OldQueueNotEmpty", "3 jobs"))
    new = conds(("Ready", False, "OldQueueNotEmpty", "2 jobs"))
    assert events.changes(old, new) == []


def test_recovery_is_a_normal_event_and_unknown_is_a_warning() -> None:
    old = conds(("Ready", False, "BrokerAuthFailed", ""), ("TopologyReady", True, "Declared", ""))
    new = conds(
        ("Ready", True, "Reconciled", "ok"), ("TopologyReady", None, "BrokerUnavailable", "")
    )
    assert events.changes(old, new) == [
        PoolEvent(type=EventType.NORMAL, reason="Reconciled", message="Ready=True: ok"),
        PoolEvent(
            type=EventType.WARNING, reason="BrokerUnavailable", message="TopologyReady=Unknown"
        ),
    ]


def test_scaling_flips_post_no_condition_event() -> None:
    assert (
        events.changes(
            conds(("Scaling", False, "Stable", "")), conds(("Scaling", True, "ScalingUp", ""))
        )
        == []
    )


def test_the_same_event_is_posted_once_per_window_when_asked() -> None:
    limiter, e = Limiter(), PoolEvent(type=EventType.WARNING, reason="R", message="m")
    assert limiter.admit("uid", e, 0.0, REPEAT_SECONDS)
    assert not limiter.admit("uid", e, 1.0, REPEAT_SECONDS)
    assert not limiter.admit("uid", e, REPEAT_SECONDS - 1, REPEAT_SECONDS)
    assert limiter.admit("uid", e, REPEAT_SECONDS, REPEAT_SECONDS)
    assert limiter.admit("other-pool", e, 1.0, REPEAT_SECONDS)
    assert limiter.admit("uid", e, REPEAT_SECONDS + 1)  # a condition change: no window


def test_a_flapping_pool_gets_a_burst_then_one_event_a_minute() -> None:
    limiter = Limiter()
    flaps = [PoolEvent(type=EventType.WARNING, reason="R", message=str(i)) for i in range(20)]
    admitted = [limiter.admit("uid", e, 0.0) for e in flaps]
    assert admitted == [True] * BURST + [False] * (20 - BURST)
    assert not limiter.admit("uid", flaps[0], REFILL_SECONDS - 1)
    assert limiter.admit("uid", flaps[0], REFILL_SECONDS)
    assert not limiter.admit("uid", flaps[1], REFILL_SECONDS + 1)
    assert [limiter.admit("uid", e, REFILL_SECONDS * 100) for e in flaps].count(True) == BURST


def test_forget_starts_a_recreated_pool_afresh() -> None:
    limiter, e = Limiter(), PoolEvent(type=EventType.NORMAL, reason="R", message="m")
    assert limiter.admit("uid", e, 0.0)
    limiter.forget("uid")
    assert limiter.admit("uid", e, 1.0)


def test_one_reason_with_mixed_statuses_is_one_warning() -> None:
    new = conds(
        ("Ready", False, "BrokerUnavailable", "HTTP 503"),
        ("TopologyReady", None, "BrokerUnavailable", "HTTP 503"),
    )
    assert events.changes([], new) == [
        PoolEvent(
            type=EventType.WARNING,
            reason="BrokerUnavailable",
            message="Ready=False, TopologyReady=Unknown: HTTP 503",
        )
    ]
