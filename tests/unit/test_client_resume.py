"""The pure decisions of Client.follow: back-off between re-subscriptions, and when an
`unknown_job` is believed."""

from __future__ import annotations

from ffpool.client.resume import (
    RETRY_FIRST_S,
    RETRY_MAX_S,
    Outage,
    give_up_unknown,
    retry_delay,
)


def test_retry_delay_doubles_up_to_its_cap() -> None:
    assert retry_delay(1) == RETRY_FIRST_S
    assert retry_delay(2) == 2 * RETRY_FIRST_S
    assert retry_delay(50) == RETRY_MAX_S
    assert all(retry_delay(n) <= retry_delay(n + 1) for n in range(1, 40))


def test_unknown_job_is_believed_only_after_the_grace_period() -> None:
    assert not give_up_unknown(100.0, 105.0, 10.0)
    assert not give_up_unknown(100.0, 110.0, 10.0)
    assert give_up_unknown(100.0, 110.1, 10.0)


def test_an_outage_is_told_once_and_bounded() -> None:
    told: list[BaseException] = []
    outage = Outage(60.0, told.append)
    assert outage.left(0.0) is None  # no outage yet
    first, second = ConnectionError("closed"), ConnectionError("closed again")
    outage.lost(100.0, first)
    outage.lost(101.0, second)
    assert told == [first]
    assert outage.left(130.0) == 30.0
    assert outage.left(161.0) == -1.0
    outage.watching(None)("an event")  # the server answered: the outage is over
    assert outage.left(200.0) is None
    outage.lost(300.0, second)
    assert told == [first, second]


def test_without_a_limit_an_outage_lasts_until_the_timeout() -> None:
    outage = Outage(None, None)
    outage.lost(0.0, ConnectionError())
    assert outage.left(1e9) is None
