"""Retired priority bands (queue_rename.py, pure): a change of priorityBands, maxPriority or the
queue type forwards the old routing key to the band that now holds the old band's priorities,
unbinds the old queue, routes each job by its own priority, and says the operator moves them
(docs/operator.md, "Priority band changes")."""

from __future__ import annotations

import time

from ffpool_operator.broker import queue_rename
from ffpool_operator.decisions.broker_model import Binding, QueueInfo
from tests.operator_harness.samples import spec

QUORUM3 = spec(topology={"queueType": "quorum", "priorityBands": 3})
QUORUM2 = spec(topology={"queueType": "quorum", "priorityBands": 2})


def test_fewer_bands_forward_the_old_keys_and_unbind_the_old_queues() -> None:
    gone = queue_rename.retired_all(QUORUM3, QUORUM2, time.monotonic())
    assert [(g.queue, g.successor, g.takes_new_jobs, g.band) for g in gone] == [
        ("ffmpeg_job_queue.p7", "ffmpeg_job_queue.p5", True, True),
        ("ffmpeg_job_queue.p4", "ffmpeg_job_queue", True, True),
    ]
    assert [g.forward for g in gone] == [
        Binding(exchange="ffmpeg_jobs", queue="ffmpeg_job_queue.p5", routing_key="ffmpeg_job.p7"),
        Binding(exchange="ffmpeg_jobs", queue="ffmpeg_job_queue", routing_key="ffmpeg_job.p4"),
    ]


def test_each_job_goes_to_the_band_of_its_own_priority() -> None:
    _, p4 = queue_rename.retired_all(QUORUM3, QUORUM2, 0.0)
    # Old band p4 held 4..6: 5 and 6 now belong to the new p5 (5..9), 4 to the base band.
    assert [p4.route(p) for p in (4, 5, 6, 9, 12, 0)] == [
        "ffmpeg_job",
        "ffmpeg_job.p5",
        "ffmpeg_job.p5",
        "ffmpeg_job.p5",
        "ffmpeg_job.p5",
        "ffmpeg_job",
    ]
    assert p4.route(None) == "ffmpeg_job"  # no priority: the old band's lowest


def test_back_to_classic_moves_every_band_into_the_job_queue() -> None:
    classic = spec(topology={"queueType": "classic"})
    gone = queue_rename.retired_all(QUORUM3, classic, 0.0)
    assert {g.queue for g in gone} == {"ffmpeg_job_queue.p7", "ffmpeg_job_queue.p4"}
    assert all(g.band and g.route(8) == "ffmpeg_job" for g in gone)


def test_a_key_the_new_topology_still_has_is_not_forwarded() -> None:
    more = spec(topology={"queueType": "quorum", "priorityBands": 3, "jobQueue": "jobs_q"})
    gone = queue_rename.retired_all(QUORUM3, more, 0.0)
    assert all(g.forward is None and g.takes_new_jobs for g in gone)


def test_a_classic_rename_is_not_a_band_change() -> None:
    (gone,) = queue_rename.retired_all(spec(), spec(topology={"jobQueue": "jobs_q"}), 0.0)
    assert (gone.band, gone.forward) == (False, None)


def test_a_retired_band_is_not_called_a_rename_nor_left_to_a_shovel() -> None:
    (p7, _) = queue_rename.retired_all(QUORUM3, QUORUM2, 0.0)
    held = QueueInfo(name=p7.queue, messages_ready=3, messages_unacknowledged=1)
    text = queue_rename.stranded(p7, held)
    assert text is not None
    assert "rename" not in text
    assert "shovel" not in text
    assert "the operator moves them" in text
