"""The pure part of the benchmark's ReplicaSet stand-in (bench/pods.py does the I/O): which pods
a scale-down removes, what a pod's container sees (the kubelet's env resolution), and how
worker-seconds are counted.

Victim order follows the ReplicaSet controller's ranking (`ActivePodsWithRanks`, reduced to one
node): not-ready pods first, then the lowest `controller.kubernetes.io/pod-deletion-cost`, then
the newest. https://kubernetes.io/docs/reference/labels-annotations-taints/#pod-deletion-cost
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ffpool import names


class PodView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    seq: int
    """Creation order: a larger number is a newer pod."""
    ready: bool = True
    deletion_cost: int = 0


def deletion_cost(annotations: Mapping[str, str] | None) -> int:
    """The pod's cost annotation; absent or unreadable counts as the default, 0."""
    raw = (annotations or {}).get(names.ANNOTATION_DELETION_COST, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def victims(pods: Sequence[PodView], remove: int) -> list[str]:
    """The pods a ReplicaSet deletes when it must lose `remove` of them, in deletion order."""
    ranked = sorted(pods, key=lambda p: (p.ready, p.deletion_cost, -p.seq))
    return [p.name for p in ranked[: max(remove, 0)]]


class _KeyRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    key: str


class _FieldRef(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    field_path: str = Field(alias="fieldPath")


class _ValueFrom(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    secret_key_ref: _KeyRef | None = Field(default=None, alias="secretKeyRef")
    field_ref: _FieldRef | None = Field(default=None, alias="fieldRef")


class _EnvVar(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str
    value: str | None = None
    value_from: _ValueFrom | None = Field(default=None, alias="valueFrom")


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class _EnvFrom(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    config_map_ref: _Ref | None = Field(default=None, alias="configMapRef")


class Container(BaseModel):
    """The parts of a container spec the kubelet needs to build the process environment."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str
    env: list[_EnvVar] = Field(default_factory=list)
    env_from: list[_EnvFrom] = Field(default_factory=list, alias="envFrom")


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's `data`, base64-decoded."""
    data = secret.get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def container_env(
    container: Container,
    config_maps: Mapping[str, Mapping[str, str]],
    secrets: Mapping[str, Mapping[str, str]],
    pod_name: str,
) -> dict[str, str]:
    """The environment the kubelet gives the container: envFrom first, then env (which wins).
    Only the sources the operator uses are supported; anything else is an error, not a guess."""
    env: dict[str, str] = {}
    for source in container.env_from:
        if source.config_map_ref is None:
            raise ValueError("only configMapRef envFrom sources are supported")
        env.update(config_maps[source.config_map_ref.name])
    for var in container.env:
        env[var.name] = _value(var, secrets, pod_name)
    return env


def _value(var: _EnvVar, secrets: Mapping[str, Mapping[str, str]], pod_name: str) -> str:
    if var.value is not None:
        return var.value
    ref = var.value_from
    if ref is not None and ref.secret_key_ref is not None:
        return secrets[ref.secret_key_ref.name][ref.secret_key_ref.key]
    if ref is not None and ref.field_ref is not None:
        if ref.field_ref.field_path == "metadata.name":
            return pod_name
        raise ValueError(f"unsupported fieldRef {ref.field_ref.field_path}")
    raise ValueError(f"env {var.name} has no supported value")


def pod_manifest(deployment: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The Pod a ReplicaSet of this Deployment would create (labels and spec of the template)."""
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": dict((template.get("metadata") or {}).get("labels") or {}),
        },
        "spec": template["spec"],
    }


def worker_seconds(spans: Iterable[tuple[float, float | None]], end: float) -> float:
    """Sum of process lifetimes (start, exit or None while alive), cut at `end`."""
    return sum(
        max(0.0, min(stop if stop is not None else end, end) - start) for start, stop in spans
    )
