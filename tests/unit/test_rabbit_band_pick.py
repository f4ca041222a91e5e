"""A band slot's pure decisions (band_pick.py): which received delivery it runs, and how the
others are given back without counting an attempt (the header attempt, never the broker's
count of returns)."""

from __future__ import annotations

from ffpool import names
from ffpool.backends.rabbitmq.band_pick import give_back_headers, give_back_priority, pick
from ffpool.topology import QueueType, Topology


def test_the_first_delivery_of_the_highest_band_is_kept() -> None:
    received = [(2, "low-a"), (0, "high-a"), (1, "mid"), (0, "high-b"), (2, "low-b")]
    kept, extra = pick(received)
    assert kept == "high-a"
    assert extra == [(2, "low-a"), (1, "mid"), (0, "high-b"), (2, "low-b")]  # arrival order


def test_a_single_delivery_is_kept_and_nothing_given_back() -> None:
    assert pick([(1, "only")]) == ("only", [])
    assert pick([]) == (None, [])


def test_a_first_delivery_keeps_its_attempt_and_loses_no_header() -> None:
    headers = {names.HEADER_ATTEMPT: 1, names.HEADER_WIRE: "1.0", names.HEADER_DELIVERY_COUNT: 0}
    assert give_back_headers(headers) == {names.HEADER_ATTEMPT: 1, names.HEADER_WIRE: "1.0"}
    assert give_back_headers(None) == {names.HEADER_ATTEMPT: 1}


def test_a_returned_delivery_keeps_its_header_attempt() -> None:
    """Returned twice by the broker (a cancelled consumer's in-flight delivery, a lost
    prefetch): returns are not attempts, so the copy keeps header attempt 1 and drops the
    count; runs that did start are in the job's started marker (attempts.quorum_attempt)."""
    headers = {names.HEADER_ATTEMPT: 1, names.HEADER_DELIVERY_COUNT: 2}
    assert give_back_headers(headers) == {names.HEADER_ATTEMPT: 1}
    again = give_back_headers(give_back_headers(headers))
    assert again == {names.HEADER_ATTEMPT: 1}  # giving back a copy back adds nothing
    handed = {names.HEADER_ATTEMPT: 2, names.HEADER_DELIVERY_COUNT: 5}
    assert give_back_headers(handed) == {names.HEADER_ATTEMPT: 2}


def test_a_copy_goes_back_to_the_band_it_came_from() -> None:
    topo = Topology(queue_type=QueueType.QUORUM, priority_bands=3, max_priority=9)
    top, middle, bottom = topo.bands()
    assert give_back_priority(8, top) == 8
    assert give_back_priority(None, top) == top.lowest == 7
    assert give_back_priority(2, middle) == middle.lowest  # a priority off its band
    assert give_back_priority(0, bottom) == 0
    for band in topo.bands():
        assert topo.band_for(give_back_priority(None, band)) == band
