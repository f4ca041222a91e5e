"""CORS for the HTTP side, so a web app on an ALLOWED_ORIGINS origin can fetch a ticket, look up
jobs, upload and download with its token from the browser (docs/security.md, "Browsers").

Only listed origins get CORS headers; a preflight from any other is refused. No cookies are
involved (the token travels in `Authorization`), so credentials are never allowed.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ffpool.auth.policy import origin_allowed

# Browsers cache a preflight this long (they cap it themselves: Chromium at 2 hours).
PREFLIGHT_MAX_AGE_S: Final = 600
ALLOW_METHODS: Final = "GET, HEAD, POST"
ALLOW_HEADERS: Final = "Authorization, Content-Type, Range"
EXPOSE_HEADERS: Final = "Content-Length, Content-Range, Content-Disposition"


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The headers an answer to this origin carries: none unless the origin is listed."""
    if origin is None or not origin_allowed(origin, allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
        "Vary": "Origin",
    }


def cors_middleware(allowed: tuple[str, ...]) -> Middleware:
    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = cors_headers(request.headers.get("Origin"), allowed)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not headers:
                return web.Response(status=403, text="origin not allowed\n")
            preflight = {
                "Access-Control-Allow-Methods": ALLOW_METHODS,
                "Access-Control-Allow-Headers": ALLOW_HEADERS,
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            }
            return web.Response(status=204, headers={**headers, **preflight})
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(headers)
            raise
        response.headers.update(headers)
        return response

    return cors
