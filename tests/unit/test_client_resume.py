"""The pure decisions of Client.follow: back-off between re-subscriptions, and when an
`unknown_job` is believed."""

from __future__ import annotations

from ffpool.client.resume import RETRY_FIRST_S, RETRY_MAX_S, give_up_unknown, retry_delay


def test_retry_delay_doubles_up_to_its_cap() -> None:
    assert retry_delay(1) == RETRY_FIRST_S
    assert retry_delay(2) == 2 * RETRY_FIRST_S
    assert retry_delay(50) == RETRY_MAX_S
    assert all(retry_delay(n) <= retry_delay(n + 1) for n in range(1, 40))


def test_unknown_job_is_believed_only_after_the_grace_period() -> None:
    assert not give_up_unknown(100.0, 105.0, 10.0)
    assert not give_up_unknown(100.0, 110.0, 10.0)
    assert give_up_unknown(100.0, 110.1, 10.0)
