"""The FFmpegPool custom resource, spec and status: one source of truth for the operator and for
the CRD YAML (`python -m ffpool_operator.spec.crd`). Field names are camelCase in Kubernetes."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ffpool.topology import BANDS_OVER_LEVELS, Topology, TopologyKnobs
from ffpool_operator.spec.addresses import HostPort
from ffpool_operator.spec.autoscaling_status import AutoscalingStatus
from ffpool_operator.spec.camel import Camel, K8sName
from ffpool_operator.spec.disruption import (
    SERVERS_RULE,
    WORKERS_RULE,
    ServerDisruptionBudget,
    WorkerDisruptionBudget,
)
from ffpool_operator.spec.monitoring import MonitoringSpec
from ffpool_operator.spec.rules import Rule
from ffpool_operator.spec.security import AUTH_RULE, AuthSpec, NetworkPolicySpec
from ffpool_operator.spec.storage import StorageSpec
from ffpool_operator.spec.tenants import TenantsSpec, WebhooksSpec
from ffpool_operator.spec.topology_status import TopologyStatus

Seconds = Annotated[float, Field(ge=0, le=24 * 3600)]
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# Kubernetes rejects `patternProperties` in CRD schemas, so the names' pattern is a CEL rule; a
# bounded map keeps the rule's estimated cost within the API server's budget (rules.py).
EnvVars = Annotated[
    dict[str, str],
    Field(max_length=128),
    Rule(
        cel=f"self.all(name, name.matches('{ENV_NAME}'))",
        message="env names must be upper-case settings names (A-Z, 0-9 and _, no leading digit)",
        holds=lambda env: all(re.fullmatch(ENV_NAME, name) for name in env),
    ),
]


class DeletionPolicy(enum.StrEnum):
    RETAIN = "Retain"
    DELETE_IF_EMPTY = "DeleteIfEmpty"


class PullPolicy(enum.StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


class ServiceType(enum.StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class RabbitMQSpec(Camel):
    """Where the broker is. Credentials live in one Secret, read by the operator (management API)
    and mounted into pods (AMQP URL) by reference; the vhost in the AMQP URL must match `vhost`."""

    secret_name: K8sName
    amqp_url_key: str = "amqp-url"
    management_url_key: str = "management-url"
    username_key: str = "username"
    password_key: str = "password"  # noqa: S105 - a key name in the Secret, not a password
    vhost: Annotated[str, Field(min_length=1, max_length=255)] = "/"
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    statistics_interval_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0
    """The broker's `collect_statistics_interval` (RabbitMQ's default 5 s): per-pod in-flight
    counts lag by this much, so a pod counts as idle only after being seen idle this long."""
    addresses: Annotated[list[HostPort], Field(max_length=16)] = Field(default_factory=list)
    """More nodes of the broker's cluster (host:port) the pods connect to when the AMQP URL's
    host is down (RABBITMQ_ADDRESSES); the URL's credentials, vhost and TLS apply to each."""


_BANDS = TopologyKnobs.model_fields["priority_bands"].default
_MAX_PRIORITY = TopologyKnobs.model_fields["max_priority"].default


# The service's Topology (each knob's name, type, bounds, default and description defined once,
# in ffpool.topology.TopologyKnobs), spelled in camelCase, plus what only the operator needs. A
# comment, not a docstring: a docstring would become the CRD field's description.
class TopologySpec(Camel, Topology):
    RULES = (
        Rule(
            cel=f"!has(self.queueType) || self.queueType != 'quorum'"
            f" || (has(self.priorityBands) ? self.priorityBands : {_BANDS})"
            f" <= (has(self.maxPriority) ? self.maxPriority : {_MAX_PRIORITY}) + 1",
            message=BANDS_OVER_LEVELS,
            holds=lambda t: not t.quorum or t.priority_bands <= t.max_priority + 1,
        ),
    )
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN
    drift_check_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0

    def topology(self) -> Topology:
        return Topology.from_settings(self)


class Resources(Camel):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class Scheduling(Camel):
    # Tolerations, affinity and spread constraints are Kubernetes' own types, passed through to
    # the pod spec untouched: the apiserver validates them when the Deployment is applied, and
    # re-modelling them here would only lag behind Kubernetes' schema.
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] | None = None
    topology_spread_constraints: list[dict[str, Any]] = Field(default_factory=list)
    priority_class_name: str | None = None


class ServiceSpec(Camel):
    RULES = (
        Rule(
            cel="self.port != self.httpPort",
            message="port and httpPort must differ: the Service exposes both",
            holds=lambda s: s.port != s.http_port,
        ),
        Rule(
            cel="self.opsPort != self.port && self.opsPort != self.httpPort",
            message="opsPort must differ from port and httpPort: the Service exposes all three",
            holds=lambda s: s.ops_port not in (s.port, s.http_port),
        ),
    )

    type: ServiceType = ServiceType.CLUSTER_IP
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8081
    ops_port: Annotated[int, Field(ge=1, le=65535)] = 8082
    """/metrics and /dead-letters (port `ops`): for the scraper, never routed by the Ingress."""
    annotations: dict[str, str] = Field(default_factory=dict)


