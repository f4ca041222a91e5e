"""A small async Kubernetes REST client (aiohttp) for the objects the operator owns: a timeout
on every call, server-side apply, merge patches, 404 as None. Every call the operator makes goes
through here, so the RBAC it needs is this module's `RESOURCES` times the verbs used
(docs/operator.md)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from ffpool import names
from ffpool_operator.http_session import LazySession
from ffpool_operator.kube import access

RESOURCES = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    # The Prometheus Operator's, when installed (docs/monitoring.md).
    "PodMonitor": ("/apis/monitoring.coreos.com/v1", "podmonitors"),
    names.CRD_KIND: (f"/apis/{names.API_GROUP}/{names.API_VERSION}", names.CRD_PLURAL),
}
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
# Server-side apply takes YAML; JSON is YAML. https://kubernetes.io/docs/reference/using-api/server-side-apply/
APPLY_PATCH = "application/apply-patch+yaml"


class KubeError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    out = f"{prefix}/namespaces/{namespace}/{plural}"
    return out + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


class Kube:
    """`manager` names this client's writes in each object's `metadata.managedFields`."""

    def __init__(self, cfg: Any, timeout: float = 10.0, manager: str = names.FIELD_MANAGER) -> None:
        self._cfg = cfg
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http = LazySession(self._open)
        self.manager = manager

    def _open(self) -> aiohttp.ClientSession:
        conn = aiohttp.TCPConnector(ssl=access.ssl_context(self._cfg))
        return aiohttp.ClientSession(connector=conn, timeout=self._timeout)

    async def close(self) -> None:
        await self._http.close()

    async def _call(
        self,
        method: str,
        url: str,
        body: Any = None,
        content_type: str = JSON,
        params: dict[str, str] | None = None,
    ) -> Any:
        if (session := self._http.get()) is None:
            raise KubeError(f"{method} {url}: client closed")
        headers = {"Content-Type": content_type}
        if tok := access.token(self._cfg):
            headers["Authorization"] = f"Bearer {tok}"
        data = None if body is None else json.dumps(body).encode()
        try:
            async with session.request(
                method, self._cfg.host + url, data=data, headers=headers, params=params
            ) as resp:
                if resp.status == 404:
                    return None
                if resp.status >= 400:
                    text = (await resp.text())[:300]
                    raise KubeError(f"{method} {url}: HTTP {resp.status} {text}", resp.status)
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(f"{method} {url}: {type(exc).__name__}") from exc

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call("GET", path(kind, namespace, name))
        return result

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector}
        data = await self._call("GET", path(kind, namespace), params=params) or {}
        items: list[dict[str, Any]] = data.get("items") or []
        return items

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        result: dict[str, Any] = await self._call(
            "POST",
            path(manifest["kind"], meta["namespace"]),
            manifest,
            params={"fieldManager": self.manager},
        )
        return result

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: Any,
        sub: str | None = None,
        manager: str | None = None,
    ) -> dict[str, Any] | None:
        """A merge patch (RFC 7386); None when the object is gone."""
        result: dict[str, Any] | None = await self._call(
            "PATCH",
            path(kind, namespace, name, sub),
            body,
            MERGE_PATCH,
            params={"fieldManager": manager or self.manager},
        )
        return result

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await self._call("DELETE", path(kind, namespace, name))

    async def apply(self, manifest: dict[str, Any], manager: str | None = None) -> dict[str, Any]:
        """Server-side apply of the full intent (apiVersion, kind, metadata, the fields `manager`
        owns): creates the object if absent; fields `manager` applied before and leaves out now
        are removed unless another manager owns them too; fields of other managers stay.
        `force`: the operator owns what it builds, so a field someone else changed goes back
        to the spec instead of failing the reconcile with a conflict (docs/operator.md)."""
        meta = manifest["metadata"]
        params = {"fieldManager": manager or self.manager, "force": "true"}
        result: dict[str, Any] | None = await self._call(
            "PATCH",
            path(manifest["kind"], meta["namespace"], meta["name"]),
            manifest,
            APPLY_PATCH,
            params,
        )
        if result is None:  # only when the namespace is missing
            raise KubeError(
                f"apply {manifest['kind']} {meta['namespace']}/{meta['name']}: 404", 404
            )
        return result


def field_managers(obj: dict[str, Any], field: tuple[str, ...]) -> set[str]:
    """The managers that own `field` (a path of object keys, e.g. ("spec", "replicas")) by the
    object's `metadata.managedFields`, whose `fieldsV1` spells each key `f:<key>`."""
    out: set[str] = set()
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for key in field:
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
        if node is not None and entry.get("manager"):
            out.add(str(entry["manager"]))
    return out
