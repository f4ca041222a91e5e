"""A fake RabbitMQ management API on loopback (aiohttp), answering every request with one
canned answer: for the failures the real broker cannot be made to produce on demand (a login
proxy's HTML page, invalid JSON, JSON of the wrong shape) and for auth or vhost errors without
touching the real broker's users."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


class Answer:
    """The answer every request gets (change it while the server runs), and what was asked."""

    def __init__(
        self,
        status: int,
        body: str,
        content_type: str = "application/json",
        delays: dict[str, float] | None = None,
    ) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.delays = delays or {}
        """`"METHOD /path-prefix"` → seconds the answer takes (a slow broker)."""
        self.requests: list[str] = []


# (status, body, content type): build a fresh Answer per test with Answer(*HTML_LOGIN).
HTML_LOGIN = (200, "<html><body>Please log in</body></html>", "text/html")
BAD_JSON = (200, '{"name": "jobs", "messages_ready": ', "application/json")
WRONG_SHAPE = (200, '{"messages_ready": "lots"}', "application/json")
WRONG_LIST = (200, '{"not": "a list"}', "application/json")
UNAUTHORIZED = (401, '{"error": "not_authorized", "reason": "Login failed"}', "application/json")
NOT_FOUND = (404, '{"error": "Object Not Found", "reason": "Not Found"}', "application/json")


@contextlib.asynccontextmanager
async def serve(answer: Answer) -> AsyncIterator[str]:
    """Yields the base URL (what a Secret's `management-url` holds)."""

    async def handle(request: web.Request) -> web.Response:
        asked = f"{request.method} {request.path}"
        answer.requests.append(asked)
        await asyncio.sleep(
            max((s for p, s in answer.delays.items() if asked.startswith(p)), default=0)
        )
        return web.Response(
            status=answer.status, text=answer.body, content_type=answer.content_type
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
