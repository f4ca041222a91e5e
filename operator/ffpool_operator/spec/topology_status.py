"""`status.topology`: the pool's job queues (every priority band) and its dead-letter queue as
the broker reports them, with each quorum queue's leader, members online and replicas
against the cluster's nodes (docs/operator.md, "Quorum queues")."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ffpool_operator.spec.camel import Camel


class QueueHealth(Camel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    type: str = "classic"
    """`classic` or `quorum`, as the broker declared it."""
    leader: str | None = None
    """Quorum: the node leading the queue; unset while it has no leader."""
    members_online: int = Field(default=0, ge=0)
    """Quorum: replicas on nodes that are up."""
    members: int = Field(default=0, ge=0)
    """Quorum: replicas the queue has (one per cluster node it was placed on); its majority
    keeps it working."""
    members_expected: int = Field(default=0, ge=0)
    """Quorum: the cluster's nodes (every node listed, running or not): a queue with fewer
    replicas is under-replicated."""


class TopologyStatus(Camel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    queues: list[QueueHealth] = Field(default_factory=list)
