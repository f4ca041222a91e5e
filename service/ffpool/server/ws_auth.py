"""The WebSocket upgrade's checks, before any frame: path, Origin, identity, connection limit.

Refusals are plain HTTP answers with a short body that says what, never why (a wrong token and
a missing one look the same). Browsers authenticate with a ticket in `Sec-WebSocket-Protocol`
(ffpool.auth.tickets); the server then selects `ffpool.v1`, never echoing the ticket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ffpool import logs, names
from ffpool.auth.connection_limits import ConnectionLimits
from ffpool.auth.gate import Authenticator
from ffpool.auth.identity import Caller
from ffpool.auth.policy import is_own_page, origin_allowed
from ffpool.domain.protocol import ErrorCode
from ffpool.metrics import Metrics

log = logs.get(__name__)


def _one(headers: Headers, name: str) -> str | None:
    """A header sent once; sent twice it counts as garbage (None would mean "absent")."""
    values = headers.get_all(name)
    if len(values) > 1:
        return "\0"
    return values[0] if values else None


def select_subprotocol(
    _connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """`ffpool.v1` when offered (browsers offer it beside their ticket), else none at all."""
    return Subprotocol(names.WS_SUBPROTOCOL) if names.WS_SUBPROTOCOL in offered else None


class Handshake:
    def __init__(self, auth: Authenticator, limits: ConnectionLimits, metrics: Metrics) -> None:
        self.auth = auth
        self.limits = limits
        self.metrics = metrics
        self.callers: dict[ServerConnection, Caller] = {}
        self._releases: set[asyncio.Task[None]] = set()

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if request.path.split("?", 1)[0] != names.WS_PATH:
            return connection.respond(
                HTTPStatus.NOT_FOUND, f"WebSocket endpoint is {names.WS_PATH}\n"
            )
        if not self._origin_ok(request.headers):
            return self._refuse(connection, HTTPStatus.FORBIDDEN, "origin not allowed", "origin")
        protocols = ",".join(request.headers.get_all("Sec-WebSocket-Protocol")) or None
        caller = await self.auth.for_upgrade(_one(request.headers, names.AUTH_HEADER), protocols)
        if caller is None:
            return self._refuse(
                connection, HTTPStatus.UNAUTHORIZED, "unauthorized", ErrorCode.UNAUTHORIZED
            )
        if not self.limits.acquire(caller.tenant):
            log.info("websocket refused: tenant at its connection limit", tenant=caller.tenant)
            return self._refuse(
                connection,
                HTTPStatus.TOO_MANY_REQUESTS,
                "too many connections",
                ErrorCode.RATE_LIMITED,
            )
        self.callers[connection] = caller
        # Released when the connection closes, however it ends (even mid-handshake).
        task = asyncio.create_task(self._release_when_closed(connection, caller.tenant))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        return None

    def _origin_ok(self, headers: Headers) -> bool:
        """ALLOWED_ORIGINS, or the service's own web page (same host, on the HTTP port)."""
        origin, settings = _one(headers, "Origin"), self.auth.settings
        if origin_allowed(origin, settings.allowed_origins):
            return True
        return origin is not None and is_own_page(origin, _one(headers, "Host"), settings.http_port)

    def _refuse(
        self, connection: ServerConnection, status: HTTPStatus, text: str, code: str
    ) -> Response:
        self.metrics.observe_error(code)
        response = connection.respond(status, f"{text}\n")
        if status is HTTPStatus.UNAUTHORIZED:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _release_when_closed(self, connection: ServerConnection, tenant: str) -> None:
        try:
            await connection.wait_closed()
        finally:
            self.limits.release(tenant)
            self.callers.pop(connection, None)
