"""A small async Kubernetes REST client (aiohttp) for the objects the operator owns: a timeout
on every call, merge patches, 404 as None. Every call the operator makes goes through here, so
the RBAC it needs is this module's `RESOURCES` times the verbs used (docs/operator.md)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ffpool import names
from ffpool_operator import cluster, last_applied

RESOURCES = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Service": ("/api/v1", "services"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses"),
    names.CRD_KIND: (f"/apis/{names.API_GROUP}/{names.API_VERSION}", names.CRD_PLURAL),
}
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    out = f"{prefix}/namespaces/{namespace}/{plural}"
    return out + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


class Kube:
    def __init__(self, cfg: Any, timeout: float = 10.0) -> None:
        self._cfg = cfg
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, url: str, body: Any = None, **kw: Any) -> Any:
        if self._session is None:
            conn = aiohttp.TCPConnector(ssl=cluster.ssl_context(self._cfg))
            self._session = aiohttp.ClientSession(connector=conn, timeout=self._timeout)
        headers = {"Content-Type": MERGE_PATCH if method == "PATCH" else "application/json"}
        if tok := cluster.token(self._cfg):
            headers["Authorization"] = f"Bearer {tok}"
        try:
            async with self._session.request(
                method, self._cfg.host + url, json=body, headers=headers, **kw
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
            "POST", path(manifest["kind"], meta["namespace"]), manifest
        )
        return result

    async def patch(
        self, kind: str, namespace: str, name: str, body: Any, sub: str | None = None
    ) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._call(
            "PATCH", path(kind, namespace, name, sub), body
        )
        return result

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        await self._call("DELETE", path(kind, namespace, name))

    async def apply(
        self, manifest: dict[str, Any], on_create: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create, or merge-patch what exists (owned objects: our manifest is the truth), nulling
        the keys we set last time and no longer set (last_applied.py). `on_create` holds fields
        set only at creation (the worker count, owned by the autoscaler afterwards)."""
        kind, meta = manifest["kind"], manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        for _ in range(2):  # a second round only when the object appears or vanishes meanwhile
            existing = await self.get(kind, namespace, name)
            if existing is not None:
                body = last_applied.patch_body(manifest, last_applied.recorded(existing))
                patched = await self.patch(kind, namespace, name, body)
                if patched is not None:
                    return patched
                continue
            try:
                return await self.create(last_applied.creation_body(manifest, on_create))
            except KubeError as exc:
                if exc.status != 409:
                    raise
        raise KubeError(f"apply {kind} {namespace}/{name}: it keeps appearing and vanishing", 409)
