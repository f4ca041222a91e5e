"""Start-up back-off while the broker is unreachable: growing, capped, never zero."""

from __future__ import annotations

from ffpool.backends.rabbitmq.connection import (
    CONNECT_BACKOFF_BASE_S,
    CONNECT_BACKOFF_CAP_S,
    backoff_s,
)


def test_backoff_doubles_then_caps() -> None:
    assert backoff_s(1, 0.999999) < CONNECT_BACKOFF_BASE_S + 1e-6
    assert backoff_s(2, 0.0) == CONNECT_BACKOFF_BASE_S
    assert backoff_s(3, 0.0) == 2 * CONNECT_BACKOFF_BASE_S
    assert backoff_s(100, 0.999999) <= CONNECT_BACKOFF_CAP_S
    assert backoff_s(10_000, 0.0) == CONNECT_BACKOFF_CAP_S / 2


def test_jitter_stays_in_the_upper_half_of_a_step() -> None:
    for failures in range(1, 12):
        low, high = backoff_s(failures, 0.0), backoff_s(failures, 0.999999)
        assert 0 < low <= high
        assert high <= 2 * low
