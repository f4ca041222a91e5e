"""RabbitMQ management HTTP API client (aiohttp): a timeout on every call, vhost and names
percent-encoded as single path segments (`/` → `%2F`), credentials never logged. Every answer
is classified at this boundary (auth, vhost, unavailable, rejected) and only JSON of the
expected shape is accepted; anything else is a BrokerBadAnswer, never success or absence."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import yarl
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ffpool import logs
from ffpool_operator.decisions.broker_model import (
    Binding,
    BrokerAuthFailed,
    BrokerBadAnswer,
    BrokerNotFound,
    BrokerRejected,
    BrokerUnavailable,
    Policy,
    QueueInfo,
)
from ffpool_operator.decisions.victims import BrokerChannel, BrokerConnection
from ffpool_operator.http_session import LazySession

log = logs.get(__name__)
T = TypeVar("T")
_QUEUE_COLUMNS = (
    "name,durable,arguments,messages_ready,messages_unacknowledged,consumers,"
    "policy,operator_policy,effective_policy_definition,type,leader,members,online"
)


class _ApiConnectionDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = ""


class _ApiChannel(BaseModel):
    """One entry of `/api/vhosts/{vhost}/channels` (the columns asked for)."""

    model_config = ConfigDict(extra="ignore")

    connection_details: _ApiConnectionDetails | None = None
    messages_unacknowledged: int = Field(default=0, ge=0)

    @field_validator("connection_details", mode="before")
    @classmethod
    def _no_details(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None  # `[]` for direct (in-broker) clients

    def parsed(self) -> BrokerChannel:
        details = self.connection_details or _ApiConnectionDetails()
        return BrokerChannel(connection_name=details.name, unacked=self.messages_unacknowledged)


class _ApiBinding(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(default="", alias="routing_key")
    properties_key: str = ""


def _parse(shape: type[T], data: Any, path: str) -> T:
    """The answer validated against its model: a wrong shape is an unusable answer, never an
    error escaping to kopf (which would stop the pool's handlers for its retry wait)."""
    try:
        return TypeAdapter(shape).validate_python(data)
    except ValidationError as exc:
        detail = f"{exc.error_count()} errors"
        raise BrokerBadAnswer(f"GET {path}: unexpected answer ({detail})") from exc


async def _answer(resp: aiohttp.ClientResponse, what: str) -> Any:
    """Classifies one HTTP answer. Only JSON counts as an answer from the management API: a
    proxy's login page comes back as 200 text/html and must not read as success or absence."""
    if resp.status >= 500:
        raise BrokerUnavailable(f"{what}: HTTP {resp.status}")
    if resp.status in (401, 403):
        raise BrokerAuthFailed(f"{what}: HTTP {resp.status} (check the Secret's credentials)")
    text = await resp.text()
    if text.strip() and resp.content_type != "application/json":
        raise BrokerBadAnswer(f"{what}: HTTP {resp.status} {resp.content_type}, not JSON")
    if resp.status == 404:
        if what.startswith("GET"):
            return None
        raise BrokerNotFound(f"{what}: HTTP 404 {text[:200]}")
    if resp.status >= 400:
        raise BrokerRejected(f"{what}: HTTP {resp.status} {text[:300]}")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BrokerBadAnswer(f"{what}: invalid JSON") from exc


def segment(value: str) -> str:
    """One path segment, fully percent-encoded (no `safe` characters)."""
    return quote(value, safe="")


class ManagementClient:
    def __init__(
        self, base_url: str, username: str, password: SecretStr, timeout: float = 5.0
    ) -> None:
        self._base = base_url.rstrip("/") + "/api"
        # Built by hand: aiohttp 3.14 deprecates BasicAuth; UTF-8 so any password works.
        token = base64.b64encode(f"{username}:{password.get_secret_value()}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        timeouts = aiohttp.ClientTimeout(total=timeout)
        self._http = LazySession(
            lambda: aiohttp.ClientSession(headers=self._headers, timeout=timeouts)
        )

    async def close(self) -> None:
        await self._http.close()

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """The decoded JSON answer (None: absent on a read, or no body on a write)."""
        if (session := self._http.get()) is None:
            raise BrokerUnavailable(f"{method} {path}: client closed")
        try:
            # encoded=True: yarl must not turn the `%2F` of vhost `/` back into a slash.
            url = yarl.URL(self._base + path, encoded=True)
            async with session.request(method, url, json=body, params=params) as resp:
                return await _answer(resp, f"{method} {path}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception text carries only host and path: the credentials sit in the header.
            raise BrokerUnavailable(f"{method} {path}: {type(exc).__name__}") from exc

    async def queue(self, vhost: str, name: str) -> QueueInfo | None:
        path = f"/queues/{segment(vhost)}/{segment(name)}"
        data = await self._call("GET", path, params={"columns": _QUEUE_COLUMNS})
        return None if data is None else _parse(QueueInfo, data, path)

    async def connections(self, vhost: str) -> list[BrokerConnection]:
        path = f"/vhosts/{segment(vhost)}/connections"
        data = await self._call("GET", path, params={"columns": "name,user_provided_name"})
        return _parse(list[BrokerConnection], data or [], path)

    async def channels(self, vhost: str) -> list[BrokerChannel]:
        path = f"/vhosts/{segment(vhost)}/channels"
        data = await self._call(
            "GET", path, params={"columns": "connection_details.name,messages_unacknowledged"}
        )
        return [c.parsed() for c in _parse(list[_ApiChannel], data or [], path)]

    async def declare_exchange(self, vhost: str, name: str, kind: str) -> None:
        body = {"type": kind, "durable": True, "auto_delete": False}
        await self._call("PUT", f"/exchanges/{segment(vhost)}/{segment(name)}", body)

    async def declare_queue(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        body = {"durable": True, "auto_delete": False, "arguments": arguments}
        await self._call("PUT", f"/queues/{segment(vhost)}/{segment(name)}", body)

    async def delete_queue(self, vhost: str, name: str, if_empty: bool = True) -> None:
        """`if_empty=False` for a quorum queue: RabbitMQ answers 400 to the flag there."""
        path = f"/queues/{segment(vhost)}/{segment(name)}"
        await self._call("DELETE", path, params={"if-empty": "true"} if if_empty else None)

    async def nodes(self) -> int:
        """`GET /api/nodes` lists every node of the cluster, running or not."""
        data = await self._call("GET", "/nodes", params={"columns": "name"})
        return len(_parse(list[dict[str, Any]], data or [], "/nodes"))

    async def bindings(self, vhost: str, exchange: str, queue: str) -> list[Binding]:
        path = f"/bindings/{segment(vhost)}/e/{segment(exchange)}/q/{segment(queue)}"
        data = await self._call("GET", path)
        return [
            Binding(exchange=exchange, queue=queue, routing_key=_ApiBinding.model_validate(b).key)
            for b in _parse(list[_ApiBinding], data or [], path)
        ]

    async def bind(self, vhost: str, binding: Binding) -> None:
        path = (
            f"/bindings/{segment(vhost)}/e/{segment(binding.exchange)}/q/{segment(binding.queue)}"
        )
        await self._call("POST", path, {"routing_key": binding.routing_key, "arguments": {}})

    async def unbind(self, vhost: str, binding: Binding) -> None:
        """Removes the binding with that routing key (absent: nothing to do). The API names a
        binding by its `properties_key`, read from the listing."""
        path = (
            f"/bindings/{segment(vhost)}/e/{segment(binding.exchange)}/q/{segment(binding.queue)}"
        )
        for b in _parse(list[_ApiBinding], await self._call("GET", path) or [], path):
            if b.key == binding.routing_key:
                with contextlib.suppress(BrokerNotFound):  # removed meanwhile
                    await self._call("DELETE", f"{path}/{segment(b.properties_key)}")

    async def put_policy(self, vhost: str, policy: Policy) -> None:
        body = {
            "pattern": policy.pattern,
            "definition": policy.definition,
            "apply-to": policy.apply_to,
            "priority": policy.priority,
        }
        await self._call("PUT", f"/policies/{segment(vhost)}/{segment(policy.name)}", body)

    async def delete_policy(self, vhost: str, name: str) -> None:
        with contextlib.suppress(BrokerNotFound):  # already gone
            await self._call("DELETE", f"/policies/{segment(vhost)}/{segment(name)}")
