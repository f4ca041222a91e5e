"""A job queue the spec leaves behind: a renamed job queue (`topology.jobQueue`, the pool moved
to another vhost) or a priority band that a change of `priorityBands`, `maxPriority` or the
queue type retired (each band's queue alike). It is watched until it is empty.

A renamed queue is unbound at once when it still sits where new jobs go: left bound to the job
exchange with the job routing key, it gets a copy of every new job that no worker consumes; with
`reject-publish`, once that copy fills it, RabbitMQ nacks the publish and every submission fails
(https://www.rabbitmq.com/docs/maxlength). Its jobs are not moved: that is the broker's shovel's
work (docs/rabbitmq.md, "Renaming the job queue").

A retired band is the operator's to empty, since the pool's priorities still cover its jobs:
its old routing key is bound to the band that now holds its lowest priority (servers not yet
rolled keep feeding a live band), the queue itself unbound, its jobs moved into the bands their
priorities now belong to (broker/job_mover.py), and the queue deleted once empty and unused.
Watched from the operator's memory: a restart forgets the old name (the queue is unbound
already, its key forwarded), and the condition clears."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.broker_model import Binding, QueueInfo
from ffpool_operator.spec.pool import Condition, PoolSpec

REASON = "OldQueueNotEmpty"


class Retired(BaseModel):
    model_config = ConfigDict(frozen=True)

    vhost: str
    queue: str
    exchange: str
    routing_key: str
    successor: str
    takes_new_jobs: bool
    """Still bound where new jobs go (same vhost, exchange and routing key): it must be unbound.
    Otherwise its binding stays, and servers not yet rolled keep feeding the old workers."""
    counted_after: float
    """Monotonic time from which the management API's counts include the jobs published before
    the rename: they lag by the statistics interval (`rabbitmq.statisticsIntervalSeconds`)."""
    band: bool = False
    """A retired priority band in the pool's vhost: forwarded, moved and deleted (above)."""
    forward: Binding | None = None
    """Band: its old routing key bound to the successor (None when a new band has that key)."""
    target_exchange: str = ""
    """Band: the job exchange its jobs are republished to."""
    routes: tuple[tuple[int, str], ...] = ()
    """Band: each new band's lowest priority and routing key, highest band first."""
    lowest: int = 0
    """The lowest priority this queue held."""

    def route(self, priority: int | None) -> str:
        """The routing key of the band a job of `priority` now belongs to (no priority: the
        band that holds this queue's lowest one, its successor)."""
        wanted = self.lowest if priority is None else priority
        for lowest, key in self.routes:
            if wanted >= lowest:
                return key
        return self.routes[-1][1] if self.routes else self.routing_key


def retired_all(old: PoolSpec, new: PoolSpec, now: float) -> list[Retired]:
    """Every job queue (priority band) a spec change leaves behind: a renamed job queue, the
    pool moved to another vhost, or bands that changed. Its successor is the new band that
    takes the jobs of its lowest priority."""
    before, after = old.topology.topology(), new.topology.topology()
    v_old, v_new = old.rabbitmq.vhost, new.rabbitmq.vhost
    kept = {(v_new, q) for q in after.job_queues()}
    keys = {(v_new, after.job_exchange, b.routing_key) for b in after.bands()}
    banded = (before.quorum or after.quorum) and v_old == v_new
    out = []
    for band in before.bands():
        if (v_old, band.queue) in kept:
            continue
        successor = after.band_for(band.lowest)
        takes_new_jobs = (v_old, before.job_exchange, band.routing_key) in keys
        forward = Binding(
            exchange=before.job_exchange, queue=successor.queue, routing_key=band.routing_key
        )
        out.append(
            Retired(
                vhost=v_old,
                queue=band.queue,
                exchange=before.job_exchange,
                routing_key=band.routing_key,
                successor=successor.queue,
                takes_new_jobs=takes_new_jobs or banded,
                counted_after=now + 2 * new.rabbitmq.statistics_interval_seconds,
                band=banded,
                forward=forward if banded and not takes_new_jobs else None,
                target_exchange=after.job_exchange,
                routes=tuple((b.lowest, b.routing_key) for b in after.bands()),
                lowest=band.lowest,
            )
        )
    return out


def retired(old: PoolSpec, new: PoolSpec, now: float) -> Retired | None:
    """The (first) queue a spec change leaves behind, None when the job queues stay."""
    gone = retired_all(old, new, now)
    return gone[0] if gone else None


def drained(r: Retired, info: QueueInfo | None, now: float) -> bool:
    """Gone, or seen empty once its counts can be trusted: the watch ends."""
    if info is None:
        return True
    return now >= r.counted_after and info.messages_ready + info.messages_unacknowledged == 0


def stranded(r: Retired, info: QueueInfo | None) -> str | None:
    """What to tell the user about the old queue; None while it holds no job."""
    if info is None:
        return None
    jobs = info.messages_ready + info.messages_unacknowledged
    if jobs == 0:
        return None
    if r.band:
        return (
            f"queue {r.queue} (a priority band the spec no longer has) still holds {jobs} jobs"
            f" ({info.messages_ready} ready, {info.messages_unacknowledged} in flight,"
            f" {info.consumers} consumers): the operator moves them into the bands that now"
            f" hold their priorities ({r.successor} and others), then deletes {r.queue}"
        )
    return (
        f"queue {r.queue} (the job queue before a rename to {r.successor}) still holds {jobs}"
        f" jobs ({info.messages_ready} ready, {info.messages_unacknowledged} in flight,"
        f" {info.consumers} consumers) that no new worker takes: move them with a shovel to"
        f" {r.successor}, or delete the queue to drop them (docs/rabbitmq.md)"
    )


def condition(
    conds: list[Condition], messages: list[str], generation: int | None
) -> list[Condition]:
    """`TopologyReady=False`: the topology the spec names is declared, but jobs accepted under
    the old name will not run until someone acts."""
    if not messages:
        return conds
    return conditions.set_condition(
        conds,
        conditions.TOPOLOGY_READY,
        False,
        REASON,
        "; ".join(messages),
        generation=generation,
    )


class Watch:
    """The retired queues per pool (keyed by its policy name, unique per pool)."""

    def __init__(self) -> None:
        self._queues: dict[str, dict[tuple[str, str], Retired]] = {}

    def add(self, key: str, r: Retired) -> None:
        self._queues.setdefault(key, {})[r.vhost, r.queue] = r

    def watching(self, key: str, *current: tuple[str, str]) -> list[Retired]:
        """A queue renamed back to is current again (any band of it), not retired."""
        queues = self._queues.get(key, {})
        for name in current:
            queues.pop(name, None)
        return list(queues.values())

    def drop(self, key: str, r: Retired) -> None:
        self._queues.get(key, {}).pop((r.vhost, r.queue), None)

    def forget(self, key: str) -> None:
        self._queues.pop(key, None)


WATCH = Watch()
