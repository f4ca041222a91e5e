"""The ops port (OPS_PORT, 8082): /metrics and the all-tenant /dead-letters, for the scraper and
operators. The Service exposes it for scraping; the Ingress never routes it (docs/security.md)."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from pydantic import BaseModel

from ffpool import names
from ffpool.backends.base import ServiceBackend
from ffpool.domain.events import JobRecord
from ffpool.metrics import CONTENT_TYPE, Metrics

MAX_DEAD_LETTERS: Final = 1000


class DeadLettersBody(BaseModel):
    dead_letters: list[JobRecord]


def dead_letter_limit(raw: str | None) -> int | None:
    """`?limit=` clamped to 1..MAX_DEAD_LETTERS (default 100); None if not an integer."""
    try:
        limit = int(raw if raw is not None else "100")
    except ValueError:
        return None
    return min(max(limit, 1), MAX_DEAD_LETTERS)


async def dead_letters_response(request: web.Request, backend: ServiceBackend) -> web.Response:
    limit = dead_letter_limit(request.query.get("limit"))
    if limit is None:
        body = '{"error": "invalid_limit", "message": "limit must be an integer"}'
        return web.Response(text=body, status=400, content_type="application/json")
    listed = DeadLettersBody(dead_letters=await backend.dead_letters(limit))
    return web.json_response(text=listed.model_dump_json())


def make_ops_app(backend: ServiceBackend | None, metrics: Metrics) -> web.Application:
    async def metrics_text(_: web.Request) -> web.Response:
        body = await metrics.render(backend)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def dead_letters(request: web.Request) -> web.Response:
        assert backend is not None
        return await dead_letters_response(request, backend)

    app = web.Application()
    app.router.add_get(names.METRICS_PATH, metrics_text)
    if backend is not None:
        app.router.add_get(names.DEAD_LETTERS_PATH, dead_letters)
    return app
