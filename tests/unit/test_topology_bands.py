"""Quorum priority bands (ffpool.topology): how priorities 0..QUEUE_MAX_PRIORITY are split into
queues, the arguments each queue is declared with, and the topologies refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ffpool import names
from ffpool.topology import DELIVERY_LIMIT_SLACK, Band, QueueType, Topology


def quorum(**knobs: object) -> Topology:
    return Topology.model_validate({"queue_type": QueueType.QUORUM, **knobs})


def test_three_bands_of_ten_levels() -> None:
    assert quorum().bands() == (
        Band(queue="ffmpeg_job_queue.p7", routing_key="ffmpeg_job.p7", lowest=7, highest=9),
        Band(queue="ffmpeg_job_queue.p4", routing_key="ffmpeg_job.p4", lowest=4, highest=6),
        Band(queue="ffmpeg_job_queue", routing_key="ffmpeg_job", lowest=0, highest=3),
    )
    topo = quorum()
    assert [topo.band_for(p).lowest for p in range(12)] == [0, 0, 0, 0, 4, 4, 4, 7, 7, 7, 7, 7]
    assert topo.band_for(-1).queue == names.JOB_QUEUE  # below 0: the lowest band
    assert topo.job_queues() == ("ffmpeg_job_queue.p7", "ffmpeg_job_queue.p4", "ffmpeg_job_queue")


def test_classic_is_one_band_the_job_queue() -> None:
    topo = Topology(job_queue="q", routing_key="k", priority_bands=5)  # bands: quorum only
    assert topo.bands() == (Band(queue="q", routing_key="k", lowest=0, highest=9),)
    assert topo.band_for(9) == topo.band_for(0)
    assert topo.job_queues() == ("q",)
    assert not topo.quorum


def test_one_band_per_level_and_a_single_band() -> None:
    every = quorum(priority_bands=10)
    assert [(b.lowest, b.highest) for b in every.bands()] == [(p, p) for p in range(9, -1, -1)]
    assert every.bands()[0].queue == "ffmpeg_job_queue.p9"
    single = quorum(priority_bands=1, max_priority=4)
    assert single.bands() == (
        Band(queue=names.JOB_QUEUE, routing_key=names.JOB_ROUTING_KEY, lowest=0, highest=4),
    )


@given(st.integers(1, 9), st.integers(1, 10))
def test_bands_cover_every_level_once_highest_first(max_priority: int, count: int) -> None:
    if count > max_priority + 1:
        with pytest.raises(ValidationError, match="must not exceed the priority levels"):
            quorum(max_priority=max_priority, priority_bands=count)
        return
    topo = quorum(max_priority=max_priority, priority_bands=count)
    bands = topo.bands()
    assert len(bands) == count
    levels = [p for b in reversed(bands) for p in range(b.lowest, b.highest + 1)]
    assert levels == list(range(max_priority + 1))  # contiguous, none empty, none twice
    assert bands[-1].queue == topo.job_queue
    assert bands[-1].routing_key == topo.routing_key
    assert len({b.queue for b in bands}) == len({b.routing_key for b in bands}) == count
    for p in range(max_priority + 1):
        band = topo.band_for(p)
        assert band.lowest <= p <= band.highest
    # As even as integers allow: band sizes differ by one level at most.
    sizes = [b.highest - b.lowest + 1 for b in bands]
    assert max(sizes) - min(sizes) <= 1


def test_quorum_arguments_every_band_and_the_dlq() -> None:
    topo = quorum(max_attempts=4, message_ttl_ms=5000, max_length=50, dlq_queue="d")
    assert topo.queue_arguments() == {
        "x-queue-type": "quorum",
        "x-message-ttl": 5000,
        "x-max-length": 50,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": names.JOB_EXCHANGE,
        "x-dead-letter-routing-key": "d",
        # The backstop: MAX_ATTEMPTS - 1 returns that ran, plus returns that never ran.
        "x-delivery-limit": 3 + DELIVERY_LIMIT_SLACK,
        "x-dead-letter-strategy": "at-least-once",
    }
    assert "x-max-priority" not in topo.queue_arguments()  # a quorum queue refuses it
    assert topo.dlq_arguments() == {"x-queue-type": "quorum"}


def test_classic_arguments_unchanged() -> None:
    topo = Topology(max_priority=5)
    assert topo.queue_arguments() == {
        "x-message-ttl": 3_600_000,
        "x-max-length": 10_000,
        "x-overflow": "reject-publish",
        "x-dead-letter-exchange": names.JOB_EXCHANGE,
        "x-dead-letter-routing-key": names.DLQ_QUEUE,
        "x-max-priority": 5,
    }
    assert topo.dlq_arguments() == {}


def test_more_bands_than_levels_refused() -> None:
    with pytest.raises(ValidationError, match="QUEUE_PRIORITY_BANDS"):
        quorum(max_priority=2, priority_bands=4)
    assert len(quorum(max_priority=2, priority_bands=3).bands()) == 3
    Topology(max_priority=2, priority_bands=4)  # classic: the knob is not used


def test_band_names_over_255_characters_refused() -> None:
    at_limit = "q" * 255
    assert quorum(job_queue=at_limit, priority_bands=1).job_queues() == (at_limit,)
    with pytest.raises(ValidationError, match="over 255 characters"):
        quorum(job_queue="q" * 253)  # "….p4" is 256
    with pytest.raises(ValidationError, match="over 255 characters"):
        quorum(routing_key="k" * 254)
    Topology(job_queue=at_limit)  # classic: no suffix, no band names


def test_env_round_trip_keeps_the_bands() -> None:
    topo = quorum(priority_bands=2, max_priority=3)
    env = topo.env()
    assert env["QUEUE_TYPE"] == "quorum"
    assert env["QUEUE_PRIORITY_BANDS"] == "2"
    again = Topology.model_validate({k.lower(): v for k, v in env.items()})
    assert again.bands() == topo.bands()


def test_a_refused_publish_is_explained_for_the_queue_type() -> None:
    assert Topology().refused() == "the job queue is full: try again later"
    quorum = Topology(queue_type=QueueType.QUORUM).refused()
    assert "electing a new leader" in quorum
    assert "full" in quorum