class IngressTLS(Camel):
    secret_name: K8sName


class IngressSpec(Camel):
    enabled: bool = False
    host: str | None = None
    class_name: str | None = None
    tls: IngressTLS | None = None
    annotations: dict[str, str] = Field(default_factory=dict)


class ServersSpec(Camel):
    RULES = (SERVERS_RULE,)

    replicas: Annotated[int, Field(ge=0, le=100)] = 2
    resources: Resources = Field(default_factory=Resources)
    scheduling: Scheduling = Field(default_factory=Scheduling)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    ingress: IngressSpec = Field(default_factory=IngressSpec)
    pod_disruption_budget: ServerDisruptionBudget = Field(default_factory=ServerDisruptionBudget)


class WorkersSpec(Camel):
    RULES = (
        Rule(
            cel="!has(self.terminationGracePeriodSeconds)"
            " || self.terminationGracePeriodSeconds > self.drainSeconds",
            message="terminationGracePeriodSeconds must exceed drainSeconds",
            holds=lambda w: w.grace_seconds > w.drain_seconds,
        ),
    )

    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Used when autoscaling is off (`kubectl scale ffp/NAME --replicas=N`)."""
    jobs_per_worker: Annotated[int, Field(ge=1, le=256)] = 1
    resources: Resources = Field(default_factory=Resources)
    scheduling: Scheduling = Field(default_factory=Scheduling)
    drain_seconds: Annotated[int, Field(ge=0, le=24 * 3600)] = 30
    termination_grace_period_seconds: Annotated[int, Field(ge=1, le=48 * 3600)] | None = None
    pod_disruption_budget: WorkerDisruptionBudget = Field(default_factory=WorkerDisruptionBudget)

    @property
    def grace_seconds(self) -> int:
        """A SIGKILL before the drain ends would interrupt jobs: grace always exceeds drain."""
        return self.termination_grace_period_seconds or self.drain_seconds + 15


class AutoscalingSpec(Camel):
    RULES = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must not exceed maxReplicas",
            holds=lambda a: a.min_replicas <= a.max_replicas,
        ),
    )

    enabled: bool = True
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 0
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 10
    target_jobs_per_worker: Annotated[int, Field(ge=1, le=256)] | None = None
    """Jobs (ready + in flight) per worker; defaults to workers.jobsPerWorker."""
    polling_interval_seconds: Annotated[float, Field(ge=0.2, le=300)] = 5.0
    activation_threshold: Annotated[int, Field(ge=0)] = 0
    """Scale from zero only when more than this many jobs wait."""
    scale_up_stabilization_seconds: Seconds = 0.0
    scale_down_stabilization_seconds: Seconds = 60.0
    fallback_replicas: Annotated[int, Field(ge=0, le=1000)] | None = None
    """While metrics are unavailable (fallbackFailureThreshold polls in a row): raise to this
    many workers (never lower); unset = hold."""
    fallback_failure_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    """Consecutive polls without metrics before fallbackReplicas applies; until then, hold."""


class PoolSpec(Camel):
    RULES = (AUTH_RULE, WORKERS_RULE)

    image: Annotated[str, Field(min_length=1)]
    image_pull_policy: PullPolicy = PullPolicy.IF_NOT_PRESENT
    image_pull_secrets: list[K8sName] = Field(default_factory=list)
    service_account_name: K8sName | None = None
    rabbitmq: RabbitMQSpec
    topology: TopologySpec = Field(default_factory=TopologySpec)
    servers: ServersSpec = Field(default_factory=ServersSpec)
    workers: WorkersSpec = Field(default_factory=WorkersSpec)
    storage: StorageSpec
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    auth: AuthSpec = Field(default_factory=AuthSpec)
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    webhooks: WebhooksSpec = Field(default_factory=WebhooksSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    tenants: TenantsSpec | None = None
    env: EnvVars = Field(default_factory=dict)
    """Extra service settings (upper-cased ffpool Settings fields, e.g. JOB_TIMEOUT_SECONDS)."""

    @property
    def target_per_worker(self) -> int:
        return self.autoscaling.target_jobs_per_worker or self.workers.jobs_per_worker


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Camel):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class QueueStatus(Camel):
    ready: int = 0
    unacked: int = 0
    consumers: int = 0


class WorkersStatus(Camel):
    desired: int = 0
    current: int = 0
    ready: int = 0
    busy: int = 0
    selector: str = ""


class PoolStatus(Camel):
    model_config = ConfigDict(extra="ignore")  # kopf keeps its own bookkeeping in status

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    queue: QueueStatus | None = None
    workers: WorkersStatus | None = None
    last_scale_time: str | None = None
    last_scale_reason: str | None = None
    autoscaling: AutoscalingStatus | None = None
    topology: TopologyStatus | None = None


class PoolRef(BaseModel):
    """Identity of one pool, enough for owner references and names."""

    model_config = ConfigDict(frozen=True)

    name: K8sName
    namespace: K8sName
    uid: str
