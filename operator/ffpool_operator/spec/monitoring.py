"""`spec.monitoring` of an FFmpegPool: Prometheus Operator objects the operator owns for the pool,
off by default (docs/monitoring.md, "Prometheus Operator"). A PodMonitor rather than a
ServiceMonitor: the pool's Service selects only its servers, while the workers' metrics (jobs
run, wait, speed, bytes) are on their own pods' ops port."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ffpool_operator.spec.camel import Camel

# Prometheus' duration syntax (whole numbers of h, m, s, ms, combined largest first: 1m30s).
Duration = Annotated[
    str,
    Field(pattern=r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$", min_length=2, max_length=32),
]
LabelMap = Annotated[dict[str, str], Field(max_length=32)]


class PodMonitorSpec(Camel):
    enabled: bool = False
    """Create a PodMonitor (monitoring.coreos.com/v1) scraping the pool's servers and workers
    on their ops port (/metrics). Needs the Prometheus Operator's CRDs; without them the pool
    says so in its MonitoringReady condition and is not failed."""
    interval: Duration = "30s"
    """How often Prometheus scrapes each pod."""
    labels: LabelMap = Field(default_factory=dict)
    """Extra labels on the PodMonitor, e.g. the one your Prometheus' podMonitorSelector
    matches (`release: prometheus`)."""


class MonitoringSpec(Camel):
    pod_monitor: PodMonitorSpec = Field(default_factory=PodMonitorSpec)
