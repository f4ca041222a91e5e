"""The ops port (OPS_PORT, 8082): /metrics and the all-tenant /dead-letters, for the scraper and
operators. The Service exposes it for scraping; the Ingress never routes it (docs/security.md)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from ffpool import names
from ffpool.backends.base import ServiceBackend
from ffpool.domain.events import JobRecord
from ffpool.domain.listing import BadQuery, parse_limit
from ffpool.metrics import CONTENT_TYPE, Metrics


class ErrorBody(BaseModel):
    error: str
    message: str


class DeadLettersBody(BaseModel):
    dead_letters: list[JobRecord]


async def dead_letters_response(request: web.Request, backend: ServiceBackend) -> web.Response:
    """`?limit=` as `GET /jobs` reads it (listing.parse_limit): 1 to 1000, else 400 in words."""
    try:
        limit = parse_limit(request.query.getall("limit", []))
    except BadQuery as exc:
        body = ErrorBody(error="invalid_query", message=str(exc)).model_dump_json()
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
