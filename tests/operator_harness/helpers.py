"""Helpers and constants for operator tests (fixtures are in fixtures.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import SecretStr

from ffpool import names
from ffpool_operator.broker.management import ManagementClient, segment

NS = "ffp-test"
MGMT_URL = "http://127.0.0.1:15672"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
CRD_RESOURCE = f"{names.API_GROUP}/{names.API_VERSION}/{names.CRD_PLURAL}"


def obj(kmock: Any, plural: str, name: str, namespace: str = NS) -> Any:
    """The stored object (a KMock view, live), or None when absent or deleted."""
    for (resource, ns, n), value in kmock.objects.items():
        if resource.plural == plural and ns == namespace and n == name and not value.deleted:
            return value
    return None


def condition(kmock: Any, type_: str) -> dict[str, Any] | None:
    body = obj(kmock, names.CRD_PLURAL, "pool")
    conds = ((body or {}).get("status") or {}).get("conditions") or []
    return next((dict(c) for c in conds if c["type"] == type_), None)


def status_when(kmock: Any, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The pool's status once `check` holds for it (None before)."""
    body = obj(kmock, names.CRD_PLURAL, "pool")
    status = dict((body or {}).get("status") or {})
    try:
        return status if check(status) else None
    except (KeyError, TypeError):
        return None


def replicas(kmock: Any, name: str = "pool-worker") -> int | None:
    dep = obj(kmock, "deployments", name)
    return None if dep is None else int(dep["spec"]["replicas"])


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Broker:
    """The real broker's management API plus force-cleanup of one test's names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.api = ManagementClient(MGMT_URL, "guest", SecretStr("guest"), timeout=5)

    @property
    def topology(self) -> dict[str, str]:
        p = self.prefix
        return {
            "jobExchange": f"{p}.ex",
            "jobQueue": f"{p}.jobs",
            "dlqQueue": f"{p}.dlq",
            "routingKey": f"{p}.job",
        }

    async def raw(self, method: str, path: str, body: Any = None) -> int:
        headers = {"Authorization": f"Basic {b64('guest:guest')}"}
        async with (
            aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as s,
            s.request(method, f"{MGMT_URL}/api{path}", json=body) as resp,
        ):
            return resp.status

    async def cleanup(self) -> None:
        t, vh = self.topology, segment("/")
        bands = [f"{t['jobQueue']}{names.BAND_SUFFIX}{n}" for n in range(1, 10)]  # quorum mode
        for q in (t["jobQueue"], t["dlqQueue"], *bands):
            await self.raw("DELETE", f"/queues/{vh}/{segment(q)}")
        await self.raw("DELETE", f"/exchanges/{vh}/{segment(t['jobExchange'])}")
        await self.raw("DELETE", f"/policies/{vh}/{segment('ffpool.' + NS + '.pool')}")
        await self.api.close()


def secret(mgmt_url: str = MGMT_URL, password: str = "guest", **drop: bool) -> dict[str, Any]:
    """The pool's Secret; `drop` names keys to leave out (`amqp_url=True`)."""
    data = {
        "amqp-url": AMQP_URL,
        "management-url": mgmt_url,
        "username": "guest",
        "password": password,
    }
    data = {k: v for k, v in data.items() if not drop.get(k.replace("-", "_"))}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "rmq", "namespace": NS},
        "data": {k: b64(v) for k, v in data.items()},
    }


def pool(broker: Broker, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": "ffpool:test",
        "rabbitmq": {"secretName": "rmq"},
        "storage": {"claimName": "media"},
        # No tokens Secret to wait for: tests of auth wiring set `auth` themselves.
        "auth": {"allowAnonymous": True},
        "topology": {**broker.topology, "driftCheckSeconds": 1},
        "autoscaling": {"pollingIntervalSeconds": 0.3, "scaleDownStabilizationSeconds": 2},
    }
    for key, value in spec.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.CRD_KIND,
        "metadata": {"name": "pool", "namespace": NS},
        "spec": body,
    }
