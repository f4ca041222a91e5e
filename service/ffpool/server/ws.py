"""The WebSocket endpoint (`ws://HOST:8080/ws`): the handshake's checks (ws_auth.py), then one
Session per connection (ws_session.py).
"""

from __future__ import annotations

import contextlib

from websockets.asyncio.server import Server, ServerConnection, serve

from ffpool.auth.connection_limits import ConnectionLimits
from ffpool.auth.gate import Authenticator
from ffpool.auth.keys import load_signing_key
from ffpool.backends.base import JobBackend
from ffpool.metrics import Metrics
from ffpool.server.job_checks import JobChecks
from ffpool.server.output_links import OutputLinks
from ffpool.server.ws_auth import Handshake, select_subprotocol
from ffpool.server.ws_session import Session
from ffpool.settings import Settings
from ffpool.storage.media import Storage

# Frames beyond this are cut off by the library itself (close 1009); below it, frames larger
# than max_message_bytes get an `error` reply and the connection stays open.
HARD_FRAME_FACTOR = 16


async def start_ws_server(
    backend: JobBackend,
    settings: Settings,
    metrics: Metrics,
    auth: Authenticator | None = None,
    storage: Storage | None = None,
    checks: JobChecks | None = None,
    links: OutputLinks | None = None,
) -> Server:
    """Without `auth` one is made from the settings (benchmarks; the service passes the one its
    HTTP side uses, so tickets issued there are taken here). `checks` and `links` default to a
    server without tenants or object storage."""
    auth = auth or Authenticator(settings, load_signing_key(settings))
    handshake = Handshake(auth, ConnectionLimits(settings.tenant_max_connections), metrics)

    async def handler(ws: ServerConnection) -> None:
        metrics.ws_connected(1)
        try:
            caller = handshake.callers.get(ws)
            if caller is not None:  # else it closed during the handshake
                await Session(
                    ws, backend, settings, metrics, caller, auth, storage, checks, links
                ).run()
        finally:
            metrics.ws_connected(-1)
            with contextlib.suppress(Exception):
                await ws.close()

    return await serve(
        handler,
        settings.host,
        settings.ws_port,
        process_request=handshake.process_request,
        select_subprotocol=select_subprotocol,
        max_size=settings.max_message_bytes * HARD_FRAME_FACTOR,
        max_queue=16,
    )
