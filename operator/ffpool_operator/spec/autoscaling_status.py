"""`status.autoscaling`: what the autoscaling daemon is doing besides following the queue (the
`Paused` and `Fallback` columns of `kubectl get ffp`; docs/operator.md, "Pausing autoscaling")."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ffpool_operator.spec.camel import Camel


class AutoscalingStatus(Camel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    paused: bool = False
    """Paused by the autoscaling.ffpool.dev/paused or .../paused-replicas annotation."""
    paused_replicas: int | None = None
    """The count .../paused-replicas holds the workers at (unset: held where they were)."""
    fallback: bool = False
    """fallbackReplicas is in force: metrics were unavailable fallbackFailureThreshold polls
    in a row."""
    failed_polls: int = Field(default=0, ge=0)
    """Consecutive polls without queue metrics (0 after a good poll)."""
