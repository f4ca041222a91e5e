"""The HTTP side's authentication: a middleware every route passes, and the ticket route.

Every route but the probes (/livez /readyz /health) and the web page (/, /static/*,
/ui/config.json) needs a token, except one: an output download carrying a valid signed link
(ffpool.auth.signed_links) is served without one, a package's file with its token in the path
likewise.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel

from ffpool import logs, names
from ffpool.auth import signed_links
from ffpool.auth.gate import Authenticator
from ffpool.auth.identity import Caller
from ffpool.domain.protocol import ErrorCode

log = logs.get(__name__)
CALLER: Final = web.RequestKey("caller", Caller)
# Set (True) on a download authorized by its signed link rather than by a token.
SIGNED_LINK: Final = web.RequestKey("signed_link", bool)


class TicketBody(BaseModel):
    ticket: str
    expires_in: int


def unauthorized() -> web.Response:
    body = '{"error": "unauthorized", "message": "authentication required"}'
    return web.Response(
        text=body,
        status=401,
        content_type="application/json",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _signed_link_ok(request: web.Request, auth: Authenticator) -> bool:
    resource = request.match_info.route.resource
    if resource is None or resource.canonical != names.OUTPUT_PATH:
        return False
    if names.LINK_SIGNATURE_PARAM not in request.query:
        return False
    return auth.link_valid(
        request.match_info["job_id"],
        request.match_info["name"],
        request.query.get(names.LINK_EXPIRES_PARAM),
        request.query.get(names.LINK_SIGNATURE_PARAM),
    )


def _package_link_ok(request: web.Request, auth: Authenticator) -> bool:
    """A package's file (docs/ladders.md): the link's token is in its path."""
    resource = request.match_info.route.resource
    if resource is None or resource.canonical != names.PACKAGE_PATH:
        return False
    job_id, token = request.match_info["job_id"], request.match_info["token"]
    return signed_links.package_token_valid(auth.link_key, job_id, token, auth.clock())


def _is_asset(request: web.Request) -> bool:
    """The page's assets are public. Matched by the route the router chose, not by the path's
    prefix, so no spelling of a path can reach another route as if it were an asset."""
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical == names.STATIC_PATH


def auth_middleware(auth: Authenticator) -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in names.PUBLIC_PATHS or _is_asset(request):
            return await handler(request)
        if _signed_link_ok(request, auth) or _package_link_ok(request, auth):
            request[SIGNED_LINK] = True
            return await handler(request)
        values = request.headers.getall(names.AUTH_HEADER, [])
        caller = (
            None if len(values) > 1 else await auth.from_authorization(next(iter(values), None))
        )
        if caller is None:
            log.debug("request refused", code=ErrorCode.UNAUTHORIZED.value, path=request.path)
            return unauthorized()
        request[CALLER] = caller
        return await handler(request)

    return authenticate


def ticket_handler(auth: Authenticator) -> Handler:
    async def ticket(request: web.Request) -> web.Response:
        """A single-use WebSocket ticket for a browser (ffpool.auth.tickets)."""
        caller = request[CALLER]
        body = TicketBody(ticket=auth.tickets.issue(caller), expires_in=auth.tickets.ttl_s)
        return web.json_response(text=body.model_dump_json(), headers={"Cache-Control": "no-store"})

    return ticket
