"""What a renamed job queue leaves behind (queue_rename.py: pure, no I/O)."""

from __future__ import annotations

from typing import Any

from ffpool_operator.broker import queue_rename, topology
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.broker_model import QueueInfo
from ffpool_operator.spec.pool import PoolSpec


def spec(**topology: Any) -> PoolSpec:
    return PoolSpec.model_validate(
        {
            "image": "ffpool:test",
            "rabbitmq": {"secretName": "rmq"},
            "storage": {"claimName": "media"},
            "topology": topology,
            "auth": {"allowAnonymous": True},
        }
    )


def info(ready: int = 0, unacked: int = 0) -> QueueInfo:
    return QueueInfo(name="jobs", messages_ready=ready, messages_unacknowledged=unacked)


OLD = spec(jobQueue="jobs", jobExchange="ex", routingKey="job")
GONE = queue_rename.retired(OLD, spec(jobQueue="jobs2", jobExchange="ex", routingKey="job"), 100.0)


def test_only_a_changed_queue_or_vhost_retires_the_old_queue() -> None:
    assert queue_rename.retired(OLD, spec(jobQueue="jobs", maxLength=5), 0.0) is None
    assert GONE is not None
    assert (GONE.vhost, GONE.queue, GONE.exchange, GONE.routing_key, GONE.successor) == (
        "/",
        "jobs",
        "ex",
        "job",
        "jobs2",
    )
    assert GONE.counted_after == 110.0  # twice the statistics interval (5 s)
    assert GONE.takes_new_jobs  # same exchange and key: new jobs would be copied into it
    rekeyed = queue_rename.retired(OLD, spec(jobQueue="jobs2", jobExchange="ex", routingKey="k"), 0)
    assert rekeyed is not None
    assert not rekeyed.takes_new_jobs  # its binding keeps old servers' jobs for old workers
    moved = OLD.model_copy(update={"rabbitmq": OLD.rabbitmq.model_copy(update={"vhost": "b"})})
    assert queue_rename.retired(OLD, moved, 0.0) is not None


def test_an_empty_count_is_trusted_only_once_the_statistics_caught_up() -> None:
    assert GONE is not None
    assert not queue_rename.drained(GONE, info(), 105.0)  # jobs published just before: not counted
    assert queue_rename.drained(GONE, info(), 110.0)
    assert not queue_rename.drained(GONE, info(unacked=1), 200.0)
    assert queue_rename.drained(GONE, None, 0.0)  # deleted: nothing left to watch


def test_the_message_counts_the_jobs_and_says_what_to_do() -> None:
    assert GONE is not None
    assert queue_rename.stranded(GONE, info()) is None
    text = queue_rename.stranded(GONE, info(ready=3, unacked=1))
    assert text is not None
    assert text.startswith("queue jobs (the job queue before a rename to jobs2) still holds 4")
    assert "shovel" in text


def test_stranded_jobs_make_topology_not_ready_before_a_policy_override() -> None:
    conds = conditions.set_condition([], conditions.TOPOLOGY_READY, True, "Declared")
    report = TopologyReport(stranded=["queue jobs ..."])
    out = topology.overrides_condition(conds, report, None)
    cond = next(c for c in out if c.type == conditions.TOPOLOGY_READY)
    assert (cond.status.value, cond.reason, cond.message) == (
        "False",
        "OldQueueNotEmpty",
        "queue jobs ...",
    )
    assert not report.ready


def test_the_watch_forgets_a_queue_renamed_back_to() -> None:
    assert GONE is not None
    watch = queue_rename.Watch()
    watch.add("pool", GONE)
    assert watch.watching("pool", ("/", "jobs2")) == [GONE]
    assert watch.watching("pool", ("/", "jobs")) == []  # the old name is current again
    watch.add("pool", GONE)
    watch.drop("pool", GONE)
    assert watch.watching("pool", ("/", "x")) == []
